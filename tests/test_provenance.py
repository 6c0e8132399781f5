"""Provenance written into PNG, JPEG and WebP files, and read back by Pillow,
by exiftool and by :func:`imagegen.provenance.read`. No database needed."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from PIL import Image, PngImagePlugin

from imagegen import provenance
from imagegen.exceptions import ImageRejectedError
from imagegen.provenance import AI_GENERATED, Provenance, embed, read

from .conftest import unavailable

EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}

#: (format, mode, save options) for every container variant embed() handles.
CASES = [
    pytest.param("PNG", "RGB", {}, id="png-rgb"),
    pytest.param("PNG", "RGBA", {}, id="png-rgba"),
    pytest.param("JPEG", "RGB", {"quality": 90}, id="jpeg"),
    pytest.param("WEBP", "RGB", {"quality": 80}, id="webp-lossy"),
    pytest.param("WEBP", "RGBA", {"quality": 80}, id="webp-lossy-alpha"),
    pytest.param("WEBP", "RGB", {"lossless": True}, id="webp-lossless"),
    pytest.param("WEBP", "RGBA", {"lossless": True}, id="webp-lossless-alpha"),
]

PROVENANCE = Provenance(
    prompt="a red bicycle leaning on a sunlit wall",
    model="gpt-image-2",
    provider="apixo",
    job_id="5f0c2b1e-8d4a-4c35-9a57-0b6f3f1c2d9e",
    created_at=datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC),
    mode="text_to_image",
    resolution="2k",
    aspect_ratio="16:9",
)

HOSTILE = (
    "<script>alert(\"x\")</script> & 'quoted' \x00\x01\x1b ]]> </x:xmpmeta>"
    ' <?xpacket end="w"?> café 東京 \U0001f600\ud800\r\nline two'
)
#: What survives: characters XML 1.0 forbids (NUL, C0 controls, lone surrogates) are dropped.
HOSTILE_CLEAN = (
    "<script>alert(\"x\")</script> & 'quoted'  ]]> </x:xmpmeta>"
    ' <?xpacket end="w"?> café 東京 \U0001f600\r\nline two'
)

DC = "{http://purl.org/dc/elements/1.1/}"
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"


def make_image(
    path: Path, fmt: str, mode: str, options: dict[str, Any], size: tuple[int, int] = (67, 41)
) -> Path:
    """Noise, so that a codec cannot hide a byte out of place behind flat colour."""
    rng = random.Random(f"{fmt}-{mode}-{size}")
    Image.frombytes(mode, size, rng.randbytes(size[0] * size[1] * len(mode))).save(
        path, fmt, **options
    )
    return path


def source_image(tmp_path: Path, fmt: str, mode: str, options: dict[str, Any]) -> Path:
    return make_image(tmp_path / f"source.{EXTENSIONS[fmt]}", fmt, mode, options)


def decoded(path: Path) -> tuple[str, tuple[int, int], bytes]:
    with Image.open(path) as im:
        im.load()
        return im.mode, im.size, im.tobytes()


def pillow_description(path: Path) -> str:
    """The prompt as Pillow sees it: PNG text chunk, or dc:description in the XMP."""
    with Image.open(path) as im:
        if im.format == "PNG":
            return im.text["Description"]
        # getxmp() needs defusedxml, which imagegen does not depend on; the raw
        # packet is in info either way.
        packet = im.info["xmp"]
    packet = packet.strip(b"\x00 ") if isinstance(packet, bytes) else packet
    root = ElementTree.fromstring(packet)  # noqa: S314 (a packet this test wrote)
    return root.find(f".//{DC}description/{RDF}Alt/{RDF}li").text


def count(path: Path, needle: bytes) -> int:
    return path.read_bytes().count(needle)


@pytest.mark.parametrize(("fmt", "mode", "options"), CASES)
def test_embed_keeps_pixels_and_adds_metadata(
    tmp_path: Path, fmt: str, mode: str, options: dict[str, Any]
) -> None:
    source = source_image(tmp_path, fmt, mode, options)
    target = tmp_path / f"target.{EXTENSIONS[fmt]}"

    embed(source, target, PROVENANCE, format=fmt)

    assert decoded(target) == decoded(source)
    with Image.open(target) as im:
        assert im.format == fmt
    assert pillow_description(target) == PROVENANCE.prompt
    assert read(target) == {**PROVENANCE.as_dict(), "digital_source_type": AI_GENERATED}


def test_png_text_chunks(tmp_path: Path) -> None:
    source = source_image(tmp_path, "PNG", "RGB", {})
    target = tmp_path / "target.png"

    embed(source, target, PROVENANCE, format="PNG")

    with Image.open(target) as im:
        assert im.text["Software"] == "imagegen"
        assert im.text["Source"] == "apixo / gpt-image-2"
        assert im.text["Creation Time"] == "2025-03-04T05:06:07+00:00"
        assert json.loads(im.text["Comment"]) == PROVENANCE.as_dict()
        assert "trainedAlgorithmicMedia" in im.text["XML:com.adobe.xmp"]
    # Before the pixels, where readers that stop at IDAT still find it.
    data = target.read_bytes()
    assert data.index(b"iTXtDescription") < data.index(b"IDAT")


@pytest.mark.parametrize(("fmt", "mode", "options"), CASES)
def test_embedding_twice_leaves_one_copy(
    tmp_path: Path, fmt: str, mode: str, options: dict[str, Any]
) -> None:
    source = source_image(tmp_path, fmt, mode, options)
    once, twice = tmp_path / "once", tmp_path / "twice"

    embed(source, once, PROVENANCE, format=fmt)
    embed(once, twice, PROVENANCE, format=fmt)

    assert twice.read_bytes() == once.read_bytes()
    assert count(twice, b"<?xpacket begin") == 1

    changed = Provenance(**{**PROVENANCE.__dict__, "prompt": "a blue kite"})
    embed(twice, twice, changed, format=fmt)

    assert read(twice)["prompt"] == "a blue kite"
    assert count(twice, b"<?xpacket begin") == 1
    assert count(twice, PROVENANCE.prompt.encode()) == 0
    if fmt == "PNG":
        assert count(twice, b"iTXtDescription\x00") == 1
        assert count(twice, b"iTXtComment\x00") == 1
    assert decoded(twice) == decoded(source)


@pytest.mark.parametrize(("fmt", "mode", "options"), CASES)
def test_hostile_prompt_round_trips(
    tmp_path: Path, fmt: str, mode: str, options: dict[str, Any]
) -> None:
    source = source_image(tmp_path, fmt, mode, options)
    target = tmp_path / "target"
    hostile = Provenance(**{**PROVENANCE.__dict__, "prompt": HOSTILE, "model": "<m&o>"})

    embed(source, target, hostile, format=fmt)

    assert decoded(target) == decoded(source)
    assert pillow_description(target) == HOSTILE_CLEAN
    found = read(target)
    assert found["prompt"] == HOSTILE_CLEAN
    assert found["model"] == "<m&o>"
    assert b"<script>" not in _xmp_bytes(target)


@pytest.mark.parametrize(("fmt", "mode", "options"), CASES)
def test_copies_across_block_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, mode: str, options: dict[str, Any]
) -> None:
    # A tiny copy buffer puts block edges everywhere, JPEG's EOI marker included.
    monkeypatch.setattr(provenance, "_BLOCK", 3)
    source = source_image(tmp_path, fmt, mode, options)
    target = tmp_path / "target"

    embed(source, target, PROVENANCE, format=fmt)

    assert decoded(target) == decoded(source)
    assert read(target)["job_id"] == PROVENANCE.job_id


def test_large_png_spans_many_blocks(tmp_path: Path) -> None:
    source = make_image(tmp_path / "big.png", "PNG", "RGB", {}, size=(800, 600))
    assert source.stat().st_size > 1 << 20
    target = tmp_path / "target.png"

    embed(source, target, PROVENANCE, format="PNG")

    assert decoded(target) == decoded(source)


@pytest.mark.parametrize(("fmt", "mode", "options"), CASES)
def test_truncated_file_is_rejected(
    tmp_path: Path, fmt: str, mode: str, options: dict[str, Any]
) -> None:
    source = source_image(tmp_path, fmt, mode, options)
    embedded = tmp_path / "embedded"
    embed(source, embedded, PROVENANCE, format=fmt)
    truncated = tmp_path / "truncated"
    data = source.read_bytes()
    truncated.write_bytes(data[: len(data) * 2 // 3])
    target = tmp_path / "target"

    with pytest.raises(ImageRejectedError, match=r"truncated|ends"):
        embed(truncated, target, PROVENANCE, format=fmt)

    assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".provenance-")]
    # read() walks the container only as far as the metadata: cut inside it.
    data = embedded.read_bytes()
    truncated.write_bytes(data[: data.index(b"imagegen:jobId")])
    with pytest.raises(ImageRejectedError, match=r"truncated|ends"):
        read(truncated)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_wrong_signature_is_rejected(tmp_path: Path, fmt: str) -> None:
    bogus = tmp_path / "bogus"
    bogus.write_bytes(b"GIF89a" + bytes(200))

    with pytest.raises(ImageRejectedError, match="does not start with"):
        embed(bogus, tmp_path / "target", PROVENANCE, format=fmt)
    with pytest.raises(ImageRejectedError, match="not a PNG, JPEG or WebP"):
        read(bogus)


def test_png_with_a_bad_crc_is_rejected(tmp_path: Path) -> None:
    source = source_image(tmp_path, "PNG", "RGB", {})
    data = bytearray(source.read_bytes())
    data[data.index(b"IDAT") + 20] ^= 0xFF
    source.write_bytes(bytes(data))

    with pytest.raises(ImageRejectedError, match="CRC"):
        embed(source, tmp_path / "target.png", PROVENANCE, format="PNG")


def test_other_png_text_is_kept(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Ada")
    info.add_text("Description", "an old caption")
    info.add_text("Comment", "old", zip=True)
    source = tmp_path / "source.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(source, "PNG", pnginfo=info)
    target = tmp_path / "target.png"

    embed(source, target, PROVENANCE, format="PNG")

    with Image.open(target) as im:
        assert im.text["Author"] == "Ada"
        assert im.text["Description"] == PROVENANCE.prompt
        assert json.loads(im.text["Comment"])["job_id"] == PROVENANCE.job_id
    assert count(target, b"an old caption") == 0


@pytest.mark.parametrize(
    ("fmt", "options"), [("JPEG", {}), ("WEBP", {}), ("WEBP", {"lossless": True})]
)
def test_exif_is_kept(tmp_path: Path, fmt: str, options: dict[str, Any]) -> None:
    exif = Image.Exif()
    exif[0x010F] = "Camera Maker"  # Make
    source = tmp_path / f"source.{EXTENSIONS[fmt]}"
    Image.new("RGB", (16, 16), (9, 99, 199)).save(source, fmt, exif=exif, **options)
    target = tmp_path / "target"

    embed(source, target, PROVENANCE, format=fmt)

    with Image.open(target) as im:
        assert im.getexif()[0x010F] == "Camera Maker"
    assert read(target)["provider"] == "apixo"
    if fmt == "JPEG":
        data = target.read_bytes()
        assert data.index(b"Exif\x00") < data.index(b"http://ns.adobe.com/xap/1.0/")
    else:
        assert target.read_bytes()[20] & 0x0C == 0x0C  # VP8X flags: EXIF and XMP


def test_long_prompt_is_cut_short_in_jpeg_only(tmp_path: Path) -> None:
    long = Provenance(**{**PROVENANCE.__dict__, "prompt": "東京 & <more> " * 8000})
    jpeg = make_image(tmp_path / "source.jpg", "JPEG", "RGB", {})
    png = make_image(tmp_path / "source.png", "PNG", "RGB", {})

    embed(jpeg, tmp_path / "target.jpg", long, format="JPEG")
    embed(png, tmp_path / "target.png", long, format="PNG")

    assert decoded(tmp_path / "target.jpg") == decoded(jpeg)
    found = read(tmp_path / "target.jpg")
    assert found["prompt_truncated"] == "True"
    assert found["prompt"].endswith("…")
    assert long.prompt.startswith(found["prompt"][:-1])
    assert len(found["prompt"]) > 10_000
    assert read(tmp_path / "target.png")["prompt"] == long.prompt
    assert pillow_description(tmp_path / "target.png") == long.prompt


def test_read_finds_nothing_in_a_plain_image(tmp_path: Path) -> None:
    for fmt in EXTENSIONS:
        assert read(make_image(tmp_path / f"plain.{EXTENSIONS[fmt]}", fmt, "RGB", {})) == {}


def test_read_refuses_an_xmp_packet_with_a_dtd(tmp_path: Path) -> None:
    packet = b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x:xmpmeta xmlns:x="adobe:ns:meta/">&a;</x:xmpmeta>'
    path = tmp_path / "dtd.jpg"
    Image.new("RGB", (8, 8)).save(path, "JPEG", xmp=packet)

    with pytest.raises(ImageRejectedError, match="DTD"):
        read(path)


def test_unknown_format_is_a_programming_error(tmp_path: Path) -> None:
    source = source_image(tmp_path, "PNG", "RGB", {})
    with pytest.raises(ValueError, match="GIF"):
        embed(source, tmp_path / "target", PROVENANCE, format="GIF")


def test_provenance_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Provenance(**{**PROVENANCE.__dict__, "created_at": datetime(2025, 1, 1)})
    paris = Provenance(
        **{
            **PROVENANCE.__dict__,
            "created_at": datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=1))),
        }
    )
    assert json.loads(json.dumps(paris.as_dict()))["created_at"] == "2025-01-01T00:00:00+01:00"


# -- exiftool -------------------------------------------------------------------


def require_exiftool() -> str:
    """exiftool's path; skips without it, except under CI=true, where it fails."""
    path = shutil.which("exiftool")
    if path:
        return path
    unavailable("exiftool is not installed (Debian: apt-get install libimage-exiftool-perl)")


@pytest.mark.parametrize(("fmt", "mode", "options"), CASES)
def test_exiftool_reads_the_metadata(
    tmp_path: Path, fmt: str, mode: str, options: dict[str, Any]
) -> None:
    exiftool = require_exiftool()
    source = source_image(tmp_path, fmt, mode, options)
    target = tmp_path / f"target.{EXTENSIONS[fmt]}"
    hostile = Provenance(**{**PROVENANCE.__dict__, "prompt": HOSTILE})
    embed(source, target, hostile, format=fmt)

    result = subprocess.run(
        [exiftool, "-json", "-G1", "-a", str(target)],
        capture_output=True,
        check=True,
        timeout=60,
    )

    tags = json.loads(result.stdout)[0]
    assert not [key for key in tags if key.endswith(("Warning", "Error"))], tags
    assert tags["XMP-dc:Description"] == HOSTILE_CLEAN
    assert tags["XMP-imagegen:Prompt"] == HOSTILE_CLEAN
    assert tags["XMP-imagegen:JobId"] == PROVENANCE.job_id
    assert tags["XMP-imagegen:Model"] == "gpt-image-2"
    assert tags["XMP-xmp:CreatorTool"] == "imagegen"
    assert tags["XMP-xmp:CreateDate"] == "2025:03:04 05:06:07+00:00"
    assert tags["XMP-iptcExt:DigitalSourceType"] == AI_GENERATED
    if fmt == "PNG":
        assert tags["PNG:Description"] == HOSTILE_CLEAN


def _xmp_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    start = data.index(b"<?xpacket begin")
    return data[start : data.index(b"<?xpacket end", start)]

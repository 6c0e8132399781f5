"""Image verification (RELIABILITY.md I1-I4)."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pytest
from PIL import Image

from imagegen.exceptions import ImageRejectedError
from imagegen.imaging import JPEG_MAX_MARKERS, jpeg_end, verify_image
from imagegen.sandbox.render import bomb_png


def write(tmp_path, data, name="f"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def encoded(fmt, size=(64, 48)):
    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "content_type", "extension"),
    [("PNG", "image/png", "png"), ("JPEG", "image/jpeg", "jpg"), ("WEBP", "image/webp", "webp")],
)
def test_accepted_formats(tmp_path, fmt, content_type, extension):
    image = verify_image(write(tmp_path, encoded(fmt)))
    assert (image.format, image.content_type, image.extension) == (fmt, content_type, extension)
    assert (image.width, image.height) == (64, 48)


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_other_formats_refused(tmp_path, fmt):
    with pytest.raises(ImageRejectedError):
        verify_image(write(tmp_path, encoded(fmt)))


def test_html_refused(tmp_path):
    with pytest.raises(ImageRejectedError):
        verify_image(write(tmp_path, b"<html><body>hello</body></html>"))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_refused(tmp_path, fmt):
    out = io.BytesIO()
    Image.effect_noise((256, 256), 64).convert("RGB").save(out, fmt)
    data = out.getvalue()
    with pytest.raises(ImageRejectedError):
        verify_image(write(tmp_path, data[: len(data) // 2]))


def test_decompression_bomb_refused_without_decoding(tmp_path):
    with pytest.raises(ImageRejectedError, match=r"pixels|bomb"):
        verify_image(write(tmp_path, bomb_png()))


def test_max_pixels(tmp_path):
    with pytest.raises(ImageRejectedError, match="pixels"):
        verify_image(write(tmp_path, encoded("PNG")), max_pixels=1000)


def test_declared_type_must_match_bytes(tmp_path):
    path = write(tmp_path, encoded("PNG"))
    assert verify_image(path, declared_type="image/png; charset=binary").format == "PNG"
    with pytest.raises(ImageRejectedError, match="declared"):
        verify_image(path, declared_type="image/jpeg")
    with pytest.raises(ImageRejectedError, match="declared"):
        verify_image(path, declared_type="text/html")


# --- animation (issue 13): refused as GIF is ----------------------------------


def png_chunks(data):
    """The (type, data) chunks of a PNG."""
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return chunks


def png_file(chunks):
    out = b"\x89PNG\r\n\x1a\n"
    for kind, body in chunks:
        out += struct.pack(">I", len(body)) + kind + body
        out += struct.pack(">I", zlib.crc32(kind + body))
    return out


def actl(frames):
    return (b"acTL", struct.pack(">II", frames, 0))


def fctl(seq, width, height, x=0, y=0):
    return (b"fcTL", struct.pack(">IIIIIHHBB", seq, width, height, x, y, 1, 10, 0, 0))


def still_png(size=(32, 32)):
    return encoded("PNG", size)


def crafted_apng(kind):
    head, *rest = png_chunks(still_png())
    idat = [c for c in rest if c[0] == b"IDAT"]
    iend = [(b"IEND", b"")]
    fdat = [(b"fdAT", struct.pack(">I", 2) + idat[0][1])]
    if kind == "one-frame":
        return png_file([head, actl(1), fctl(0, 32, 32), *idat, *iend])
    if kind == "frame-larger-than-canvas":
        return png_file(
            [head, actl(2), fctl(0, 32, 32), *idat, fctl(1, 50_000, 50_000), *fdat, *iend]
        )
    if kind == "offsets-outside-canvas":
        return png_file(
            [head, actl(2), fctl(0, 32, 32), *idat, fctl(1, 16, 16, 1000, 1000), *fdat, *iend]
        )
    if kind == "first-frame-larger-than-canvas":
        return png_file([head, actl(1), fctl(0, 50_000, 50_000), *idat, *iend])
    if kind == "no-acTL":
        return png_file([head, *idat, fctl(1, 32, 32), *fdat, *iend])
    raise AssertionError(kind)


def pillow_animation(fmt, frames, size=(32, 32)):
    images = [Image.new("RGB", size, (i * 5 % 256, 20, 20)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, fmt, save_all=True, append_images=images[1:], duration=50, loop=0)
    return out.getvalue()


def webp_with_flag(data, animated):
    """``data`` (a VP8X WebP) with its animation flag set or cleared."""
    assert data[12:16] == b"VP8X"
    flags = data[20] | 0x02 if animated else data[20] & ~0x02
    return data[:20] + bytes([flags]) + data[21:]


def still_vp8x_webp():
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(
        out, "WEBP", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00"
    )
    return out.getvalue()


ANIMATED = {
    "apng-one-frame": lambda: crafted_apng("one-frame"),
    "apng-many-small-frames": lambda: pillow_animation("PNG", 40),
    "apng-frame-larger-than-canvas": lambda: crafted_apng("frame-larger-than-canvas"),
    "apng-first-frame-larger-than-canvas": lambda: crafted_apng("first-frame-larger-than-canvas"),
    "apng-offsets-outside-canvas": lambda: crafted_apng("offsets-outside-canvas"),
    "apng-chunks-without-acTL": lambda: crafted_apng("no-acTL"),
    "webp-frames": lambda: pillow_animation("WEBP", 3),
    "webp-chunks-flag-clear": lambda: webp_with_flag(pillow_animation("WEBP", 3), animated=False),
    "webp-flag-without-chunks": lambda: webp_with_flag(still_vp8x_webp(), animated=True),
}


@pytest.mark.parametrize("name", ANIMATED)
def test_animated_images_are_refused(tmp_path, name):
    """Family: an APNG with one frame (acTL says 1), with many small frames
    whose sum is over the pixel cap while the canvas is under it, with a
    frame larger than the canvas (first or later), with a frame whose offsets
    are outside the canvas, with fcTL/fdAT chunks but no acTL; an animated
    WebP with several frames, with animation chunks but the VP8X flag clear,
    with the flag set but no animation chunks. Controls (still PNG with an
    ancillary chunk, still WebP lossy, lossless and VP8X with Exif) pass in
    test_still_images_pass."""
    # The canvas (32x32) is far under the cap: only the animation refuses it.
    # Pillow itself refuses a first frame outside the canvas when opening.
    with pytest.raises(ImageRejectedError, match=r"Animated|not a usable image|not a PNG"):
        verify_image(write(tmp_path, ANIMATED[name]()), max_pixels=32 * 32 * 10)


def test_animation_is_named_in_the_message(tmp_path):
    with pytest.raises(ImageRejectedError, match="Animated PNG"):
        verify_image(write(tmp_path, pillow_animation("PNG", 40)))
    with pytest.raises(ImageRejectedError, match="Animated WebP"):
        verify_image(write(tmp_path, pillow_animation("WEBP", 3)))


STILLS = {
    "png-with-text-chunk": lambda: png_file(
        [png_chunks(still_png())[0], (b"tEXt", b"Comment\x00hello"), *png_chunks(still_png())[1:]]
    ),
    "webp-lossy": lambda: encoded("WEBP", (32, 32)),
    "webp-lossless": lambda: _lossless_webp(),
    "webp-vp8x-exif": still_vp8x_webp,
}


def _lossless_webp():
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(out, "WEBP", lossless=True)
    return out.getvalue()


@pytest.mark.parametrize("name", STILLS)
def test_still_images_pass(tmp_path, name):
    data = STILLS[name]()
    path = write(tmp_path, data)
    assert (verify_image(path).width, verify_image(path).height) == (32, 32)
    assert path.read_bytes() == data


# --- JPEG: nothing after the end-of-image marker is kept -------------------------


def noise_jpeg(**options):
    out = io.BytesIO()
    Image.effect_noise((256, 192), 80).convert("RGB").save(out, "JPEG", quality=95, **options)
    return out.getvalue()


def zip_bytes():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("evil.txt", "polyglot")
    return out.getvalue()


def with_app_segment(jpeg, payload, marker=0xEF):
    return (
        jpeg[:2] + bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]
    )


TRAILERS = {
    "junk": b"junk" * 100,
    "marker-like-junk": b"\xff\xd9\xff\xd8\xff\xda\x00\x02" * 20,
    "second-jpeg": encoded("JPEG", (16, 16)),
    "zip": zip_bytes(),
    "nothing": b"",
}
JPEGS = {
    "baseline-noise": noise_jpeg,
    "progressive": lambda: noise_jpeg(progressive=True),
    "restart-markers": lambda: noise_jpeg(restart_marker_blocks=1),
    "eoi-in-app-segment": lambda: with_app_segment(
        noise_jpeg(), b"thumb\x00" + encoded("JPEG", (8, 8)) + b"\xff\xd9"
    ),
}


@pytest.mark.parametrize("trailer", TRAILERS)
@pytest.mark.parametrize("name", JPEGS)
def test_bytes_after_jpeg_eoi_are_cut(tmp_path, name, trailer):
    """Family: trailing junk (plain, and bytes that look like markers), a
    second JPEG, a zip archive (a polyglot), nothing; after a baseline JPEG
    full of 0xFF00 stuffing, a progressive one (several scans, tables between
    them), one with restart markers, one with an EOI inside an APP segment
    (a thumbnail's). verify_image cuts the file at the real EOI, where the
    image ends; crafted scans and broken files follow."""
    jpeg = JPEGS[name]()
    path = write(tmp_path, jpeg + TRAILERS[trailer])
    image = verify_image(path)
    assert (image.format, image.width, image.height) == ("JPEG", 256, 192)
    assert path.read_bytes() == jpeg
    assert not zipfile.is_zipfile(path)


def test_noise_jpeg_has_stuffing_and_the_progressive_one_several_scans():
    """The family above really exercises 0xFF00 stuffing and multiple scans."""
    assert b"\xff\x00" in noise_jpeg()
    assert noise_jpeg(progressive=True).count(b"\xff\xda") > 1
    assert any(bytes((0xFF, m)) in noise_jpeg(restart_marker_blocks=1) for m in range(0xD0, 0xD8))


def segment(marker, payload=b""):
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


@pytest.mark.parametrize(
    ("scan", "end"),
    [
        (b"\x12\xff\x00\xd9\x34", b"\xff\xd9"),  # stuffed 0xFF, then a D9 data byte
        (b"\x12\xff\xd0\x34\xff\xd7\x56", b"\xff\xd9"),  # restart markers belong to the scan
        (b"\x12\x34", b"\xff\xff\xff\xd9"),  # fill bytes before the EOI
        (b"\x12" + segment(0xC4, b"\x00" * 4) + segment(0xDA, b"\x01") + b"\x56", b"\xff\xd9"),
    ],
    ids=["stuffing", "restart", "fill-bytes", "second-scan"],
)
def test_jpeg_end_of_crafted_scans(scan, end):
    head = b"\xff\xd8" + segment(0xE0, b"JFIF\x00") + segment(0xFE, b"\xff\xd9 in a comment")
    data = head + segment(0xDA, b"\x01\x02") + scan + end
    assert jpeg_end(data + b"\xff\xd9trailing") == len(data)


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xd8" + segment(0xDA, b"\x01") + b"\x12\x34",  # no EOI
        b"\xff\xd8" + segment(0xE0, b"JFIF\x00")[:5],  # cut inside a segment
        b"\xff\xd8" + segment(0xFE, b"x") * (JPEG_MAX_MARKERS + 1) + b"\xff\xd9",
        b"\xff\xd8\x00\x00",  # no marker where one must be
        b"\x89PNG",
    ],
    ids=["no-eoi", "cut-segment", "too-many-markers", "garbage", "not-jpeg"],
)
def test_jpeg_end_refuses_broken_files(data):
    with pytest.raises(ImageRejectedError):
        jpeg_end(data)

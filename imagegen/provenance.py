"""Provenance metadata (prompt, model, provider, job, time) in stored images.

:func:`embed` copies a verified PNG, JPEG or WebP and writes the metadata
into the container where standard tools look for it: PNG text chunks plus an
XMP packet, an XMP APP1 segment in JPEG, an ``XMP `` chunk in WebP. Every
packet marks the image as AI-generated with the IPTC digital source type
``trainedAlgorithmicMedia``. :func:`read` parses it back.

Both work on the container alone, by streaming chunks and segments: pixels
are never decoded and the file is never held in memory (a 4K PNG is 20-50 MB),
so memory stays flat at one copy buffer.

Text is hostile input. Characters XML 1.0 forbids (NUL, most C0 controls,
lone surrogates) are removed from every value before it is written, in every
container, so all copies agree with what :func:`read` returns.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from .exceptions import ImageRejectedError

__all__ = ["AI_GENERATED", "XMP_NAMESPACE", "Provenance", "embed", "has_c2pa_box", "read"]

#: Namespace of imagegen's own XMP properties. Stored files keep it for ever,
#: so it must never change. ``.invalid`` is reserved (RFC 2606): no one else
#: can ever own it, and nothing will try to fetch it.
XMP_NAMESPACE = "https://imagegen.invalid/ns/1.0/"

#: IPTC digital source type of media created by a trained model.
AI_GENERATED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"

_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_DC = "http://purl.org/dc/elements/1.1/"
_XMP = "http://ns.adobe.com/xap/1.0/"
_IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

#: Copy buffer: the only memory embed() needs, whatever the file size.
_BLOCK = 1 << 20
#: Largest XMP packet read() accepts (ours are a few kilobytes).
_MAX_XMP = 4 << 20

#: imagegen:<name> properties, keyed by Provenance field.
_XMP_PROPERTIES = {
    "prompt": "prompt",
    "model": "model",
    "provider": "provider",
    "job_id": "jobId",
    "mode": "mode",
    "resolution": "resolution",
    "aspect_ratio": "aspectRatio",
}
#: What read() returns for each XMP property it knows.
_READ_KEYS = {
    **{f"{{{XMP_NAMESPACE}}}{name}": key for key, name in _XMP_PROPERTIES.items()},
    f"{{{XMP_NAMESPACE}}}promptTruncated": "prompt_truncated",
    f"{{{_XMP}}}CreateDate": "created_at",
    f"{{{_XMP}}}CreatorTool": "software",
    f"{{{_IPTC_EXT}}}DigitalSourceType": "digital_source_type",
}

# XML 1.0 Char production; everything else cannot appear in a document at all.
_XML_FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class Provenance:
    """Where an image came from. ``created_at`` must be timezone-aware."""

    prompt: str
    model: str
    provider: str
    job_id: str
    created_at: datetime
    mode: str = ""
    resolution: str = ""
    aspect_ratio: str = ""
    software: str = "imagegen"

    def __post_init__(self) -> None:
        if self.created_at.utcoffset() is None:
            raise ValueError("Provenance.created_at must be timezone-aware.")

    def as_dict(self) -> dict[str, str]:
        """The fields as strings (time in ISO 8601), ready for JSON."""
        return {
            "prompt": str(self.prompt),
            "model": str(self.model),
            "provider": str(self.provider),
            "job_id": str(self.job_id),
            "created_at": self.created_at.isoformat(),
            "mode": str(self.mode),
            "resolution": str(self.resolution),
            "aspect_ratio": str(self.aspect_ratio),
            "software": str(self.software),
        }


def embed(
    source: str | os.PathLike, target: str | os.PathLike, provenance: Provenance, *, format: str
) -> None:
    """Copy the image ``source`` to ``target`` with ``provenance`` in its metadata.

    ``format`` is Pillow's name for the already verified format: ``"PNG"``,
    ``"JPEG"`` or ``"WEBP"``. Metadata an earlier embed() wrote is replaced,
    so running twice (a retried finalize) leaves one copy; other metadata
    (Exif, ICC profiles, other text chunks) is kept.

    A JPEG segment holds at most 64 KiB, so a prompt too long for it is cut
    short in the JPEG's XMP (ending with "…", and ``imagegen:promptTruncated``
    set). PNG and WebP always carry the full prompt.

    ``target`` may be ``source``: the copy is written to a temporary file
    beside ``target`` (mode 0600) and renamed over it, so a failure never
    leaves a partial file. Raises :class:`ImageRejectedError` when the
    container is malformed or truncated.
    """
    writers: dict[str, Callable[[BinaryIO, BinaryIO, dict[str, str]], None]] = {
        "PNG": _embed_png,
        "JPEG": _embed_jpeg,
        "WEBP": _embed_webp,
    }
    writer = writers.get(format.upper())
    if writer is None:
        raise ValueError(f"Cannot embed provenance in {format!r}; expected PNG, JPEG or WEBP.")
    fields = {key: _XML_FORBIDDEN.sub("", value) for key, value in provenance.as_dict().items()}
    target = os.fspath(target)
    fd, temporary = tempfile.mkstemp(
        prefix=".provenance-", dir=os.path.dirname(os.path.abspath(target))
    )
    try:
        with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
            writer(src, dst, fields)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def read(path: str | os.PathLike) -> dict[str, str]:
    """The provenance embedded in the image at ``path``, from its XMP packet.

    Keys are those of :meth:`Provenance.as_dict` plus ``digital_source_type``
    (and ``prompt_truncated`` when a JPEG's prompt was cut short); an image
    without imagegen metadata gives ``{}``. Pixels are not decoded, and a
    JPEG is read only up to its scan data. Raises :class:`ImageRejectedError`
    for a malformed container or XMP packet.
    """
    with open(path, "rb") as src:
        head = src.read(12)
        src.seek(0)
        if head.startswith(_PNG_SIGNATURE):
            packet = _png_xmp(src)
        elif head.startswith(b"\xff\xd8"):
            packet = _jpeg_xmp(src)
        elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            packet = _webp_xmp(src)
        else:
            raise ImageRejectedError("The file is not a PNG, JPEG or WebP image.")
    return _parse_xmp(packet) if packet else {}


def has_c2pa_box(path: str | os.PathLike) -> bool:
    """Whether the image at ``path`` holds a C2PA manifest store (JUMBF):
    a PNG ``caBX`` chunk, a JPEG APP11 JUMBF segment, a WebP ``C2PA`` chunk.

    Only the container is looked at, not whether the store is valid:
    :mod:`.credentials` uses this where ``c2pa-python`` is not installed,
    so that a file carrying a manifest is never rewritten. A JPEG is read
    only up to its scan data.
    """
    with open(path, "rb") as src:
        head = src.read(12)
        src.seek(0)
        if head.startswith(_PNG_SIGNATURE):
            return any(kind == b"caBX" for kind, _ in _png_chunks(src))
        if head.startswith(b"\xff\xd8"):
            # APP11 segments hold JUMBF boxes: "JP" common identifier, then the box.
            return any(
                marker == 0xEB and payload[:2] == b"JP" and b"c2pa" in payload[:64]
                for marker, payload in _jpeg_segments(src)
            )
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return any(fourcc == b"C2PA" for fourcc, _ in _riff_chunks(src))
    return False


# -- XMP ----------------------------------------------------------------------


def _xmp_packet(fields: Mapping[str, str], *, truncated: bool = False) -> bytes:
    def text(value: str) -> str:
        # Element content, not attributes: attribute values lose their newlines.
        return escape(value, {"\r": "&#13;"})

    properties = "".join(
        f"   <imagegen:{name}>{text(fields[key])}</imagegen:{name}>\n"
        for key, name in _XMP_PROPERTIES.items()
    )
    if truncated:
        properties += "   <imagegen:promptTruncated>True</imagegen:promptTruncated>\n"
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        f' <rdf:RDF xmlns:rdf="{_RDF}">\n'
        '  <rdf:Description rdf:about=""\n'
        f'    xmlns:dc="{_DC}"\n'
        f'    xmlns:xmp="{_XMP}"\n'
        f'    xmlns:Iptc4xmpExt="{_IPTC_EXT}"\n'
        f'    xmlns:imagegen="{XMP_NAMESPACE}">\n'
        "   <dc:description><rdf:Alt>"
        f'<rdf:li xml:lang="x-default">{text(fields["prompt"])}</rdf:li>'
        "</rdf:Alt></dc:description>\n"
        f"   <xmp:CreatorTool>{text(fields['software'])}</xmp:CreatorTool>\n"
        f"   <xmp:CreateDate>{text(fields['created_at'])}</xmp:CreateDate>\n"
        f"   <Iptc4xmpExt:DigitalSourceType>{AI_GENERATED}</Iptc4xmpExt:DigitalSourceType>\n"
        f"{properties}"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    ).encode()


def _xmp_packet_within(fields: Mapping[str, str], limit: int) -> bytes:
    """The packet, with the prompt shortened until it fits in ``limit`` bytes."""
    packet = _xmp_packet(fields)
    if len(packet) <= limit:
        return packet
    overhead = len(_xmp_packet({**fields, "prompt": ""}, truncated=True))
    # The prompt appears twice: dc:description and imagegen:prompt.
    budget = (limit - overhead) // 2 - len("…".encode())
    if budget < 0:
        raise ValueError("The provenance fields other than the prompt do not fit in XMP.")
    kept, used = 0, 0
    for char in fields["prompt"]:
        size = len(escape(char, {"\r": "&#13;"}).encode())
        if used + size > budget:
            break
        used += size
        kept += 1
    prompt = fields["prompt"][:kept] + "…"
    return _xmp_packet({**fields, "prompt": prompt}, truncated=True)


def _parse_xmp(packet: bytes) -> dict[str, str]:
    # A DTD is the only way to billion-laughs or external entities; ours never
    # have one, so refusing it makes the stdlib parser safe without defusedxml.
    if b"<!DOCTYPE" in packet or b"<!ENTITY" in packet:
        raise ImageRejectedError("The image's XMP packet declares a DTD; it is refused.")
    try:
        root = ElementTree.fromstring(packet.strip(b"\x00 \t\r\n"))  # noqa: S314 (no DTD)
    except ElementTree.ParseError:
        raise ImageRejectedError("The image's XMP packet is not well-formed XML.") from None
    found: dict[str, str] = {}
    description = None
    for node in root.iter(f"{{{_RDF}}}Description"):
        for name, value in node.attrib.items():
            if name in _READ_KEYS:
                found.setdefault(_READ_KEYS[name], value)
        for child in node:
            if child.tag in _READ_KEYS:
                value = child.text or child.get(f"{{{_RDF}}}resource", "")
                found.setdefault(_READ_KEYS[child.tag], value)
            elif child.tag == f"{{{_DC}}}description" and description is None:
                items = list(child.iter(f"{{{_RDF}}}li"))
                default = [li for li in items if li.get(_XML_LANG) == "x-default"]
                if items:
                    description = (default or items)[0].text or ""
    if not any(key in found for key in _XMP_PROPERTIES):
        return {}  # someone else's XMP
    if "prompt" not in found and description is not None:
        found["prompt"] = description
    return found


# -- Streaming helpers ----------------------------------------------------------


def _read_exact(src: BinaryIO, size: int, what: str) -> bytes:
    data = src.read(size)
    if len(data) != size:
        raise ImageRejectedError(f"The {what} is truncated.")
    return data


def _copy(src: BinaryIO, dst: BinaryIO, size: int, what: str, crc: int = 0) -> int:
    """Copy the next ``size`` bytes a block at a time; return their CRC-32 (from ``crc``)."""
    while size:
        block = src.read(min(size, _BLOCK))
        if not block:
            raise ImageRejectedError(f"The {what} is truncated.")
        dst.write(block)
        crc = zlib.crc32(block, crc)
        size -= len(block)
    return crc


# -- PNG --------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT = {b"tEXt", b"zTXt", b"iTXt"}
_PNG_XMP = b"XML:com.adobe.xmp"
#: Text chunks embed() writes; copies already in the source are dropped.
_PNG_KEYWORDS = {
    b"Description",
    b"Software",
    b"Source",
    b"Creation Time",
    b"Comment",
    _PNG_XMP,
}


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _png_itxt(keyword: bytes, text: str | bytes) -> bytes:
    value = text.encode() if isinstance(text, str) else text
    # keyword NUL, uncompressed (0, 0), empty language tag NUL, empty translation NUL
    return _png_chunk(b"iTXt", keyword + b"\x00\x00\x00\x00\x00" + value)


def _png_chunks(src: BinaryIO) -> Iterator[tuple[bytes, int]]:
    """Yield (type, length) with ``src`` at the chunk's data, through IEND.

    The consumer may read any part of the data (and CRC); the next chunk is
    found by position, not by what was read.
    """
    if src.read(8) != _PNG_SIGNATURE:
        raise ImageRejectedError("The file does not start with a PNG signature.")
    position = 8
    while True:
        header = src.read(8)
        if len(header) != 8:
            raise ImageRejectedError("The PNG file is truncated (it ends before IEND).")
        length, kind = struct.unpack(">I4s", header)
        if length > 0x7FFFFFFF or not kind.isalpha():
            raise ImageRejectedError(f"The PNG file has a malformed chunk at byte {position}.")
        if position == 8 and (kind != b"IHDR" or length != 13):
            raise ImageRejectedError("The PNG file does not start with an IHDR chunk.")
        yield kind, length
        if kind == b"IEND":
            return
        position += 12 + length
        src.seek(position)


def _png_keyword(src: BinaryIO, length: int) -> bytes:
    return _read_exact(src, min(length, 80), "PNG text chunk").split(b"\x00", 1)[0]


def _embed_png(src: BinaryIO, dst: BinaryIO, fields: dict[str, str]) -> None:
    dst.write(_PNG_SIGNATURE)
    for kind, length in _png_chunks(src):
        if kind in _PNG_TEXT and _png_keyword(src, length) in _PNG_KEYWORDS:
            continue
        if kind in _PNG_TEXT:
            src.seek(-min(length, 80), os.SEEK_CUR)
        dst.write(struct.pack(">I", length) + kind)
        crc = _copy(src, dst, length, "PNG file", zlib.crc32(kind))
        stored = _read_exact(src, 4, "PNG file")
        if struct.unpack(">I", stored)[0] != crc:
            raise ImageRejectedError(f"The PNG {kind.decode()} chunk fails its CRC check.")
        dst.write(stored)
        if kind == b"IHDR":
            # Right after IHDR: before the pixels, where readers look first.
            dst.write(_png_text_chunks(fields))


def _png_text_chunks(fields: dict[str, str]) -> bytes:
    source = " / ".join(value for value in (fields["provider"], fields["model"]) if value)
    return b"".join(
        (
            _png_itxt(b"Description", fields["prompt"]),
            _png_itxt(b"Software", fields["software"]),
            _png_itxt(b"Source", source),
            _png_itxt(b"Creation Time", fields["created_at"]),
            _png_itxt(b"Comment", json.dumps(fields, ensure_ascii=False)),
            _png_itxt(_PNG_XMP, _xmp_packet(fields)),
        )
    )


def _png_xmp(src: BinaryIO) -> bytes | None:
    packet = None
    for kind, length in _png_chunks(src):
        if packet is not None or kind != b"iTXt" or length > _MAX_XMP:
            continue
        data = _read_exact(src, length, "PNG file")
        keyword, _, rest = data.partition(b"\x00")
        if keyword != _PNG_XMP or len(rest) < 2:
            continue
        compressed, text = rest[0], rest[2:].split(b"\x00", 2)[-1]
        if compressed:
            inflater = zlib.decompressobj()
            try:
                text = inflater.decompress(text, _MAX_XMP)
            except zlib.error:
                raise ImageRejectedError("The PNG's XMP chunk cannot be decompressed.") from None
            if inflater.unconsumed_tail:
                continue  # larger than any packet of ours
        packet = text
    return packet


# -- JPEG -------------------------------------------------------------------------

_XMP_APP1 = b"http://ns.adobe.com/xap/1.0/\x00"
_XMP_EXTENSION_APP1 = b"http://ns.adobe.com/xmp/extension/\x00"
#: A segment's length field counts itself (2 bytes) and tops out at 65535.
_JPEG_MAX_XMP = 0xFFFF - 2 - len(_XMP_APP1)
_SOS = 0xDA
#: Markers without a length field: TEM and RST0-7.
_STANDALONE = {0x01, *range(0xD0, 0xD8)}


def _jpeg_segments(src: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """Yield (marker, payload) for each segment after SOI, through SOS."""
    if src.read(2) != b"\xff\xd8":
        raise ImageRejectedError("The file does not start with a JPEG SOI marker.")
    while True:
        if _read_exact(src, 1, "JPEG file") != b"\xff":
            raise ImageRejectedError("The JPEG file has a malformed segment.")
        marker = 0xFF
        while marker == 0xFF:  # fill bytes
            marker = _read_exact(src, 1, "JPEG file")[0]
        if marker in _STANDALONE:
            yield marker, b""
            continue
        if marker in (0x00, 0xD8, 0xD9):
            raise ImageRejectedError("The JPEG file ends or breaks before its image data.")
        (length,) = struct.unpack(">H", _read_exact(src, 2, "JPEG file"))
        if length < 2:
            raise ImageRejectedError("The JPEG file has a malformed segment length.")
        yield marker, _read_exact(src, length - 2, "JPEG file")
        if marker == _SOS:
            return


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    if marker in _STANDALONE:
        return bytes((0xFF, marker))
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def _embed_jpeg(src: BinaryIO, dst: BinaryIO, fields: dict[str, str]) -> None:
    xmp = _jpeg_segment(0xE1, _XMP_APP1 + _xmp_packet_within(fields, _JPEG_MAX_XMP))
    dst.write(b"\xff\xd8")
    written = False
    for marker, payload in _jpeg_segments(src):
        # JFIF (APP0) and Exif (APP1) must stay first; XMP conventionally follows.
        leading = marker == 0xE0 or (marker == 0xE1 and payload.startswith(b"Exif\x00"))
        if not written and not leading:
            dst.write(xmp)
            written = True
        if marker == 0xE1 and payload.startswith((_XMP_APP1, _XMP_EXTENSION_APP1)):
            continue
        dst.write(_jpeg_segment(marker, payload))
    # Entropy-coded data through EOI. Scan data escapes 0xFF, so an FFD9 seen
    # after SOS is the real EOI: without one, the file was cut short.
    previous, ended = b"", False
    for block in iter(lambda: src.read(_BLOCK), b""):
        dst.write(block)
        ended = ended or b"\xff\xd9" in previous + block
        previous = block[-1:]
    if not ended:
        raise ImageRejectedError("The JPEG file is truncated (it has no EOI marker).")


def _jpeg_xmp(src: BinaryIO) -> bytes | None:
    for marker, payload in _jpeg_segments(src):
        if marker == 0xE1 and payload.startswith(_XMP_APP1):
            return payload[len(_XMP_APP1) :]
    return None


# -- WebP -------------------------------------------------------------------------

_VP8X_XMP = 0x04
_VP8X_EXIF = 0x08
_VP8X_ALPHA = 0x10
#: Chunks the WebP container spec places before XMP; unknown chunks follow it.
_WEBP_BEFORE_XMP = {b"VP8X", b"ICCP", b"ANIM", b"ANMF", b"ALPH", b"VP8 ", b"VP8L", b"EXIF"}


def _riff_chunks(src: BinaryIO) -> Iterator[tuple[bytes, int]]:
    """Yield (fourcc, size) with ``src`` at the chunk's data, for each chunk."""
    header = src.read(12)
    if len(header) != 12 or header[:4] != b"RIFF" or header[8:] != b"WEBP":
        raise ImageRejectedError("The file does not start with a RIFF WEBP header.")
    end = 8 + struct.unpack("<I", header[4:8])[0]
    if os.fstat(src.fileno()).st_size < end:
        raise ImageRejectedError("The WebP file is truncated (shorter than its RIFF size).")
    position = 12
    while position < end:
        if end - position < 8:
            raise ImageRejectedError("The WebP file has stray bytes at the end of its RIFF data.")
        fourcc, size = struct.unpack("<4sI", _read_exact(src, 8, "WebP file"))
        following = position + 8 + size + (size & 1)
        if following > end:
            raise ImageRejectedError(f"The WebP {fourcc!r} chunk runs past the RIFF data.")
        yield fourcc, size
        position = following
        src.seek(position)


def _webp_canvas(fourcc: bytes, head: bytes) -> tuple[int, int, bool]:
    """Width, height and alpha hint from the start of a VP8 or VP8L bitstream."""
    if fourcc == b"VP8 ":
        if len(head) < 10 or head[3:6] != b"\x9d\x01\x2a":
            raise ImageRejectedError("The WebP VP8 bitstream has no key frame header.")
        width, height = struct.unpack("<HH", head[6:10])
        return width & 0x3FFF, height & 0x3FFF, False
    if len(head) < 5 or head[0] != 0x2F:
        raise ImageRejectedError("The WebP VP8L bitstream has a bad signature.")
    (bits,) = struct.unpack("<I", head[1:5])
    return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool(bits >> 28 & 1)


def _riff_chunk(fourcc: bytes, data: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(data)) + data + b"\x00" * (len(data) & 1)


def _embed_webp(src: BinaryIO, dst: BinaryIO, fields: dict[str, str]) -> None:
    xmp = _riff_chunk(b"XMP ", _xmp_packet(fields))
    dst.write(b"RIFF\x00\x00\x00\x00WEBP")  # size patched once known
    flags_at, flags, written = 0, 0, False
    for fourcc, size in _riff_chunks(src):
        if not flags_at:
            flags_at = dst.tell() + 8
            if fourcc == b"VP8X":
                if not 10 <= size <= 64:
                    raise ImageRejectedError("The WebP VP8X chunk has a bad size.")
                data = _read_exact(src, size, "WebP file")
                flags = data[0] | _VP8X_XMP
                dst.write(_riff_chunk(fourcc, bytes((flags,)) + data[1:]))
                continue
            if fourcc not in (b"VP8 ", b"VP8L"):
                raise ImageRejectedError(f"The WebP file starts with an unknown {fourcc!r} chunk.")
            # A simple file cannot carry XMP: make it extended, VP8X first.
            head = _read_exact(src, min(size, 10), "WebP file")
            width, height, alpha = _webp_canvas(fourcc, head)
            flags = _VP8X_XMP | (_VP8X_ALPHA if alpha else 0)
            canvas = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
            dst.write(_riff_chunk(b"VP8X", bytes((flags, 0, 0, 0)) + canvas))
            dst.write(fourcc + struct.pack("<I", size) + head)
            _copy(src, dst, size - len(head) + (size & 1), "WebP file")
            continue
        if fourcc == b"XMP ":
            continue
        if fourcc == b"EXIF":
            flags |= _VP8X_EXIF
        if not written and fourcc not in _WEBP_BEFORE_XMP:
            dst.write(xmp)
            written = True
        dst.write(fourcc + struct.pack("<I", size))
        _copy(src, dst, size + (size & 1), "WebP file")
    if not flags_at:
        raise ImageRejectedError("The WebP file has no image data.")
    if not written:
        dst.write(xmp)
    end = dst.tell()
    if end - 8 > 0xFFFFFFFF:
        raise ImageRejectedError("The WebP file would exceed the RIFF size limit.")
    dst.seek(4)
    dst.write(struct.pack("<I", end - 8))
    dst.seek(flags_at)
    dst.write(bytes((flags,)))


def _webp_xmp(src: BinaryIO) -> bytes | None:
    for fourcc, size in _riff_chunks(src):
        if fourcc == b"XMP " and size <= _MAX_XMP:
            return _read_exact(src, size, "WebP file")
    return None

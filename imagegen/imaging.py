"""Verifying downloaded images with Pillow, with bounded memory.

Besides Pillow's checks, the containers are walked here (memory-mapped, one
step per chunk or segment, never per byte in Python): animated images are
refused, as GIF is, and a JPEG ends at its end-of-image marker.
"""

from __future__ import annotations

import mmap
import os
import re
import struct
import warnings
from dataclasses import dataclass

from PIL import Image

from .exceptions import ImageRejectedError

ALLOWED_FORMATS = {
    "PNG": ("image/png", "png"),
    "JPEG": ("image/jpeg", "jpg"),
    "WEBP": ("image/webp", "webp"),
}

#: APNG's chunks: a PNG with any of them is animated (or pretends to be).
APNG_CHUNKS = frozenset({b"acTL", b"fcTL", b"fdAT"})
#: Animated WebP's chunks (the VP8X header also flags animation).
WEBP_ANIMATION_CHUNKS = frozenset({b"ANIM", b"ANMF"})
_VP8X_ANIMATION = 0x02
#: Most markers (segments and scans) one JPEG may have before its end: real
#: files have tens, progressive ones a few more; a file of nothing but empty
#: segments would otherwise cost a loop step per four bytes.
JPEG_MAX_MARKERS = 4096
#: At a segment boundary: optional fill bytes, then the marker's code.
_JPEG_MARKER = re.compile(rb"\xff+([^\xff])")
#: In entropy-coded data, the next marker: 0xFF followed by anything but a
#: stuffed zero, a restart marker (which belongs to the scan) or more 0xFF.
_JPEG_NEXT_MARKER = re.compile(rb"\xff+[^\x00\xd0-\xd7\xff]")
_JPEG_SOS, _JPEG_EOI = 0xDA, 0xD9
#: Markers without a length: TEM and RST0-7.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


@dataclass(frozen=True)
class VerifiedImage:
    format: str
    content_type: str
    extension: str
    width: int
    height: int


def verify_image(
    path: str | os.PathLike, *, max_pixels: int = 64_000_000, declared_type: str | None = None
) -> VerifiedImage:
    """Check that ``path`` is a complete, still PNG, JPEG or WebP of at most
    ``max_pixels``, and cut a JPEG's bytes after its end-of-image marker off
    the file.

    The pixel count is checked from the header before anything is decoded
    (decompression bombs), Pillow's bomb warning is an error, and the content
    type comes from the bytes, never from what the server declared.
    Animated images (APNG: any ``acTL``, ``fcTL`` or ``fdAT`` chunk; animated
    WebP: ``ANIM``/``ANMF`` chunks or the VP8X animation flag) are refused
    like GIF: a frame's size is not in the header the pixel cap reads, and a
    still is what a generation returns. Whatever follows a JPEG's EOI (a
    second image, a zip archive making the file a polyglot) is removed, so
    the stored file is the image and nothing else; PNG and WebP files are
    stored through their last chunk already (:mod:`imagegen.provenance`).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _verify(path, max_pixels, declared_type)
    except ImageRejectedError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejectedError("The image is too large (decompression bomb).") from None
    except Exception as exc:
        raise ImageRejectedError(
            f"The file is not a usable image ({type(exc).__name__})."
        ) from None


def _verify(path: str | os.PathLike, max_pixels: int, declared_type: str | None) -> VerifiedImage:
    try:
        with Image.open(path, formats=list(ALLOWED_FORMATS)) as im:
            fmt, width, height = im.format, im.width, im.height
    except Image.UnidentifiedImageError:
        raise ImageRejectedError("The file is not a PNG, JPEG or WebP image.") from None
    if width * height > max_pixels:
        raise ImageRejectedError(
            f"The image is {width}x{height}; at most {max_pixels} pixels are accepted."
        )
    content_type, extension = ALLOWED_FORMATS[fmt]
    if declared_type:
        declared = declared_type.split(";")[0].strip().lower()
        if declared != content_type and declared != "application/octet-stream":
            raise ImageRejectedError(f"The server declared {declared} but the file is {fmt}.")
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if fmt == "PNG" and _png_chunk_types(data) & APNG_CHUNKS:
            raise ImageRejectedError("Animated PNG (APNG) images are not accepted.")
        if fmt == "WEBP" and _webp_is_animated(data):
            raise ImageRejectedError("Animated WebP images are not accepted.")
        end = jpeg_end(data) if fmt == "JPEG" else len(data)
        size = len(data)
    if end < size:
        os.truncate(path, end)
    with Image.open(path, formats=[fmt]) as im:
        if fmt == "PNG":
            im.verify()  # chunk CRCs through IEND, without decoding pixels
        elif fmt == "JPEG":
            im.draft("RGB", (max(1, width // 8), max(1, height // 8)))
            im.load()
        else:
            im.load()
    return VerifiedImage(fmt, content_type, extension, width, height)


def jpeg_end(data: bytes | mmap.mmap) -> int:
    """The offset just past the EOI marker that ends the JPEG in ``data``.

    Segments are skipped by their length (an EOI inside an APP segment, such
    as an Exif thumbnail's, is not the end); in entropy-coded data only a
    real marker counts (0xFF00 stuffing and restart markers do not); a
    progressive file's further scans and tables are followed to the EOI.
    Raises :class:`ImageRejectedError` for a file that is not a JPEG, is
    malformed, ends before its EOI or has more than
    :data:`JPEG_MAX_MARKERS` markers.
    """
    if data[:2] != b"\xff\xd8":
        raise ImageRejectedError("The file does not start with a JPEG SOI marker.")
    size, pos = len(data), 2
    for _marker in range(JPEG_MAX_MARKERS):
        found = _JPEG_MARKER.match(data, pos)
        if found is None:
            raise ImageRejectedError("The JPEG file is malformed or ends before its EOI marker.")
        marker, pos = found.group(1)[0], found.end()
        if marker == _JPEG_EOI:
            return pos
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0x00, 0xD8) or pos + 2 > size:
            raise ImageRejectedError("The JPEG file has a malformed segment.")
        (length,) = struct.unpack_from(">H", data, pos)
        pos += length
        if length < 2 or pos > size:
            raise ImageRejectedError("The JPEG file has a malformed segment length.")
        if marker == _JPEG_SOS:
            scan_end = _JPEG_NEXT_MARKER.search(data, pos)
            if scan_end is None:
                raise ImageRejectedError("The JPEG file is truncated (it has no EOI marker).")
            pos = scan_end.start()
    raise ImageRejectedError(f"The JPEG file has more than {JPEG_MAX_MARKERS} markers.")


def _png_chunk_types(data: mmap.mmap) -> set[bytes]:
    """The types of the chunks of a PNG through IEND (a truncated file is
    Pillow's to refuse)."""
    types, pos, size = set(), 8, len(data)
    while pos + 8 <= size:
        length, kind = struct.unpack_from(">I4s", data, pos)
        types.add(kind)
        if kind == b"IEND":
            break
        pos += 12 + length
    return types


def _webp_is_animated(data: mmap.mmap) -> bool:
    """Whether a WebP (RIFF) file has animation chunks or the VP8X flag."""
    pos, size = 12, len(data)
    while pos + 8 <= size:
        kind, length = struct.unpack_from("<4sI", data, pos)
        if kind in WEBP_ANIMATION_CHUNKS:
            return True
        if kind == b"VP8X" and length >= 1 and pos + 8 < size and data[pos + 8] & _VP8X_ANIMATION:
            return True
        pos += 8 + length + (length & 1)
    return False

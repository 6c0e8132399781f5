"""Verifying downloaded images with Pillow, with bounded memory."""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from typing import IO

from PIL import Image

from .exceptions import ImageRejectedError

ALLOWED_FORMATS = {
    "PNG": ("image/png", "png"),
    "JPEG": ("image/jpeg", "jpg"),
    "WEBP": ("image/webp", "webp"),
}


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
    """Check that ``path`` is a complete PNG, JPEG or WebP of at most ``max_pixels``.

    The pixel count is checked from the header before anything is decoded
    (decompression bombs), Pillow's bomb warning is an error, and the content
    type comes from the bytes, never from what the server declared.
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
    with Image.open(path, formats=[fmt]) as im:
        if fmt == "PNG":
            im.verify()  # chunk CRCs through IEND, without decoding pixels
        elif fmt == "JPEG":
            im.draft("RGB", (max(1, width // 8), max(1, height // 8)))
            im.load()
        else:
            im.load()
    return VerifiedImage(fmt, content_type, extension, width, height)


#: Longest side of the previews shown in the admin, in pixels.
THUMBNAIL_SIZE = 400


def make_thumbnail(source: IO[bytes], size: int = THUMBNAIL_SIZE) -> bytes:
    """A WebP preview of an already verified image, at most ``size`` pixels a side.

    JPEGs are decoded at reduced scale (``draft``); PNG and WebP must be
    decoded whole, so this runs in a worker task, never in a web request.
    """
    with Image.open(source, formats=list(ALLOWED_FORMATS)) as im:
        # In place: one full decode (a reduced one for JPEG), no second full-size
        # copy. A box reduction by whole factors first, then bicubic, and WebP's
        # fast method: a third of the CPU of Lanczos and method 4
        # (docs/benchmarks.md), with no difference that shows at preview size.
        im.thumbnail((size, size), Image.Resampling.BICUBIC, reducing_gap=1.0)
        preview = im.convert("RGBA" if "A" in im.getbands() else "RGB")
    out = io.BytesIO()
    preview.save(out, "WEBP", quality=80, method=2)
    return out.getvalue()

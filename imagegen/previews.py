"""Rendering a preview: a WebP at most :data:`PREVIEW_SIZE` pixels a side of
a stored, already verified PNG, JPEG or WebP.

libvips (``pip install django-imagegen[vips]`` and the system's libvips)
when it is installed: its ``thumbnail`` shrinks on load where the format
allows (JPEG, WebP) and otherwise streams the image through the resize a
few lines at a time, so a 4K image is never held decoded. Without it,
Pillow: a JPEG is decoded at reduced scale (``draft``); a PNG or WebP is
decoded whole, once, and reduced in place.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Callable
from types import ModuleType
from typing import IO, Any

from PIL import Image

from .imaging import ALLOWED_FORMATS

logger = logging.getLogger("imagegen")

#: Longest side of a preview, in pixels (the admin shows it at 400 at most).
PREVIEW_SIZE = 400
#: WebP quality of a preview.
QUALITY = 80


@functools.cache
def vips() -> ModuleType | None:
    """pyvips, imported on first use (loading libvips takes about 0.1 s, which
    every process importing imagegen's admin would pay otherwise); None
    without the ``vips`` extra or libvips itself."""
    try:
        import pyvips
    except (ImportError, OSError):  # OSError: the binding is there, the library is not
        return None
    # A web process renders one preview at a time per request: no cache of
    # decoded images kept between them (that is memory, not speed, here).
    pyvips.cache_set_max(0)
    return pyvips


def engine() -> str:
    """``"vips"`` when libvips is usable, else ``"pillow"``."""
    return "vips" if vips() is not None else "pillow"


def render(open_source: Callable[[], IO[bytes]], *, path: str | None = None) -> bytes:
    """The WebP preview of an image, as bytes.

    ``path`` is the image's local file when the storage has one (libvips
    then reads it directly); otherwise ``open_source()`` opens it for
    reading. A missing file raises :class:`FileNotFoundError`.
    """
    pyvips = vips()
    if pyvips is not None:
        return _render_vips(pyvips, open_source, path)
    with open_source() as source:
        return _render_pillow(source)


def _render_vips(
    pyvips: ModuleType, open_source: Callable[[], IO[bytes]], path: str | None
) -> bytes:
    if path is not None:
        # libvips' own error for a missing file is a generic one.
        with open(path, "rb"):
            pass
        return _vips_webp(pyvips.Image.thumbnail(path, PREVIEW_SIZE, **_VIPS_OPTIONS))
    errors: list[Exception] = []
    with open_source() as source:

        def read(size: int) -> bytes:
            # An exception cannot cross libvips: kept, and raised after it
            # fails, so a storage error stays one (not a "bad image").
            try:
                return source.read(size)
            except Exception as exc:
                errors.append(exc)
                return b""

        stream = pyvips.SourceCustom()
        stream.on_read(read)
        try:
            image = pyvips.Image.thumbnail_source(stream, PREVIEW_SIZE, **_VIPS_OPTIONS)
            # Written while the source is open: libvips reads it as it goes.
            return _vips_webp(image)
        except pyvips.Error:
            if errors:
                raise errors[0] from None
            raise


#: Never enlarged; both sides within the box.
_VIPS_OPTIONS: dict[str, Any] = {"height": PREVIEW_SIZE, "size": "down"}


def _vips_webp(image: Any) -> bytes:
    # 16-bit, greyscale or CMYK sources become 8-bit sRGB (alpha kept).
    if image.interpretation not in ("srgb", "b-w") or image.format != "uchar":
        image = image.colourspace("srgb")
    return image.webpsave_buffer(Q=QUALITY, effort=2, strip=True)


def _render_pillow(source: IO[bytes]) -> bytes:
    with Image.open(source, formats=list(ALLOWED_FORMATS)) as im:
        # JPEG: decode at the smallest scale still at least twice the preview.
        im.draft("RGB", (PREVIEW_SIZE * 2, PREVIEW_SIZE * 2))
        # In place: one decode, no second full-size copy. A box reduction by
        # whole factors first, then bicubic (a third of Lanczos' CPU, no
        # difference at preview size).
        im.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE), Image.Resampling.BICUBIC, reducing_gap=1.0)
        preview = im.convert("RGBA" if "A" in im.getbands() else "RGB")
    out = io.BytesIO()
    preview.save(out, "WEBP", quality=QUALITY, method=2)
    return out.getvalue()

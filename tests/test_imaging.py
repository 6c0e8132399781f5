"""Image verification (RELIABILITY.md I1-I4)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from imagegen.exceptions import ImageRejectedError
from imagegen.imaging import verify_image
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

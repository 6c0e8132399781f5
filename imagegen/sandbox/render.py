"""Rendering the sandbox's images: deterministic pictures at the requested size."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zipfile
import zlib
from pathlib import Path

from PIL import Image, ImageDraw

#: The sandbox's test signing identity (imagegen.c2pa_identity, valid until
#: 2126): trusted by nothing unless told to (C2PA_TRUST_ANCHORS = its root.pem).
IDENTITY = Path(__file__).with_name("c2pa")
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}
_TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"

LONG_SIDE = {"1k": 1024, "2k": 2048, "4k": 4096}
RATIOS = {
    "auto": (1, 1),
    "1:1": (1, 1),
    "4:3": (4, 3),
    "3:4": (3, 4),
    "16:9": (16, 9),
    "9:16": (9, 16),
}


def dimensions(resolution: str, aspect_ratio: str) -> tuple[int, int]:
    """Width and height: the long side by resolution, the other side by ratio (multiple of 16)."""
    side = LONG_SIDE.get(resolution, 1024)
    w, h = RATIOS.get(aspect_ratio, (1, 1))
    if w >= h:
        return side, max(16, round(side * h / w / 16) * 16)
    return max(16, round(side * w / h / 16) * 16), side


def render(
    prompt: str,
    resolution: str,
    aspect_ratio: str,
    fmt: str = "png",
    index: int = 0,
    noise: bool = False,
) -> bytes:
    """A gradient coloured by the prompt's hash, with the prompt written on it."""
    width, height = dimensions(resolution, aspect_ratio)
    if noise:
        image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    else:
        seed = hashlib.sha256(f"{prompt}\0{index}".encode()).digest()
        gradient = Image.linear_gradient("L").resize((width, height))
        color = Image.new("RGB", (width, height), tuple(seed[:3]))
        image = Image.merge("RGB", (gradient, color.getchannel(1), color.getchannel(2)))
        draw = ImageDraw.Draw(image)
        draw.text((24, 24), "imagegen sandbox", fill=(255, 255, 255))
        draw.text((24, 48), prompt[:120], fill=(255, 255, 255))
    out = io.BytesIO()
    if fmt == "jpeg":
        image.save(out, "JPEG", quality=85)
    elif fmt == "webp":
        image.save(out, "WEBP", quality=80, method=0)
    else:
        image.save(out, "PNG", compress_level=1)
    return out.getvalue()


def with_credentials(data: bytes, fmt: str, model: str) -> bytes:
    """``data`` with a C2PA manifest signed by the sandbox's test identity, as
    GPT Image results carry one: ``c2pa.created`` by a trained model. Without
    c2pa-python installed, ``data`` unchanged."""
    try:
        import c2pa
    except ImportError:
        return data
    manifest = {
        "claim_generator_info": [{"name": "imagegen sandbox", "version": "1"}],
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": _TRAINED,
                            "softwareAgent": {"name": model},
                        }
                    ]
                },
            }
        ],
    }
    info = c2pa.C2paSignerInfo(
        "es256",
        (IDENTITY / "certificates.pem").read_bytes(),
        (IDENTITY / "private-key.pem").read_bytes(),
        None,
    )
    # No thumbnail: the sandbox stays quick at 4K, and so does reading it back.
    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    out = io.BytesIO()
    with context, c2pa.Builder(manifest, context) as builder, c2pa.Signer.from_info(info) as signer:
        builder.sign(signer, CONTENT_TYPES.get(fmt, "image/png"), io.BytesIO(data), out)
    return out.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header declares a huge image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 20, 20)).save(out, "GIF")
    return out.getvalue()


def animated(fmt: str, frames: int = 3) -> bytes:
    """A small animated PNG (APNG) or WebP: ``fmt`` is ``"PNG"`` or ``"WEBP"``."""
    images = [Image.new("RGB", (32, 32), (40 * i, 20, 20)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, fmt, save_all=True, append_images=images[1:], duration=100, loop=0)
    return out.getvalue()


def polyglot(image: bytes) -> bytes:
    """``image`` with a zip archive after it: still a valid image to a viewer,
    and a valid archive to an unzip tool."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("payload.txt", "not part of the image")
    return image + archive.getvalue()

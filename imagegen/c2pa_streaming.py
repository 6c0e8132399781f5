"""Signing Content Credentials into a PNG or JPEG without holding it in memory.

c2pa-python's ``Builder.sign`` reads the whole asset into memory (twice a
4K PNG's size). The C2PA library has a second way, data-hashed signing,
which c2pa-python 0.38 does not wrap: the library makes a placeholder
manifest of the final size, already in the container's form (a PNG chunk,
JPEG APP11 segments); imagegen streams the image into a new file with the
placeholder in it (after PNG's ``IHDR``, after JPEG's JFIF and Exif
segments) and the old manifest store dropped, hashes that file with the
placeholder left out, and has the library sign a manifest binding that
hash, which is written over the placeholder.

This calls two native functions of c2pa-python's bundled library through
ctypes (the ``c2pa`` extra pins its version). :func:`supported` says whether
they are there; :mod:`.credentials` falls back to ``Builder.sign`` if not.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import struct
from functools import cache
from typing import Any, BinaryIO

from . import provenance

#: Copy and hash buffer.
_BLOCK = 1 << 20


@cache
def _native() -> Any:
    """The bundled library with the two functions' signatures set, or None."""
    try:
        from c2pa import c2pa as bindings

        lib = bindings._lib
        builder, signer, stream = bindings.C2paBuilder, bindings.C2paSigner, bindings.C2paStream
        placeholder = lib.c2pa_builder_data_hashed_placeholder
        sign = lib.c2pa_builder_sign_data_hashed_embeddable
    except (ImportError, AttributeError):
        return None
    out = ctypes.POINTER(ctypes.POINTER(ctypes.c_ubyte))
    placeholder.argtypes = [ctypes.POINTER(builder), ctypes.c_size_t, ctypes.c_char_p, out]
    placeholder.restype = ctypes.c_int64
    sign.argtypes = [
        ctypes.POINTER(builder),
        ctypes.POINTER(signer),
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.POINTER(stream),
        out,
    ]
    sign.restype = ctypes.c_int64
    return bindings


def supported(content_type: str) -> bool:
    """Whether ``content_type`` can be signed this way here: a PNG or JPEG,
    and the installed c2pa-python's library has data-hashed signing."""
    return content_type in _COPIERS and _native() is not None


def sign(builder: Any, signer: Any, source: BinaryIO, target: BinaryIO, content_type: str) -> None:
    """Write the image ``source`` to ``target`` (open ``w+b``) with the
    manifest ``builder`` describes, signed by ``signer``. Raises
    ``c2pa.C2paError`` when the library refuses, :class:`ImageRejectedError`
    for a broken file."""
    bindings = _native()
    placeholder = _call(
        bindings,
        bindings._lib.c2pa_builder_data_hashed_placeholder,
        builder._handle,
        signer.reserve_size(),
        content_type.encode(),
    )
    start = _COPIERS[content_type](source, target, placeholder)
    digest = _hash_without(target, start, len(placeholder))
    data_hash = {
        "exclusions": [{"start": start, "length": len(placeholder)}],
        "name": "jumbf manifest",
        "alg": "sha256",
        "hash": list(digest),
        "pad": [],
    }
    manifest = _call(
        bindings,
        bindings._lib.c2pa_builder_sign_data_hashed_embeddable,
        builder._handle,
        signer._handle,
        json.dumps(data_hash).encode(),
        content_type.encode(),
        None,
    )
    if len(manifest) != len(placeholder):
        raise bindings.C2paError("The signed manifest does not fit its placeholder.")
    target.seek(start)
    target.write(manifest)


def _call(bindings: Any, function: Any, *args: Any) -> bytes:
    result = ctypes.POINTER(ctypes.c_ubyte)()
    size = function(*args, ctypes.byref(result))
    bindings._check_ffi_operation_result(
        size, "C2PA data-hashed signing failed: {}", check=lambda r: r < 0
    )
    try:
        return ctypes.string_at(result, size)
    finally:
        bindings._lib.c2pa_free(result)


def _copy_png(source: BinaryIO, target: BinaryIO, placeholder: bytes) -> int:
    """Copy the PNG, its old manifest store (``caBX``) dropped and
    ``placeholder`` (a whole chunk) after ``IHDR``; return where it starts."""
    start = 0
    target.write(provenance._PNG_SIGNATURE)
    for kind, length in provenance._png_chunks(source):
        if kind == b"caBX":
            continue
        target.write(struct.pack(">I", length) + kind)
        provenance._copy(source, target, length + 4, "PNG file")
        if kind == b"IHDR":
            start = target.tell()
            target.write(placeholder)
    return start


def _copy_jpeg(source: BinaryIO, target: BinaryIO, placeholder: bytes) -> int:
    """Copy the JPEG, its old manifest store (JUMBF APP11 segments) dropped and
    ``placeholder`` (whole segments) after JFIF and Exif; return where it starts."""
    start = 0
    target.write(b"\xff\xd8")
    for marker, payload in provenance._jpeg_segments(source):
        # JFIF (APP0) and Exif (APP1) must stay first.
        leading = marker == 0xE0 or (marker == 0xE1 and payload.startswith(b"Exif\x00"))
        if not start and not leading:
            start = target.tell()
            target.write(placeholder)
        # JPEG XT's APP11: "JP", instance, sequence, then a JUMBF box ("jumb").
        if marker == 0xEB and payload[:2] == b"JP" and payload[12:16] == b"jumb":
            continue
        target.write(provenance._jpeg_segment(marker, payload))
    # The scan data through EOI (verify_image cut anything after it).
    for block in iter(lambda: source.read(_BLOCK), b""):
        target.write(block)
    return start


_COPIERS = {"image/png": _copy_png, "image/jpeg": _copy_jpeg}


def _hash_without(target: BinaryIO, start: int, length: int) -> bytes:
    digest = hashlib.sha256()
    target.flush()
    target.seek(0)
    for end in (start, os.fstat(target.fileno()).st_size):
        while target.tell() < end:
            block = target.read(min(_BLOCK, end - target.tell()))
            digest.update(block)
        target.seek(start + length)
    return digest.digest()

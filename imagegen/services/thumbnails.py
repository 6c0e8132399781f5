"""Previews of stored images, made on first view, not in the pipeline.

A job is succeeded when its files and assets are stored. The first request
for an image's preview (:func:`preview_bytes`, behind the view
``imagegen:image-preview``) renders it (:mod:`imagegen.previews`), writes it
under a name derived from the image's (:func:`thumbnail_name`) in the same
storage and points the row's ``thumbnail`` at it; later requests read that
file. A preview file deleted from storage is made again on the next view.

At most one request renders a given preview: the maker holds the image's
row lock (a conditional UPDATE, which PostgreSQL and SQLite both lock)
while it renders, writes and records; other first viewers wait up to
``PREVIEW_WAIT`` seconds for it, then read what it made, or are told to
show the original meanwhile (``None``). A failed write is removed and the
row keeps pointing at nothing, so no half-written preview is ever served.
"""

from __future__ import annotations

import logging
import posixpath
from typing import Any

from django.core.files.base import ContentFile
from django.db import OperationalError, connection, transaction
from django.db.models import F

from .. import conf, previews
from ..models import GeneratedImage
from ..storage import get_storage

logger = logging.getLogger("imagegen")

#: PostgreSQL's SQLSTATE for ``lock_timeout`` expiring (lock_not_available).
_LOCK_NOT_AVAILABLE = "55P03"


class OriginalMissingError(FileNotFoundError):
    """The image has no stored file (discarded, or deleted from storage)."""


def preview_bytes(image: GeneratedImage) -> bytes | None:
    """The WebP preview of ``image``, made and stored now if it has none or
    its file is gone from storage.

    Returns ``None`` when another request is making it and did not finish
    within ``PREVIEW_WAIT`` seconds (show the original meanwhile). Raises
    :class:`OriginalMissingError` when the image has no file to preview,
    and the storage's or the database's error when either is unavailable
    (nothing is recorded then).
    """
    if not image.file:
        raise OriginalMissingError(image.pk)
    storage = get_storage()
    if image.thumbnail:
        data = _read(storage, image.thumbnail.name)
        if data is not None:
            return data
    return _make(storage, image.pk)


def _make(storage: Any, pk: int) -> bytes | None:
    try:
        with transaction.atomic():
            _wait_at_most(float(conf.get_setting("PREVIEW_WAIT")))
            # The lock: a no-op write, so the second viewer waits here until
            # the first one's transaction ends, then sees what it recorded.
            if (
                not GeneratedImage.objects.filter(pk=pk)
                .exclude(file="")
                .update(thumbnail=F("thumbnail"))
            ):
                raise OriginalMissingError(pk)
            file_name, preview_name = (
                GeneratedImage.objects.filter(pk=pk).values_list("file", "thumbnail").get()
            )
            if preview_name:
                data = _read(storage, preview_name)
                if data is not None:
                    return data
            name = thumbnail_name(file_name)
            data = _render(storage, file_name)
            _write(storage, name, data)
            try:
                GeneratedImage.objects.filter(pk=pk).update(thumbnail=name)
            except Exception:
                _remove(storage, name)
                raise
            return data
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
            return None
        raise


def _wait_at_most(seconds: float) -> None:
    """Bound this transaction's wait for a row lock (PostgreSQL; SQLite waits
    for its database lock as long as the connection's ``timeout``)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, true)", [f"{max(1, int(seconds * 1000))}ms"]
            )


def _render(storage: Any, name: str) -> bytes:
    try:
        path = storage.path(name)
    except NotImplementedError:  # a remote storage: streamed through open()
        path = None
    try:
        return previews.render(lambda: storage.open(name, "rb"), path=path)
    except FileNotFoundError:
        raise OriginalMissingError(name) from None


def _read(storage: Any, name: str) -> bytes | None:
    """A stored preview's bytes, or None when the file is gone."""
    try:
        with storage.open(name, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        logger.info("Preview %s is missing from storage; making it again", name)
        return None


def _write(storage: Any, name: str, data: bytes) -> None:
    """Store ``data`` under exactly ``name``; on failure leave nothing there."""
    try:
        # Replaced whatever the backend's overwrite setting: the name stays
        # the one the row points at.
        if storage.exists(name):
            storage.delete(name)
        stored = storage.save(name, ContentFile(data))
    except Exception:
        _remove(storage, name)
        raise
    if stored != name:  # the backend renamed it: a name no row would find
        _remove(storage, stored)
        raise OSError(f"The storage saved the preview as {stored!r}, not {name!r}.")


def _remove(storage: Any, name: str) -> None:
    try:
        if storage.exists(name):
            storage.delete(name)
    except Exception:
        # The storage is down: what it kept of the write is overwritten by
        # the next view's, and never served meanwhile (no row points at it).
        logger.warning("Could not remove the unfinished preview %s", name, exc_info=True)


def thumbnail_name(name: str) -> str:
    """``imagegen/2026/11/<job>/0.png`` → ``imagegen/2026/11/<job>/0.thumb.webp``."""
    stem, _ext = posixpath.splitext(name)
    return f"{stem}.thumb.webp"

"""Previews of stored images for the admin, made by a worker after success."""

from __future__ import annotations

import logging
import posixpath
from typing import Any

from django.core.files.base import ContentFile
from django.db.models import Q

from ..imaging import make_thumbnail
from ..models import GeneratedImage
from ..storage import get_storage

logger = logging.getLogger("imagegen")


def make_thumbnails(job_id: Any) -> int:
    """Make the missing previews of a job's images; returns how many were made.

    Safe to run twice: an image that has a preview is skipped, and the
    preview's name is derived from the image's, so a rerun overwrites.
    """
    storage = get_storage()
    made = 0
    pending = GeneratedImage.objects.filter(job_id=job_id, thumbnail="").exclude(
        Q(file="") | Q(file__isnull=True)
    )
    for image in pending:
        name = thumbnail_name(image.file.name)
        with storage.open(image.file.name, "rb") as source:
            data = make_thumbnail(source)
        if storage.exists(name):
            storage.delete(name)
        stored = storage.save(name, ContentFile(data))
        # Only if the image is still there: a discard meanwhile deletes the preview too.
        if (
            GeneratedImage.objects.filter(pk=image.pk, thumbnail="")
            .exclude(file="")
            .update(thumbnail=stored)
        ):
            made += 1
        else:
            storage.delete(stored)
    return made


def thumbnail_name(name: str) -> str:
    """``imagegen/2026/11/<job>/0.png`` → ``imagegen/2026/11/<job>/0.thumb.webp``."""
    stem, _ext = posixpath.splitext(name)
    return f"{stem}.thumb.webp"

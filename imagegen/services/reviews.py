"""Editors' decisions on stored images: approve, or discard (file deleted)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..choices import ReviewStatus
from ..models import GeneratedImage
from ..storage import get_storage
from .thumbnails import thumbnail_name

logger = logging.getLogger("imagegen")


def approve(image: GeneratedImage, *, user: Any = None) -> bool:
    """Mark an image approved. False when it already was, or was discarded."""
    return _review(image, ReviewStatus.APPROVED, [ReviewStatus.NEW], user)


def discard(image: GeneratedImage, *, user: Any = None) -> bool:
    """Discard an image: its stored file and preview are deleted, the row
    stays as the record of what was made and who discarded it. False when
    it already was discarded."""
    with transaction.atomic():
        # The names as stored now, not as ``image`` was read: a worker may
        # have made the preview since. The lock keeps it from adding one now.
        stored = (
            GeneratedImage.objects.select_for_update()
            .filter(pk=image.pk)
            .values_list("file", "thumbnail")
            .first()
        )
        names = [name for name in stored or () if name]
        if stored and stored[0]:
            # A preview written by a run that died before recording it is
            # named after the file: delete it too, or it is left to nobody.
            names.append(thumbnail_name(stored[0]))
        names = list(dict.fromkeys(names))
        moved = _review(
            image,
            ReviewStatus.DISCARDED,
            [ReviewStatus.NEW, ReviewStatus.APPROVED],
            user,
            file="",
            thumbnail="",
        )
        if moved:
            # Delete only once the row no longer points at the files.
            transaction.on_commit(lambda: _delete_files(names))
    return moved


def _review(
    image: GeneratedImage,
    status: str,
    from_statuses: list[str],
    user: Any,
    **fields: Any,
) -> bool:
    now = timezone.now()
    reviewer = user if getattr(user, "is_authenticated", False) else None
    moved = GeneratedImage.objects.filter(pk=image.pk, review_status__in=from_statuses).update(
        review_status=status, reviewed_by=reviewer, reviewed_at=now, **fields
    )
    if moved:
        image.refresh_from_db()
    return bool(moved)


def _delete_files(names: list[str]) -> None:
    storage = get_storage()
    for name in names:
        try:
            storage.delete(name)
        except Exception:
            # The row says discarded either way; an orphan file is logged for cleanup.
            logger.warning("Could not delete discarded file %s", name, exc_info=True)

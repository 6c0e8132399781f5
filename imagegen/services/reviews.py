"""Editors' decisions on stored images: title and alt text, approve, discard
(with a short time to undo it), restore.

A discard made with ``undo=True`` (the admin's) keeps the stored file and
its preview for ``DISCARD_UNDO_SECONDS``: the image is marked discarded at
once (no longer offered as a reference or result), :func:`restore` brings
it back meanwhile, and the task ``imagegen.purge_discarded`` deletes the
files once that time is over (:func:`purge_due`). A discard without it
deletes them as soon as the transaction commits.

:func:`review` is the entry point of the admin's review forms: it checks
the user's permissions here, in the service layer, so every caller (the
job page's forms, the image page's buttons, the list actions) refuses the
same things with the same reasons.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .. import conf, permissions
from ..choices import ReviewStatus
from ..models import GeneratedImage
from ..review_tasks import purge_discarded
from ..storage import get_storage
from .alt_text import require_alt_text
from .thumbnails import thumbnail_name
from .transitions import enqueue

logger = logging.getLogger("imagegen")

#: What :func:`review` does: save the text only, or save it and decide.
ACTIONS = ("save", "approve", "discard", "restore")

#: Longest title and alt text, as the model stores them.
TEXT_LIMITS = {"title": 255, "alt_text": 500}


def undo_seconds() -> int:
    """How long a discard can be undone (``DISCARD_UNDO_SECONDS``)."""
    return max(0, int(conf.get_setting("DISCARD_UNDO_SECONDS")))


def undo_until(image: GeneratedImage) -> datetime | None:
    """Until when ``image``'s discard can be undone; None when it cannot
    (not discarded, or its file is already gone)."""
    if not image.is_discarded or not image.file or image.reviewed_at is None:
        return None
    until = image.reviewed_at + timedelta(seconds=undo_seconds())
    return until if until > timezone.now() else None


def approve(image: GeneratedImage, *, user: Any = None) -> bool:
    """Mark an image approved. False when it already was, or was discarded.

    With ``IMAGEGEN["REQUIRE_ALT_TEXT"]``, raises ValidationError (code
    ``alt_text_required``) for an image with neither alt text nor the
    ``decorative`` mark; nothing is changed then."""
    if image.review_status == ReviewStatus.NEW:
        require_alt_text(image)
    return _review(image, ReviewStatus.APPROVED, [ReviewStatus.NEW], user)


def discard(image: GeneratedImage, *, user: Any = None, undo: bool = False) -> bool:
    """Discard an image: the row stays as the record of what was made and
    who discarded it; its stored file and preview are deleted, at once or,
    with ``undo``, ``DISCARD_UNDO_SECONDS`` later (:func:`restore` can bring
    it back until then). False when it already was discarded."""
    if undo and undo_seconds():
        moved = _review(
            image, ReviewStatus.DISCARDED, [ReviewStatus.NEW, ReviewStatus.APPROVED], user
        )
        if moved:
            _schedule_purge(image.pk, undo_seconds())
        return moved
    with transaction.atomic():
        names = _stored_names(image.pk)
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


def restore(image: GeneratedImage, *, user: Any = None) -> bool:
    """Undo a discard whose files are still kept: the image is "not
    reviewed" again. False when it is not discarded, or its time to undo is
    over (its files may be gone)."""
    now = timezone.now()
    window = timedelta(seconds=undo_seconds())
    moved = (
        GeneratedImage.objects.filter(
            pk=image.pk,
            review_status=ReviewStatus.DISCARDED,
            reviewed_at__gt=now - window,
        )
        .exclude(file="")
        .update(
            review_status=ReviewStatus.NEW,
            reviewed_by=user if getattr(user, "is_authenticated", False) else None,
            reviewed_at=now,
        )
    )
    if moved:
        image.refresh_from_db()
    return bool(moved)


def purge_due(now: datetime | None = None) -> int:
    """Delete the files of images discarded more than ``DISCARD_UNDO_SECONDS``
    ago that still have them; returns how many images were purged."""
    now = now or timezone.now()
    due = GeneratedImage.objects.filter(
        review_status=ReviewStatus.DISCARDED,
        reviewed_at__lte=now - timedelta(seconds=undo_seconds()),
    ).exclude(file="")
    return sum(purge(pk, now=now) for pk in due.values_list("pk", flat=True)[:500])


def purge(image_id: Any, *, now: datetime | None = None) -> bool:
    """Delete one discarded image's files if its time to undo is over; True
    if it did. Safe to run twice, or at once with :func:`restore`: the row
    is locked, and a restored image is left alone."""
    now = now or timezone.now()
    with transaction.atomic():
        row = (
            GeneratedImage.objects.select_for_update()
            .filter(
                pk=image_id,
                review_status=ReviewStatus.DISCARDED,
                reviewed_at__lte=now - timedelta(seconds=undo_seconds()),
            )
            .exclude(file="")
            .first()
        )
        if row is None:
            return False
        names = _stored_names(row.pk)
        GeneratedImage.objects.filter(pk=row.pk).update(file="", thumbnail="")
        transaction.on_commit(lambda: _delete_files(names))
    return True


def seconds_to_purge(image_id: Any) -> float | None:
    """Seconds until a pending discard's files are due for deletion (0 when
    due now); None when there is nothing left to purge."""
    reviewed_at = (
        GeneratedImage.objects.filter(pk=image_id, review_status=ReviewStatus.DISCARDED)
        .exclude(file="")
        .values_list("reviewed_at", flat=True)
        .first()
    )
    if reviewed_at is None:
        return None
    due = reviewed_at + timedelta(seconds=undo_seconds())
    return max(0.0, (due - timezone.now()).total_seconds())


@dataclass(frozen=True)
class Reviewed:
    """What :func:`review` did: the image as it is now, whether the decision
    took effect (False: it already was in that state), and a sentence for
    the editor."""

    image: GeneratedImage
    changed: bool
    message: str


def review(
    image: GeneratedImage,
    *,
    user: Any,
    action: str,
    title: str | None = None,
    alt_text: str | None = None,
    decorative: bool | None = None,
) -> Reviewed:
    """Save the title, alt text and ``decorative`` mark given (None: leave
    as they are) and apply ``action`` (one of :data:`ACTIONS`), in that
    order: what the editor typed is kept whatever button they pressed
    (approving then needs alt text or the mark with ``REQUIRE_ALT_TEXT``).

    Raises PermissionDenied, with the permission needed, when ``user`` may
    not see the image, change its text (``imagegen.change_generatedimage``:
    saving and approving) or discard and restore it
    (``imagegen.delete_generatedimage``); ValidationError for an unknown
    action or text too long (nothing is changed then), and for approving
    without alt text when it is required (the text given is saved).
    """
    if action not in ACTIONS:
        raise ValidationError(_("Unknown review action %(action)r.") % {"action": action})
    if not permissions.visible_images(user).filter(pk=image.pk).exists():
        raise PermissionDenied(_("This image belongs to another user's job."))
    texts = {
        name: value.strip()
        for name, value in (("title", title), ("alt_text", alt_text))
        if value is not None and value.strip() != getattr(image, name)
    }
    for name, value in texts.items():
        if len(value) > TEXT_LIMITS[name]:
            raise ValidationError(
                ngettext(
                    "%(field)s: at most %(max)d character.",
                    "%(field)s: at most %(max)d characters.",
                    TEXT_LIMITS[name],
                )
                % {
                    "field": GeneratedImage._meta.get_field(name).verbose_name,
                    "max": TEXT_LIMITS[name],
                }
            )
    if decorative is not None and bool(decorative) != image.decorative:
        texts["decorative"] = bool(decorative)
    if (texts or action in ("save", "approve")) and not permissions.can_review_image(user):
        raise PermissionDenied(
            _("Editing and approving images needs the permission “Can change generated image”.")
        )
    if action in ("discard", "restore") and not permissions.can_discard_image(user):
        raise PermissionDenied(
            _("Discarding images needs the permission “Can delete generated image”.")
        )
    if texts:
        GeneratedImage.objects.filter(pk=image.pk).update(**texts)
        for name, value in texts.items():
            setattr(image, name, value)
    if action == "approve":
        changed = approve(image, user=user)
        message = _("Approved.") if changed else _("Already approved or discarded.")
    elif action == "discard":
        changed = discard(image, user=user, undo=True)
        message = _("Discarded.") if changed else _("Already discarded.")
    elif action == "restore":
        changed = restore(image, user=user)
        message = _("Restored.") if changed else _("Too late to undo: the file was deleted.")
    else:
        changed = bool(texts)
        message = _("Saved.") if changed else _("Nothing to save.")
    image.refresh_from_db()
    return Reviewed(image=image, changed=changed, message=message)


def _schedule_purge(image_id: Any, seconds: float) -> None:
    """Send ``imagegen.purge_discarded`` for when the time to undo is over.
    Celery countdowns stay within ``MAX_COUNTDOWN``: an early run sends
    itself again for the rest (:func:`imagegen.review_tasks.purge_discarded`)."""
    countdown = min(float(seconds), float(conf.get_setting("MAX_COUNTDOWN")))
    enqueue(purge_discarded, str(image_id), countdown=countdown)


def _stored_names(image_id: Any) -> list[str]:
    """The files of an image as stored now (not as a caller read it: a
    worker may have made the preview since), locked against a preview being
    added meanwhile. Call inside a transaction."""
    stored = (
        GeneratedImage.objects.select_for_update()
        .filter(pk=image_id)
        .values_list("file", "thumbnail")
        .first()
    )
    names = [name for name in stored or () if name]
    if stored and stored[0]:
        # A preview written by a run that died before recording it is
        # named after the file: delete it too, or it is left to nobody.
        names.append(thumbnail_name(stored[0]))
    return list(dict.fromkeys(names))


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

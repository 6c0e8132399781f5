"""Alt text drafts: written by the describer after finalize, confirmed by an editor.

:func:`request_drafts` runs in finalize's closing transaction: the job's new
images are marked ``pending`` and one ``imagegen.draft_alt_text`` task per
image is sent once that transaction commits, so drafting never happens in
a web request and never holds up the job. The task (:func:`draft`) stores
the describer's text in ``alt_text_draft`` (state ``ready``), in the
language the job was asked in (``GenerationJob.language``, else
``LANGUAGE_CODE``); a describer that cannot answer leaves the state
``failed``, and the job is unaffected either way.

Drafts are kept by "draft holders", chosen by the asset adapter
(:meth:`imagegen.adapters.AssetAdapter.draft_holders`): imagegen's own
:class:`~imagegen.models.GeneratedImage`, or a CMS link model with the same
draft fields (:class:`~imagegen.draft_fields.AltTextDraftFields`), a
``job``, and ``file``, ``content_type`` and ``prompt`` for the describer
(the Wagtail adapter's ``GeneratedWagtailImage``, the filer adapter's
``GeneratedFilerImage``). The task names the holder's model, except for
imagegen's own images, whose messages are as they always were.

A draft is never the image's alt text until an editor confirms it
(:func:`confirm`; a CMS image's through its link: :func:`confirm_linked`).
With ``IMAGEGEN["REQUIRE_ALT_TEXT"]``, approving an image and attaching it
to a field need alt text or the ``decorative`` mark
(:func:`alt_text_missing`, :func:`require_alt_text`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .. import conf, permissions
from ..adapters import get_adapter
from ..choices import AltTextDraftState
from ..describers import MAX_ALT_TEXT, DescriberError, get_describer
from ..draft_fields import AltTextDraftFields
from ..exceptions import ImagegenConfigurationError
from ..models import GeneratedImage, GenerationJob
from .transitions import enqueue

logger = logging.getLogger("imagegen")

#: Attempts of one draft: a temporary failure (timeout, rate limit, server
#: error) is tried again with backoff until this many, then the draft fails.
MAX_ATTEMPTS = 4
#: A pending draft's task is sent again this long after it was last sent:
#: longer than its attempts and their backoff take.
RESEND_AFTER = timedelta(minutes=30)
#: ... and given up (``failed``) this long after.
GIVE_UP_AFTER = timedelta(hours=24)
RESEND_BATCH = 200
#: What :func:`draft` returns.
READY, FAILED, SKIPPED = "ready", "failed", "skipped"
#: Where a CMS image keeps its alt text, by adapter: imagegen's own image,
#: django-filer's image, Wagtail's image (its ``description``).
_ALT_TEXT_ATTRIBUTES = ("alt_text", "default_alt_text", "description")


def request_drafts(job: GenerationJob) -> int:
    """Mark ``job``'s images without a draft ``pending`` (the adapter's
    draft holders) and send ``imagegen.draft_alt_text`` for each when the
    transaction commits.
    Returns how many; 0 when drafting is off (no describer), the adapter's
    assets keep no drafts, or the describer setting is broken (system check
    ``imagegen.E036`` reports it: the job must succeed all the same)."""
    try:
        if get_describer() is None:
            return 0
    except ImagegenConfigurationError:
        logger.warning("No alt text drafts for job %s: the describer is misconfigured", job.pk)
        return 0
    holders = get_adapter().draft_holders(job)
    if holders is None:
        return 0
    ids = list(
        holders.filter(alt_text_draft_state=AltTextDraftState.NONE).values_list("pk", flat=True)
    )
    holders.model._default_manager.filter(pk__in=ids).update(
        alt_text_draft_state=AltTextDraftState.PENDING, alt_text_draft_requested_at=timezone.now()
    )
    for pk in ids:
        _send(holders.model, pk)
    return len(ids)


def resend_lost(now: datetime | None = None) -> int:
    """The sweep's part: send ``imagegen.draft_alt_text`` again for drafts
    still pending :data:`RESEND_AFTER` after it was last sent (its message
    was lost: the broker was down when finalize committed, or a worker died
    holding it), at most :data:`RESEND_BATCH` a sweep; drafts pending past
    :data:`GIVE_UP_AFTER` end ``failed``. Returns how many were sent again.

    A draft that was only slow may be made twice; :func:`draft` stores the
    first answer only. Covers every draft holder model (:func:`holder_models`)."""
    now = now or timezone.now()
    sent = 0
    for model in holder_models():
        manager = model._default_manager
        pending = manager.filter(alt_text_draft_state=AltTextDraftState.PENDING)
        pending.filter(alt_text_draft_requested_at__lte=now - GIVE_UP_AFTER).update(
            alt_text_draft_state=AltTextDraftState.FAILED
        )
        with transaction.atomic():
            ids = list(
                pending.filter(alt_text_draft_requested_at__lte=now - RESEND_AFTER)
                .order_by("alt_text_draft_requested_at")
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)[:RESEND_BATCH]
            )
            manager.filter(pk__in=ids).update(alt_text_draft_requested_at=now)
            for pk in ids:
                _send(model, pk)
        sent += len(ids)
    return sent


def holder_models() -> list[type[models.Model]]:
    """The installed models that keep alt text drafts: imagegen's own images
    and the CMS link models with the draft fields (whichever adapter made
    their rows, so a draft left pending by an earlier adapter is not lost)."""
    return [model for model in apps.get_models() if _is_holder(model)]


def draft(image_id: Any, *, attempt: int = 1, holder: str = "") -> str:
    """Draft the alt text of one image (the task's body): ``image_id`` is a
    row of the draft holder model labelled ``holder`` (empty: imagegen's
    own :class:`~imagegen.models.GeneratedImage`). Returns
    :data:`READY`, :data:`FAILED` or :data:`SKIPPED` (not pending: a
    duplicate message, a discarded image, drafting turned off since).

    A temporary failure before :data:`MAX_ATTEMPTS` raises the describer's
    DescriberError (the task tries again later; the image stays
    ``pending``); other failures end as ``failed``, and the image and its
    job are otherwise untouched.
    """
    model = _holder_model(holder)
    if model is None:
        logger.warning("No alt text draft for %s %s: not a draft holder", holder, image_id)
        return SKIPPED
    image = model._default_manager.select_related("job").filter(pk=image_id).first()
    if image is None or image.alt_text_draft_state != AltTextDraftState.PENDING:
        return SKIPPED
    if not image.file:  # discarded meanwhile: nothing to describe
        _set_state(image, AltTextDraftState.NONE)
        return SKIPPED
    language = image.job.language or settings.LANGUAGE_CODE
    try:
        describer = get_describer()
        if describer is None:
            _set_state(image, AltTextDraftState.NONE)
            return SKIPPED
        with image.file.open("rb") as fh:
            data = fh.read()
        text = describer.describe(data, image.content_type, language=language, context=image.prompt)
    except DescriberError as exc:
        if exc.temporary and attempt < MAX_ATTEMPTS:
            logger.info("Alt text draft of image %s failed, will retry: %s", image_id, exc)
            raise
        logger.warning("Alt text draft of image %s failed: %s", image_id, exc)
        _set_state(image, AltTextDraftState.FAILED)
        return FAILED
    except Exception:
        # A describer's bug, a file that cannot be read: the draft fails, nothing else.
        logger.exception("Alt text draft of image %s failed", image_id)
        _set_state(image, AltTextDraftState.FAILED)
        return FAILED
    text = text.strip()[:MAX_ALT_TEXT]
    if not text:
        _set_state(image, AltTextDraftState.FAILED)
        return FAILED
    type(image)._default_manager.filter(
        pk=image.pk, alt_text_draft_state=AltTextDraftState.PENDING
    ).update(
        alt_text_draft=text,
        alt_text_draft_state=AltTextDraftState.READY,
        alt_text_draft_language=language,
    )
    return READY


def confirm(
    image: GeneratedImage, *, user: Any, alt_text: str | None = None, decorative: bool = False
) -> GeneratedImage:
    """An editor's confirmation: ``alt_text`` (their text, or None: the
    draft as it is) becomes the image's alt text and the ``decorative`` mark
    is cleared; or, with ``decorative``, the image is marked decorative (it
    needs no alt text) and its text is left as it is. The draft itself is
    kept. Returns the image as saved.

    Raises PermissionDenied like :func:`imagegen.services.reviews.review`
    (the image is not ``user``'s to see, or they may not change images) and
    ValidationError for no text to confirm or text too long.
    """
    if not permissions.visible_images(user).filter(pk=image.pk).exists():
        raise PermissionDenied(_("This image belongs to another user's job."))
    if not permissions.can_review_image(user):
        raise PermissionDenied(
            _("Editing and approving images needs the permission “Can change generated image”.")
        )
    if decorative:
        GeneratedImage.objects.filter(pk=image.pk).update(decorative=True)
    else:
        text = _confirmable(
            image.alt_text_draft if alt_text is None else alt_text,
            GeneratedImage._meta.get_field("alt_text"),
        )
        GeneratedImage.objects.filter(pk=image.pk).update(alt_text=text, decorative=False)
    image.refresh_from_db()
    return image


def confirm_linked(link: Any, *, alt_text: str, attribute: str) -> Any:
    """An editor's confirmation of a CMS image's alt text, through its link
    (a draft holder whose ``image`` is the CMS's image): ``alt_text``, the
    draft as shown or edited, becomes the image's ``attribute`` (filer's
    ``default_alt_text``). The draft is kept. Returns the image as saved.

    The caller checks the editor may change the image. Raises
    ValidationError (on ``attribute``) for no text or text longer than the
    attribute's field allows.
    """
    image = link.image
    try:
        text = _confirmable(alt_text, type(image)._meta.get_field(attribute))
    except ValidationError as error:
        raise ValidationError({attribute: error}) from None
    type(image)._default_manager.filter(pk=image.pk).update(**{attribute: text})
    image.refresh_from_db(fields=[attribute])
    return image


def alt_text_limit(field: models.Field) -> int:
    """The longest alt text an editor may confirm into ``field``: the
    field's own limit, at most :data:`~imagegen.describers.MAX_ALT_TEXT`."""
    return min(field.max_length or MAX_ALT_TEXT, MAX_ALT_TEXT)


def _confirmable(alt_text: str, field: models.Field) -> str:
    """``alt_text`` stripped, as an editor may confirm it into ``field``: raises
    ValidationError for no text, or text longer than the field (and
    :data:`~imagegen.describers.MAX_ALT_TEXT`) allows."""
    text = alt_text.strip()
    if not text:
        raise ValidationError(_("There is no alt text to confirm."), code="no_alt_text")
    limit = alt_text_limit(field)
    if len(text) > limit:
        raise ValidationError(
            ngettext(
                "%(field)s: at most %(max)d character.",
                "%(field)s: at most %(max)d characters.",
                limit,
            )
            % {"field": field.verbose_name, "max": limit},
            code="alt_text_too_long",
        )
    return text


def alt_text_of(asset: Any) -> str:
    """The alt text an asset carries (imagegen's image, a filer or Wagtail image)."""
    for name in _ALT_TEXT_ATTRIBUTES:
        value = getattr(asset, name, None)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def alt_text_missing(image: Any, alt_text: str | None = None) -> bool:
    """For ``REQUIRE_ALT_TEXT``: neither alt text (``alt_text``, the text
    about to be given, or the image's own) nor the ``decorative`` mark."""
    if getattr(image, "decorative", False):
        return False
    return not ((alt_text or "").strip() or alt_text_of(image))


def require_alt_text(image: Any, alt_text: str | None = None, *, field: str | None = None) -> None:
    """Raise ValidationError (code ``alt_text_required``, on ``field`` when
    given) when ``REQUIRE_ALT_TEXT`` is on and :func:`alt_text_missing`."""
    if conf.get_setting("REQUIRE_ALT_TEXT") is not True or not alt_text_missing(image, alt_text):
        return
    error = ValidationError(
        _("This image needs alt text, or to be marked decorative, first."),
        code="alt_text_required",
    )
    raise ValidationError({field: error}) if field else error


def _set_state(image: models.Model, state: str) -> None:
    type(image)._default_manager.filter(
        pk=image.pk, alt_text_draft_state=AltTextDraftState.PENDING
    ).update(alt_text_draft_state=state)


def _is_holder(model: type[models.Model]) -> bool:
    return issubclass(model, AltTextDraftFields)


def _holder_model(label: str) -> type[models.Model] | None:
    if not label:
        return GeneratedImage
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        return None
    return model if _is_holder(model) else None


def _send(model: type[models.Model], pk: Any) -> None:
    """``imagegen.draft_alt_text`` for one holder once the transaction commits."""
    from ..tasks import draft_alt_text

    # imagegen's own images keep the one-argument message of earlier versions.
    label = () if model is GeneratedImage else (model._meta.label_lower,)
    enqueue(draft_alt_text, str(pk), *label)

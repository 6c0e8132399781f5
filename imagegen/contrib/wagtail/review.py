"""Naming a generated Wagtail image: a short title from the prompt, and the
title and alt text an editor confirms before the image is chosen."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .models import GeneratedWagtailImage
from .permissions import image_policy

#: The longest default title: a short readable label, not the whole prompt.
SHORT_TITLE = 60
#: Wagtail's limit on titles (and on ``description``, the alt text).
TITLE_LENGTH = 255

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s")


def short_title(prompt: str, limit: int = SHORT_TITLE) -> str:
    """The prompt's first sentence on one line, cut at a word to ``limit`` characters.

    ``"A red kite over the dunes. Flat illustration, pastel"`` becomes
    ``"A red kite over the dunes"``; a long sentence ends in ``…``.
    """
    text = " ".join(prompt.split())
    first = _SENTENCE_END.split(text, maxsplit=1)[0].rstrip(".!?;:,") or text
    if len(first) <= limit:
        return first
    cut = first[: limit - 1]
    if " " in cut and first[len(cut)] != " ":  # do not end inside a word
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-") + "…"


def generated_image(image_id: Any) -> Any | None:
    """The Wagtail image imagegen made with id ``image_id`` (its job loaded), or None."""
    link = (
        GeneratedWagtailImage.objects.select_related("image", "job")
        .filter(image_id=image_id)
        .first()
    )
    return link.image if link is not None else None


def may_confirm(user: Any, image: Any) -> bool:
    """Whether ``user`` may name and choose ``image``: Wagtail's ``change``
    and ``choose`` on it (an editor's own uploads: ``add`` in its collection)."""
    policy = image_policy()
    return all(
        policy.user_has_permission_for_instance(user, a, image) for a in ("change", "choose")
    )


def confirm_image(image: Any, *, user: Any, title: str, alt_text: str) -> Any:
    """Set a generated image's title and alt text (Wagtail's ``description``).

    Raises PermissionDenied when ``user`` may not change and choose it, and
    ValidationError (per field) for an empty or too long title or alt text;
    nothing is saved then.
    """
    if not may_confirm(user, image):
        raise PermissionDenied(_("You may not change this image."))
    title, alt_text = " ".join(title.split()), " ".join(alt_text.split())
    errors: dict[str, str] = {}
    if not title:
        errors["title"] = _("Give the image a title.")
    elif len(title) > TITLE_LENGTH:
        errors["title"] = ngettext(
            "At most %(max)d character.", "At most %(max)d characters.", TITLE_LENGTH
        ) % {"max": TITLE_LENGTH}
    if not alt_text:
        errors["alt_text"] = _("Describe the image for people who cannot see it.")
    elif len(alt_text) > TITLE_LENGTH:
        errors["alt_text"] = ngettext(
            "At most %(max)d character.", "At most %(max)d characters.", TITLE_LENGTH
        ) % {"max": TITLE_LENGTH}
    if errors:
        raise ValidationError(errors)
    image.title = title
    # Wagtail's alt text (default_alt_text falls back to the title only when it is empty).
    image.description = alt_text
    image.save(update_fields=["title", "description"])
    return image

"""The alt text draft fields, as one abstract model.

A *draft holder* (:mod:`imagegen.services.alt_text`) keeps the alt text that
``IMAGEGEN["DESCRIBER"]`` drafted for one image until an editor confirms it:
imagegen's own :class:`~imagegen.models.GeneratedImage`, and a CMS link model
whose image model imagegen cannot change (the Wagtail adapter's
``GeneratedWagtailImage``, the filer adapter's ``GeneratedFilerImage``). Each
concrete model also has a ``job``, gives the describer ``file``,
``content_type`` and ``prompt``, and declares its own partial index on
``alt_text_draft_requested_at`` for pending drafts (index names are per
model).

:func:`draft_note` says where a holder's draft stands beside an alt text
input, for the pages that offer it.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from .choices import AltTextDraftState


class AltTextDraftFields(models.Model):
    """An alt text draft: never the image's alt text until an editor confirms it."""

    alt_text_draft = models.TextField(_("drafted alt text"), blank=True)
    alt_text_draft_state = models.CharField(
        _("alt text draft"),
        max_length=10,
        choices=AltTextDraftState.choices,
        default=AltTextDraftState.NONE,
        blank=True,
    )
    alt_text_draft_language = models.CharField(_("drafted in language"), max_length=15, blank=True)
    # When the draft task was last sent: the sweep sends it again when its
    # message was lost (the broker down at finalize), without a lease.
    alt_text_draft_requested_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True


def draft_note(holder: AltTextDraftFields | None, current: Any, *, bound: bool) -> str:
    """Where ``holder``'s draft stands, for the note beside an alt text input
    that holds ``current``: "pending", "ready" (the draft is offered in the
    empty input), "failed", or "" (nothing to say: no holder, the input has
    text, or, ``bound``, what the editor posted stands, a cleared draft
    included)."""
    if holder is None or current:
        return ""
    state = holder.alt_text_draft_state
    if state == AltTextDraftState.PENDING:
        return "pending"
    if bound:
        return ""
    if state == AltTextDraftState.READY and holder.alt_text_draft:
        return "ready"
    if state == AltTextDraftState.FAILED:
        return "failed"
    return ""

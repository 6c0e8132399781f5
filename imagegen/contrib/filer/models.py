"""The link between a job's output and the filer image made from it.

The image model is filer's (``FILER_IMAGE_MODEL``), so imagegen cannot add
fields to it. This row holds what the image cannot: which job and output
made it, the ``(job, index)`` constraint that makes each output exactly
one image even if a finalize runs twice, and the image's alt text draft.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from filer import settings as filer_settings

from imagegen.asset_links import AssetLink, image_field, job_field
from imagegen.choices import AltTextDraftState
from imagegen.draft_fields import AltTextDraftFields


class GeneratedFilerImage(AssetLink, AltTextDraftFields):
    """A filer image's job and output, and its alt text draft.

    A draft holder of :mod:`imagegen.services.alt_text`, as
    :class:`~imagegen.models.GeneratedImage` is: the draft fields
    (:class:`~imagegen.draft_fields.AltTextDraftFields`), and the image's
    ``file``, ``content_type`` and ``prompt`` for the describer. The draft is
    never the image's ``default_alt_text`` until an editor confirms it on
    this link's admin page (:mod:`.admin`).
    """

    job = job_field("filer_images")
    image = image_field(filer_settings.FILER_IMAGE_MODEL)

    class Meta(AssetLink.Meta):
        verbose_name = _("generated filer image")
        verbose_name_plural = _("generated filer images")
        indexes = [
            # The sweep's re-sending of drafts whose task was lost: the few pending.
            models.Index(
                fields=["alt_text_draft_requested_at"],
                name="imagegen_filer_drafting_idx",
                condition=Q(alt_text_draft_state=AltTextDraftState.PENDING),
            ),
        ]

    @property
    def file(self) -> Any:
        """The filer image's file (filer's copy): what the describer reads."""
        return self.image.file

    @property
    def content_type(self) -> str:
        # filer reads the MIME type from the file when it is assigned.
        return self.image.mime_type or "application/octet-stream"

    @property
    def prompt(self) -> str:
        return self.job.prompt

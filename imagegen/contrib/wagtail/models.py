"""The link between a job's output and the Wagtail image made from it.

The image model is the site's (``WAGTAILIMAGES_IMAGE_MODEL``), so imagegen
cannot add fields to it. This row holds what the image cannot: which job and
output made it (the prompt and settings stay reachable for "generate again"),
the ``(job, index)`` constraint that makes each output exactly one image
even if a finalize runs twice, and the image's alt text draft.
"""

from __future__ import annotations

import mimetypes
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from wagtail.images import get_image_model_string

from imagegen.asset_links import AssetLink, image_field, job_field
from imagegen.choices import AltTextDraftState
from imagegen.draft_fields import AltTextDraftFields


class GeneratedWagtailImage(AssetLink, AltTextDraftFields):
    """A Wagtail image's job and output, and its alt text draft.

    A draft holder of :mod:`imagegen.services.alt_text`, as
    :class:`~imagegen.models.GeneratedImage` is: the same draft fields
    (:class:`~imagegen.draft_fields.AltTextDraftFields`),
    and the image's ``file``, ``content_type`` and ``prompt`` for the
    describer. The draft is never the image's ``description`` until an
    editor confirms it in the chooser's confirm step or on Wagtail's image
    edit page.
    """

    job = job_field("wagtail_images")
    image = image_field(get_image_model_string())

    class Meta(AssetLink.Meta):
        verbose_name = _("generated Wagtail image")
        verbose_name_plural = _("generated Wagtail images")
        indexes = [
            # The sweep's re-sending of drafts whose task was lost: the few pending.
            models.Index(
                fields=["alt_text_draft_requested_at"],
                name="imagegen_wagtail_drafting_idx",
                condition=Q(alt_text_draft_state=AltTextDraftState.PENDING),
            ),
        ]

    @property
    def file(self) -> Any:
        """The Wagtail image's file: what the describer reads."""
        return self.image.file

    @property
    def content_type(self) -> str:
        # Wagtail keeps no content type; finalize names files by their format.
        return mimetypes.guess_type(self.image.file.name)[0] or "application/octet-stream"

    @property
    def prompt(self) -> str:
        return self.job.prompt

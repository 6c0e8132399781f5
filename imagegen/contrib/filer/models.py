"""The link between a job's output and the filer image made from it.

The image model is filer's (``FILER_IMAGE_MODEL``), so imagegen cannot add
fields to it. This row holds what the image cannot: which job and output
made it, and the ``(job, index)`` constraint that makes each output exactly
one image even if a finalize runs twice.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from filer import settings as filer_settings

from imagegen.asset_links import AssetLink, image_field, job_field


class GeneratedFilerImage(AssetLink):
    job = job_field("filer_images")
    image = image_field(filer_settings.FILER_IMAGE_MODEL)

    class Meta(AssetLink.Meta):
        verbose_name = _("generated filer image")
        verbose_name_plural = _("generated filer images")

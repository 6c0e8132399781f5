"""The link between a job's output and the Wagtail image made from it.

The image model is the site's (``WAGTAILIMAGES_IMAGE_MODEL``), so imagegen
cannot add fields to it. This row holds what the image cannot: which job and
output made it (the prompt and settings stay reachable for "generate again"),
and the ``(job, index)`` constraint that makes each output exactly one image
even if a finalize runs twice.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from wagtail.images import get_image_model_string

from imagegen.asset_links import AssetLink, image_field, job_field


class GeneratedWagtailImage(AssetLink):
    job = job_field("wagtail_images")
    image = image_field(get_image_model_string())

    class Meta(AssetLink.Meta):
        verbose_name = _("generated Wagtail image")
        verbose_name_plural = _("generated Wagtail images")

"""The target that fills a foreign key to the Wagtail image model with an
image made by :class:`~.adapters.WagtailImageAdapter` (imagegen.fields)."""

from __future__ import annotations

from django.db import models
from wagtail.images import get_image_model

from imagegen.fields.targets import ForeignKeyTarget


class WagtailImageTarget(ForeignKeyTarget):
    """A ``ForeignKey`` to the site's Wagtail image model (a page's or a
    snippet's image field): takes the Wagtail images the adapter made."""

    kind = "Wagtail image"
    adapter = "imagegen.contrib.wagtail.adapters.WagtailImageAdapter"

    @classmethod
    def related_model(cls) -> type[models.Model]:
        return get_image_model()

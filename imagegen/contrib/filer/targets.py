"""The target that fills a ``FilerImageField`` with an image made by
:class:`~.adapters.FilerImageAdapter` (imagegen.fields)."""

from __future__ import annotations

from django.db import models

from imagegen.fields.targets import ForeignKeyTarget

from .adapters import image_model


class FilerImageTarget(ForeignKeyTarget):
    """A ``FilerImageField`` (or any ForeignKey to filer's image model):
    takes the filer images the adapter made."""

    kind = "filer image"
    adapter = "imagegen.contrib.filer.adapters.FilerImageAdapter"

    @classmethod
    def related_model(cls) -> type[models.Model]:
        return image_model()

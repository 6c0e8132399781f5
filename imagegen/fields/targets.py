"""Targets: how a chosen result goes into a model field.

One small class per kind of field. A target fills the object in memory
only (:meth:`Target.fill`): the field, and the alt-text field when one is
declared. Nothing is written to the database or to the field's storage
until the object is saved (by the admin form, bulk fill or the site's own
code), so an editor who leaves without saving changes nothing.

The asset a target takes is one made by ``IMAGEGEN["ASSET_ADAPTER"]``
(:mod:`imagegen.adapters`): a :class:`~imagegen.models.GeneratedImage` by
default, a Wagtail image with :mod:`imagegen.contrib.wagtail`, a filer
image with :mod:`imagegen.contrib.filer`. A file field copies any of them; a
foreign key takes the adapter's own kind, so the system checks require the
matching adapter (:meth:`Target.adapter_problems`).

Built in: :class:`FileTarget` and :class:`GeneratedImageTarget`; the
contrib apps register theirs with :func:`register` in ``ready()``, and so can
a site for a field type of its own.
"""

from __future__ import annotations

import hashlib
import posixpath
import tempfile
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import models
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .. import conf

_CHUNK = 1 << 20


class Target:
    """Base class of targets: a subclass says which fields it fills
    (:meth:`supports`), which assets it takes (:meth:`accepts`) and how it
    sets them (:meth:`set_value`)."""

    #: Shown in messages and docs ("image file", "Wagtail image"...).
    kind = ""
    #: Dotted path of the asset adapter (or a base class of it) whose assets
    #: this target takes; "" for any adapter.
    adapter = ""

    def __init__(self, field: models.Field, *, alt_field: str | None = None) -> None:
        self.field = field
        self.alt_field = alt_field

    @classmethod
    def supports(cls, field: models.Field) -> bool:
        """Whether this target fills ``field``."""
        raise NotImplementedError

    @classmethod
    def adapter_problems(cls) -> list[tuple[str, str]]:
        """``(message, hint)`` when the configured adapter makes assets this
        target cannot take (reported by the system checks)."""
        if not cls.adapter:
            return []
        path = conf.get_setting("ASSET_ADAPTER")
        try:
            configured = import_string(path)
            needed = import_string(cls.adapter)
        except ImportError:
            return []  # reported by imagegen's own checks, and the contrib app's
        if isinstance(configured, type) and issubclass(configured, needed):
            return []
        return [
            (
                f"a {cls.kind} field takes the assets of {cls.adapter}, "
                f"but IMAGEGEN['ASSET_ADAPTER'] is {path!r}.",
                f"Set IMAGEGEN['ASSET_ADAPTER'] = {cls.adapter!r} (or a subclass).",
            )
        ]

    def describe(self) -> str:
        """``"blog.Article.cover (image file)"``."""
        return f"{self.field.model._meta.label}.{self.field.name} ({self.kind})"

    def is_empty(self, obj: models.Model) -> bool:
        """Whether ``obj`` has nothing in the field (bulk fill's "missing")."""
        return getattr(obj, self.field.attname) in (None, "")

    def accepts(self, asset: Any) -> bool:
        """Whether ``asset`` can go into the field."""
        raise NotImplementedError

    def fill(self, obj: models.Model, asset: Any, alt_text: str | None = None) -> None:
        """Put ``asset`` (and ``alt_text``, when given and an alt field is
        declared) into ``obj``, in memory: saving ``obj`` stores them.

        Raises ValidationError, keyed by field name, for an asset the field
        cannot take or alt text too long for its field; ``obj`` is unchanged then.
        """
        if not self.accepts(asset):
            raise ValidationError(
                {self.field.name: _("This image cannot go into this field.")}, code="invalid_asset"
            )
        if alt_text is not None and self.alt_field:
            _check_alt_text(obj, self.alt_field, alt_text)
        self.set_value(obj, asset)
        if alt_text is not None and self.alt_field:
            setattr(obj, self.alt_field, alt_text)

    def set_value(self, obj: models.Model, asset: Any) -> None:
        """Set the field of ``obj`` to ``asset`` (accepted), without saving."""
        raise NotImplementedError


class FileTarget(Target):
    """A ``FileField`` or ``ImageField``: the asset's file is copied through
    the field's own ``upload_to`` and storage when the object is saved, so
    templates, thumbnails and cleanup that work with uploads work the same.

    The copy is a file of its own, never the asset's: deleting one leaves the
    other. It is named ``generated-<sha256 prefix>.<ext>`` before
    ``upload_to`` places it.
    """

    kind = "image file"

    @classmethod
    def supports(cls, field: models.Field) -> bool:
        return isinstance(field, models.FileField)

    def is_empty(self, obj: models.Model) -> bool:
        return not getattr(obj, self.field.attname)

    def accepts(self, asset: Any) -> bool:
        file = getattr(asset, "file", None)
        return bool(file) and not getattr(asset, "is_discarded", False)

    def set_value(self, obj: models.Model, asset: Any) -> None:
        # The bytes wait in a temporary file (in memory up to 8 MiB) for the
        # save, which hands them to the field's storage under upload_to.
        copy = tempfile.SpooledTemporaryFile(max_size=8 * _CHUNK)
        hasher = hashlib.sha256()
        with asset.file.open("rb") as source:
            for chunk in iter(lambda: source.read(_CHUNK), b""):
                hasher.update(chunk)
                copy.write(chunk)
        copy.seek(0)
        extension = posixpath.splitext(asset.file.name)[1].lower()
        setattr(
            obj, self.field.name, File(copy, name=f"generated-{hasher.hexdigest()[:16]}{extension}")
        )


class ForeignKeyTarget(Target):
    """A foreign key (or one-to-one) to the adapter's asset model."""

    @classmethod
    def related_model(cls) -> type[models.Model] | None:
        """The asset model this target's foreign keys point to."""
        raise NotImplementedError

    @classmethod
    def supports(cls, field: models.Field) -> bool:
        related = cls.related_model()
        return (
            related is not None
            and isinstance(field, models.ForeignKey)
            and isinstance(field.related_model, type)
            and issubclass(field.related_model, related)
        )

    def accepts(self, asset: Any) -> bool:
        return (
            isinstance(asset, self.field.related_model)
            and asset.pk is not None
            and not getattr(asset, "is_discarded", False)
        )

    def set_value(self, obj: models.Model, asset: Any) -> None:
        setattr(obj, self.field.name, asset)


class GeneratedImageTarget(ForeignKeyTarget):
    """A foreign key to :class:`imagegen.models.GeneratedImage` (not a discarded one)."""

    kind = "generated image"
    adapter = "imagegen.adapters.GeneratedImageAdapter"

    @classmethod
    def related_model(cls) -> type[models.Model]:
        from ..models import GeneratedImage

        return GeneratedImage


_registry: list[type[Target]] = [GeneratedImageTarget, FileTarget]


def register(target: type[Target]) -> type[Target]:
    """Add a target class (usable as a decorator); the latest registered is
    asked first, so a subclass can take over a built-in's fields."""
    if target not in _registry:
        _registry.insert(0, target)
    return target


def target_class_for(field: models.Field) -> type[Target] | None:
    """The target class that fills ``field``, if any."""
    return next((target for target in _registry if target.supports(field)), None)


def target_for(field: models.Field, *, alt_field: str | None = None) -> Target | None:
    """A target for ``field`` (None: imagegen cannot fill it)."""
    target = target_class_for(field)
    return None if target is None else target(field, alt_field=alt_field)


def _check_alt_text(obj: models.Model, name: str, alt_text: str) -> None:
    limit = getattr(obj._meta.get_field(name), "max_length", None)
    if not isinstance(alt_text, str):
        raise ValidationError({name: _("The alt text must be text.")}, code="invalid_alt_text")
    if limit is not None and len(alt_text) > limit:
        raise ValidationError(
            {
                name: ngettext(
                    "The alt text has %(n)d character; the limit is %(max)d.",
                    "The alt text has %(n)d characters; the limit is %(max)d.",
                    len(alt_text),
                )
                % {"n": len(alt_text), "max": limit}
            },
            code="alt_text_too_long",
        )

"""Generation inside the content: declared model fields (docs/fields.md).

- :mod:`.registry`: which fields can be generated, from
  ``IMAGEGEN["IMAGE_FIELDS"]`` and ``ModelAdmin.imagegen_fields``;
- :mod:`.prompts`: prompt templates rendered from an object's own fields;
- :mod:`.targets`: how a chosen result fills each kind of field.

The jobs made for a field (plan, create, history, add-form links, fill)
are in :mod:`imagegen.services.field_jobs`.
"""

from .registry import (
    ADMIN_ATTRIBUTE,
    FieldDeclaration,
    declaration_for,
    declarations,
    declarations_for,
)
from .targets import Target, register

__all__ = [
    "ADMIN_ATTRIBUTE",
    "FieldDeclaration",
    "Target",
    "declaration_for",
    "declarations",
    "declarations_for",
    "register",
]

"""Checks of the generable fields' declarations (imagegen.fields.registry):
``IMAGEGEN["IMAGE_FIELDS"]`` and ``ModelAdmin.imagegen_fields``.

- E027: not a dict, a key that is not ``app_label.Model.field``, an unknown
  model, field or option;
- E028: a field type no target fills;
- E029: a prompt template with anything but ``{field}`` placeholders of the
  model's own concrete, non-relational fields;
- E030: an alt-text field that is missing or not a CharField/TextField;
- E031: a bad resolution, aspect ratio, shape, number of candidates or review;
- E032: a foreign key whose assets the configured ``ASSET_ADAPTER`` does not make.
"""

from __future__ import annotations

from django.core.checks import CheckMessage, Error

from ..fields import registry

IDS = {
    registry.MALFORMED: "imagegen.E027",
    registry.UNSUPPORTED: "imagegen.E028",
    registry.TEMPLATE: "imagegen.E029",
    registry.ALT_FIELD: "imagegen.E030",
    registry.VALUE: "imagegen.E031",
    registry.ADAPTER: "imagegen.E032",
}


def check() -> list[CheckMessage]:
    return [
        Error(
            problem.message,
            hint=problem.hint or "See docs/fields.md for declaring generable fields.",
            id=IDS[problem.kind],
        )
        for problem in registry.problems()
    ]

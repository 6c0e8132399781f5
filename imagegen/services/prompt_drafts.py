"""Drafting a prompt for a declared image field from its object's text.

The field dialog offers it beside the declaration's prompt template: the
describer reads the object's text and proposes a prompt, which the editor
sees and can change before anything is generated (nothing here creates a
job or costs an image).

The text sent is bounded: the object's own text fields (the ones the
declaration's template reads first, then its other editable ``CharField``
and ``TextField`` values, never the alt text field), each on one line and
cut to :data:`MAX_FIELD` characters, :data:`MAX_TEXT` in all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.db import models
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from ..describers import DescriberError, get_describer
from ..exceptions import ImagegenConfigurationError
from ..fields import prompts
from ..fields.registry import declaration_for
from ..providers import get_provider

logger = logging.getLogger("imagegen")

#: Most characters of one field's value sent to the describer.
MAX_FIELD = 2000
#: Most characters of text sent in all.
MAX_TEXT = 6000


def draft_prompt(
    obj: models.Model | type[models.Model],
    field_name: str,
    *,
    language: str,
    values: Mapping[str, Any] | None = None,
) -> str:
    """A prompt for ``field_name`` drafted by the describer from ``obj``'s
    text, in ``language`` (a Django language code), cut to the default
    provider's prompt limit.

    ``obj`` may be a model (an add form: no object yet) and ``values`` the
    form's current values, over the object's. Raises
    :class:`~imagegen.describers.DescriberError` with a message for the
    editor: the field is not declared, drafting is off, there is no text,
    the describer failed.
    """
    model = obj if isinstance(obj, type) else type(obj)
    instance = None if isinstance(obj, type) else obj
    declaration = declaration_for(model, field_name)
    if declaration is None:
        raise DescriberError(
            _("%(field)s of %(model)s is not a field imagegen generates.")
            % {"field": field_name, "model": model._meta.verbose_name}
        )
    try:
        describer = get_describer()
    except ImagegenConfigurationError:
        logger.warning("Prompt draft refused: the describer is misconfigured", exc_info=True)
        describer = None
    if describer is None:
        raise DescriberError(_("Drafting prompts is not set up on this site."))
    text = object_text(model, instance, declaration.prompt, declaration.alt_field, values or {})
    if not text:
        raise DescriberError(_("There is no text to draft a prompt from yet."))
    label = str(capfirst(declaration.field.verbose_name))
    try:
        drafted = describer.draft_prompt(text, language=language, field_label=label)
    except DescriberError:
        raise
    except Exception:
        logger.exception("Prompt draft for %s failed", declaration.key)
        raise DescriberError(_("The prompt could not be drafted.")) from None
    limit = get_provider().capabilities.max_prompt_length
    drafted = prompts.trim(" ".join(drafted.split()), limit)
    if not drafted:
        raise DescriberError(_("The prompt could not be drafted."))
    return drafted


def object_text(
    model: type[models.Model],
    obj: models.Model | None,
    template: str,
    alt_field: str | None,
    values: Mapping[str, Any],
) -> str:
    """``"Label: value"`` lines of the object's text fields (see the module's
    docstring), at most :data:`MAX_TEXT` characters."""
    read = [name for name in prompts.placeholders(template) if prompts.readable_field(model, name)]
    others = [
        field.name
        for field in model._meta.concrete_fields
        if isinstance(field, models.CharField | models.TextField)
        and field.editable
        and not field.choices
        and field.name != alt_field
        and field.name not in read
    ]
    lines = []
    for name in [*read, *others]:
        field = model._meta.get_field(name)
        value = values[name] if name in values else (field.value_from_object(obj) if obj else None)
        value = " ".join(str(value or "")[: 4 * MAX_FIELD].split())
        if value:
            lines.append(f"{capfirst(field.verbose_name)}: {prompts.trim(value, MAX_FIELD)}")
    return prompts.trim("\n".join(lines), MAX_TEXT)

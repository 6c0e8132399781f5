"""Prompt templates of generable fields: ``"Editorial photo: {title}. {summary}"``.

A template reaches the object through plain ``{name}`` placeholders only,
each the name of one of the model's own concrete, non-relational fields. It
is never given to :meth:`str.format`: :func:`parse` splits it with Python's
format grammar and refuses attribute or index access (``{title.__class__}``,
``{title[0]}``), conversions (``{title!r}``) and format specs
(``{title:>99999}``), so a template can neither read past the field's value
nor grow a prompt without bound. :func:`render` then substitutes the values
itself: a missing or ``None`` value renders empty, whitespace and control
characters collapse to single spaces, and the result is cut to the
provider's prompt limit without splitting a character sequence.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import models

#: Characters that join the next one to the previous: a cut must not fall before them.
_ZWJ = "\u200d"
_JOINERS = frozenset({"\u200c", _ZWJ, "\ufe0e", "\ufe0f"})
_SPACES = re.compile(r" {2,}")
#: Unicode categories of characters that are not text in a prompt: controls,
#: format characters (bidi overrides, zero-width spaces), line and paragraph separators.
_NOT_TEXT = frozenset({"Cc", "Cf", "Zl", "Zp"})


class TemplateError(ValueError):
    """A template that is not plain text with ``{field}`` placeholders."""


@dataclass(frozen=True)
class Piece:
    """Literal text, then the placeholder that follows it (``""``: none)."""

    text: str
    placeholder: str


def parse(template: str) -> tuple[Piece, ...]:
    """The template's pieces; raises :class:`TemplateError` for anything but
    literal text and plain ``{name}`` placeholders (``{{`` and ``}}`` are braces)."""
    if not isinstance(template, str):
        raise TemplateError("the template must be a string")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:  # unbalanced braces
        raise TemplateError(f"{exc} (write {{{{ and }}}} for literal braces)") from exc
    pieces = []
    for text, name, spec, conversion in parsed:
        if name is None:
            pieces.append(Piece(text, ""))
            continue
        shown = (
            "{"
            + name
            + (f"!{conversion}" if conversion else "")
            + (f":{spec}" if spec else "")
            + "}"
        )
        if conversion or spec:
            raise TemplateError(f"{shown}: conversions and format specs are not allowed")
        if not name.isidentifier():
            raise TemplateError(f"{shown}: a placeholder is one field name, nothing after it")
        pieces.append(Piece(text, name))
    return tuple(pieces)


def placeholders(template: str) -> tuple[str, ...]:
    """The field names a template reads, in order, each once."""
    return tuple(dict.fromkeys(piece.placeholder for piece in parse(template) if piece.placeholder))


def field_problems(model: type[models.Model], template: str) -> list[str]:
    """Why ``template`` cannot render objects of ``model`` (empty: it can)."""
    try:
        names = placeholders(template)
    except TemplateError as exc:
        return [str(exc)]
    return [
        f"{{{name}}} is not a concrete, non-relational field of {model._meta.label}"
        for name in names
        if readable_field(model, name) is None
    ]


def readable_field(model: type[models.Model], name: str) -> models.Field | None:
    """The field ``{name}`` reads: a concrete field of the model that holds
    its value itself (no relation: those would read another object)."""
    try:
        field = model._meta.get_field(name)
    except Exception:  # FieldDoesNotExist, or a reverse relation's name
        return None
    if not getattr(field, "concrete", False) or field.is_relation or field.name != name:
        return None
    return field


def values_of(obj: models.Model | None, model: type[models.Model], template: str) -> dict[str, Any]:
    """The values of ``obj``'s fields that ``template`` reads (none without an object)."""
    if obj is None:
        return {}
    found = {}
    for name in placeholders(template):
        field = readable_field(model, name)
        if field is not None:
            found[name] = field.value_from_object(obj)
    return found


def render(template: str, values: Mapping[str, Any], *, limit: int) -> str:
    """The prompt: ``template`` with each placeholder replaced by its value
    from ``values`` (missing or ``None``: empty), cut to ``limit`` characters.

    Values are text on one line: runs of whitespace and control characters
    become one space. Raises :class:`TemplateError` for a template
    :func:`parse` refuses; nothing of a refused template is evaluated.
    """
    out = []
    for piece in parse(template):
        out.append(piece.text)
        if piece.placeholder:
            out.append(_one_line(values.get(piece.placeholder), limit))
    # An empty value leaves its neighbours' spaces side by side: one is enough.
    return trim(_SPACES.sub(" ", "".join(out)).strip(), limit)


def trim(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters (code points, as
    providers count them), never inside a character sequence that shows as
    one (a letter and its combining marks, an emoji and its modifiers, a
    ZWJ sequence, a flag), and without trailing whitespace."""
    if len(text) <= limit:
        return text
    cut = limit
    while cut > 0 and _joined(text, cut):
        cut -= 1
    return text[:cut].rstrip()


def _joined(text: str, index: int) -> bool:
    """Whether ``text[index]`` belongs to the character before it."""
    char, before = text[index], text[index - 1]
    if unicodedata.combining(char) or char in _JOINERS or before == _ZWJ:
        return True
    code = ord(char)
    # Emoji skin-tone modifiers and tag characters (subdivision flags).
    if 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F:
        return True
    if _is_regional(char):
        # Flags are pairs of regional indicators: an odd run before it means
        # this one is the second of a pair.
        run = 0
        while index - run - 1 >= 0 and _is_regional(text[index - run - 1]):
            run += 1
        return run % 2 == 1
    return False


def _is_regional(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _one_line(value: Any, limit: int) -> str:
    if value is None:
        return ""
    # The prompt holds at most `limit` characters: a field of megabytes is
    # cut first (with room for the whitespace that collapses), so rendering
    # costs the same whatever the object holds.
    raw = str(value)[: 4 * limit + 64]
    text = "".join(
        " " if unicodedata.category(c) in _NOT_TEXT and c not in _JOINERS else c for c in raw
    )
    return " ".join(text.split())

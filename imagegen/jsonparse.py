"""Parse JSON from outside imagegen with its nesting depth bounded.

Python's ``json`` recurses once per nested array or object: a body of a few
kilobytes of ``[`` ends in a ``RecursionError`` (a 500 where a 400 belongs),
and with a raised recursion limit it could exhaust the C stack. :func:`loads`
measures the depth first, in a few C-speed passes over the bytes and no
Python loop over characters (about 5 to 60 ms for 1 MB of JSON, less than
parsing it), and only a document within the bound reaches ``json.loads``:

1. escapes are removed (``\\\\`` then ``\\"``, left to right as the
   parser reads them), so every quote left opens or closes a string;
2. everything but brackets and quotes is deleted, then adjacent quote pairs
   (strings without brackets, the common case), then the strings left;
3. the depth is the largest running sum of the brackets (``[``/``{`` +1,
   ``]``/``}`` -1), an upper bound of what the parser reaches even in
   invalid input.

Every refusal is a :class:`MalformedJSON` (a ``ValueError``) whose message
says what is wrong, in words a log reader or an API client understands.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from . import conf

#: Bytes deleted from the skeleton: everything but brackets and quotes.
_NOT_STRUCTURE = bytes(range(256)).translate(None, b'[]{}"')
#: Strings that still hold a bracket once their escapes are gone.
_STRING = re.compile(rb'"[^"]*"')
#: Openings to +1 and closings to -1 (as signed bytes); an unpaired quote
#: (an unterminated string, json.loads reports it) is deleted.
_SIGNS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


class MalformedJSON(ValueError):
    """The input is not UTF-8, not JSON, or nested deeper than allowed."""


class NestedTooDeep(MalformedJSON):
    """The input nests arrays and objects deeper than allowed: never a
    glitch in transit, so a caller may treat it as final."""


def loads(raw: bytes | str, *, max_depth: int | None = None) -> Any:
    """Parse ``raw`` (UTF-8 bytes or text) as strict JSON.

    ``max_depth`` is the most arrays and objects nested in one another
    (``[]`` is 1, ``{"a": [1]}`` is 2, a scalar 0); None reads the setting
    ``MAX_JSON_DEPTH``. Raises :class:`MalformedJSON` for bytes that are not
    UTF-8, text that is not JSON (``NaN`` and ``Infinity`` included: JSON has
    no such values), and documents nested deeper than the bound (as its
    subclass :class:`NestedTooDeep`); never ``RecursionError``.
    """
    if max_depth is None:
        max_depth = int(conf.get_setting("MAX_JSON_DEPTH"))
    if isinstance(raw, str):
        text, data = raw, raw.encode("utf-8", "surrogatepass")
    else:
        data = bytes(raw)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedJSON(
                f"not UTF-8 (byte 0x{data[exc.start]:02x} at position {exc.start})"
            ) from None
    if exceeds_depth(data, max_depth):
        raise NestedTooDeep(f"nested more than {max_depth} levels deep")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        # Not reached with a sane bound (the count above is an upper bound of
        # the parser's depth); kept so no bound can turn into a 500.
        raise NestedTooDeep(f"nested more than {max_depth} levels deep") from None
    except json.JSONDecodeError as exc:
        raise MalformedJSON(
            f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except ValueError as exc:
        # An integer longer than sys.get_int_max_str_digits(), or NaN/Infinity.
        raise MalformedJSON(f"not valid JSON: {str(exc)[:200]}") from None


def exceeds_depth(data: bytes, max_depth: int) -> bool:
    """Whether arrays and objects nest deeper than ``max_depth`` in the UTF-8
    JSON ``data`` (for invalid JSON: deeper than the parser could get)."""
    skeleton = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = skeleton.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in skeleton:
        skeleton = _STRING.sub(b"", skeleton)
    signs = skeleton.translate(_SIGNS, b'"')
    if b"\x01" * (max_depth + 1) in signs:
        # The common attack, decided without summing (and without the large
        # ints a sum of half a million levels allocates).
        return True
    return max(itertools.accumulate(memoryview(signs).cast("b")), default=0) > max_depth


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")

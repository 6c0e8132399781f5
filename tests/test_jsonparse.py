"""Bounded JSON parsing (imagegen.jsonparse), the family of hostile documents.

Depth (bound N, here 5 and the default 32): scalars (depth 0), arrays,
objects and the two mixed, each just under (N-1), at (N) and above (N+1) the
bound; far above (100 000 levels, about a megabyte, where plain ``json``
raises RecursionError); unbalanced (openings only, closings only, wrong
closings); brackets inside strings (which must not count), with escaped
quotes and escaped backslashes before the closing quote; unterminated
strings hiding brackets.

Other malformed input: invalid UTF-8 (lone continuation byte, truncated
sequence, overlong form, UTF-16), not JSON (empty, truncated, trailing
comma, trailing data, single quotes), values JSON has not (NaN, Infinity,
-Infinity), integers longer than Python converts.

Speed: a 1 MB body of each shape (deep, flat brackets, many strings, one
large base64 string) is decided well under a second.
"""

from __future__ import annotations

import json
import time

import pytest

from imagegen import jsonparse
from imagegen.jsonparse import MalformedJSON


def nest(kind: str, levels: int) -> str:
    """A document ``levels`` deep: arrays, objects, or alternating both."""
    text = "1"
    for level in range(levels):
        use_array = kind == "array" or (kind == "mixed" and level % 2)
        text = f"[{text}]" if use_array else f'{{"k": {text}}}'
    return text


@pytest.mark.parametrize("kind", ["array", "object", "mixed"])
@pytest.mark.parametrize("bound", [5, 32])
@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_depth_just_under_at_and_above_the_bound(kind, bound, offset):
    document = nest(kind, bound + offset)
    if offset <= 0:
        assert jsonparse.loads(document, max_depth=bound) == json.loads(document)
        assert jsonparse.loads(document.encode(), max_depth=bound) == json.loads(document)
    else:
        with pytest.raises(MalformedJSON, match=f"nested more than {bound} levels deep"):
            jsonparse.loads(document.encode(), max_depth=bound)


def test_default_bound_is_the_setting(settings):
    settings.IMAGEGEN = {"MAX_JSON_DEPTH": 3}
    assert jsonparse.loads(nest("array", 3)) is not None
    with pytest.raises(MalformedJSON, match="more than 3 levels"):
        jsonparse.loads(nest("array", 4))


@pytest.mark.parametrize(
    "document",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 100_000 + "1" + "}" * 100_000,
        "[" * 1_000_000,  # never closed
        "[{" * 50_000 + "}]" * 50_000,
        "[" * 40 + "}" * 40,  # wrong closings
        '["x", ' * 1000 + "1" + "]" * 1000,
        '"unterminated' + "[" * 100_000,  # a quote before the brackets
        '["a\\"' + "[" * 100_000,  # an escaped quote does not close
    ],
    ids=["arrays", "objects", "unclosed", "alternating", "mismatched", "long", "open-quote", "esc"],
)
def test_far_too_deep_or_unbalanced_is_malformed_not_recursion(document):
    with pytest.raises(MalformedJSON):
        jsonparse.loads(document.encode(), max_depth=32)


@pytest.mark.parametrize(
    "document",
    [
        json.dumps(["[" * 1000, "{" * 1000]),
        json.dumps({"[[[[": "]]]]" * 500}),
        json.dumps(['\\"[[[[[[', "\\\\", "[" * 100]),
        json.dumps({"resultJson": json.dumps({"resultUrls": ["[" * 200]})}),
        '["\\\\", ' + "[]," * 1000 + "[]]",  # escaped backslash before the close quote
    ],
    ids=["open", "close", "escapes", "nested-string", "backslash-end"],
)
def test_brackets_inside_strings_do_not_count(document):
    assert jsonparse.loads(document, max_depth=3) == json.loads(document)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x80", "not UTF-8 (byte 0x80 at position 0)"),
        (b'{"a": "\xe2\x82"}', "not UTF-8"),
        (b'"\xc0\xaf"', "not UTF-8"),
        ('{"a": 1}'.encode("utf-16"), "not UTF-8"),
        (b"", "not valid JSON: Expecting value"),
        (b'{"a": ', "not valid JSON"),
        (b"[1, 2,]", "not valid JSON"),
        (b"{} {}", "not valid JSON: Extra data"),
        (b"{'a': 1}", "not valid JSON"),
        (b"NaN", "NaN is not a JSON value"),
        (b"[Infinity]", "Infinity is not a JSON value"),
        (b'{"a": -Infinity}', "-Infinity is not a JSON value"),
        (b"9" * 5000, "not valid JSON"),
    ],
)
def test_other_malformed_input(raw, message):
    with pytest.raises(MalformedJSON, match=message.replace("(", r"\(").replace(")", r"\)")):
        jsonparse.loads(raw, max_depth=32)


def test_is_a_value_error():
    assert issubclass(MalformedJSON, ValueError)


@pytest.mark.parametrize(
    "document",
    [
        "[" * 500_000 + "]" * 500_000,
        "[" + "[]," * 333_333 + "[]]",
        json.dumps(["a"] * 300_000),
        json.dumps(["[{"] * 200_000),
        json.dumps({"data": [{"b64_json": "QUJD" * 250_000}]}),
        ("[" * 31 + "]" * 31 + ",") * 16_000 + "1",
    ],
    ids=["deep", "flat", "strings", "bracket-strings", "base64", "blocks"],
)
def test_a_megabyte_is_decided_fast(document):
    raw = document.encode()
    assert len(raw) >= 900_000
    # The yardstick: plain json.loads of a megabyte of small arrays, timed on
    # the same (possibly busy) machine just before.
    yardstick = ("[" + "[1]," * 250_000 + "[1]]").encode()
    started = time.perf_counter()
    json.loads(yardstick)
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    try:
        jsonparse.loads(raw, max_depth=32)
    except MalformedJSON:
        pass
    # Measured 5 to 90 ms (parsing included), the yardstick about 60 ms; a
    # Python loop per character tracking strings and escapes takes 0.3 to
    # 0.5 s a megabyte on its own.
    assert time.perf_counter() - started < max(0.5, 6 * baseline)

"""Prompt templates of generable fields (imagegen.fields.prompts), by family:

- hostile placeholders: attribute access, index access, conversions, format
  specs (width, fill, nested), positional and empty fields, unbalanced
  braces; each refused by parse and render, and nothing of it evaluated;
- placeholders that are no concrete, non-relational field of the model
  (unknown, a method, a property, a relation, a column name, a reverse relation);
- values: missing, None, empty, numbers, multi-line text, control and
  bidi characters, literal braces in values and in templates;
- trimming at the provider's limit: ASCII, two-, three- and four-byte
  characters, combining marks, emoji joined by ZWJ and modifiers, at every
  cut position of a multibyte sequence;
- huge values (megabytes): rendered in bounded time.
"""

from __future__ import annotations

import pytest

from imagegen.fields import prompts
from tests.content_app.models import Article

HOSTILE = [
    "{title.__class__}",
    "{title.__class__.__mro__}",
    "{title[0]}",
    "{title[__class__]}",
    "{title!r}",
    "{title!s}",
    "{title!a}",
    "{title:>99999}",
    "{title:{summary}}",
    "{title:x<50}",
    "{0}",
    "{}",
    "{title",
    "title}",
    "{ title }",
    "{title.upper}",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_placeholder_is_refused_and_not_evaluated(template):
    class Boom:
        def __str__(self):
            raise AssertionError("a value of a refused template was read")

        def __format__(self, spec):
            raise AssertionError("a value of a refused template was formatted")

        def __getattr__(self, name):
            raise AssertionError("an attribute was looked up")

    with pytest.raises(prompts.TemplateError):
        prompts.parse(template)
    with pytest.raises(prompts.TemplateError):
        prompts.render(f"Photo: {template}", {"title": Boom(), "summary": Boom()}, limit=1000)
    assert prompts.field_problems(Article, template)


@pytest.mark.parametrize(
    ("template", "bad"),
    [
        ("{nope}", "nope"),
        ("{save}", "save"),  # a method
        ("{pk}", "pk"),  # a property, not a field
        ("{author}", "author"),  # a relation: would read another object
        ("{author_id}", "author_id"),  # the column of one
        ("{cover_alt} {title} {objects}", "objects"),
    ],
)
def test_placeholder_that_is_no_readable_field_is_a_problem(template, bad):
    [problem] = prompts.field_problems(Article, template)
    assert f"{{{bad}}}" in problem


@pytest.mark.parametrize(
    "template",
    [
        "",
        "No placeholders.",
        "{title}",
        "Editorial photo: {title}. {summary}",
        "{{literal}} {title}",
    ],
)
def test_plain_placeholders_of_own_fields_are_fine(template):
    assert prompts.field_problems(Article, template) == []


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"title": "Bikes", "summary": "Red ones."}, "Editorial photo: Bikes. Red ones."),
        ({"title": "Bikes"}, "Editorial photo: Bikes."),  # missing
        ({"title": "Bikes", "summary": None}, "Editorial photo: Bikes."),
        ({"title": "", "summary": ""}, "Editorial photo: ."),
        ({}, "Editorial photo: ."),
        ({"title": 42, "summary": 3.5}, "Editorial photo: 42. 3.5"),
        (
            {"title": "Two\nlines\r\n\tand tabs", "summary": "x"},
            "Editorial photo: Two lines and tabs. x",
        ),
        ({"title": "Bell\x07 nul\x00 esc\x1b", "summary": ""}, "Editorial photo: Bell nul esc."),
        (
            {"title": "rtl\u202eevil\u2066", "summary": "zero\u200bwidth"},
            "Editorial photo: rtl evil. zero width",
        ),
        (
            {"title": "{summary}", "summary": "{title.__class__}"},
            "Editorial photo: {summary}. {title.__class__}",
        ),
        ({"title": "para\u2029graph\u2028line"}, "Editorial photo: para graph line."),
    ],
)
def test_render_values(values, expected):
    assert prompts.render("Editorial photo: {title}. {summary}", values, limit=1000) == expected


def test_literal_braces_in_a_template():
    assert prompts.render("{{ {title} }}", {"title": "x"}, limit=100) == "{ x }"


def test_values_of_reads_only_the_placeholders():
    article = Article(title="T", summary="S", cover_alt="A")
    assert prompts.values_of(article, Article, "{title} {title} {summary}") == {
        "title": "T",
        "summary": "S",
    }
    assert prompts.values_of(None, Article, "{title}") == {}


# Each text is longer than the limit (10); the cut must keep at most 10 code
# points and never separate a character from what is attached to it.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abcdefghijklmnop", "abcdefghij"),
        ("abcdefghi jklmnop", "abcdefghi"),  # no trailing space
        ("ééééééééééééé", "éééééééééé"),  # two bytes each in UTF-8
        ("日本語の記事の表紙の写真です", "日本語の記事の表紙の"),  # three bytes
        ("🚲🚲🚲🚲🚲🚲🚲🚲🚲🚲🚲🚲", "🚲🚲🚲🚲🚲🚲🚲🚲🚲🚲"),  # four bytes
        ("abcdefghie\u0301xyz", "abcdefghi"),  # e + combining acute across the cut
        ("abcdefghi👍🏽xyz", "abcdefghi"),  # thumbs up + skin tone across the cut
        ("abcdefgh👍🏽xyz", "abcdefgh👍🏽"),  # the cut after the modifier keeps both
        ("abcdefgh👩\u200d🔬xyz", "abcdefgh"),  # woman + ZWJ + microscope across the cut
        ("abcdefghi\u200d🔬xyz", "abcdefgh"),  # a ZWJ sequence is cut before its base
        ("abcdefghi🇫🇷xyz", "abcdefghi"),  # a flag's two regional indicators stay together
        ("abcdefgh🇫🇷🇩🇪xy", "abcdefgh🇫🇷"),  # the cut between two flags keeps the first
        ("abcdefghi\ufe0f\ufe0fxyz", "abcdefgh"),  # variation selectors: cut before their base
    ],
)
def test_trim_at_the_limit(text, expected):
    trimmed = prompts.trim(text, 10)
    assert trimmed == expected
    assert len(trimmed) <= 10
    trimmed.encode("utf-8")  # whole code points: always encodable


@pytest.mark.parametrize("limit", range(1, 40))
def test_render_never_exceeds_the_limit(limit):
    values = {"title": "Über 🚲 日本 " * 5, "summary": "e\u0301" * 20}
    prompt = prompts.render("Photo: {title} {summary}", values, limit=limit)
    assert len(prompt) <= limit
    assert prompt == prompt.strip()
    prompt.encode("utf-8")


@pytest.mark.parametrize("size", [10**6, 10**7])
def test_huge_values_cost_what_the_limit_allows(size):
    """A field of megabytes renders in bounded time: only what the prompt can hold is read."""
    import time

    started = time.monotonic()
    prompt = prompts.render("{title}: {summary}", {"title": "ü" * size, "summary": "x"}, limit=100)
    assert prompt == "ü" * 100
    # Reading the whole of 10 million characters takes over a second.
    assert time.monotonic() - started < 0.5

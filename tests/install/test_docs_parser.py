"""The reader of docs/install.md's directives (tests/install/docs.py)."""

from __future__ import annotations

import pytest

from . import docs

FENCE = "```"


def page(*parts: str) -> str:
    return "\n".join(parts) + "\n"


def test_every_kind_is_read_with_its_path_and_note() -> None:
    """Family: each kind (shell, append, write, processes, check with variables
    and with an extra, skip with a reason), in order, with the text between
    the fences kept exactly."""
    source = page(
        "<!-- install-test: shell -->",
        f"{FENCE}sh",
        "echo one",
        FENCE,
        "text between blocks",
        "<!-- install-test: append a/settings.py -->",
        f"{FENCE}python",
        "X = 1",
        "",
        "Y = 2",
        FENCE,
        "<!-- install-test: write a/urls.py -->",
        f"{FENCE}python",
        "urlpatterns = []",
        FENCE,
        "<!-- install-test: processes -->",
        f"{FENCE}sh",
        "server --port 1   # a comment",
        FENCE,
        "<!-- install-test: check a/settings.py (KEY=value OTHER=x=y) -->",
        f"{FENCE}python",
        "Z = 3",
        FENCE,
        "<!-- install-test: check a/settings.py (extra=s3) -->",
        f"{FENCE}python",
        "W = 4",
        FENCE,
        "<!-- install-test: skip (interactive) -->",
        f"{FENCE}sh",
        "createsuperuser",
        FENCE,
    )
    found = docs.blocks(source)
    assert [(b.kind, b.path) for b in found] == [
        ("shell", ""),
        ("append", "a/settings.py"),
        ("write", "a/urls.py"),
        ("processes", ""),
        ("check", "a/settings.py"),
        ("check", "a/settings.py"),
        ("skip", ""),
    ]
    assert found[1].text == "X = 1\n\nY = 2\n"
    assert found[4].env == {"KEY": "value", "OTHER": "x=y"}
    assert found[5].env == {"extra": "s3"}
    assert found[6].note == "interactive"


@pytest.mark.parametrize(
    ("source", "error"),
    [
        (page(f"{FENCE}sh", "ls", FENCE), "without an install-test directive"),
        (page("<!-- install-test: shell -->", "words", f"{FENCE}sh", "ls", FENCE), "not followed"),
        (page("<!-- install-test: shell -->"), "not followed"),
        (page("<!-- install-test: shell -->", "<!-- install-test: shell -->"), "not followed"),
        (page("<!-- install-test: shell -->", f"{FENCE}sh", "ls"), "unclosed"),
        (page("<!-- install-test: run -->", f"{FENCE}sh", "ls", FENCE), "unknown"),
        (page("<!-- install-test: append -->", f"{FENCE}py", "X=1", FENCE), "needs a file"),
        (page("<!-- install-test: write -->", f"{FENCE}py", "X=1", FENCE), "needs a file"),
        (page("<!-- install-test: check -->", f"{FENCE}py", "X=1", FENCE), "needs a file"),
        (page("<!-- install-test: skip -->", f"{FENCE}sh", "ls", FENCE), "needs a reason"),
    ],
)
def test_a_page_that_would_leave_a_block_untested_is_refused(source: str, error: str) -> None:
    """Family: a block with no directive; a directive followed by text, by
    nothing, or by another directive; an unclosed block; an unknown kind; a
    file kind without its path; a skip without its reason."""
    with pytest.raises(ValueError, match=error):
        docs.blocks(source)

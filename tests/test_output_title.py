"""imagegen.adapters.output_title: the title the CMS adapters give an output.

The family: the first output (no number) and a later one (numbered
``" (n)"``), each without a limit (text kept whole, however long), with a
limit the title fits (kept), one it fits exactly (kept), and one it exceeds
(text cut, its trailing spaces dropped, ending in ``…``, the whole at most
``limit`` long).
"""

from __future__ import annotations

import pytest

from imagegen.adapters import output_title


@pytest.mark.parametrize(
    ("text", "index", "limit", "expected"),
    [
        ("A red kite", 0, None, "A red kite"),
        ("A red kite", 2, None, "A red kite (3)"),
        ("x" * 300, 0, None, "x" * 300),
        ("A red kite", 0, 20, "A red kite"),
        ("A red kite", 1, 20, "A red kite (2)"),
        ("A red kite", 0, 10, "A red kite"),
        ("A red kite", 1, 14, "A red kite (2)"),
        ("A red kite over", 0, 10, "A red kit…"),
        ("A red kite over", 1, 12, "A red k… (2)"),
        ("A red kite over", 1, 11, "A red… (2)"),
    ],
)
def test_output_title(text: str, index: int, limit: int | None, expected: str) -> None:
    title = output_title(text, index, limit)
    assert title == expected
    if limit is not None:
        assert len(title) <= limit

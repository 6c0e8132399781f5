"""The system check of DISCARD_UNDO_SECONDS (imagegen.E035)."""

from __future__ import annotations

from typing import Any

import pytest

from imagegen.checks import values


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (0, True),
        (30, True),
        (86400, True),
        (86401, False),
        (-1, False),
        (2.5, False),
        ("30", False),
        (None, False),
        (True, False),
    ],
)
def test_discard_undo_seconds(settings: Any, value: Any, ok: bool) -> None:
    """Family: none, the default, a day (the most); over a day, negative, a
    fraction, a string, None, a boolean."""
    settings.IMAGEGEN = {**getattr(settings, "IMAGEGEN", {}), "DISCARD_UNDO_SECONDS": value}
    ids = [message.id for message in values.check()]
    assert ("imagegen.E035" not in ids) is ok

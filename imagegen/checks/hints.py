"""Hints shared by the checks."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """``"Did you mean 'API_KEY'? "`` for the choice closest to ``word`` (case
    ignored), or ``""`` when none is close."""
    close = difflib.get_close_matches(str(word).upper(), sorted(choices), n=1)
    return f"Did you mean {close[0]!r}? " if close else ""

"""One line of ``manage.py imagegen doctor``'s report."""

from __future__ import annotations

from dataclasses import dataclass

OK = "ok"
#: Nothing wrong, but something to know (a check that does not apply).
INFO = "info"
#: Works, but needs attention soon; does not change the exit status.
WARN = "warn"
#: Broken: the line says what to fix; the command exits with status 1.
FAIL = "FAIL"


@dataclass(frozen=True)
class Finding:
    """The outcome of one check: ``check`` names it, ``text`` says what was
    found and, for a problem, what to fix."""

    check: str
    level: str
    text: str

    @property
    def failed(self) -> bool:
        return self.level == FAIL

    def line(self) -> str:
        return f"{self.level:<4}  {self.check}: {self.text}"


def brief(exc: BaseException, limit: int = 200) -> str:
    """An exception as ``Type: message``, shortened, on one line."""
    text = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def duration(seconds: float) -> str:
    """``3 s``, ``4 min``, ``2 h``, ``3 days``: how long ago, roughly."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"

"""Per-task behaviour markers in prompts: ``[sandbox:key=value]`` or ``[sandbox:key]``."""

from __future__ import annotations

import re

_MARKER = re.compile(r"\[sandbox:([a-z-]+)(?:=([^\]]*))?\]")


def parse_markers(prompt: str) -> dict[str, str]:
    """All markers in ``prompt`` as {key: value} (value "" for bare flags)."""
    return {key: value or "" for key, value in _MARKER.findall(prompt)}


def parse_http(value: str) -> tuple[int, int | None]:
    """``"503"`` -> (503, None: always); ``"503x2"`` -> (503, 2: the first two times)."""
    status, _, times = value.partition("x")
    return int(status), int(times) if times else None


def parse_latency(value: str) -> tuple[float, float]:
    low, _, high = value.partition("-")
    return float(low), float(high or low)

"""When to poll a job that is waiting on its provider.

With callbacks configured the first poll waits until the provider's typical
latency has passed plus a grace period, so a job whose callback arrives makes
no poll at all. Without callbacks, polling starts at the low end of the
latency range. After that, intervals grow with the time already waited
(a fixed fraction of it) between a floor and a cap: early completions are
seen quickly, long jobs cost few calls.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from . import conf

#: Each interval is this fraction of the time since submission.
GROWTH = 0.25


def first_poll_delay(latency: tuple[float, float], *, callbacks: bool) -> float:
    """Seconds from submission to the first poll."""
    low, high = latency
    if callbacks:
        return high * (1.0 + float(conf.get_setting("CALLBACK_GRACE")))
    return max(low, float(conf.get_setting("POLL_MIN_INTERVAL")))


def next_poll_delay(waited: float) -> float:
    """Seconds until the next poll, given seconds waited since submission."""
    low = float(conf.get_setting("POLL_MIN_INTERVAL"))
    high = float(conf.get_setting("POLL_MAX_INTERVAL"))
    return min(high, max(low, waited * GROWTH))


def clamp(when: datetime, deadline: datetime) -> datetime:
    """Never schedule past the deadline: the sweeper must see the job expire."""
    return min(when, deadline)


def seconds(value: float) -> timedelta:
    return timedelta(seconds=value)

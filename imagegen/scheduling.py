"""When to poll a job that is waiting on its provider.

Two schedules, chosen per job at submission:

* **Callbacks expected** (configured, and most of the provider's recent
  results arrived by callback: :mod:`imagegen.services.callback_health`).
  The first poll waits until the provider's latency range has passed plus a
  grace period, so a job whose callback arrives makes no poll at all.
* **No callbacks** (none configured, or none proven to arrive).
  ``POLL_BUDGET`` polls are spread over the expected latency range
  ``(low, high)``, ending at ``high``, each ``1 + POLL_GROWTH`` times later
  than the one before. A job seen by a poll finished after the poll before
  it, so its detection delay is under ``POLL_GROWTH`` of its duration, and a
  job in the range costs at most ``POLL_BUDGET`` polls. The budget goes to
  the top of the range, where a poll covers the widest span of completion
  times; jobs finishing before the first poll wait for it. A range narrow
  enough is covered whole, more densely.

Past the range (a slow job, or a lost callback) each interval is
``POLL_GROWTH`` of the time already waited, between ``POLL_MIN_INTERVAL``
and ``POLL_MAX_INTERVAL``, never past the deadline. docs/benchmarks.md shows
the polls per job and the delays this gives.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from . import conf


def window_polls(latency: tuple[float, float]) -> list[float]:
    """Seconds after submission of the polls inside the expected latency range."""
    low, high = latency
    budget = int(conf.get_setting("POLL_BUDGET"))
    if budget < 1 or high <= 0:
        return []
    ratio = 1.0 + float(conf.get_setting("POLL_GROWTH"))
    if budget > 1 and low > 0:
        ratio = min(ratio, (high / low) ** (1.0 / (budget - 1)))
    return sorted(high / ratio**k for k in range(budget))


def first_poll_delay(latency: tuple[float, float], *, callbacks: bool) -> float:
    """Seconds from submission to the first poll, with or without a callback expected."""
    if callbacks:
        return latency[1] * (1.0 + float(conf.get_setting("CALLBACK_GRACE")))
    return next_poll_delay(latency, 0.0)


def next_poll_delay(latency: tuple[float, float], waited: float) -> float:
    """Seconds until the next poll, given the seconds waited since submission."""
    floor = float(conf.get_setting("POLL_MIN_INTERVAL"))
    for offset in window_polls(latency):
        if offset - waited >= floor:
            return offset - waited
    cap = float(conf.get_setting("POLL_MAX_INTERVAL"))
    return min(cap, max(floor, waited * float(conf.get_setting("POLL_GROWTH"))))


def clamp(when: datetime, deadline: datetime) -> datetime:
    """Never schedule past the deadline: the sweeper must see the job expire."""
    return min(when, deadline)


def seconds(value: float) -> timedelta:
    return timedelta(seconds=value)

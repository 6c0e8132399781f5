"""Waiting for a job on the command line, with a progress bar."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from ..models import GenerationJob
from ..providers import get_provider

BAR_WIDTH = 30


def render_bar(elapsed: float, expected: float, status: str) -> str:
    """``[#######.......]  running  12.0s / ~60s``; the bar tracks elapsed
    time against the expected latency and stops short of full until done."""
    done = status in ("succeeded", "failed", "canceled", "expired")
    fraction = 1.0 if done else min(0.95, elapsed / expected if expected else 0.0)
    filled = round(fraction * BAR_WIDTH)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    return f"[{bar}] {status:<10} {elapsed:6.1f}s / ~{expected:.0f}s"


def wait_for_job(
    job_id: object,
    *,
    stream: TextIO,
    timeout: float,
    interval: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    check: Callable[[], None] | None = None,
) -> GenerationJob:
    """Refresh the job until it is terminal or ``timeout`` passes; draw progress.

    The bar is redrawn in place on a terminal and printed on status changes
    only otherwise, so logs stay readable. ``check`` is called before each
    refresh; what it raises ends the wait (the demo stops when its worker exits).
    """
    job = GenerationJob.objects.get(pk=job_id)
    low, high = get_provider(job.provider).latency(job.resolution)
    expected = (low + high) / 2
    deadline = clock() + timeout
    tty = getattr(stream, "isatty", lambda: False)()
    last_status = None
    try:
        while True:
            if check is not None:
                check()
            job.refresh_from_db()
            line = render_bar(job.duration.total_seconds(), expected, job.status)
            if tty:
                stream.write("\r" + line)
            elif job.status != last_status:
                stream.write(line + "\n")
            stream.flush()
            last_status = job.status
            if job.is_terminal or clock() >= deadline:
                break
            time.sleep(interval)  # polling the database on a fixed cadence for display
    finally:
        if tty:  # end the bar's line, also when check() raised
            stream.write("\n")
    return job

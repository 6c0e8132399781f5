"""Tasks for tests/test_embedded_broker.py, which runs them in real worker and
publisher processes of the example site (``-I tests.embedded_broker_tasks``):
each delivery of a task leaves a file of its own in ``SOAK_RECORD_DIR``, so a
duplicate delivery shows as two files for one key.

Run as a module it publishes as the example site's web process would:
``python -m tests.embedded_broker_tasks PREFIX COUNT THREADS`` sends ``COUNT``
tasks keyed ``PREFIX-n`` from ``THREADS`` threads, every fifth one a relay (a
task that sends the recording task from inside the worker).
"""

from __future__ import annotations

import os
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from celery import shared_task


@shared_task(name="soak.record")
def record(key: str) -> None:
    (Path(os.environ["SOAK_RECORD_DIR"]) / f"{key}.{uuid.uuid4().hex}").touch()


@shared_task(name="soak.relay")
def relay(key: str) -> None:
    record.delay(key)


def publish(prefix: str, count: int, threads: int) -> None:
    """Send ``count`` tasks from ``threads`` threads; a failed send raises."""

    def send(numbers: range) -> None:
        for n in numbers:
            (relay if n % 5 == 0 else record).delay(f"{prefix}-{n}")

    with ThreadPoolExecutor(threads) as pool:
        sends = [pool.submit(send, range(i, count, threads)) for i in range(threads)]
    for sent in sends:
        sent.result()


if __name__ == "__main__":
    import project.celery  # noqa: F401 (the example site's app, as its web process loads it)

    publish(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))

"""Heartbeats: when the sweeper and the workers were last seen at work.

A job that stays queued is silent by nature: nothing fails, nothing is
logged. So the background processes leave traces that a page view can read
in one query: the sweeper records each finished run, a worker records that
it started one of imagegen's tasks (at most once per :data:`WORKER_EVERY`
seconds per process, so a busy worker writes no more than an idle one), and
the ``imagegen.ping`` task records the nonce ``manage.py imagegen doctor``
sent it. Each record is one statement on one row (an upsert).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

from django.db import DatabaseError, connection
from django.utils import timezone

from .. import conf
from ..choices import Status
from ..models import GenerationJob, Heartbeat
from . import slots

logger = logging.getLogger("imagegen")

SWEEP = "sweep"
WORKER = "worker"
PING_PREFIX = "ping:"
#: Seconds between two records of the same worker process.
WORKER_EVERY = 10.0
#: Ping records older than this are left-overs of a doctor that gave up.
PING_KEEP = timedelta(hours=1)

_worker_lock = threading.Lock()
_worker_recorded = -WORKER_EVERY


def record(name: str, now: datetime | None = None) -> bool:
    """Record that ``name`` was seen ``now``. Never raises: a missing table
    (``migrate`` not run yet) is logged, and the caller's work goes on."""
    now = now or timezone.now()
    row = Heartbeat(name=name, seen_at=now)
    try:
        if connection.features.supports_update_conflicts_with_target:
            # One statement (INSERT ... ON CONFLICT DO UPDATE): the sweep runs every few seconds.
            Heartbeat.objects.bulk_create(
                [row], update_conflicts=True, unique_fields=["name"], update_fields=["seen_at"]
            )
        elif not Heartbeat.objects.filter(name=name).update(seen_at=now):
            Heartbeat.objects.bulk_create([row], ignore_conflicts=True)
    except DatabaseError as exc:
        logger.warning("Could not record the heartbeat %r (run migrate?): %s", name, exc)
        return False
    return True


def worker_seen() -> None:
    """A worker is running one of imagegen's tasks; recorded at most every
    :data:`WORKER_EVERY` seconds per process."""
    global _worker_recorded
    with _worker_lock:
        now = time.monotonic()
        if now - _worker_recorded < WORKER_EVERY:
            return
        _worker_recorded = now
    record(WORKER)


def last_seen(*names: str) -> dict[str, datetime]:
    """When each of ``names`` was last seen; names never seen are absent."""
    return dict(Heartbeat.objects.filter(name__in=names).values_list("name", "seen_at"))


def record_ping(nonce: str) -> bool:
    """The ping task's record of ``nonce`` (32 hex digits, else ignored)."""
    if len(nonce) != 32 or not all(c in "0123456789abcdef" for c in nonce):
        return False
    return record(PING_PREFIX + nonce)


def ping_seen(nonce: str) -> bool:
    return Heartbeat.objects.filter(name=PING_PREFIX + nonce).exists()


def forget_ping(nonce: str, now: datetime | None = None) -> None:
    """Delete the record of ``nonce`` and any ping record older than :data:`PING_KEEP`
    (a worker may answer after the doctor stopped waiting)."""
    now = now or timezone.now()
    Heartbeat.objects.filter(name=PING_PREFIX + nonce).delete()
    Heartbeat.objects.filter(name__startswith=PING_PREFIX, seen_at__lt=now - PING_KEEP).delete()


def unpicked_since(now: datetime | None = None) -> datetime | None:
    """Creation time of the oldest job that has waited longer than
    ``SUBMIT_GRACE`` without any worker trying to submit it, or None.

    A job a worker tried (and is retrying: the provider is down) does not
    count, nor one a worker holds back for a provider slot (``MAX_IN_FLIGHT``).
    One row through ``imagegen_job_status_idx``.
    """
    now = now or timezone.now()
    grace = timedelta(seconds=conf.get_setting("SUBMIT_GRACE"))
    return (
        GenerationJob.objects.filter(
            status=Status.QUEUED, submit_attempts=0, created_at__lt=now - grace
        )
        .exclude(error_code=slots.WAITING)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )

"""The concurrency cap: at most ``IMAGEGEN["MAX_IN_FLIGHT"][provider]`` jobs
of a provider in flight at once, so a bulk fill of 500 objects never floods it.

A job is *in flight* from the moment its submission starts (the attempt is
marked, ``submitting_since``) until the provider reports an end state (the
job leaves ``submitted``/``running``). :func:`take` is called by
:func:`imagegen.services.jobs.submit` right before the attempt is counted,
in the same transaction: it serializes the claims of one provider (a
transaction-scoped advisory lock on PostgreSQL; on SQLite the write that
opens the transaction takes the database's write lock) and counts the jobs
in flight, so two workers can never both take the last slot.

A job that finds no free slot *waits*: it stays queued, its submission
attempts untouched, with ``error_code`` :data:`WAITING` and no
``next_poll_at``, so neither the sweeper's submit pass nor the deadline
touches it (its ``JOB_TIMEOUT`` counts from when it is released).
:func:`release` hands the free slots to the oldest waiting jobs: it runs
when a job ends (the signals below), after a job starts waiting, and on
every sweep (the safety net for a lost signal or a dead worker).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from .. import conf, failures, signals
from ..choices import IN_FLIGHT, Status
from ..models import GenerationJob

#: ``error_code`` of a queued job waiting for a slot.
WAITING = "WAITING_FOR_SLOT"

#: Jobs holding a slot: waiting on the provider, or in a submission attempt.
HOLDING = Q(status__in=list(IN_FLIGHT)) | Q(status=Status.QUEUED, submitting_since__isnull=False)


def limit(provider: str) -> int | None:
    """The most jobs of ``provider`` in flight at once (None: no cap)."""
    value = (conf.get_setting("MAX_IN_FLIGHT") or {}).get(provider)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def in_flight(provider: str) -> int:
    """How many jobs of ``provider`` hold a slot now."""
    return GenerationJob.objects.filter(HOLDING, provider=provider).count()


def take(job: GenerationJob) -> bool:
    """Whether ``job`` may start a submission attempt now.

    Call inside ``transaction.atomic()``, and mark the attempt in the same
    transaction when this returns True: the lock taken here is held until it
    commits, so the next claim of the provider counts this attempt.
    """
    cap = limit(job.provider)
    if cap is None:
        return True
    _serialize(job)
    return in_flight(job.provider) < cap


def wait(job: GenerationJob) -> str:
    """Park ``job`` (queued, its lease held by the caller) until :func:`release`
    hands it a slot. Returns ``"waiting"``."""
    cap = limit(job.provider)
    GenerationJob.objects.filter(pk=job.pk, status=Status.QUEUED).update(
        lease_until=None,
        next_poll_at=None,
        **failures.failure_fields(WAITING, {"provider": job.provider, "cap": cap or 0}),
        updated_at=timezone.now(),
    )
    # A job that ended between the count and now released no one: look again.
    transaction.on_commit(lambda: release(job.provider))
    return "waiting"


def release(provider: str, now: datetime | None = None) -> int:
    """Send the oldest waiting jobs of ``provider`` to submission, as many as
    there are free slots. Returns how many were released.

    A released job gets a fresh deadline (``JOB_TIMEOUT`` from now) and is
    due for the sweeper ``SUBMIT_GRACE`` later, should its message be lost.
    Releasing is only a hint: :func:`take` decides, so a job released once
    too often simply waits again.
    """
    from .jobs import enqueue_submit

    cap = limit(provider)
    if cap is None:
        return 0
    free = cap - in_flight(provider)
    if free <= 0:
        return 0
    now = now or timezone.now()
    waiting = GenerationJob.objects.filter(
        provider=provider, status=Status.QUEUED, error_code=WAITING
    )
    released = 0
    for job_id in waiting.order_by("created_at").values_list("pk", flat=True)[: free * 2]:
        moved = waiting.filter(pk=job_id).update(
            **failures.NO_FAILURE,
            deadline_at=now + timedelta(seconds=conf.get_setting("JOB_TIMEOUT")),
            next_poll_at=now + timedelta(seconds=conf.get_setting("SUBMIT_GRACE")),
            updated_at=now,
        )
        if moved:  # not taken by a concurrent release
            transaction.on_commit(lambda job_id=job_id: enqueue_submit(job_id))
            released += 1
            if released >= free:
                break
    return released


def release_all(now: datetime | None = None) -> int:
    """:func:`release` for every capped provider (the sweeper's pass)."""
    return sum(release(name, now) for name in sorted(conf.get_setting("MAX_IN_FLIGHT") or {}))


def _serialize(job: GenerationJob) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"imagegen.slots:{job.provider}"]
            )
    else:
        # SQLite: a write first takes the database's write lock for the whole
        # transaction, so the count below cannot be stale when the attempt is marked.
        GenerationJob.objects.filter(pk=job.pk).update(updated_at=timezone.now())


def _job_ended(sender: Any, job: GenerationJob, **kwargs: Any) -> None:
    if limit(job.provider) is not None:
        release(job.provider)


def connect() -> None:
    """Release a provider's slot as each job ends (called by the app's ready())."""
    for name in ("job_succeeded", "job_failed", "job_expired", "job_canceled"):
        getattr(signals, name).connect(_job_ended, dispatch_uid=f"imagegen.slots.{name}")

"""The sweeper: the database-driven safety net behind every Celery message.

Run every few seconds by Celery beat (``imagegen.sweep``) or by
``manage.py imagegen sweep``. Each run claims a bounded batch of active jobs
whose ``next_poll_at`` has passed, through the partial index on due jobs, so
its cost depends on the number of due jobs, not on the size of the table.
For each it expires, re-sends a lost submission, polls, or resumes a
finalize whose lease ran out. Claims use ``SELECT ... FOR UPDATE SKIP
LOCKED`` where the database has it, so two sweepers by mistake stay safe.
It then re-sends due outbound webhooks the same way
(:func:`imagegen.webhooks.delivery.resend_due`), purges old callback records
(:func:`.retention.purge_due`), and records that it ran
(:mod:`.health`: the doctor and the job list tell when beat stopped).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import DateTimeField, F, QuerySet, Value
from django.db.models.functions import Least
from django.utils import timezone

from .. import conf
from ..choices import ACTIVE, IN_FLIGHT, Status
from ..models import GenerationJob
from . import alt_text, health, retention, reviews, slots
from .jobs import POLL_LEASE, enqueue_submit, expire
from .transitions import enqueue


def sweep(now: datetime | None = None) -> Counter:
    """Handle one batch of due jobs. Returns counts per action."""
    from ..tasks import finalize_job, poll_job

    now = now or timezone.now()
    counts: Counter = Counter()
    batch = int(conf.get_setting("SWEEP_BATCH_SIZE"))
    finalize_lease = timedelta(seconds=conf.get_setting("FINALIZE_LEASE"))
    submit_lease = timedelta(seconds=conf.get_setting("SUBMIT_LEASE"))
    with transaction.atomic():
        rows = list(due_jobs(now)[:batch])
        groups: dict[str, list] = {"expire": [], "submit": [], "poll": [], "finalize": []}
        for job_id, status, deadline_at, poll_count in rows:
            if status != Status.FINALIZING and deadline_at <= now:
                groups["expire"].append(job_id)
            elif status == Status.QUEUED:
                groups["submit"].append(job_id)
            elif status in IN_FLIGHT:
                groups["poll"].append((job_id, poll_count))
            else:
                groups["finalize"].append(job_id)
        # Push claimed jobs out of the due window so the next sweep leaves them
        # to the task just sent; if that message is lost they come due again.
        _postpone(groups["submit"], now + submit_lease, clamp=True)
        _postpone([job_id for job_id, _ in groups["poll"]], now + POLL_LEASE, clamp=True)
        _postpone(groups["finalize"], now + finalize_lease, clamp=False)
        for job_id in groups["expire"]:
            counts["expired"] += expire(job_id)
        for job_id in groups["submit"]:
            enqueue_submit(job_id)
        for job_id, poll_count in groups["poll"]:
            enqueue(poll_job, str(job_id), poll_count)
        for job_id in groups["finalize"]:
            enqueue(finalize_job, str(job_id))
    counts["submit"] = len(groups["submit"])
    counts["poll"] = len(groups["poll"])
    counts["finalize"] = len(groups["finalize"])
    # Outbound webhooks whose message was lost or whose retry wait is long.
    from ..webhooks.delivery import resend_due

    counts["webhooks"] = resend_due(now)
    # Callback records past their retention: a batch at most once an hour.
    counts["purged"] = retention.purge_due(now)
    # Slots of capped providers that a lost signal or a dead worker left free.
    counts["released"] = slots.release_all(now)
    # Discarded files whose undo time is over, when their purge task was lost.
    counts["discarded"] = reviews.purge_due(now)
    # Alt text drafts whose task message was lost.
    counts["drafts"] = alt_text.resend_lost(now)
    health.record(health.SWEEP, now)
    return counts


def due_jobs(now: datetime) -> QuerySet:
    """The sweeper's claim: active jobs due by ``now``, oldest first, as
    ``(id, status, deadline_at, poll_count)``, locked and skipping rows
    another sweeper holds. Served by the partial index ``imagegen_job_due_idx``."""
    due = GenerationJob.objects.filter(
        status__in=[s.value for s in ACTIVE], next_poll_at__lte=now
    ).order_by("next_poll_at")
    if connection.features.has_select_for_update_skip_locked:
        due = due.select_for_update(skip_locked=True)
    return due.values_list("id", "status", "deadline_at", "poll_count")


def _postpone(job_ids: list, until: datetime, *, clamp: bool) -> None:
    if not job_ids:
        return
    value = Value(until, output_field=DateTimeField())
    # A job waiting on its provider must come due again by its deadline to expire on time.
    GenerationJob.objects.filter(pk__in=job_ids).update(
        next_poll_at=Least(value, F("deadline_at")) if clamp else value
    )

"""The primitives every state change is built from.

A transition is one conditional UPDATE (``WHERE status IN (...)``): of two
racing writers exactly one sees a row updated, whatever the isolation level.
Side effects (tasks, signals) are deferred to ``on_commit`` so a rolled-back
change sends nothing. What must survive a crash right after the commit (the
outbound webhook events) is recorded before it, in the same transaction, by
the receivers of :data:`job_changing` (an outbox).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from ..models import GenerationJob

logger = logging.getLogger("imagegen")

#: Sent by :func:`send_after_commit` inside the transaction that made the
#: change, with ``event_signal`` (the public signal sent after the commit) and
#: ``job_id``. Its receiver (:mod:`imagegen.webhooks.events`) records the
#: outbound webhook events there, so they commit or roll back with the change.
#: Internal: an error a receiver lets through rolls the change back.
job_changing = Signal()


def transition(job_id: Any, from_statuses: Iterable[str], **changes: Any) -> bool:
    """Apply ``changes`` if the job is in one of ``from_statuses``; True if it was."""
    changes.setdefault("updated_at", timezone.now())
    updated = GenerationJob.objects.filter(pk=job_id, status__in=list(from_statuses)).update(
        **changes
    )
    return updated == 1


def enqueue(task: Any, *args: Any, countdown: float | None = None, **options: Any) -> None:
    """Send ``task`` after the current transaction commits (``countdown``
    seconds later, if given; other ``options`` go to ``apply_async``).

    A broker that is down at that moment must not fail the caller (a callback
    must still answer 200): the job stays due in the database and the sweeper
    sends the task again.
    """

    def send() -> None:
        try:
            task.apply_async(args, countdown=countdown, **options)
        except Exception:
            logger.warning(
                "Could not enqueue %s for %s; the sweeper will retry.",
                task.name,
                args[0] if args else "",
                exc_info=True,
            )

    transaction.on_commit(send)


def send_after_commit(signal: Signal, job_id: Any, **kwargs: Any) -> None:
    """Record the change's events now and send ``signal`` with the job as it
    is after commit.

    Call it inside the transaction that made the change (an ``atomic`` block
    around the UPDATE): :data:`job_changing` records the outbound webhook
    events in that transaction, so a process that dies between the commit
    and the sends below loses none of them (the sweeper sends them).
    """
    job_changing.send(sender=GenerationJob, event_signal=signal, job_id=job_id)

    def send() -> None:
        # No receiver: the job is not read for nobody (a query per change).
        if not signal.has_listeners(GenerationJob):
            return
        job = GenerationJob.objects.get(pk=job_id)
        signal.send_robust(sender=GenerationJob, job=job, **kwargs)

    transaction.on_commit(send)

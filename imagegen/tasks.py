"""Celery tasks: thin wrappers around :mod:`imagegen.services`.

Arguments are job ids only (never model instances, never secrets). Every
task acknowledges late and is re-queued if its worker dies, and every task
is safe to run twice: the services claim the job with a conditional UPDATE
before doing anything. No task relies on that re-delivery, though: on Redis
or SQS a dead worker's message comes back only after the broker's visibility
timeout (an hour, typically), so every job records in the database when it
is due (``next_poll_at``, kept one lease ahead while a worker holds it) and
the sweeper sends its task again then. Countdowns stay short
(``IMAGEGEN["MAX_COUNTDOWN"]``); long waits are the sweeper's.

A worker that starts any of these tasks records that it is alive
(:func:`imagegen.services.health.worker_seen`, throttled): the job list
tells editors when no worker picks jobs up.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from celery import shared_task
from celery.signals import task_prerun

from . import conf, services
from .describers import DescriberError
from .exceptions import FetchError, TransientError
from .services import alt_text, health
from .services.finalize import TIME_LIMIT as FINALIZE_TIME_LIMIT
from .services.work_folders import remove_dead_attempt_folders
from .webhooks import delivery as webhook_delivery

logger = logging.getLogger("imagegen")

COMMON = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
}


@task_prerun.connect(weak=False, dispatch_uid="imagegen.worker_seen")
def _worker_seen(sender: Any = None, **kwargs: Any) -> None:
    # Connected where the tasks are defined: the module a worker imports to run them.
    if getattr(sender, "name", "").startswith("imagegen."):
        health.worker_seen()


def retry_delay(retries: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter, at least ``retry_after``, capped."""
    cap = float(conf.get_setting("MAX_COUNTDOWN"))
    delay = random.uniform(0.5, 1.0) * min(cap, 2.0 * 2**retries)
    if retry_after:
        delay = max(delay, retry_after)
    return min(cap, delay)


#: The submit task's soft time limit when the sender gives none; imagegen's own
#: sends give the slowest configured provider's (services.jobs.enqueue_submit).
SUBMIT_TIME_LIMIT = 100


@shared_task(
    name="imagegen.submit_job",
    bind=True,
    max_retries=None,
    soft_time_limit=SUBMIT_TIME_LIMIT,
    time_limit=SUBMIT_TIME_LIMIT + 20,
    **COMMON,
)
def submit_job(self, job_id: str) -> str:
    """Submit a queued job; transient provider errors retry with backoff
    (the service fails the job after ``SUBMIT_MAX_ATTEMPTS``)."""
    try:
        return services.submit(job_id)
    except TransientError as exc:
        raise self.retry(
            countdown=retry_delay(self.request.retries, exc.retry_after), exc=exc
        ) from None


@shared_task(name="imagegen.poll_job", soft_time_limit=50, time_limit=60, **COMMON)
def poll_job(job_id: str, expected_polls: int | None = None) -> str:
    """Poll the provider once. A transient failure is not retried here: the
    next poll is already scheduled in the database."""
    try:
        return services.poll(job_id, expected_polls)
    except TransientError as exc:
        logger.info("Poll of job %s failed, will poll again: %s", job_id, exc)
        return "transient-error"


@shared_task(
    name="imagegen.finalize_job",
    bind=True,
    max_retries=None,
    soft_time_limit=FINALIZE_TIME_LIMIT - 40,
    time_limit=FINALIZE_TIME_LIMIT,
    **COMMON,
)
def finalize_job(self, job_id: str) -> str:
    """Download, verify and store a finished job's results. Failures retry
    with backoff; the service fails the job after ``FINALIZE_MAX_ATTEMPTS``."""
    try:
        return services.finalize(job_id)
    except FetchError as exc:
        raise self.retry(countdown=retry_delay(self.request.retries), exc=exc) from None
    except Exception as exc:
        # Storage and database errors: the lease was released, so try again.
        logger.warning("Finalize of job %s failed, retrying: %r", job_id, exc)
        raise self.retry(countdown=retry_delay(self.request.retries), exc=exc) from None


@shared_task(name="imagegen.make_thumbnails", soft_time_limit=10, time_limit=20, **COMMON)
def make_thumbnails(job_id: str) -> int:
    """Kept so that messages queued before the upgrade are consumed, not
    refused: previews are now made on first view
    (:mod:`imagegen.services.thumbnails`), so there is nothing to do."""
    logger.debug("Previews of job %s are made on first view; nothing to do", job_id)
    return 0


@shared_task(name="imagegen.sweep", soft_time_limit=50, time_limit=60, **COMMON)
def sweep() -> dict[str, int]:
    """Expire, re-send and poll due jobs (run by beat every few seconds), and
    remove the temporary folders dead finalize attempts left on this worker's host."""
    counts = dict(services.sweep())
    counts["attempt_folders"] = remove_dead_attempt_folders()
    return counts


@shared_task(
    name="imagegen.deliver_webhook",
    soft_time_limit=webhook_delivery.TASK_SOFT_TIME_LIMIT,
    time_limit=webhook_delivery.TASK_TIME_LIMIT,
    **COMMON,
)
def deliver_webhook(delivery_id: str, attempts: int = 0) -> str:
    """One attempt at an outbound webhook delivery. ``attempts`` is the count
    the sender saw: a duplicate message finds it moved on and sends nothing.
    Retries are scheduled by the service (countdown or sweeper), not here."""
    return webhook_delivery.attempt(delivery_id, attempts)


@shared_task(
    name="imagegen.draft_alt_text",
    bind=True,
    max_retries=alt_text.MAX_ATTEMPTS - 1,
    soft_time_limit=100,
    time_limit=120,
    **COMMON,
)
def draft_alt_text(self, image_id: str, holder: str = "") -> str:
    """Draft one image's alt text (sent after finalize commits); ``holder``:
    the label of the model keeping the draft, empty for imagegen's own image
    (``alt_text.draft``). Temporary describer failures retry with backoff,
    at most ``alt_text.MAX_ATTEMPTS`` attempts in all; any other failure
    leaves the draft ``failed`` and the job as it is."""
    try:
        return alt_text.draft(image_id, attempt=self.request.retries + 1, holder=holder)
    except DescriberError as exc:
        raise self.retry(
            countdown=retry_delay(self.request.retries, exc.retry_after), exc=exc
        ) from None


@shared_task(name="imagegen.ping", soft_time_limit=10, time_limit=20, **COMMON)
def ping(nonce: str) -> bool:
    """Record ``nonce``: ``manage.py imagegen doctor``'s proof that a worker
    consumes the queue imagegen's tasks are sent to, on any broker."""
    return health.record_ping(nonce)

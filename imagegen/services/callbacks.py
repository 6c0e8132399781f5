"""Receiving provider callbacks.

Each callback is checked (token, body, task id) and then applied through
:func:`imagegen.services.jobs.apply_update` in one transaction that also
records the delivery, so the job's change and the record of what caused it
commit together, with one durable commit per callback. When applying fails
on a database error, that transaction rolls back and the delivery is
recorded on its own with the error, for audit and replay; refused
deliveries (wrong token, unknown job, malformed) are recorded too. Nothing
slow happens here: downloading and storing results is the finalize task's
job, so the provider gets its answer in milliseconds.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from dataclasses import dataclass

from django.db import DatabaseError, transaction

from .. import conf, tokens
from ..exceptions import ImagegenConfigurationError, MalformedCallbackError, ProviderError
from ..models import GenerationJob, WebhookDelivery
from ..providers import TaskState, get_provider
from .jobs import apply_update

logger = logging.getLogger("imagegen")

Outcome = WebhookDelivery.Outcome

#: Request headers worth keeping for audit; nothing that could carry credentials.
KEPT_HEADERS = ("Content-Type", "Content-Length", "User-Agent")


@dataclass(frozen=True)
class CallbackResult:
    status_code: int
    outcome: str
    message: str


def record_delivery(
    provider: str,
    job_ref: str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    remote_addr: str | None,
    outcome: str = Outcome.RECEIVED,
    status_code: int | None = None,
    job: GenerationJob | None = None,
    error: str = "",
) -> WebhookDelivery:
    """Store an incoming delivery with its outcome."""
    return WebhookDelivery.objects.create(
        job=job,
        provider=provider[:50],
        job_ref=job_ref[:64],
        remote_addr=remote_addr or None,
        headers={k: headers[k][:500] for k in KEPT_HEADERS if k in headers},
        body=body.decode("utf-8", "replace"),
        outcome=outcome,
        status_code=status_code,
        error=error,
    )


def handle_callback(
    provider_name: str,
    job_ref: str,
    token: str,
    body: bytes,
    headers: Mapping[str, str],
    remote_addr: str | None,
) -> CallbackResult:
    """Authenticate, parse and apply one callback, and record it. Never raises
    for bad input; raises :class:`DatabaseError` only when not even the
    record of the delivery could be stored."""

    def record(result: CallbackResult, job: GenerationJob | None, error: str = "") -> None:
        record_delivery(
            provider_name,
            job_ref,
            body=body,
            headers=headers,
            remote_addr=remote_addr,
            outcome=result.outcome,
            status_code=result.status_code,
            job=job,
            error=error,
        )

    checked = _check(provider_name, job_ref, token, body, headers)
    if isinstance(checked, Refusal):
        record(checked.result, checked.job, checked.error)
        return checked.result
    job, state = checked
    try:
        with transaction.atomic():
            applied = apply_update(job.pk, state, source="callback")
            outcome = Outcome.ACCEPTED if applied == "advanced" else Outcome.DUPLICATE
            result = CallbackResult(200, outcome, "OK")
            record(result, job)
    except DatabaseError:
        logger.exception("Database error applying callback for job %s", job.pk)
        result = CallbackResult(503, Outcome.ERROR, "Temporarily unavailable.")
        record(result, job, traceback.format_exc(limit=5))
    return result


@dataclass(frozen=True)
class Refusal:
    """A callback that will not be applied, and why."""

    result: CallbackResult
    job: GenerationJob | None = None
    error: str = ""


def _check(
    provider_name: str,
    job_ref: str,
    token: str,
    body: bytes,
    headers: Mapping[str, str],
) -> tuple[GenerationJob, TaskState] | Refusal:
    """The job and the state a callback reports, or why it is refused."""
    job = (
        GenerationJob.objects.filter(pk=job_ref, provider=provider_name)
        .only("pk", "callback_token_hash", "provider_task_id")
        .order_by()
        .first()
    )
    if job is None:
        return Refusal(CallbackResult(404, Outcome.UNKNOWN_JOB, "Unknown job."))
    if not tokens.token_matches(token, job.callback_token_hash):
        return Refusal(CallbackResult(403, Outcome.FORBIDDEN, "Invalid token."))
    try:
        provider = get_provider(provider_name)
        state = provider.parse_callback(body, headers)
    except (MalformedCallbackError, ImagegenConfigurationError) as exc:
        return Refusal(CallbackResult(400, Outcome.MALFORMED, str(exc)), job, str(exc))
    if job.provider_task_id and state.task_id != job.provider_task_id:
        # Same job token, other task: an earlier submission whose answer was
        # lost also went through. It is logged so duplicate spend is visible.
        error = "The callback's taskId is not this job's task (duplicate submission?)."
        return Refusal(CallbackResult(400, Outcome.MALFORMED, error), job, error)
    if conf.get_setting("CONFIRM_CALLBACKS"):
        try:
            state = provider.fetch(state.task_id)
        except ProviderError as exc:
            error = f"Confirmation through the status API failed: {exc}"
            return Refusal(
                CallbackResult(503, Outcome.ERROR, "Could not confirm; retry later."), job, error
            )
    return job, state


def replay(delivery: WebhookDelivery) -> CallbackResult:
    """Apply a stored delivery's body again (an operator's action after a fix)."""
    job = delivery.job
    if job is None:
        return CallbackResult(404, Outcome.UNKNOWN_JOB, "The delivery has no job.")
    provider = get_provider(job.provider)
    try:
        state = provider.parse_callback(delivery.body.encode("utf-8"), delivery.headers)
    except MalformedCallbackError as exc:
        return CallbackResult(400, Outcome.MALFORMED, str(exc))
    with transaction.atomic():
        applied = apply_update(job.pk, state, source="replay")
    outcome = Outcome.ACCEPTED if applied == "advanced" else Outcome.DUPLICATE
    return CallbackResult(200, outcome, "OK")

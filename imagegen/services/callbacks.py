"""Receiving provider callbacks.

Every delivery is stored first, as untrusted, outside any transaction, so
the record (and the error, if processing fails) survives a rollback of the
business writes. Then the token is checked, the body parsed, and the update
applied through :func:`imagegen.services.jobs.apply_update` in its own
transaction. Nothing slow happens here: downloading and storing results is
the finalize task's job, so the provider gets its answer in milliseconds.
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
from ..providers import get_provider
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
) -> WebhookDelivery:
    """Store an incoming delivery as received (or with a final outcome)."""
    return WebhookDelivery.objects.create(
        provider=provider[:50],
        job_ref=job_ref[:64],
        remote_addr=remote_addr or None,
        headers={k: headers[k][:500] for k in KEPT_HEADERS if k in headers},
        body=body.decode("utf-8", "replace"),
        outcome=outcome,
        status_code=status_code,
    )


def handle_callback(
    provider_name: str,
    job_ref: str,
    token: str,
    body: bytes,
    headers: Mapping[str, str],
    remote_addr: str | None,
) -> CallbackResult:
    """Authenticate, parse and apply one callback. Never raises for bad input."""
    delivery = record_delivery(
        provider_name, job_ref, body=body, headers=headers, remote_addr=remote_addr
    )
    result, job = _process(delivery, provider_name, job_ref, token, body, headers)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        job=job, outcome=result.outcome, status_code=result.status_code, error=delivery.error
    )
    return result


def _process(
    delivery: WebhookDelivery,
    provider_name: str,
    job_ref: str,
    token: str,
    body: bytes,
    headers: Mapping[str, str],
) -> tuple[CallbackResult, GenerationJob | None]:
    job = GenerationJob.objects.filter(pk=job_ref, provider=provider_name).first()
    if job is None:
        return CallbackResult(404, Outcome.UNKNOWN_JOB, "Unknown job."), None
    if not tokens.token_matches(token, job.callback_token_hash):
        return CallbackResult(403, Outcome.FORBIDDEN, "Invalid token."), None
    try:
        provider = get_provider(provider_name)
        state = provider.parse_callback(body, headers)
    except (MalformedCallbackError, ImagegenConfigurationError) as exc:
        delivery.error = str(exc)
        return CallbackResult(400, Outcome.MALFORMED, str(exc)), job
    if job.provider_task_id and state.task_id != job.provider_task_id:
        # Same job token, other task: an earlier submission whose answer was
        # lost also went through. It is logged so duplicate spend is visible.
        delivery.error = "The callback's taskId is not this job's task (duplicate submission?)."
        return CallbackResult(400, Outcome.MALFORMED, delivery.error), job
    if conf.get_setting("CONFIRM_CALLBACKS"):
        try:
            state = provider.fetch(state.task_id)
        except ProviderError as exc:
            delivery.error = f"Confirmation through the status API failed: {exc}"
            return CallbackResult(503, Outcome.ERROR, "Could not confirm; retry later."), job
    try:
        with transaction.atomic():
            applied = apply_update(job.pk, state, source="callback")
    except DatabaseError:
        delivery.error = traceback.format_exc(limit=5)
        logger.exception("Database error applying callback for job %s", job.pk)
        return CallbackResult(503, Outcome.ERROR, "Temporarily unavailable."), job
    outcome = Outcome.ACCEPTED if applied == "advanced" else Outcome.DUPLICATE
    return CallbackResult(200, outcome, "OK"), job


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

"""Event names, payloads, and the outbox that turns job changes into deliveries.

A job change that ends a job records one :class:`OutboundDelivery` per
active endpoint subscribed to its event, with the payload frozen at that
moment, in the same database transaction as the change (the outbox: see
:data:`imagegen.services.transitions.job_changing`). The first attempt is
enqueued when that transaction commits. If the process dies between the
commit and the enqueue, or the message is lost, the rows are there and the
sweeper sends them once ``next_attempt_at`` (one lease after the change)
passes; a change that rolls back records nothing.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

from django.conf import settings
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import override

from .. import conf, serializers, signals
from ..models import GenerationJob, OutboundDelivery, WebhookEndpoint

logger = logging.getLogger("imagegen")

JOB_SUCCEEDED = "job.succeeded"
JOB_FAILED = "job.failed"
JOB_EXPIRED = "job.expired"
JOB_CANCELED = "job.canceled"
#: Sent by the admin's "Send test event" action, whatever the subscription.
TEST = "webhook.test"

#: Events an endpoint can subscribe to, with their labels.
EVENT_CHOICES = [
    (JOB_SUCCEEDED, _("Job succeeded")),
    (JOB_FAILED, _("Job failed")),
    (JOB_EXPIRED, _("Job expired")),
    (JOB_CANCELED, _("Job canceled")),
]
EVENTS = tuple(name for name, _label in EVENT_CHOICES)

_SIGNAL_EVENTS: dict[Signal, str] = {
    signals.job_succeeded: JOB_SUCCEEDED,
    signals.job_failed: JOB_FAILED,
    signals.job_expired: JOB_EXPIRED,
    signals.job_canceled: JOB_CANCELED,
}


def connect() -> None:
    """Record job events in the transaction of the change (called from
    ``AppConfig.ready``)."""
    from ..services.transitions import job_changing

    job_changing.connect(_record, sender=GenerationJob, dispatch_uid="imagegen:webhook-outbox")


def _record(sender: Any, event_signal: Signal, job_id: Any, **kwargs: Any) -> None:
    """Publish the event of ``event_signal`` (if it has one) inside the current
    transaction, in a savepoint: a webhook problem (a payload that cannot be
    built) is logged and never rolls back the job's own change."""
    event = _SIGNAL_EVENTS.get(event_signal)
    if event is None:
        return
    try:
        if not subscribers(event):  # the usual case: no savepoint, no job read
            return
        with transaction.atomic():
            publish(event, GenerationJob.objects.get(pk=job_id))
    except Exception:
        logger.exception("Could not record webhooks for job %s.", job_id)


def new_message_id() -> str:
    """A ``webhook-id``: the same on every attempt of one delivery."""
    return "msg_" + uuid.uuid4().hex


def payload(event: str, data: dict[str, Any], when: datetime | None = None) -> dict[str, Any]:
    """The Standard Webhooks envelope: ``type``, ``timestamp`` (ISO 8601) and ``data``."""
    return {"type": event, "timestamp": (when or timezone.now()).isoformat(), "data": data}


def job_data(job: GenerationJob) -> dict[str, Any]:
    """The job as the status JSON gives it, with absolute image URLs when
    ``CALLBACK_BASE_URL`` (this site's public origin) is set. Its texts
    (``error_message``, ``status_display``) are in ``settings.LANGUAGE_CODE``,
    whoever's request or worker made the change: a receiver has no language."""
    with override(settings.LANGUAGE_CODE):
        data = serializers.job_status(job)
    base = conf.get_setting("CALLBACK_BASE_URL")
    if base:
        for image in data["images"]:
            for key in ("url", "thumbnail_url"):
                if image.get(key):
                    image[key] = urljoin(base, image[key])
    return data


def subscribers(event: str) -> list[WebhookEndpoint]:
    """Active endpoints subscribed to ``event`` (filtered here rather than in
    SQL: JSON containment is not portable, and endpoints are few)."""
    return [e for e in WebhookEndpoint.objects.filter(is_active=True) if event in (e.events or [])]


def publish(event: str, job: GenerationJob) -> list[OutboundDelivery]:
    """Queue ``event`` for ``job`` to every subscribed endpoint, in the
    caller's transaction (the rows commit or roll back with it)."""
    endpoints = subscribers(event)
    if not endpoints:
        return []
    body = payload(event, job_data(job))
    with transaction.atomic():
        return [queue(endpoint, event, body, job=job) for endpoint in endpoints]


def send_test(endpoint: WebhookEndpoint) -> OutboundDelivery:
    """Queue a ``webhook.test`` event to ``endpoint``."""
    data = {"endpoint": str(endpoint.pk), "description": endpoint.description}
    return queue(endpoint, TEST, payload(TEST, data))


def queue(
    endpoint: WebhookEndpoint,
    event: str,
    body: dict[str, Any],
    *,
    job: GenerationJob | None = None,
) -> OutboundDelivery:
    """Save a pending delivery and enqueue its first attempt after commit.
    Until that attempt claims it, ``next_attempt_at`` (a lease from now) is
    when the sweeper sends it instead, should the enqueue never happen."""
    from . import delivery

    delivery_row = OutboundDelivery.objects.create(
        endpoint=endpoint,
        job=job,
        event=event,
        message_id=new_message_id(),
        payload=body,
        # If the first message is lost, the sweeper sends it again then.
        next_attempt_at=timezone.now() + delivery.lease(),
    )
    delivery.send_attempt(delivery_row.pk, 0)
    return delivery_row

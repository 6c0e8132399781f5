"""Delivering outbound webhooks: one attempt at a time, retried on a schedule.

An attempt first claims the delivery with a conditional UPDATE on
``(state, attempts)``: a duplicate task message, or a second worker holding
the same message, finds the count moved on and sends nothing. The claim
also pushes ``next_attempt_at`` one lease ahead, so the sweeper leaves the
delivery to this attempt and takes it back only if the worker died.

The request goes through :mod:`imagegen.fetching`'s SSRF-safe client: the
address is resolved once, checked (private, loopback, link-local and
reserved addresses refused unless ``WEBHOOK_ALLOW_PRIVATE_HOSTS``) and
connected to; no proxies from the environment; redirects are not followed.

2xx is delivered. 410 Gone disables the endpoint. Anything else (other
statuses, timeouts, connection errors, DNS failures) is retried after
``WEBHOOK_RETRY_SCHEDULE[n]`` seconds (with jitter) until
``WEBHOOK_MAX_ATTEMPTS``. A wait up to ``MAX_COUNTDOWN`` goes to Celery as a
countdown; longer waits stay in the database for the sweeper
(:func:`resend_due`), like the job poller's.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .. import __version__, conf
from ..exceptions import FetchError, UnsafeURLError
from ..fetching import (
    REDIRECTS,
    FetchPolicy,
    check_url,
    pin,
    redact_url,
    redirect_url,
    refusal,
    safe_client,
)
from ..models import OutboundDelivery, WebhookEndpoint
from . import signing

logger = logging.getLogger("imagegen")

State = OutboundDelivery.State

USER_AGENT = f"imagegen/{__version__}"
#: How much of an error response is read, and how much of it is kept.
RESPONSE_READ_BYTES = 4096
RESPONSE_KEEP_CHARS = 200
#: Time limits of the ``imagegen.deliver_webhook`` task (seconds). One POST
#: takes at most about 4 x WEBHOOK_TIMEOUT (connect, send, answer, error body);
#: system check E012 keeps that under the soft limit.
TASK_SOFT_TIME_LIMIT = 110
TASK_TIME_LIMIT = 120


def policy() -> FetchPolicy:
    """The URL rules for endpoints: http(s), any port, no private or reserved
    address unless ``WEBHOOK_ALLOW_PRIVATE_HOSTS``, no redirects."""
    timeout = float(conf.get_setting("WEBHOOK_TIMEOUT"))
    return FetchPolicy(
        allowed_hosts=None,
        allow_private=bool(conf.get_setting("WEBHOOK_ALLOW_PRIVATE_HOSTS")),
        # Receivers listen on all sorts of ports; the address check is what matters.
        allowed_ports=None,
        connect_timeout=timeout,
        read_timeout=timeout,
        total_timeout=timeout,
        max_redirects=0,
        user_agent=USER_AGENT,
    )


def check_endpoint_url(url: str) -> None:
    """Refuse what no delivery may be sent to (no DNS lookup here; names are
    checked again, resolved, at every attempt). Raises UnsafeURLError."""
    # First: it refuses what urlsplit would choke on or silently rewrite.
    check_url(url, policy())
    if "@" in (urlsplit(url).netloc or ""):
        raise UnsafeURLError(
            _("Credentials in the URL are not allowed; the signature authenticates deliveries."),
            url=redact_url(url),
        )


def lease() -> timedelta:
    """How long an attempt holds its delivery: past the delivery task's hard
    time limit, so the sweeper never re-sends one that may still be running."""
    return timedelta(seconds=TASK_TIME_LIMIT + 30)


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt, after ``attempts`` failed ones: the
    schedule's entry (its last one past the end), with 10 % jitter."""
    schedule = list(conf.get_setting("WEBHOOK_RETRY_SCHEDULE"))
    base = float(schedule[max(0, min(attempts, len(schedule)) - 1)])
    return base * random.uniform(0.9, 1.1)


def encode(payload: dict[str, Any]) -> bytes:
    """The body: compact JSON with sorted keys, so every attempt sends (and
    signs) the same bytes whatever order the database returns the keys in."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")


def send_attempt(delivery_id: Any, attempts: int, *, countdown: float | None = None) -> None:
    """Enqueue an attempt after commit (``attempts``: the count it expects)."""
    from ..services.transitions import enqueue
    from ..tasks import deliver_webhook

    enqueue(deliver_webhook, str(delivery_id), attempts, countdown=countdown)


@dataclass(frozen=True)
class Result:
    """What one POST came to. ``error`` is for people and holds no secret."""

    status_code: int | None = None
    error: str = ""
    retryable: bool = True

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def attempt(delivery_id: Any, expected_attempts: int) -> str:
    """Make one attempt at a pending delivery. Returns ``"delivered"``,
    ``"retry"``, ``"failed"`` or ``"not-claimed"`` (someone else has it, or
    it is no longer pending)."""
    claimed = OutboundDelivery.objects.filter(
        pk=delivery_id, state=State.PENDING, attempts=expected_attempts
    ).update(attempts=F("attempts") + 1, next_attempt_at=timezone.now() + lease())
    if not claimed:
        return "not-claimed"
    delivery = OutboundDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if not endpoint.is_active:
        result = Result(error=_("The endpoint is disabled."), retryable=False)
    else:
        result = post(endpoint, delivery)
    if result.status_code == 410:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False)
        logger.warning(
            "Webhook endpoint %s answered 410 Gone and was disabled.", redact_url(endpoint.url)
        )
    return _record(delivery, result)


def post(endpoint: WebhookEndpoint, delivery: OutboundDelivery) -> Result:
    """POST the delivery, signed now (with the previous secret too during its
    grace period), to the endpoint. Never raises for network or HTTP failures."""
    secrets = signing.signing_secrets(endpoint)
    body = encode(delivery.payload)
    timestamp = int(time.time())
    signature = signing.signature_header(secrets, delivery.message_id, timestamp, body)
    headers = {
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        # Error bodies are read raw, up to a cap: no decompression.
        "accept-encoding": "identity",
    }
    rules = policy()
    url = endpoint.url
    try:
        check_endpoint_url(url)
        target = pin(url, rules)
        with safe_client(rules) as client:
            with client.stream(
                "POST",
                target.url,
                content=body,
                headers={**headers, **target.headers},
                extensions=target.extensions,
            ) as response:
                status = response.status_code
                if 200 <= status < 300:
                    return Result(status_code=status)
                if status in REDIRECTS:
                    location = response.headers.get("location", "")
                    return Result(
                        status_code=status,
                        error=_(
                            "HTTP %(status)d: redirects are not followed; "
                            "use the final URL (%(location)s)."
                        )
                        % {"status": status, "location": redact_url(redirect_url(url, location))},
                    )
                text = _scrub(_read_capped(response, rules.total_timeout), secrets, signature)
                if status == 410:
                    error = _("HTTP 410 Gone: the endpoint was disabled.")
                    return Result(status_code=status, error=error, retryable=False)
                error = f"HTTP {status}" + (f": {text}" if text else "")
                return Result(status_code=status, error=error)
    except UnsafeURLError as exc:
        return Result(error=exc.message, retryable=False)
    except FetchError as exc:
        return Result(error=exc.message, retryable=exc.retryable)
    except httpx.TimeoutException:
        return Result(
            error=_("Timed out after %(s)s s (WEBHOOK_TIMEOUT).") % {"s": rules.read_timeout}
        )
    except httpx.HTTPError as exc:
        if refused := refusal(exc, url):
            return Result(error=refused.message, retryable=False)
        return Result(
            error=_("Could not deliver to %(url)s: %(error)s.")
            % {"url": redact_url(url), "error": type(exc).__name__}
        )


def _read_capped(response: httpx.Response, seconds: float) -> bytes:
    """The start of the body, never more than RESPONSE_READ_BYTES nor longer
    than ``seconds``; the rest is dropped with the connection."""
    deadline = time.monotonic() + seconds
    data = bytearray()
    try:
        for chunk in response.iter_raw():
            data += chunk
            if len(data) >= RESPONSE_READ_BYTES or time.monotonic() > deadline:
                break
    except httpx.HTTPError:
        pass
    return bytes(data[:RESPONSE_READ_BYTES])


def _scrub(data: bytes, secrets: list[str], signature: str) -> str:
    """Printable, short text from a response body, without the secrets or the
    signatures (a receiver may echo the request back)."""
    text = data.decode("utf-8", "replace")
    values = [signature]
    for one in signature.split():
        values += [one, one.partition(",")[2]]
    for secret in secrets:
        values += [secret, secret.removeprefix(signing.SECRET_PREFIX)]
    for value in values:
        if value:
            text = text.replace(value, "[redacted]")
    text = re.sub(r"\s+", " ", "".join(c if c.isprintable() else " " for c in text)).strip()
    return text if len(text) <= RESPONSE_KEEP_CHARS else text[: RESPONSE_KEEP_CHARS - 1] + "…"


def _record(delivery: OutboundDelivery, result: Result) -> str:
    now = timezone.now()
    where = redact_url(delivery.endpoint.url)
    if result.delivered:
        # A late success still counts, even if a later attempt had given up.
        OutboundDelivery.objects.filter(
            pk=delivery.pk, state__in=[State.PENDING, State.FAILED]
        ).update(
            state=State.DELIVERED,
            delivered_at=now,
            next_attempt_at=None,
            last_status_code=result.status_code,
            last_error="",
        )
        logger.info(
            "Webhook %s (%s) delivered to %s on attempt %d.",
            delivery.message_id,
            delivery.event,
            where,
            delivery.attempts,
        )
        return "delivered"
    # Only the attempt that holds the current count writes its outcome.
    mine = OutboundDelivery.objects.filter(
        pk=delivery.pk, state=State.PENDING, attempts=delivery.attempts
    )
    max_attempts = conf.get_setting("WEBHOOK_MAX_ATTEMPTS")
    if not result.retryable or delivery.attempts >= max_attempts:
        error = result.error
        if result.retryable:
            error = ngettext(
                "%(error)s (gave up after %(n)d attempt)",
                "%(error)s (gave up after %(n)d attempts)",
                delivery.attempts,
            ) % {"error": error, "n": delivery.attempts}
        mine.update(
            state=State.FAILED,
            next_attempt_at=None,
            last_status_code=result.status_code,
            last_error=error,
        )
        logger.warning(
            "Webhook %s (%s) to %s failed: %s", delivery.message_id, delivery.event, where, error
        )
        return "failed"
    delay = retry_delay(delivery.attempts)
    due = now + timedelta(seconds=delay)
    short = delay <= float(conf.get_setting("MAX_COUNTDOWN"))
    moved = mine.update(
        # A short wait is a Celery countdown, with the sweeper one lease behind
        # it in case the message is lost; a long one is the sweeper's alone.
        next_attempt_at=due + lease() if short else due,
        last_status_code=result.status_code,
        last_error=result.error,
    )
    if moved and short:
        send_attempt(delivery.pk, delivery.attempts, countdown=delay)
    logger.info(
        "Webhook %s (%s) to %s: %s; attempt %d in %.0f s.",
        delivery.message_id,
        delivery.event,
        where,
        result.error,
        delivery.attempts + 1,
        delay,
    )
    return "retry"


def retry_now(deliveries: QuerySet[OutboundDelivery]) -> int:
    """Send pending and failed deliveries again now (an operator's retry).
    A failed delivery gets one more attempt. Returns how many were queued."""
    now = timezone.now()
    queued = 0
    rows = deliveries.filter(state__in=[State.PENDING, State.FAILED]).values_list("pk", "attempts")
    for pk, attempts in rows:
        if OutboundDelivery.objects.filter(
            pk=pk, state__in=[State.PENDING, State.FAILED], attempts=attempts
        ).update(state=State.PENDING, next_attempt_at=now + lease()):
            send_attempt(pk, attempts)
            queued += 1
    return queued


def resend_due(now: datetime | None = None) -> int:
    """The sweeper's part: enqueue an attempt for every pending delivery
    whose ``next_attempt_at`` passed (a lost message, a worker that died, a
    retry wait longer than ``MAX_COUNTDOWN``). Claims a batch with ``SELECT
    ... FOR UPDATE SKIP LOCKED`` where the database has it, through the
    partial index on pending deliveries, and pushes each one lease ahead."""
    now = now or timezone.now()
    batch = int(conf.get_setting("SWEEP_BATCH_SIZE"))
    due = OutboundDelivery.objects.filter(state=State.PENDING, next_attempt_at__lte=now)
    # Usually nothing is due: one index probe, no transaction.
    if not due.exists():
        return 0
    with transaction.atomic():
        due = due.order_by("next_attempt_at")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        rows = list(due.values_list("pk", "attempts")[:batch])
        if rows:
            OutboundDelivery.objects.filter(pk__in=[pk for pk, _n in rows]).update(
                next_attempt_at=now + lease()
            )
        for pk, attempts in rows:
            send_attempt(pk, attempts)
    return len(rows)

"""Outbound webhooks against a real receiver: a threaded HTTP server on
127.0.0.1 that checks every request with the Standard Webhooks reference
library (``standardwebhooks``), as an automation would. Job events go end to
end through a real Celery worker and the sandbox; the attempt, retry, URL
safety and secrecy rules are exercised on the service; the admin through the
test client."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core import serializers
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from imagegen import fetching, services
from imagegen.checks import check_settings
from imagegen.choices import Status
from imagegen.models import OutboundDelivery, WebhookEndpoint
from imagegen.webhooks import delivery, events, signing

from .conftest import wait_until
from .factories import make_job, messages_of
from .test_races import run_together

State = OutboundDelivery.State


# The receiver -----------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    payload: Any = None
    error: str = ""

    @property
    def verified(self) -> bool:
        return not self.error


@dataclass
class Receiver:
    """Answers POSTs per path: a queue of scripted answers, then a default."""

    port: int = 0
    secrets: dict[str, str] = field(default_factory=dict)
    scripts: dict[str, list[tuple[int, dict[str, str], bytes]]] = field(default_factory=dict)
    defaults: dict[str, int] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)
    delay: float = 0.0
    echo: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def script(self, path: str, *answers: int | tuple[int, dict[str, str]]) -> None:
        queue = self.scripts.setdefault(path, [])
        for answer in answers:
            status, headers = answer if isinstance(answer, tuple) else (answer, {})
            queue.append((status, headers, b""))

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def answer(self, path: str, request_text: bytes) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            queue = self.scripts.get(path)
            if queue:
                return queue.pop(0)
        status = self.defaults.get(path, 200)
        return status, {}, request_text if self.echo and status >= 300 else b""


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def do_POST(self) -> None:
        receiver: Receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        received = Received(self.path, headers, body, time.time())
        try:
            received.payload = Webhook(receiver.secrets[self.path]).verify(body, headers)
        except (WebhookVerificationError, KeyError, ValueError) as exc:
            # The reference library raises plain errors on malformed input too.
            received.error = repr(exc)
        with receiver.lock:
            receiver.requests.append(received)
        if receiver.delay:
            time.sleep(receiver.delay)  # a slow receiver, not synchronisation
        echoed = json.dumps({"headers": headers, "body": body.decode()}).encode()
        status, extra, text = receiver.answer(self.path, echoed)
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.receiver = Receiver(port=server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.receiver
    server.shutdown()
    server.server_close()


@pytest.fixture
def hooks(settings: Any) -> dict[str, Any]:
    """Webhook settings for a local receiver: private hosts allowed, short waits."""
    settings.IMAGEGEN = {
        **(settings.IMAGEGEN or {}),
        "WEBHOOK_ALLOW_PRIVATE_HOSTS": True,
        "WEBHOOK_TIMEOUT": 5,
        "WEBHOOK_MAX_ATTEMPTS": 3,
        "WEBHOOK_RETRY_SCHEDULE": (0.1,),
        "MAX_COUNTDOWN": 2,
    }
    return settings.IMAGEGEN


def use(settings: Any, **values: Any) -> None:
    settings.IMAGEGEN = {**settings.IMAGEGEN, **values}


def endpoint_at(
    receiver: Receiver,
    path: str,
    *,
    events_: tuple[str, ...] = events.EVENTS,
    active: bool = True,
    url: str | None = None,
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.create(
        url=url or receiver.url(path), events=list(events_), is_active=active, description=path
    )
    receiver.secrets[path] = signing.endpoint_secret(endpoint)
    return endpoint


def pending(endpoint: WebhookEndpoint, **fields: Any) -> OutboundDelivery:
    """A delivery saved directly: no task message is sent for it."""
    values: dict[str, Any] = {
        "endpoint": endpoint,
        "event": events.TEST,
        "message_id": events.new_message_id(),
        "payload": events.payload(events.TEST, {"hello": "wörld"}),
        "next_attempt_at": timezone.now() + timedelta(minutes=5),
    }
    values.update(fields)
    return OutboundDelivery.objects.create(**values)


def delivered(row: OutboundDelivery, *, timeout: float = 20.0) -> OutboundDelivery:
    def done() -> OutboundDelivery | None:
        services.sweep()
        row.refresh_from_db()
        return row if row.state != State.PENDING else None

    return wait_until(done, timeout=timeout, interval=0.05, what=f"delivery {row.message_id}")


def wait_for_job(job: Any, *, timeout: float = 30.0) -> Any:
    def done() -> bool:
        services.sweep()
        job.refresh_from_db()
        return job.is_terminal

    wait_until(done, timeout=timeout, interval=0.1, what=f"job {job.pk} to finish")
    return job


def delivery_for(endpoint: WebhookEndpoint, event: str) -> OutboundDelivery:
    return wait_until(
        lambda: OutboundDelivery.objects.filter(endpoint=endpoint, event=event).first(),
        timeout=10,
        what=f"a {event} delivery",
    )


# Job events through a real worker -------------------------------------------


@pytest.mark.pipeline
@pytest.mark.django_db(transaction=True)
class TestJobEvents:
    def test_success_is_delivered_once_to_subscribers_only(
        self, imagegen_settings, hooks, celery_worker, receiver
    ):
        subscribed = endpoint_at(receiver, "/subscribed", events_=(events.JOB_SUCCEEDED,))
        unsubscribed = endpoint_at(receiver, "/unsubscribed", events_=(events.JOB_FAILED,))
        inactive = endpoint_at(receiver, "/inactive", active=False)

        job = wait_for_job(services.create_job(prompt="a webhook lighthouse"))
        assert job.status == Status.SUCCEEDED, job.error_message
        row = delivered(delivery_for(subscribed, events.JOB_SUCCEEDED))

        assert row.state == State.DELIVERED
        assert (row.attempts, row.last_status_code, row.job_id) == (1, 200, job.pk)
        [request] = receiver.at("/subscribed")
        assert request.verified, request.error
        assert request.headers["webhook-id"] == row.message_id
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"].startswith("imagegen/")
        payload = request.payload
        assert payload["type"] == "job.succeeded"
        assert datetime.fromisoformat(payload["timestamp"])
        assert payload["data"]["id"] == str(job.pk)
        assert payload["data"]["status"] == "succeeded"
        [image] = payload["data"]["images"]
        assert image["url"] == job.images.get().file.url
        # Exactly the bytes that were signed: compact JSON of the stored payload.
        assert request.body == delivery.encode(row.payload)
        assert not OutboundDelivery.objects.filter(endpoint__in=[unsubscribed, inactive]).exists()
        assert receiver.at("/unsubscribed") == receiver.at("/inactive") == []

    def test_failure_is_delivered(self, imagegen_settings, hooks, celery_worker, receiver):
        endpoint = endpoint_at(receiver, "/failed", events_=(events.JOB_FAILED,))
        job = wait_for_job(services.create_job(prompt="x [sandbox:fail=CONTENT_VIOLATION]"))
        assert job.status == Status.FAILED
        row = delivered(delivery_for(endpoint, events.JOB_FAILED))
        assert row.state == State.DELIVERED
        [request] = receiver.at("/failed")
        assert request.verified, request.error
        assert request.payload["type"] == "job.failed"
        assert request.payload["data"]["error_code"] == "CONTENT_VIOLATION"

    @pytest.mark.parametrize(
        ("end", "event"),
        [(services.expire, events.JOB_EXPIRED), (services.cancel, events.JOB_CANCELED)],
    )
    def test_expiry_and_cancelation_are_delivered(
        self, imagegen_settings, hooks, celery_worker, receiver, end, event
    ):
        endpoint = endpoint_at(receiver, "/ended", events_=(event,))
        job = make_job(status=Status.SUBMITTED, deadline_at=timezone.now() - timedelta(seconds=1))
        assert end(job.pk)
        row = delivered(delivery_for(endpoint, event))
        assert row.state == State.DELIVERED
        [request] = receiver.at("/ended")
        assert request.verified, request.error
        assert request.payload["type"] == event
        assert request.payload["data"]["id"] == str(job.pk)

    def test_retried_until_delivered_with_one_id_and_fresh_signatures(
        self, imagegen_settings, hooks, settings, celery_worker, receiver
    ):
        # Waits over a second apart, so each attempt has its own timestamp.
        use(settings, WEBHOOK_MAX_ATTEMPTS=8, WEBHOOK_RETRY_SCHEDULE=(1.2,))
        endpoint = endpoint_at(receiver, "/flaky")
        receiver.script("/flaky", 500, 500)
        row = delivered(events.send_test(endpoint))

        assert (row.state, row.attempts, row.last_status_code) == (State.DELIVERED, 3, 200)
        assert row.last_error == ""
        requests = receiver.at("/flaky")
        assert len(requests) == 3
        assert all(r.verified for r in requests), [r.error for r in requests]
        assert {r.headers["webhook-id"] for r in requests} == {row.message_id}
        stamps = [int(r.headers["webhook-timestamp"]) for r in requests]
        assert stamps == sorted(set(stamps))
        assert all(abs(int(r.headers["webhook-timestamp"]) - r.at) <= 2 for r in requests)
        assert len({r.headers["webhook-signature"] for r in requests}) == 3
        assert {r.body for r in requests} == {delivery.encode(row.payload)}
        assert requests[0].payload["type"] == "webhook.test"

    def test_fails_after_max_attempts(self, imagegen_settings, hooks, celery_worker, receiver):
        endpoint = endpoint_at(receiver, "/down")
        receiver.defaults["/down"] = 503
        row = delivered(events.send_test(endpoint))
        assert (row.state, row.attempts, row.last_status_code) == (State.FAILED, 3, 503)
        assert "HTTP 503" in row.last_error and "3 attempts" in row.last_error
        assert len(receiver.at("/down")) == 3

    def test_lost_message_is_sent_again_by_the_sweeper(
        self, imagegen_settings, hooks, celery_worker, receiver
    ):
        endpoint = endpoint_at(receiver, "/lost")
        row = pending(endpoint, next_attempt_at=timezone.now() - timedelta(seconds=1))
        assert services.sweep()["webhooks"] == 1
        assert services.sweep()["webhooks"] == 0  # pushed a lease ahead meanwhile
        row = delivered(row)
        assert row.state == State.DELIVERED
        assert len(receiver.at("/lost")) == 1


# One attempt, on the service ------------------------------------------------


@pytest.mark.services
class TestAttempt:
    @pytest.mark.django_db(transaction=True)
    def test_duplicate_messages_at_once_send_one_request(self, hooks, receiver):
        receiver.delay = 0.2
        row = pending(endpoint_at(receiver, "/dup"))
        outcomes = run_together([lambda: delivery.attempt(row.pk, 0)] * 2)
        assert sorted(outcomes) == ["delivered", "not-claimed"]
        assert delivery.attempt(row.pk, 0) == "not-claimed"  # a late duplicate
        assert len(receiver.at("/dup")) == 1
        row.refresh_from_db()
        assert (row.state, row.attempts) == (State.DELIVERED, 1)

    @pytest.mark.django_db
    @pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "hooks.example.test"])
    def test_private_and_loopback_refused_by_default(self, settings, receiver, monkeypatch, host):
        # The name resolves to the receiver: allowed, it would get the request.
        monkeypatch.setattr(fetching, "resolve", lambda name, port: ["127.0.0.1"])
        use(settings, WEBHOOK_ALLOW_PRIVATE_HOSTS=False)
        row = pending(endpoint_at(receiver, "/private", url=receiver.url("/private", host)))
        assert delivery.attempt(row.pk, 0) == "failed"
        row.refresh_from_db()
        assert (row.state, row.attempts, row.last_status_code) == (State.FAILED, 1, None)
        assert "private" in row.last_error
        assert receiver.requests == []

    @pytest.mark.django_db
    def test_the_checked_address_is_the_one_connected_to(self, hooks, receiver, monkeypatch):
        monkeypatch.setattr(fetching, "resolve", lambda name, port: ["127.0.0.1"])
        url = receiver.url("/named", "hooks.example.test")
        row = pending(endpoint_at(receiver, "/named", url=url))
        assert delivery.attempt(row.pk, 0) == "delivered"
        [request] = receiver.at("/named")
        assert request.headers["host"] == f"hooks.example.test:{receiver.port}"
        assert request.verified, request.error

    @pytest.mark.django_db
    def test_redirect_is_not_followed(self, hooks, settings, receiver):
        use(settings, WEBHOOK_MAX_ATTEMPTS=1)
        receiver.script("/moved", (302, {"Location": "/elsewhere?token=abc"}))
        row = pending(endpoint_at(receiver, "/moved"))
        assert delivery.attempt(row.pk, 0) == "failed"
        row.refresh_from_db()
        assert row.last_status_code == 302
        assert "redirects are not followed" in row.last_error
        assert "/elsewhere" in row.last_error and "token" not in row.last_error
        assert [r.path for r in receiver.requests] == ["/moved"]

    @pytest.mark.django_db
    def test_gone_disables_the_endpoint(self, hooks, receiver):
        receiver.defaults["/gone"] = 410
        endpoint = endpoint_at(receiver, "/gone")
        row = pending(endpoint)
        assert delivery.attempt(row.pk, 0) == "failed"
        row.refresh_from_db()
        endpoint.refresh_from_db()
        assert (row.state, row.attempts, row.last_status_code) == (State.FAILED, 1, 410)
        assert not endpoint.is_active
        assert events.subscribers(events.JOB_SUCCEEDED) == []

    @pytest.mark.django_db
    def test_inactive_endpoint_gets_nothing(self, hooks, receiver):
        row = pending(endpoint_at(receiver, "/off", active=False))
        assert delivery.attempt(row.pk, 0) == "failed"
        row.refresh_from_db()
        assert "disabled" in row.last_error
        assert receiver.requests == []

    @pytest.mark.django_db
    def test_timeout_is_retried(
        self, hooks, settings, receiver, django_capture_on_commit_callbacks
    ):
        use(settings, WEBHOOK_TIMEOUT=0.3)
        receiver.delay = 1.0
        row = pending(endpoint_at(receiver, "/slow"))
        with django_capture_on_commit_callbacks() as callbacks:
            assert delivery.attempt(row.pk, 0) == "retry"
        row.refresh_from_db()
        assert row.state == State.PENDING and "Timed out" in row.last_error
        assert len(callbacks) == 1  # the next attempt, as a short countdown

    @pytest.mark.django_db
    def test_long_waits_go_through_the_sweeper(
        self, hooks, settings, receiver, django_capture_on_commit_callbacks
    ):
        use(settings, WEBHOOK_RETRY_SCHEDULE=(100,), MAX_COUNTDOWN=2)
        receiver.script("/later", 500)
        row = pending(endpoint_at(receiver, "/later"))
        before = timezone.now()
        with django_capture_on_commit_callbacks() as callbacks:
            assert delivery.attempt(row.pk, 0) == "retry"
        assert callbacks == []  # no countdown longer than MAX_COUNTDOWN
        row.refresh_from_db()
        wait = (row.next_attempt_at - before).total_seconds()
        assert 89 <= wait <= 111
        assert (row.attempts, row.last_status_code, row.last_error) == (1, 500, "HTTP 500")

        assert delivery.resend_due(timezone.now()) == 0
        with django_capture_on_commit_callbacks() as callbacks:
            assert delivery.resend_due(row.next_attempt_at + timedelta(seconds=1)) == 1
        assert len(callbacks) == 1
        assert delivery.attempt(row.pk, 1) == "delivered"
        row.refresh_from_db()
        assert (row.state, row.attempts) == (State.DELIVERED, 2)

    @pytest.mark.django_db
    def test_payload_and_subscriptions(self, hooks, settings, receiver):
        use(settings, CALLBACK_BASE_URL="https://cms.example.com")
        wanted = endpoint_at(receiver, "/a", events_=(events.JOB_SUCCEEDED,))
        endpoint_at(receiver, "/b", events_=(events.JOB_FAILED,))
        endpoint_at(receiver, "/c", active=False)
        job = make_job(images=1)
        [row] = events.publish(events.JOB_SUCCEEDED, job)
        assert (row.endpoint, row.job, row.event, row.state) == (
            wanted,
            job,
            "job.succeeded",
            State.PENDING,
        )
        assert row.message_id.startswith("msg_") and len(row.message_id) == 36
        assert row.next_attempt_at > timezone.now()  # the sweeper's fallback
        assert set(row.payload) == {"type", "timestamp", "data"}
        [image] = row.payload["data"]["images"]
        assert image["url"].startswith("https://cms.example.com/")
        assert json.loads(delivery.encode(row.payload)) == row.payload


# Secrets ------------------------------------------------------------------


@pytest.mark.services
@pytest.mark.django_db
def test_secret_and_signatures_never_leak(hooks, settings, receiver, admin_client, caplog):
    caplog.set_level(logging.DEBUG)
    use(settings, WEBHOOK_MAX_ATTEMPTS=1)
    endpoint = endpoint_at(receiver, "/ok")
    secret = signing.endpoint_secret(endpoint)
    receiver.echo = True  # error answers echo the request, signature included
    receiver.defaults["/ok"] = 200
    rows = [pending(endpoint) for _ in range(3)]
    assert delivery.attempt(rows[0].pk, 0) == "delivered"
    receiver.defaults["/ok"] = 400
    assert delivery.attempt(rows[1].pk, 0) == "failed"
    receiver.script("/ok", (302, {"Location": "/x"}))
    assert delivery.attempt(rows[2].pk, 0) == "failed"
    signatures = [r.headers["webhook-signature"] for r in receiver.requests]
    assert len(signatures) == 3

    pages = [
        admin_client.get(reverse("admin:imagegen_webhookendpoint_change", args=[endpoint.pk])),
        admin_client.get(reverse("admin:imagegen_webhookendpoint_changelist")),
        admin_client.get(reverse("admin:imagegen_outbounddelivery_changelist")),
        *(
            admin_client.get(reverse("admin:imagegen_outbounddelivery_change", args=[r.pk]))
            for r in rows
        ),
    ]
    assert all(page.status_code == 200 for page in pages)
    stored = serializers.serialize(
        "json", [*OutboundDelivery.objects.all(), *WebhookEndpoint.objects.all()]
    )
    assert "HTTP 400" in stored  # the echoed body was kept, scrubbed
    haystacks = [stored, caplog.text, *(page.content.decode() for page in pages)]
    needles = [secret, secret.removeprefix("whsec_")]
    needles += [s for sig in signatures for s in (sig, sig.partition(",")[2])]
    for haystack in haystacks:
        for needle in needles:
            assert needle not in haystack


# Signing ------------------------------------------------------------------


def test_signature_matches_the_spec_and_the_reference_library():
    # The Standard Webhooks specification's example.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    msg_id, timestamp, body = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert signing.sign(secret, msg_id, timestamp, body) == expected
    reference = Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, UTC), body)
    assert reference == expected
    assert signing.sign(secret, msg_id, timestamp, body.encode()) == expected


@pytest.mark.django_db
def test_endpoint_secret_is_derived_per_endpoint_and_version(settings):
    first = WebhookEndpoint.objects.create(url="https://a.example.com/hook", events=[])
    second = WebhookEndpoint.objects.create(url="https://b.example.com/hook", events=[])
    secret = signing.endpoint_secret(first)
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert signing.endpoint_secret(first) == secret
    assert signing.endpoint_secret(second) != secret
    first.secret_version += 1
    assert signing.endpoint_secret(first) != secret
    first.secret_version -= 1
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    assert signing.endpoint_secret(first) != secret


# Admin --------------------------------------------------------------------


ADD = "admin:imagegen_webhookendpoint_add"


def endpoint_change(endpoint: WebhookEndpoint) -> str:
    return reverse("admin:imagegen_webhookendpoint_change", args=[endpoint.pk])


def endpoint_action(endpoint: WebhookEndpoint, action: str) -> str:
    return reverse("admin:imagegen_webhookendpoint_action", args=[endpoint.pk, action])


@pytest.mark.django_db
class TestAdmin:
    def test_create_shows_the_secret_once(self, admin_client, admin_user):
        response = admin_client.post(
            reverse(ADD),
            {
                "url": "https://hooks.example.com/imagegen",
                "description": "CMS automation",
                "events": ["job.succeeded", "job.failed"],
                "is_active": "on",
            },
            follow=True,
        )
        endpoint = WebhookEndpoint.objects.get()
        assert endpoint.events == ["job.succeeded", "job.failed"]
        assert endpoint.created_by == admin_user
        secret = signing.endpoint_secret(endpoint)
        assert sum(secret in message for message in messages_of(response)) == 1
        assert response.content.decode().count(secret) == 1
        assert secret not in admin_client.get(endpoint_change(endpoint)).content.decode()
        listing = admin_client.get(reverse("admin:imagegen_webhookendpoint_changelist"))
        assert secret not in listing.content.decode()

    @pytest.mark.parametrize(
        "url",
        [
            "ftp://hooks.example.com/x",
            "https://user:password@hooks.example.com/x",
            "https://token@hooks.example.com/x",
            "http://127.0.0.1/x",
            "http://localhost:8000/x",
            "http://10.0.0.5/x",
            "http://169.254.169.254/latest/meta-data",
        ],
    )
    def test_unsafe_urls_refused(self, admin_client, url):
        response = admin_client.post(
            reverse(ADD), {"url": url, "events": ["job.succeeded"], "is_active": "on"}
        )
        assert response.status_code == 200
        assert response.context["adminform"].form.errors["url"]
        assert not WebhookEndpoint.objects.exists()

    def test_private_urls_allowed_when_configured(self, admin_client, settings):
        settings.IMAGEGEN = {**settings.IMAGEGEN, "WEBHOOK_ALLOW_PRIVATE_HOSTS": True}
        response = admin_client.post(
            reverse(ADD), {"url": "http://127.0.0.1:9000/x", "events": ["job.failed"]}
        )
        assert response.status_code == 302
        assert WebhookEndpoint.objects.get().is_active is False

    def test_rotate_changes_the_secret(self, admin_client):
        endpoint = WebhookEndpoint.objects.create(
            url="https://hooks.example.com/x", events=["job.succeeded"]
        )
        old = signing.endpoint_secret(endpoint)
        page = admin_client.get(endpoint_change(endpoint)).content.decode()
        assert endpoint_action(endpoint, "rotate_secret") in page
        response = admin_client.post(endpoint_action(endpoint, "rotate_secret"), follow=True)
        endpoint.refresh_from_db()
        assert endpoint.secret_version == 2
        new = signing.endpoint_secret(endpoint)
        assert new != old
        assert any(new in message for message in messages_of(response))
        assert old not in response.content.decode()
        # A delivery signed with the old secret no longer verifies.
        body, stamp = '{"type":"webhook.test"}', int(time.time())
        headers = {
            "webhook-id": "msg_1",
            "webhook-timestamp": str(stamp),
            "webhook-signature": signing.sign(old, "msg_1", stamp, body),
        }
        Webhook(old).verify(body, headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(new).verify(body, headers)

    def test_send_test_event(self, admin_client, django_capture_on_commit_callbacks):
        endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.com/x", events=[])
        with django_capture_on_commit_callbacks() as callbacks:
            response = admin_client.post(endpoint_action(endpoint, "send_test_event"), follow=True)
        row = OutboundDelivery.objects.get()
        assert (row.endpoint, row.event, row.state, row.job) == (
            endpoint,
            "webhook.test",
            State.PENDING,
            None,
        )
        assert row.payload["type"] == "webhook.test"
        assert len(callbacks) == 1  # the first attempt, after commit
        assert any("test event was queued" in m for m in messages_of(response))

    def test_no_test_event_to_an_inactive_endpoint(self, admin_client):
        endpoint = WebhookEndpoint.objects.create(
            url="https://hooks.example.com/x", events=[], is_active=False
        )
        response = admin_client.post(
            reverse("admin:imagegen_webhookendpoint_changelist"),
            {"action": "send_test_event", "_selected_action": [str(endpoint.pk)]},
            follow=True,
        )
        assert not OutboundDelivery.objects.exists()
        assert any("Inactive" in m for m in messages_of(response))

    def test_retry_now(self, admin_client, django_capture_on_commit_callbacks):
        endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.com/x", events=[])
        failed = pending(endpoint, state=State.FAILED, attempts=8, next_attempt_at=None)
        done = pending(endpoint, state=State.DELIVERED, attempts=1, next_attempt_at=None)
        waiting = pending(endpoint, attempts=2)
        with django_capture_on_commit_callbacks() as callbacks:
            response = admin_client.post(
                reverse("admin:imagegen_outbounddelivery_changelist"),
                {
                    "action": "retry_deliveries",
                    "_selected_action": [str(r.pk) for r in (failed, done, waiting)],
                },
                follow=True,
            )
        assert len(callbacks) == 2
        assert any("2 of 3" in m for m in messages_of(response))
        for row in (failed, done, waiting):
            row.refresh_from_db()
        assert (failed.state, failed.attempts) == (State.PENDING, 8)
        assert failed.next_attempt_at is not None
        assert done.state == State.DELIVERED

    def test_delivery_log_is_read_only(self, admin_client):
        endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.com/x", events=[])
        row = pending(endpoint, last_error="HTTP 500: oops", last_status_code=500)
        assert admin_client.get(reverse("admin:imagegen_outbounddelivery_add")).status_code == 403
        listing = admin_client.get(
            reverse("admin:imagegen_outbounddelivery_changelist") + "?state=pending"
        )
        assert listing.status_code == 200
        assert "hooks.example.com" in listing.content.decode()
        page = admin_client.get(reverse("admin:imagegen_outbounddelivery_change", args=[row.pk]))
        text = page.content.decode()
        assert "HTTP 500: oops" in text and "wörld" in text
        assert 'name="last_error"' not in text


# Checks -------------------------------------------------------------------


def check_ids(settings: Any, **values: Any) -> set[str]:
    settings.IMAGEGEN = {**settings.IMAGEGEN, **values}
    return {message.id for message in check_settings()}


@pytest.mark.parametrize("schedule", [(), [], "5,10", None, (5, -1), (5, "10"), (True,)])
def test_bad_retry_schedule_is_an_error(settings, schedule):
    assert "imagegen.E011" in check_ids(settings, WEBHOOK_RETRY_SCHEDULE=schedule)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"WEBHOOK_TIMEOUT": 0}, "imagegen.E003"),
        ({"WEBHOOK_MAX_ATTEMPTS": -1}, "imagegen.E003"),
        ({"WEBHOOK_TIMEOUT": 60}, "imagegen.E012"),
        ({"WEBHOOK_ALLOW_PRIVATE_HOSTS": True, "DEBUG": False}, "imagegen.W004"),
    ],
)
def test_webhook_settings_checks(settings, values, expected):
    values = dict(values)
    if "DEBUG" in values:
        settings.DEBUG = values.pop("DEBUG")
    assert expected in check_ids(settings, **values)


def test_default_webhook_settings_pass(settings):
    found = check_ids(settings, WEBHOOK_RETRY_SCHEDULE=(0, 0.5, 60))
    assert not found & {"imagegen.E003", "imagegen.E011", "imagegen.E012", "imagegen.W004"}

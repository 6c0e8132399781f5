"""Unauthenticated callbacks cannot grow the database without bound (issue 13, Callbacks):
refused deliveries keep a bounded prefix, and old records are purged."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from imagegen import services, tokens
from imagegen.choices import Status
from imagegen.models import WebhookDelivery
from imagegen.services import callbacks, health, retention

from .factories import make_job

pytestmark = [pytest.mark.services, pytest.mark.django_db]

Outcome = WebhookDelivery.Outcome

#: Bound of one refused record besides its body: three kept headers of
#: HEADER_VALUE_BYTES and the error text.
OVERHEAD = 3 * callbacks.HEADER_VALUE_BYTES + callbacks.ERROR_BYTES


def stored_bytes(delivery: WebhookDelivery) -> int:
    """What a record holds from the request: body, headers, error (UTF-8)."""
    texts = (delivery.body, delivery.error, *delivery.headers.values())
    return sum(len(text.encode("utf-8")) for text in texts)


@pytest.fixture
def job(imagegen_settings: Any) -> Any:
    make_job(status=Status.SUBMITTED, provider_task_id="task-other")
    return make_job(status=Status.SUBMITTED, provider_task_id="task-own")


def big_envelope(task_id: str, padding: str) -> bytes:
    data = {"taskId": task_id, "state": "processing", "padding": padding}
    return json.dumps({"code": 200, "data": data}).encode()


#: The refusals anyone can provoke, each with a body near MAX_CALLBACK_BYTES
#: (or over it): a wrong token, an unknown job, a malformed body (ASCII, and
#: multi-byte text so the cut falls inside a character), another job's
#: task, a body over MAX_CALLBACK_BYTES.
FLOOD = {
    "wrong-token": (403, lambda job: (job.pk, "x" * 64, b"{" + b" " * 200_000)),
    "unknown-job": (404, lambda job: (uuid.uuid4(), "t", b"[" * 200_000)),
    "malformed": (400, lambda job: (job.pk, None, b"not json " * 20_000)),
    "malformed-multibyte": (400, lambda job: (job.pk, None, "é€😀".encode() * 20_000)),
    "another-jobs-task": (
        409,
        lambda job: (job.pk, None, big_envelope("task-other", "p" * 200_000)),
    ),
    "too-large": (413, lambda job: (job.pk, None, b"x" * 300_000)),
}


@pytest.mark.parametrize("limit", [None, 100])
@pytest.mark.parametrize("kind", FLOOD)
def test_a_flood_of_refused_deliveries_stores_at_most_the_bound_each(
    client: Any, job: Any, settings: Any, imagegen_settings: Any, kind: str, limit: int | None
) -> None:
    """Family: every kind of refusal (FLOOD) x REFUSED_BODY_BYTES at its
    default and set to 100. N requests with bodies of 200-300 KB store at
    most N x (REFUSED_BODY_BYTES + headers + error) bytes, every body a
    valid UTF-8 prefix of what was sent, and the record says it was cut."""
    if limit is not None:
        settings.IMAGEGEN = {**imagegen_settings, "REFUSED_BODY_BYTES": limit}
    bound = limit or 2048
    status, request = FLOOD[kind]
    n = 5
    for _ in range(n):
        job_id, token, content = request(job)
        token = tokens.callback_token(job_id) if token is None else token
        path = reverse(
            "imagegen:callback", kwargs={"provider": "sandbox", "job_id": job_id, "token": token}
        )
        response = client.post(
            path, content, content_type="application/json", HTTP_USER_AGENT="u" * 10_000
        )
        assert response.status_code == status

    deliveries = list(WebhookDelivery.objects.all())
    assert len(deliveries) == n
    assert sum(stored_bytes(d) for d in deliveries) <= n * (bound + OVERHEAD)
    for delivery in deliveries:
        assert delivery.outcome in callbacks.REFUSED
        assert len(delivery.body.encode("utf-8")) <= bound
        assert content.decode("utf-8", "backslashreplace").startswith(delivery.body)
        assert len(delivery.headers["User-Agent"]) == callbacks.HEADER_VALUE_BYTES
        if delivery.body:  # a declared size over the limit is refused unread
            assert f"Body cut to its first {bound} bytes." in delivery.error


def test_an_accepted_delivery_keeps_its_whole_body(client: Any, job: Any) -> None:
    """The bound is for refusals only: an accepted callback is kept whole (for replay)."""
    content = big_envelope("task-own", "p" * 10_000)
    path = reverse(
        "imagegen:callback",
        kwargs={"provider": "sandbox", "job_id": job.pk, "token": tokens.callback_token(job.pk)},
    )
    assert client.post(path, content, content_type="application/json").status_code == 200
    assert WebhookDelivery.objects.get().body == content.decode()


# --- purging ----------------------------------------------------------------------------------

#: Every outcome, and whether it counts as refused.
OUTCOMES = {outcome: outcome in callbacks.REFUSED for outcome in Outcome.values}


def make_deliveries(now: Any) -> dict[int, bool]:
    """For every outcome, records aged just inside and just past its
    retention (30 days refused, 180 others) and at both other cutoffs, so a
    purge using the wrong one shows. Returns {pk: expired}."""
    expected = {}
    for outcome, refused in OUTCOMES.items():
        keep_days = 30 if refused else 180
        for age in (29, 31, 179, 181):
            delivery = WebhookDelivery.objects.create(
                provider="sandbox", job_ref="x", outcome=outcome, body="b"
            )
            # received_at is set on insert (auto_now_add): age it afterwards.
            received = now - timedelta(days=age)
            WebhookDelivery.objects.filter(pk=delivery.pk).update(received_at=received)
            expected[delivery.pk] = age > keep_days
    return expected


def remaining() -> set[int]:
    return set(WebhookDelivery.objects.values_list("pk", flat=True))


def test_purge_removes_exactly_the_expired_records_of_each_kind(imagegen_settings: Any) -> None:
    """Family: every outcome x ages on both sides of both retentions. The
    purge deletes exactly the expired ones (refused past 30 days, others
    past 180), reports the counts per kind, and keeps the rest."""
    now = timezone.now()
    expected = make_deliveries(now)

    counts = retention.purge(now)

    assert remaining() == {pk for pk, expired in expected.items() if not expired}
    refused_expired = sum(OUTCOMES[o] for o in OUTCOMES) * 3  # 31, 179, 181 days
    other_expired = sum(not OUTCOMES[o] for o in OUTCOMES) * 1  # 181 days
    assert counts == {"refused": refused_expired, "accepted": other_expired}


@pytest.mark.parametrize(("refused_days", "days"), [(1, 400), (200, 10)])
def test_purge_follows_the_retention_settings(
    settings: Any, imagegen_settings: Any, refused_days: int, days: int
) -> None:
    """Family: retentions set shorter and longer than the defaults (and the
    refused one longer than the other): each kind is cut at its own setting."""
    settings.IMAGEGEN = {
        **imagegen_settings,
        "REFUSED_DELIVERY_RETENTION_DAYS": refused_days,
        "DELIVERY_RETENTION_DAYS": days,
    }
    now = timezone.now()
    ages = {}
    for outcome, refused in OUTCOMES.items():
        for age in (5, 30, 100, 300):
            delivery = WebhookDelivery.objects.create(
                provider="sandbox", job_ref="x", outcome=outcome
            )
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                received_at=now - timedelta(days=age)
            )
            ages[delivery.pk] = age > (refused_days if refused else days)

    retention.purge(now)

    assert remaining() == {pk for pk, expired in ages.items() if not expired}


def test_the_command_purges_and_its_dry_run_only_counts(imagegen_settings: Any) -> None:
    """``manage.py imagegen purge-deliveries --dry-run`` prints the counts
    and deletes nothing; without it, it deletes exactly the expired ones."""
    expected = make_deliveries(timezone.now())
    every = set(expected)
    kept = {pk for pk, expired in expected.items() if not expired}
    message = "{} 12 refused and 4 other callback deliveries past their retention.\n"

    out = StringIO()
    call_command("imagegen", "purge-deliveries", "--dry-run", stdout=out)
    assert out.getvalue() == message.format("would delete")
    assert remaining() == every

    out = StringIO()
    call_command("imagegen", "purge-deliveries", stdout=out)
    assert out.getvalue() == message.format("deleted")
    assert remaining() == kept


def test_the_sweeper_purges_at_most_hourly_in_bounded_batches(
    imagegen_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweeper deletes one batch of each kind per run; while expired
    records are left it goes on at the next run, then waits PURGE_EVERY
    before the next purge, whatever expires meanwhile."""
    monkeypatch.setattr(retention, "BATCH", 4)
    now = timezone.now()
    expected = make_deliveries(now)
    expired = sum(expected.values())  # 12 refused, 4 others
    kept = {pk for pk, gone in expected.items() if not gone}

    purged = []
    while retention.PURGED not in health.last_seen(retention.PURGED) and len(purged) < 10:
        before = len(remaining())
        purged.append(services.sweep(now)["purged"])
        assert before - len(remaining()) == purged[-1] <= 2 * retention.BATCH
        now += timedelta(seconds=5)
    # A full batch may hide more: the run after the last full one finds none and is done.
    assert purged == [8, 4, 4, 0] and sum(purged) == expired
    assert remaining() == kept
    assert health.last_seen(retention.PURGED)[retention.PURGED] == now - timedelta(seconds=5)

    # Done: nothing more until PURGE_EVERY has passed, though more expire.
    old = WebhookDelivery.objects.create(provider="sandbox", job_ref="x", outcome=Outcome.FORBIDDEN)
    WebhookDelivery.objects.filter(pk=old.pk).update(received_at=now - timedelta(days=40))
    assert services.sweep(now + retention.PURGE_EVERY - timedelta(seconds=10))["purged"] == 0
    assert old.pk in remaining()
    assert services.sweep(now + retention.PURGE_EVERY)["purged"] == 1
    assert old.pk not in remaining()

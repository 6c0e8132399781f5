"""Rotating an endpoint's secret: the previous secret keeps signing, next to
the new one, for ``WEBHOOK_SECRET_GRACE`` seconds.

Signatures are checked with the Standard Webhooks reference library
(``standardwebhooks``), as a receiver would: a header with several
signatures verifies if one of them matches its secret.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from imagegen.checks import check_settings
from imagegen.checks.values import MAX_SECRET_GRACE
from imagegen.models import OutboundDelivery, WebhookEndpoint
from imagegen.webhooks import delivery, signing

from .factories import messages_of
from .test_outbound_webhooks import endpoint_at, hooks, pending, receiver, use  # noqa: F401

# On every database: the SQLite pass runs them too.
pytestmark = pytest.mark.services

GRACE = 3600
BODY = '{"type":"webhook.test"}'
MSG = "msg_rotation"


def verifies(secret: str, header: str, stamp: int) -> bool:
    """Whether the reference library accepts ``header`` for ``secret``."""
    headers = {"webhook-id": MSG, "webhook-timestamp": str(stamp), "webhook-signature": header}
    try:
        Webhook(secret).verify(BODY, headers)
    except WebhookVerificationError:
        return False
    return True


def rotated(endpoint: WebhookEndpoint, when: datetime) -> datetime | None:
    until = signing.rotate(WebhookEndpoint.objects.filter(pk=endpoint.pk), now=when)
    endpoint.refresh_from_db()
    return until


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("rotations", "at", "signing_versions"),
    [
        pytest.param([], 0, [1], id="never-rotated"),
        pytest.param([0], 0, [2, 1], id="at-the-rotation"),
        pytest.param([0], GRACE / 2, [2, 1], id="during-grace"),
        pytest.param([0], GRACE - 1e-6, [2, 1], id="last-microsecond-of-grace"),
        pytest.param([0], GRACE, [2], id="exactly-at-the-end-of-grace"),
        pytest.param([0], 2 * GRACE, [2], id="after-grace"),
        pytest.param([0, 600], 1200, [3, 2], id="rotated-twice-within-grace"),
        pytest.param([0, 600], GRACE + 300, [3, 2], id="twice-the-second-grace-runs-on"),
        pytest.param([0, 600], GRACE + 600, [3], id="twice-at-the-end-of-the-second-grace"),
        pytest.param([0, 2 * GRACE], 2 * GRACE + 1, [3, 2], id="rotated-again-after-grace"),
    ],
)
def test_signature_header_through_rotations(settings, rotations, at, signing_versions):
    """The family: never rotated (one signature), during the grace period
    (two: the new secret's first, then the previous one's), its last
    microsecond, exactly at its end and after it (one), rotated twice within
    the grace (the new and the immediately previous secret; the first one no
    longer), a second rotation's grace outliving the first's, a rotation
    after the previous grace ended. Every secret that signs verifies with
    the reference library, every other one does not."""
    settings.IMAGEGEN = {**settings.IMAGEGEN, "WEBHOOK_SECRET_GRACE": GRACE}
    endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.com/x", events=[])
    start = timezone.now()
    for offset in rotations:
        assert rotated(endpoint, start + timedelta(seconds=offset)) == start + timedelta(
            seconds=offset + GRACE
        )
    now = start + timedelta(seconds=at)
    stamp = int(time.time())
    secrets = signing.signing_secrets(endpoint, now)
    header = signing.signature_header(secrets, MSG, stamp, BODY)

    versions = {v: signing.endpoint_secret(endpoint, v) for v in (1, 2, 3)}
    assert header.split(" ") == [
        signing.sign(versions[v], MSG, stamp, BODY) for v in signing_versions
    ]
    for version, secret in versions.items():
        assert verifies(secret, header, stamp) == (version in signing_versions), version


@pytest.mark.django_db
def test_without_grace_the_previous_secret_ends_at_rotation(settings):
    settings.IMAGEGEN = {**settings.IMAGEGEN, "WEBHOOK_SECRET_GRACE": 0}
    endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.com/x", events=[])
    now = timezone.now()
    assert rotated(endpoint, now) is None
    assert endpoint.previous_secret_until is None
    assert signing.signing_secrets(endpoint, now) == [signing.endpoint_secret(endpoint)]


@pytest.mark.services
@pytest.mark.django_db
def test_a_delivery_during_grace_verifies_with_either_secret(hooks, settings, receiver):  # noqa: F811
    """A real POST after a rotation: the receiver that still has the old
    secret accepts it, so does the one that has the new secret; an error
    answer echoing the request keeps neither secret nor either signature."""
    use(settings, WEBHOOK_MAX_ATTEMPTS=1)
    endpoint = endpoint_at(receiver, "/rotating")
    old = signing.endpoint_secret(endpoint)
    rotated(endpoint, timezone.now())
    new = signing.endpoint_secret(endpoint)
    assert delivery.attempt(pending(endpoint).pk, 0) == "delivered"
    receiver.echo = True
    receiver.defaults["/rotating"] = 400
    failed = pending(endpoint)
    assert delivery.attempt(failed.pk, 0) == "failed"

    for request in receiver.at("/rotating"):
        signatures = request.headers["webhook-signature"].split(" ")
        assert len(signatures) == 2
        for secret in (old, new):
            Webhook(secret).verify(request.body, request.headers)
    failed.refresh_from_db()
    assert "HTTP 400" in failed.last_error
    header = receiver.at("/rotating")[1].headers["webhook-signature"]
    needles = [old, new, old.removeprefix("whsec_"), new.removeprefix("whsec_"), header]
    needles += [part for sig in header.split(" ") for part in (sig, sig.partition(",")[2])]
    for needle in needles:
        assert needle not in failed.last_error


@pytest.mark.django_db
@pytest.mark.parametrize("grace", [0, 3600, 86400])
def test_admin_rotation_says_until_when_the_old_secret_signs(admin_client, settings, grace):
    """Grace periods: none, an hour, the default day."""
    settings.IMAGEGEN = {**settings.IMAGEGEN, "WEBHOOK_SECRET_GRACE": grace}
    endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.com/x", events=[])
    old = signing.endpoint_secret(endpoint)
    before = timezone.now()
    action = reverse("admin:imagegen_webhookendpoint_action", args=[endpoint.pk, "rotate_secret"])
    response = admin_client.post(action, follow=True)
    after = timezone.now()
    endpoint.refresh_from_db()
    texts = messages_of(response)
    assert endpoint.secret_version == 2
    assert any(signing.endpoint_secret(endpoint) in text for text in texts)
    assert old not in response.content.decode()
    change = reverse("admin:imagegen_webhookendpoint_change", args=[endpoint.pk])
    page = admin_client.get(change).content.decode()
    if grace == 0:
        assert endpoint.previous_secret_until is None
        assert any("no longer signs" in text for text in texts)
        assert "No longer signs." in page
        return
    until = endpoint.previous_secret_until
    span = timedelta(seconds=grace)
    assert before + span <= until <= after + span
    shown = timezone.localtime(until).strftime("%Y-%m-%d %H:%M:%S")
    assert any(shown in text and "WEBHOOK_SECRET_GRACE" in text for text in texts)
    assert f"until {shown}" in page
    assert OutboundDelivery.objects.count() == 0  # rotating sends nothing


@pytest.mark.parametrize(
    ("grace", "valid"),
    [
        (0, True),
        (1, True),
        (0.5, True),
        (86400, True),
        (MAX_SECRET_GRACE, True),
        (MAX_SECRET_GRACE + 1, False),
        (-1, False),
        ("86400", False),
        (None, False),
        (True, False),
        (float("nan"), False),
        (float("inf"), False),
    ],
)
def test_secret_grace_setting_is_checked(settings, grace, valid):
    """Numbers from 0 to a year pass; negative, too long, not finite, not a
    number (strings, None, booleans) are error E025."""
    settings.IMAGEGEN = {**settings.IMAGEGEN, "WEBHOOK_SECRET_GRACE": grace}
    found = {message.id for message in check_settings()}
    assert ("imagegen.E025" not in found) == valid


def test_default_grace_is_a_day():
    from imagegen import conf

    assert conf.DEFAULTS["WEBHOOK_SECRET_GRACE"] == 86400

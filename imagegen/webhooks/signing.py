"""Endpoint secrets and Standard Webhooks signatures.

The secret is never stored: it is derived from ``SECRET_KEY``, the
endpoint's id and its ``secret_version`` with Django's ``salted_hmac``, so
the database alone cannot forge a delivery and rotating the secret is
bumping the version. Changing ``SECRET_KEY`` changes every endpoint's
secret too.

After a rotation the previous secret (version - 1) keeps signing until
``previous_secret_until`` (``WEBHOOK_SECRET_GRACE`` after the rotation): each
delivery then carries two signatures, the current secret's first, so a
receiver that still has the old secret verifies it too. At that instant
and after, only the current one signs. Rotating again within the grace
period keeps only the immediately previous secret (the one just replaced),
with a new grace period from then.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.crypto import salted_hmac

from .. import conf

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
_SALT = "imagegen.webhook-secret"


def endpoint_secret(endpoint: Any, version: int | None = None) -> str:
    """The endpoint's signing secret (of its current ``secret_version``, or of
    ``version``), ``whsec_`` + base64 of 32 bytes (the form the Standard
    Webhooks libraries take)."""
    version = endpoint.secret_version if version is None else version
    key = salted_hmac(_SALT, f"{endpoint.pk}:{version}", algorithm="sha256").digest()
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def signing_secrets(endpoint: Any, now: datetime | None = None) -> list[str]:
    """The secrets a delivery is signed with at ``now``: the current one, then
    the previous one while its grace period runs (``now`` before
    ``previous_secret_until``; at that instant it has ended)."""
    secrets = [endpoint_secret(endpoint)]
    until = endpoint.previous_secret_until
    if until is not None and endpoint.secret_version > 1 and (now or timezone.now()) < until:
        secrets.append(endpoint_secret(endpoint, endpoint.secret_version - 1))
    return secrets


def signature_header(secrets: list[str], msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``webhook-signature`` header: one ``v1,...`` signature per secret,
    in that order, separated by spaces (the specification allows several;
    a receiver accepts the delivery if one matches)."""
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets)


def rotate(endpoints: QuerySet, now: datetime | None = None) -> datetime | None:
    """Give ``endpoints`` new secrets; the ones they replace keep signing for
    ``WEBHOOK_SECRET_GRACE`` seconds. Returns until when (None without a
    grace period)."""
    now = now or timezone.now()
    grace = timedelta(seconds=float(conf.get_setting("WEBHOOK_SECRET_GRACE")))
    until = now + grace if grace else None
    endpoints.update(secret_version=F("secret_version") + 1, previous_secret_until=until)
    return until


def _key(secret: str) -> bytes:
    if secret.startswith(SECRET_PREFIX):
        secret = secret[len(SECRET_PREFIX) :]
    return base64.b64decode(secret)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``webhook-signature`` value: ``v1,`` + base64 of the HMAC-SHA256,
    keyed with the decoded secret, of ``{msg_id}.{timestamp}.{body}``."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    signed = f"{msg_id}.{int(timestamp)}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")

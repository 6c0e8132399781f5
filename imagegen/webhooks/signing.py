"""Endpoint secrets and Standard Webhooks signatures.

The secret is never stored: it is derived from ``SECRET_KEY``, the
endpoint's id and its ``secret_version`` with Django's ``salted_hmac``, so
the database alone cannot forge a delivery and rotating the secret is
bumping the version. Changing ``SECRET_KEY`` changes every endpoint's
secret too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from django.utils.crypto import salted_hmac

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
_SALT = "imagegen.webhook-secret"


def endpoint_secret(endpoint: Any) -> str:
    """The endpoint's signing secret, ``whsec_`` + base64 of 32 bytes (the
    form the Standard Webhooks libraries take)."""
    key = salted_hmac(
        _SALT, f"{endpoint.pk}:{endpoint.secret_version}", algorithm="sha256"
    ).digest()
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


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

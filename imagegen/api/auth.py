"""Who is calling: a bearer token (``Authorization: Bearer ig_...``) or the session.

A token is ``ig_`` plus 256 random bits (``secrets.token_urlsafe(32)``). Only
its SHA-256 is stored, with its first characters (``prefix``) to tell tokens
apart in lists; the token itself is shown once, when it is made. Lookup is by
digest: an attacker who can time the query learns about a hash of their own
guess, never about a stored token.

Session requests are checked for CSRF on unsafe methods, as Django's forms
are; token requests are not: they carry no cookie, so a browser on another
site cannot make one with the user's credentials.

A token also has *scopes* (:data:`SCOPES`): every operation of the route
table names the one it needs, and a token without it is refused
(:func:`require_scope`) whatever its user's permissions. Scopes only narrow:
the user's permissions still apply. Sessions have no scopes; Django's
permissions alone govern them.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..models import ApiToken
from ..tokens import hash_token
from .errors import ApiError

#: What every token starts with: secret scanners and people recognise it.
TOKEN_PREFIX = "ig_"  # noqa: S105 (a marker, not a secret)
#: Characters of the token kept in ``ApiToken.prefix`` (the model's max_length).
PREFIX_LENGTH = 12
#: ``last_used_at`` is written at most this often per token, not on every request.
TOUCH_INTERVAL = timedelta(seconds=60)
#: Longer bearer values are refused before hashing.
MAX_TOKEN_LENGTH = 100

SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")
REALM = 'Bearer realm="imagegen"'

#: What a token may be allowed to do, with the admin's label for each. Every
#: authenticated operation of the route table needs exactly one of these.
SCOPES: dict[str, Any] = {
    "read": gettext_lazy("read: list and read jobs and their images"),
    "generate": gettext_lazy("generate: create jobs (spends money)"),
    "cancel": gettext_lazy("cancel: cancel jobs"),
}


def new_key() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def assign_key(token: ApiToken) -> str:
    """Give an unsaved token a fresh key; returns the key (shown once, never stored)."""
    raw = new_key()
    token.prefix = raw[:PREFIX_LENGTH]
    token.key_hash = hash_token(raw)
    return raw


def create_token(
    user: Any,
    name: str,
    expires_at: datetime | None = None,
    scopes: Iterable[str] = tuple(SCOPES),
) -> tuple[ApiToken, str]:
    """Save a new token for ``user`` with ``scopes`` (default: all of them);
    returns it and the raw key to hand over once. Unknown scopes: ValueError."""
    chosen = list(scopes)
    if unknown := sorted(set(chosen) - set(SCOPES)):
        raise ValueError(f"Unknown scopes {unknown}; choose from {list(SCOPES)}.")
    token = ApiToken(user=user, name=name, expires_at=expires_at, scopes=sorted_scopes(chosen))
    raw = assign_key(token)
    token.save()
    return token, raw


def authenticate_token(raw: str) -> ApiToken:
    """The live token whose key is ``raw``; raises ApiError (401) otherwise."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > MAX_TOKEN_LENGTH:
        raise invalid_token(_("Invalid token."))
    digest = hash_token(raw)
    token = ApiToken.objects.select_related("user").filter(key_hash=digest).first()
    if token is None or not constant_time_compare(token.key_hash, digest):
        raise invalid_token(_("Invalid token."))
    now = timezone.now()
    if token.revoked:
        raise invalid_token(_("This token was revoked."))
    if token.expires_at is not None and token.expires_at <= now:
        raise invalid_token(_("This token has expired."))
    if not token.user.is_active:
        raise invalid_token(_("This token's user is inactive."))
    touch(token, now)
    return token


def sorted_scopes(scopes: Iterable[str]) -> list[str]:
    """``scopes`` without repeats, in :data:`SCOPES`' order (how they are stored)."""
    chosen = set(scopes)
    return [scope for scope in SCOPES if scope in chosen]


def require_scope(token: ApiToken | None, scope: str) -> None:
    """Refuse a token request whose token lacks ``scope`` (403
    ``insufficient_scope``, RFC 6750's challenge); a session (``token`` None)
    passes: its permissions decide."""
    if token is None or scope in token.scopes:
        return
    raise ApiError(
        "insufficient_scope",
        _("This token lacks the scope “%(scope)s” that this operation needs; make a token with it.")
        % {"scope": scope},
        headers={"WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{scope}"'},
        scope=scope,
    )


def touch(token: ApiToken, now: datetime) -> None:
    """Record use, at most once per TOUCH_INTERVAL: a busy automation must not
    turn every read into a write. The condition is in the UPDATE too, so
    concurrent requests write once between them."""
    if token.last_used_at is not None and now - token.last_used_at < TOUCH_INTERVAL:
        return
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - TOUCH_INTERVAL)
    ApiToken.objects.filter(stale, pk=token.pk).update(last_used_at=now)
    token.last_used_at = now


def authenticate(request: HttpRequest) -> tuple[Any, ApiToken | None]:
    """The calling user and token (None for a session). Raises ApiError:
    401 without credentials or with a bad token, 403 on a failed CSRF check."""
    scheme, _sep, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "bearer":
        token = authenticate_token(credentials.strip())
        return token.user, token
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        raise ApiError(
            "not_authenticated",
            _("Authenticate with “Authorization: Bearer <token>” or a logged-in session."),
            headers={"WWW-Authenticate": REALM},
        )
    if request.method not in SAFE_METHODS:
        enforce_csrf(request)
    return user, None


def invalid_token(message: str) -> ApiError:
    return ApiError(
        "invalid_token",
        message,
        headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
    )


class _CsrfCheck(CsrfViewMiddleware):
    # Return the reason instead of Django's HTML 403 page.
    def _reject(self, request: HttpRequest, reason: str) -> str:  # type: ignore[override]
        return reason


def enforce_csrf(request: HttpRequest) -> None:
    """Django's CSRF check for a session request (the API views themselves are
    exempt, so token requests pass)."""
    check = _CsrfCheck(lambda request: None)  # type: ignore[arg-type,return-value]
    check.process_request(request)
    reason = check.process_view(request, None, (), {})  # type: ignore[arg-type]
    if reason:
        raise ApiError(
            "csrf_failed",
            _("CSRF check failed (%(reason)s): send the X-CSRFToken header, or use a token.")
            % {"reason": reason},
        )

"""The API's one error shape.

Every refusal is ``{"error": {"code": ..., "message": ...}}`` with the HTTP
status of :data:`CODES`; ``validation_error`` adds ``fields`` (field name to
messages), ``permission_denied`` names the missing ``permission``,
``insufficient_scope`` the token's missing ``scope``, and
``not_cancelable`` gives the job's ``status``. Codes are stable (clients
branch on them); messages are for people and may be translated.
``service_unavailable`` (the database is unreachable) comes with
``Retry-After`` (:mod:`.outage`).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.utils.translation import gettext as _

#: Every error code and its HTTP status (the OpenAPI document enumerates these).
CODES: dict[str, int] = {
    "validation_error": 400,
    "malformed_request": 400,
    "not_authenticated": 401,
    "invalid_token": 401,
    # Budgets are money: 402 lets an automation tell "wait for the next
    # period" apart from a missing permission (403) or a conflict (409).
    "budget_exceeded": 402,
    "permission_denied": 403,
    # The token lacks the operation's scope (auth.require_scope), whatever
    # its user may do: making a new token helps, asking for a permission not.
    "insufficient_scope": 403,
    "csrf_failed": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "idempotency_conflict": 409,
    "not_cancelable": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "service_unavailable": 503,
}

#: Non-field errors of the service layer mapped onto API codes.
SERVICE_CODES = {
    "budget_exceeded": "budget_exceeded",
    "idempotency_key_taken": "idempotency_conflict",
}


class ApiError(Exception):
    """Raised anywhere below a view; the dispatcher turns it into the response."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        fields: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = CODES[code]
        self.code = code
        self.message = str(message)
        self.fields = fields
        self.headers = headers or {}
        self.extra = extra

    def response(self) -> JsonResponse:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields is not None:
            body["fields"] = self.fields
        body.update(self.extra)
        response = JsonResponse({"error": body}, status=self.status)
        for name, value in self.headers.items():
            response[name] = value
        return response


def validation_error(fields: dict[str, list[str]], message: str | None = None) -> ApiError:
    return ApiError(
        "validation_error",
        message or _("The request has invalid fields; see “fields”."),
        fields={name: [str(m) for m in messages] for name, messages in fields.items()},
    )


def permission_denied(permission: str, message: str) -> ApiError:
    return ApiError("permission_denied", message, permission=permission)


def not_found(message: str | None = None) -> ApiError:
    return ApiError("not_found", message or _("No such job."))


def service_unavailable() -> ApiError:
    """The database cannot be reached (:mod:`.outage` adds ``Retry-After``)."""
    return ApiError(
        "service_unavailable", _("The service is temporarily unavailable; try again shortly.")
    )


def from_validation_error(error: ValidationError) -> ApiError:
    """A service's ValidationError as an API error: per-field messages become
    ``validation_error``; known non-field codes (budget, idempotency) their own."""
    if hasattr(error, "error_dict"):
        return validation_error(error.message_dict)
    code = getattr(error, "code", None) or next(
        (e.code for e in error.error_list if getattr(e, "code", None)), None
    )
    message = " ".join(error.messages)
    if code in SERVICE_CODES:
        return ApiError(SERVICE_CODES[code], message)
    return validation_error({"non_field_errors": error.messages}, message)

"""APIXO's GPT Image 2 API (async and callback request types).

Wire protocol: ``docs/flow.md`` ("The APIXO protocol"). Every answer is
an envelope ``{"code": int, "message": str, "data": {...}}``; the status and
the callback share the same ``data`` shape, parsed by :func:`parse_task`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from django.utils.translation import gettext_lazy as _

from .. import jsonparse
from ..choices import TaskStatus
from ..exceptions import MalformedCallbackError, PermanentError, TransientError
from .base import (
    AccountStatus,
    Capabilities,
    GenerationRequest,
    HTTPProvider,
    Output,
    Submission,
    TaskState,
    UnusableAnswer,
    check_result_urls,
    parse_json,
)

#: Editor-facing explanations of APIXO's task failure codes. Unknown codes
#: fall back to the provider's own failMsg.
FAIL_MESSAGES: dict[str, Any] = {
    "CONTENT_VIOLATION": _("The prompt or a reference image was refused by the content policy."),
    "NSFW_DETECTED": _("The provider detected unsafe content and refused the request."),
    "SensitiveContentDetected": _("The provider detected sensitive content and refused it."),
    "PROMPT_TOO_LONG": _("The prompt is too long for this model."),
    "INVALID_PROMPT": _("The provider could not use this prompt."),
    "INVALID_IMAGE_URL": _("A reference image URL is invalid or not reachable by the provider."),
    "IMAGE_TOO_LARGE": _("A reference image is too large."),
    "UNSUPPORTED_FORMAT": _("A reference image is in an unsupported format."),
    "IMAGE_DOWNLOAD_FAILED": _("The provider could not download a reference image."),
    "PROCESSING_TIMEOUT": _("The provider took too long and gave up. Try again."),
    "MODEL_UNAVAILABLE": _("The model is temporarily unavailable. Try again later."),
    "GENERATION_FAILED": _("The provider failed to generate the image. Try again."),
    "INSUFFICIENT_CREDITS": _("The provider account has run out of credit."),
}

HTTP_MESSAGES: dict[int, Any] = {
    400: _("The provider rejected the request as invalid."),
    401: _("The provider rejected the API key. Check IMAGEGEN['PROVIDERS'] API_KEY."),
    402: _("The provider account has insufficient balance."),
    403: _("The request was refused by the provider's content policy."),
    404: _("The provider does not know this model or task."),
    429: _("The provider is rate limiting requests."),
    500: _("The provider had an internal error."),
    503: _("The provider is temporarily unavailable."),
}

_STATES = {
    "pending": TaskStatus.PENDING,
    "waiting": TaskStatus.PENDING,
    "queuing": TaskStatus.PENDING,
    "processing": TaskStatus.PROCESSING,
    "generating": TaskStatus.PROCESSING,
    "success": TaskStatus.SUCCESS,
    "failed": TaskStatus.FAILED,
    "fail": TaskStatus.FAILED,
}


class APIXOProvider(HTTPProvider):
    """GPT Image 2 on APIXO. Options: ``API_KEY``, ``BASE_URL``, ``MODEL``."""

    capabilities = Capabilities(max_references=16, max_prompt_length=20000)
    option_names = frozenset()  # HTTPProvider's are all it reads

    def submit(self, request: GenerationRequest) -> Submission:
        payload: dict[str, Any] = {
            "request_type": "callback" if request.callback_url else "async",
            "input": {
                "mode": request.mode,
                "prompt": request.prompt,
                "aspect_ratio": request.aspect_ratio,
                "resolution": request.resolution,
            },
        }
        if request.callback_url:
            payload["callback_url"] = request.callback_url
        if request.image_urls:
            payload["input"]["image_urls"] = list(request.image_urls)
        response = self.request(
            "POST", f"/generateTask/{self.model}", json=payload, idempotent=False
        )
        data = self._envelope_data(response)
        task_id = data.get("taskId") if isinstance(data, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise TransientError(
                "The provider accepted the request but sent no task id.", provider=self.name
            )
        return Submission(task_id=task_id)

    def fetch(self, task_id: str) -> TaskState:
        response = self.request(
            "GET", f"/statusTask/{self.model}", params={"taskId": task_id}, idempotent=True
        )
        try:
            return parse_task(self._envelope_data(response))
        except UnusableAnswer as exc:
            # Hostile or broken for good: the job fails with the reason,
            # nothing is downloaded.
            raise PermanentError(
                f"Unusable status answer: {exc}", code="MALFORMED_ANSWER", provider=self.name
            ) from None
        except MalformedCallbackError as exc:
            raise TransientError(f"Unreadable status answer: {exc}", provider=self.name) from None

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> TaskState:
        envelope = parse_json(body, "The callback body")
        if not isinstance(envelope, dict) or not isinstance(envelope.get("data"), dict):
            raise MalformedCallbackError("The callback has no 'data' object.")
        return parse_task(envelope["data"])

    def account_status(self, timeout: float | None = None) -> AccountStatus:
        """``GET /apikeys/current-balance``: the key's balance in USD."""
        extra = {"timeout": timeout} if timeout else {}
        response = self.request("GET", "/apikeys/current-balance", idempotent=True, **extra)
        data = self._envelope_data(response)
        try:
            # A JSON number (APIXO sends 74.87); bool is an int subclass, not a balance.
            if isinstance(data, bool) or not isinstance(data, (int, float, str)):
                raise InvalidOperation
            balance = Decimal(str(data))
            if not balance.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            raise TransientError(
                "The provider's balance answer is not a number.", provider=self.name
            ) from None
        return AccountStatus(balance=balance, currency="USD")

    def http_error(self, response: httpx.Response) -> TransientError | PermanentError:
        error = super().http_error(response)
        if error.status_code in HTTP_MESSAGES:
            detail = self.error_message(response)
            text = str(HTTP_MESSAGES[error.status_code])
            error.message = f"{text} ({detail})" if detail else text
            error.args = (error.message,)
        return error

    def error_message(self, response: httpx.Response) -> str:
        try:
            message = jsonparse.loads(response.content).get("message")
        except (jsonparse.MalformedJSON, AttributeError):
            return ""
        return str(message)[:300] if message else ""

    def _envelope_data(self, response: httpx.Response) -> Any:
        """The envelope's ``data``. Raises :class:`UnusableAnswer` (nested
        too deep), :class:`TransientError` (not JSON, no envelope) or the
        envelope's own error."""
        try:
            envelope = parse_json(response.content, "The answer")
        except UnusableAnswer:
            raise
        except MalformedCallbackError:
            raise TransientError(
                "The provider answered with something that is not JSON.", provider=self.name
            ) from None
        if not isinstance(envelope, dict):
            raise TransientError("The provider's answer has no envelope.", provider=self.name)
        code = envelope.get("code", 200)
        if isinstance(code, int) and code >= 400:
            # The envelope can carry an error under a 200 status.
            fake = httpx.Response(code, json=envelope, request=response.request)
            raise self.http_error(fake)
        return envelope.get("data")


def parse_task(data: Any) -> TaskState:
    """Parse the ``data`` object shared by the status answer and the callback."""
    if not isinstance(data, dict):
        raise MalformedCallbackError("'data' must be an object.")
    task_id = data.get("taskId")
    if not isinstance(task_id, str) or not task_id:
        raise MalformedCallbackError("'data.taskId' is missing.")
    state = _STATES.get(str(data.get("state", "")).lower())
    if state is None:
        raise MalformedCallbackError(f"Unknown task state {str(data.get('state'))[:40]!r}.")
    outputs: tuple[Output, ...] = ()
    if state == TaskStatus.SUCCESS:
        outputs = tuple(Output(url=url) for url in _result_urls(data.get("resultJson")))
        if not outputs:
            raise MalformedCallbackError("A successful task has no result URLs.")
    code = str(data.get("failCode") or "")
    message = str(data.get("failMsg") or "")
    if state == TaskStatus.FAILED:
        known = FAIL_MESSAGES.get(code)
        if known is not None:
            message = f"{known} ({message})" if message else str(known)
        elif not message:
            message = f"The provider reported failure {code or 'without a reason'}."
        code = code or "FAILED"
    return TaskState(
        task_id=task_id,
        status=state,
        outputs=outputs,
        error_code=code[:64],
        error_message=message[:1000],
        created_at_ms=_int_or_none(data.get("createTime")),
        completed_at_ms=_int_or_none(data.get("completeTime")),
        cost_time_ms=_int_or_none(data.get("costTime")),
    )


def _result_urls(result_json: Any) -> list[str]:
    if isinstance(result_json, str):
        # JSON inside a JSON string: its depth is bounded on its own.
        result_json = parse_json(result_json, "'resultJson'")
    if not isinstance(result_json, dict):
        raise MalformedCallbackError("'resultJson' must hold an object.")
    return check_result_urls(result_json.get("resultUrls"))


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None

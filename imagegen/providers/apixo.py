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

from .. import failures, jsonparse
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

#: APIXO's task failure codes with a message of their own in
#: :data:`imagegen.failures.CATALOG`; the task's ``failMsg`` is its detail.
#: Other codes are told as "the provider reported the failure <code>".
FAIL_CODES = frozenset(
    {
        "CONTENT_VIOLATION",
        "NSFW_DETECTED",
        "SensitiveContentDetected",
        "PROMPT_TOO_LONG",
        "INVALID_PROMPT",
        "INVALID_IMAGE_URL",
        "IMAGE_TOO_LARGE",
        "UNSUPPORTED_FORMAT",
        "IMAGE_DOWNLOAD_FAILED",
        "PROCESSING_TIMEOUT",
        "MODEL_UNAVAILABLE",
        "GENERATION_FAILED",
        "INSUFFICIENT_CREDITS",
    }
)

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
            raise TransientError(code="NO_TASK_ID", provider=self.name)
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
                code="MALFORMED_ANSWER", params={"reason": str(exc)}, provider=self.name
            ) from None
        except MalformedCallbackError as exc:
            raise TransientError(
                code="UNREADABLE_ANSWER", params={"reason": str(exc)}, provider=self.name
            ) from None

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
            raise TransientError(code="BALANCE_NOT_NUMBER", provider=self.name) from None
        return AccountStatus(balance=balance, currency="USD")

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
            raise TransientError(code="NOT_JSON", provider=self.name) from None
        if not isinstance(envelope, dict):
            raise TransientError(code="NO_ENVELOPE", provider=self.name)
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
    code = str(data.get("failCode") or "")[:64]
    message = str(data.get("failMsg") or "")
    params: dict[str, Any] = {}
    if state == TaskStatus.FAILED:
        # The task's own failMsg is the provider's words: shown as sent.
        params = {"detail": message or None}
        if not code:
            code = "FAILED"
        elif code not in FAIL_CODES:
            params.update(template="PROVIDER_FAILURE", fail_code=code)
        params = failures.clean_params(params)
        message = failures.site_text(code, params, message)
    return TaskState(
        task_id=task_id,
        status=state,
        outputs=outputs,
        error_code=code,
        error_message=message[:1000],
        error_params=params,
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

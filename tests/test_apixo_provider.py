"""The APIXO client: envelope and resultJson parsing, and real HTTP against the sandbox."""

from __future__ import annotations

import json

import pytest

from imagegen.choices import TaskStatus
from imagegen.exceptions import (
    MalformedCallbackError,
    OutcomeUnknownError,
    PermanentError,
    TransientError,
)
from imagegen.failures import CATALOG
from imagegen.providers import GenerationRequest, get_provider
from imagegen.providers.apixo import FAIL_CODES, APIXOProvider, parse_task
from imagegen.providers.base import parse_retry_after

from .conftest import wait_until


def success_data(**extra):
    data = {
        "taskId": "t-1",
        "state": "success",
        "resultJson": json.dumps({"resultUrls": ["https://cdn.apixo.ai/a.png"]}),
        "failCode": "",
        "failMsg": "",
        "createTime": 1700000000000,
        "completeTime": 1700000042000,
        "costTime": 42000,
    }
    data.update(extra)
    return data


class TestParseTask:
    def test_success(self):
        state = parse_task(success_data())
        assert state.status == TaskStatus.SUCCESS
        assert [o.url for o in state.outputs] == ["https://cdn.apixo.ai/a.png"]
        assert state.cost_time_ms == 42000
        assert state.completed_at_ms == 1700000042000

    @pytest.mark.parametrize("state", ["pending", "processing"])
    def test_in_progress_has_no_outputs(self, state):
        parsed = parse_task({"taskId": "t", "state": state, "resultJson": ""})
        assert parsed.status == state
        assert parsed.outputs == ()
        assert not parsed.is_terminal

    def test_known_fail_code_gets_editor_message(self):
        state = parse_task(
            {"taskId": "t", "state": "failed", "failCode": "CONTENT_VIOLATION", "failMsg": "nope"}
        )
        assert state.status == TaskStatus.FAILED
        assert state.error_code == "CONTENT_VIOLATION"
        assert "content policy" in state.error_message
        assert "nope" in state.error_message
        assert state.error_params == {"detail": "nope"}

    @pytest.mark.parametrize("code", sorted(FAIL_CODES))
    def test_every_documented_fail_code_has_its_message(self, code):
        state = parse_task({"taskId": "t", "state": "failed", "failCode": code, "failMsg": ""})
        assert state.error_code == code
        assert state.error_params == {}
        assert state.error_message == str(CATALOG[code])

    def test_unknown_fail_code_is_still_readable(self):
        state = parse_task({"taskId": "t", "state": "failed", "failCode": "WEIRD_NEW_CODE"})
        assert state.error_code == "WEIRD_NEW_CODE"
        assert "WEIRD_NEW_CODE" in state.error_message

    @pytest.mark.parametrize(
        "data",
        [
            None,
            [],
            {"state": "success"},
            {"taskId": "", "state": "success"},
            {"taskId": "t", "state": "exploded"},
            success_data(resultJson="not json"),
            success_data(resultJson=json.dumps({"resultUrls": []})),
            success_data(resultJson=json.dumps({"resultUrls": [42]})),
            success_data(resultJson=json.dumps(["x"])),
        ],
    )
    def test_malformed(self, data):
        with pytest.raises(MalformedCallbackError):
            parse_task(data)

    def test_parse_callback_requires_utf8_json_envelope(self):
        provider = APIXOProvider("apixo", {"MODEL": "gpt-image-2"})
        for body in (b"\xff\xfe", b"", b"[]", b'{"data": 3}'):
            with pytest.raises(MalformedCallbackError):
                provider.parse_callback(body, {})
        envelope = {"code": 200, "message": "success", "data": success_data()}
        state = provider.parse_callback(json.dumps(envelope).encode(), {})
        assert state.task_id == "t-1"


def test_retry_after_parsing():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def request(prompt="a red bicycle", **kwargs):
    fields = {"mode": "text-to-image", "resolution": "1k", "aspect_ratio": "1:1"}
    fields.update(kwargs)
    return GenerationRequest(prompt=prompt, **fields)


@pytest.fixture
def provider(imagegen_settings):
    return get_provider("sandbox")


class TestAgainstSandbox:
    def test_submit_and_fetch_until_success(self, provider, sandbox):
        submission = provider.submit(request())
        assert submission.task_id
        state = wait_until(
            lambda: (s := provider.fetch(submission.task_id)).is_terminal and s,
            timeout=10,
            what="sandbox task to finish",
        )
        assert state.status == TaskStatus.SUCCESS
        assert state.outputs[0].url.startswith(sandbox.url)
        assert sandbox.stats()["submits"] == 1

    def test_image_to_image_sends_references(self, provider, sandbox):
        submission = provider.submit(
            request(mode="image-to-image", image_urls=("https://example.com/a.png",))
        )
        assert submission.task_id

    def test_bad_key_is_permanent(self, settings, sandbox):
        sandbox_config_key = "the-right-key"
        sandbox.config.api_key = sandbox_config_key
        try:
            provider = APIXOProvider(
                "sandbox", {"BASE_URL": sandbox.api_url, "API_KEY": "wrong", "MODEL": "gpt-image-2"}
            )
            with pytest.raises(PermanentError) as info:
                provider.submit(request())
        finally:
            sandbox.config.api_key = None
        assert info.value.status_code == 401
        assert "API key" in str(info.value)
        assert "wrong" not in str(info.value)

    def test_validation_error_is_permanent(self, provider):
        with pytest.raises(PermanentError) as info:
            provider.submit(request(mode="image-to-image"))
        assert info.value.status_code == 400

    @pytest.mark.parametrize(("status", "words"), [(401, "API key"), (402, "balance")])
    def test_account_errors_are_permanent_and_readable(self, provider, status, words):
        with pytest.raises(PermanentError) as info:
            provider.submit(request(f"x [sandbox:submit-http={status}]"))
        assert info.value.status_code == status
        assert words in str(info.value)

    @pytest.mark.parametrize("status", [500, 503])
    def test_server_errors_are_transient(self, provider, status):
        with pytest.raises(TransientError) as info:
            provider.submit(request(f"x [sandbox:submit-http={status}]"))
        assert info.value.status_code == status

    def test_429_carries_retry_after(self, provider):
        with pytest.raises(TransientError) as info:
            provider.submit(request("x [sandbox:submit-http=429]"))
        assert info.value.status_code == 429
        assert info.value.retry_after == 1.0

    def test_forgotten_task_is_404(self, provider):
        submission = provider.submit(request("x [sandbox:forget]"))
        with pytest.raises(PermanentError) as info:
            provider.fetch(submission.task_id)
        assert info.value.status_code == 404

    def test_unreachable_provider_is_transient(self):
        provider = APIXOProvider(
            "apixo", {"BASE_URL": "http://127.0.0.1:9/api/v1", "API_KEY": "k", "MODEL": "m"}
        )
        with pytest.raises(TransientError) as info:
            provider.fetch("t")
        assert not isinstance(info.value, OutcomeUnknownError)

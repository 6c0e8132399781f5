"""The OpenAI Images client, over real HTTP against the sandbox's OpenAI endpoint;
and the official ``openai`` package against the same endpoint, which proves the
sandbox speaks OpenAI's protocol."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from imagegen.choices import Mode, TaskStatus
from imagegen.exceptions import (
    ImagegenConfigurationError,
    MalformedCallbackError,
    OutcomeUnknownError,
    PermanentError,
    TransientError,
)
from imagegen.providers import GenerationRequest
from imagegen.providers.openai import SIZES, OpenAIImagesProvider
from imagegen.sandbox import SandboxConfig, SandboxServer

from .conftest import unavailable

KEY = "sk-sandbox-test-key-0123456789"
WRONG_KEY = "sk-wrong-secret-key-9876543210"


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    """A sandbox that checks the key, with near-instant generations."""
    with SandboxServer(config=SandboxConfig(latency=(0.0, 0.05), api_key=KEY)) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(server: SandboxServer) -> SandboxServer:
    server.reset()
    return server


def make_provider(sandbox: SandboxServer, **options: Any) -> OpenAIImagesProvider:
    base = {"API_KEY": KEY, "BASE_URL": f"{sandbox.url}/v1", "MODEL": "gpt-image-1"}
    return OpenAIImagesProvider("openai", {**base, **options})


def t2i(prompt: str = "a lighthouse", resolution: str = "1k", ratio: str = "1:1"):
    return GenerationRequest(Mode.TEXT_TO_IMAGE, prompt, resolution, ratio)


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def reference_urls(sandbox: SandboxServer) -> list[str]:
    """Two result files the sandbox serves itself (a PNG and a JPEG)."""
    urls = []
    refs = (("ref one [sandbox:latency=0]", "png"), ("ref two [sandbox:format=jpeg]", "jpg"))
    for prompt, ext in refs:
        status, data = sandbox.submit(
            {"request_type": "async", "input": {"mode": "text-to-image", "prompt": prompt}}
        )
        assert status == 200
        urls.append(f"{sandbox.url}/files/{data['taskId']}/0.{ext}")
    return urls


class TestOptions:
    def test_defaults(self):
        provider = OpenAIImagesProvider("openai", {"API_KEY": "k"})
        assert provider.base_url == "https://api.openai.com/v1"
        assert provider.model == "gpt-image-1"
        assert provider._timeout.read == 300.0
        assert provider._timeout.connect == 10.0
        caps = provider.capabilities
        assert caps.supports_callback is False
        assert set(caps.modes) == {Mode.TEXT_TO_IMAGE, Mode.IMAGE_TO_IMAGE}
        assert caps.max_references == 16
        assert provider.latency("1k") == (10.0, 60.0)

    @pytest.mark.parametrize(
        ("ratio", "size"),
        [
            ("1:1", "1024x1024"),
            ("4:3", "1536x1024"),
            ("16:9", "1536x1024"),
            ("3:4", "1024x1536"),
            ("9:16", "1024x1536"),
            ("auto", "auto"),
        ],
    )
    @pytest.mark.parametrize("resolution", ["1k", "2k", "4k"])
    def test_size_table(self, resolution, ratio, size):
        provider = OpenAIImagesProvider("openai", {})
        assert provider.size_for(resolution, ratio) == size == SIZES[ratio]

    def test_sizes_override_accepts_both_key_styles(self):
        provider = OpenAIImagesProvider(
            "openai", {"SIZES": {"2k:16:9": "2048x1152", ("4k", "1:1"): "4096x4096"}}
        )
        assert provider.size_for("2k", "16:9") == "2048x1152"
        assert provider.size_for("4k", "1:1") == "4096x4096"
        assert provider.size_for("1k", "16:9") == "1536x1024"

    @pytest.mark.parametrize(
        "options",
        [
            {"SIZES": {"2k": "2048x2048"}},
            {"SIZES": {"2k:1:1": "big"}},
            {"QUALITY": "ultra"},
            {"OUTPUT_FORMAT": "gif"},
            {"BACKGROUND": "transparent", "OUTPUT_FORMAT": "jpeg"},
            {"OUTPUT_COMPRESSION": 101},
        ],
    )
    def test_bad_options_name_the_setting(self, options):
        setting = r"IMAGEGEN\['PROVIDERS'\]\['openai'\]"
        with pytest.raises(ImagegenConfigurationError, match=setting):
            OpenAIImagesProvider("openai", options)

    def test_fetch_and_callbacks_are_refused(self):
        provider = OpenAIImagesProvider("openai", {})
        with pytest.raises(PermanentError, match="nothing to poll") as caught:
            provider.fetch("req_1")
        assert caught.value.status_code is None
        with pytest.raises(MalformedCallbackError):
            provider.parse_callback(b"{}", {})


class TestSandboxHTTP:
    def test_text_to_image_returns_png_of_the_mapped_size(self, sandbox):
        submission = make_provider(sandbox).submit(t2i(ratio="16:9"))
        result = submission.result
        assert result is not None and result.status == TaskStatus.SUCCESS
        assert submission.task_id.startswith("req_") and result.task_id == submission.task_id
        [output] = result.outputs
        assert output.url is None
        image = opened(output.data)
        assert (image.format, image.size) == ("PNG", (1536, 1024))
        assert result.cost_time_ms is not None and result.cost_time_ms >= 0
        assert result.completed_at_ms >= result.created_at_ms
        assert sandbox.stats()["openai_generations"] == 1

    @pytest.mark.parametrize(("fmt", "pil"), [("jpeg", "JPEG"), ("webp", "WEBP")])
    def test_output_formats(self, sandbox, fmt, pil):
        provider = make_provider(sandbox, OUTPUT_FORMAT=fmt, OUTPUT_COMPRESSION=70, QUALITY="low")
        [output] = provider.submit(t2i(ratio="9:16")).result.outputs
        image = opened(output.data)
        assert (image.format, image.size) == (pil, (1024, 1536))

    def test_transparent_background(self, sandbox):
        provider = make_provider(sandbox, BACKGROUND="transparent")
        [output] = provider.submit(t2i()).result.outputs
        assert "A" in opened(output.data).getbands()

    def test_sizes_override_for_a_larger_model(self, sandbox):
        provider = make_provider(sandbox, MODEL="gpt-image-2", SIZES={"2k:16:9": "2048x1152"})
        [output] = provider.submit(t2i(resolution="2k", ratio="16:9")).result.outputs
        assert opened(output.data).size == (2048, 1152)

    def test_sandbox_validation_error_is_permanent_and_readable(self, sandbox):
        # gpt-image-1 knows three sizes: the sandbox answers 400 in OpenAI's shape.
        provider = make_provider(sandbox, SIZES={"2k:16:9": "2048x1152"})
        with pytest.raises(PermanentError) as caught:
            provider.submit(t2i(resolution="2k", ratio="16:9"))
        assert caught.value.status_code == 400
        assert "Invalid value: '2048x1152'" in caught.value.message
        assert "[param size]" in caught.value.message

    def test_image_to_image_sends_the_downloaded_references(self, sandbox):
        urls = reference_urls(sandbox)
        provider = make_provider(sandbox, ALLOW_PRIVATE_HOSTS=True, OUTPUT_FORMAT="webp")
        request = GenerationRequest(
            Mode.IMAGE_TO_IMAGE, "make it blue", "1k", "3:4", image_urls=tuple(urls)
        )
        [output] = provider.submit(request).result.outputs
        image = opened(output.data)
        assert (image.format, image.size) == ("WEBP", (1024, 1536))
        stats = sandbox.stats()
        # The sandbox checks each part's mimetype against its bytes, like OpenAI.
        assert (stats["openai_edits"], stats["openai_edit_images"]) == (1, 2)
        assert stats["downloads"] == 2

    def test_private_reference_hosts_are_refused_by_default(self, sandbox):
        urls = reference_urls(sandbox)
        request = GenerationRequest(Mode.IMAGE_TO_IMAGE, "p", "1k", "1:1", image_urls=tuple(urls))
        with pytest.raises(PermanentError) as caught:
            make_provider(sandbox).submit(request)
        assert caught.value.code == "INVALID_IMAGE_URL"
        assert "Reference image 1" in caught.value.message
        assert sandbox.stats().get("openai_edits", 0) == 0

    def test_a_reference_that_is_not_an_image_is_refused(self, sandbox):
        _status, data = sandbox.submit(
            {
                "request_type": "async",
                "input": {"mode": "text-to-image", "prompt": "x [sandbox:download=html]"},
            }
        )
        url = f"{sandbox.url}/files/{data['taskId']}/0.png"
        request = GenerationRequest(Mode.IMAGE_TO_IMAGE, "p", "1k", "1:1", image_urls=(url,))
        with pytest.raises(PermanentError) as caught:
            make_provider(sandbox, ALLOW_PRIVATE_HOSTS=True).submit(request)
        assert caught.value.code == "UNSUPPORTED_FORMAT"
        assert sandbox.stats().get("openai_edits", 0) == 0

    def test_moderation_refusal(self, sandbox):
        with pytest.raises(PermanentError) as caught:
            make_provider(sandbox).submit(t2i("something [sandbox:fail=moderation]"))
        assert caught.value.code == "MODERATION"
        assert caught.value.status_code == 400
        assert "safety system" in caught.value.message

    def test_out_of_quota_429_is_permanent(self, sandbox):
        with pytest.raises(PermanentError) as caught:
            make_provider(sandbox).submit(t2i("x [sandbox:fail=INSUFFICIENT_CREDITS]"))
        assert caught.value.code == "INSUFFICIENT_CREDITS"
        assert not caught.value.retryable

    def test_wrong_key_is_permanent_and_never_quoted(self, sandbox):
        provider = make_provider(sandbox, API_KEY=WRONG_KEY)
        with pytest.raises(PermanentError) as caught:
            provider.submit(t2i())
        error = caught.value
        assert error.status_code == 401 and error.code == "401"
        for text in (str(error), error.message, repr(error.args)):
            assert WRONG_KEY not in text
            assert WRONG_KEY[-4:] not in text  # OpenAI quotes the key's last four characters
        assert "API_KEY" in error.message

    def test_rate_limit_is_transient_with_retry_after(self, sandbox):
        with pytest.raises(TransientError) as caught:
            make_provider(sandbox).submit(t2i("x [sandbox:submit-http=429]"))
        assert caught.value.retry_after == 1.0
        assert caught.value.code == "429"
        assert not isinstance(caught.value, OutcomeUnknownError)

    def test_server_error_is_transient(self, sandbox):
        with pytest.raises(TransientError) as caught:
            make_provider(sandbox).submit(t2i("x [sandbox:submit-http=503x1]"))
        assert caught.value.status_code == 503
        # The marker's budget is spent: the retry succeeds.
        assert make_provider(sandbox).submit(t2i("x [sandbox:submit-http=503x1]")).result.outputs

    def test_read_timeout_after_sending_is_outcome_unknown(self, sandbox):
        provider = make_provider(sandbox, TIMEOUT=0.5)
        with pytest.raises(OutcomeUnknownError):
            provider.submit(t2i("slow [sandbox:submit-delay=2]"))

    def test_hangup_after_generation_is_outcome_unknown(self, sandbox):
        with pytest.raises(OutcomeUnknownError):
            make_provider(sandbox).submit(t2i("lost [sandbox:submit-hangup]"))
        assert sandbox.stats()["openai_generations"] == 1


def mocked(handler) -> OpenAIImagesProvider:
    provider = OpenAIImagesProvider(
        "openai", {"API_KEY": KEY, "ORGANIZATION": "org-1", "PROJECT": "proj-1"}
    )
    provider._client = httpx.Client(transport=httpx.MockTransport(handler))
    return provider


class TestNetworkEdge:
    """Answers the sandbox never gives, mocked at the transport."""

    def test_request_shape_and_headers(self):
        seen = {}

        def handler(request: httpx.Request) -> httpx.Response:
            seen["url"] = str(request.url)
            seen["headers"] = request.headers
            seen["body"] = json.loads(request.content)
            data = base64.b64encode(b"\x89PNG fake").decode()
            return httpx.Response(200, json={"created": 1, "data": [{"b64_json": data}]})

        submission = mocked(handler).submit(t2i(ratio="4:3"))
        assert seen["url"] == "https://api.openai.com/v1/images/generations"
        assert seen["headers"]["authorization"] == f"Bearer {KEY}"
        assert seen["headers"]["openai-organization"] == "org-1"
        assert seen["headers"]["openai-project"] == "proj-1"
        assert seen["body"] == {
            "model": "gpt-image-1",
            "prompt": "a lighthouse",
            "n": 1,
            "size": "1536x1024",
            "quality": "auto",
            "background": "auto",
            "output_format": "png",
        }
        assert submission.task_id.startswith("openai-")
        assert submission.result.outputs[0].data == b"\x89PNG fake"

    def test_invalid_base64_is_permanent(self):
        provider = mocked(lambda r: httpx.Response(200, json={"data": [{"b64_json": "@@not b64"}]}))
        with pytest.raises(PermanentError, match="not valid base64") as caught:
            provider.submit(t2i())
        assert caught.value.code == "INVALID_RESPONSE"

    @pytest.mark.parametrize("body", [b"<html>", b"[]", b'{"data": []}', b'{"data": [{}]}'])
    def test_unusable_answers_are_permanent(self, body):
        provider = mocked(lambda r: httpx.Response(200, content=body))
        with pytest.raises(PermanentError) as caught:
            provider.submit(t2i())
        assert caught.value.code == "INVALID_RESPONSE"

    def test_url_outputs_from_compatible_servers(self):
        provider = mocked(
            lambda r: httpx.Response(
                200,
                json={"data": [{"url": "https://cdn.example/a.png"}]},
                headers={"x-request-id": "req_abc"},
            )
        )
        submission = provider.submit(t2i())
        assert submission.task_id == "req_abc"
        assert submission.result.outputs[0].url == "https://cdn.example/a.png"

    def test_key_is_scrubbed_from_error_messages(self):
        body = {"error": {"message": f"bad thing with {KEY}", "type": "x", "code": None}}
        provider = mocked(lambda r: httpx.Response(400, json=body))
        with pytest.raises(PermanentError) as caught:
            provider.submit(t2i())
        assert KEY not in str(caught.value)
        assert "bad thing with ***" in caught.value.message

    def test_content_policy_violation_code(self):
        body = {
            "error": {
                "message": "no",
                "type": "invalid_request_error",
                "code": "content_policy_violation",
            }
        }
        with pytest.raises(PermanentError) as caught:
            mocked(lambda r: httpx.Response(400, json=body)).submit(t2i())
        assert caught.value.code == "MODERATION"


def require_openai() -> Any:
    """The official client; missing it skips, except under CI=true."""
    try:
        import openai
    except ImportError:
        unavailable("the openai package is not installed (pip install openai)")
    return openai


class TestOfficialClient:
    """The official ``openai`` package against the sandbox."""

    @pytest.fixture
    def client(self, sandbox):
        openai = require_openai()
        with openai.OpenAI(
            api_key=KEY, base_url=f"{sandbox.url}/v1", max_retries=0, timeout=30
        ) as client:
            yield client

    def test_generate(self, client):
        response = client.images.generate(
            model="gpt-image-1", prompt="a lighthouse", size="1024x1024"
        )
        assert response.size == "1024x1024"
        assert response.output_format == "png"
        assert response.usage.total_tokens > 0
        image = opened(base64.b64decode(response.data[0].b64_json))
        assert (image.format, image.size) == ("PNG", (1024, 1024))

    def test_edit_with_two_images(self, client, sandbox):
        files = []
        for i, url in enumerate(reference_urls(sandbox)):
            data = httpx.get(url).content
            ctype = "image/png" if url.endswith(".png") else "image/jpeg"
            files.append((f"ref{i}.{url.rsplit('.', 1)[1]}", data, ctype))
        response = client.images.edit(
            model="gpt-image-1", image=files, prompt="combine them", size="1536x1024"
        )
        image = opened(base64.b64decode(response.data[0].b64_json))
        assert (image.format, image.size) == ("PNG", (1536, 1024))
        assert response.usage.input_tokens_details.image_tokens > 0
        assert sandbox.stats()["openai_edit_images"] == 2

    def test_errors_parse_as_openai_errors(self, client):
        openai = require_openai()
        with pytest.raises(openai.BadRequestError) as caught:
            client.images.generate(model="gpt-image-1", prompt="x [sandbox:fail=moderation]")
        assert caught.value.code == "moderation_blocked"
        with pytest.raises(openai.RateLimitError):
            client.images.generate(model="gpt-image-1", prompt="x [sandbox:submit-http=429]")
        with pytest.raises(openai.AuthenticationError):
            client.with_options(api_key=WRONG_KEY).images.generate(model="gpt-image-1", prompt="x")

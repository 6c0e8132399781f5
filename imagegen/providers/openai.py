"""OpenAI's Images API for ``gpt-image-*`` models (synchronous, base64 results).

One call does the whole job: ``POST /images/generations`` (JSON) for
text-to-image, ``POST /images/edits`` (multipart, the reference images as
``image[]`` files) for image-to-image. The answer holds the finished images
as ``data[i].b64_json``, so :meth:`OpenAIImagesProvider.submit` returns a
:class:`Submission` whose ``result`` is already a successful
:class:`TaskState` with the bytes in its outputs. There is no status endpoint
and there are no callbacks.

Errors come as ``{"error": {"message", "type", "code", "param"}}``. OpenAI
echoes a masked API key in its 401 message; this module never repeats a 401
message and scrubs the key from every other one.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import math
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

import httpx

from .. import conf, jsonparse
from ..choices import Mode, TaskStatus
from ..exceptions import (
    FetchError,
    ImagegenConfigurationError,
    ImageRejectedError,
    MalformedCallbackError,
    PermanentError,
    TransientError,
)
from ..fetching import FetchPolicy, download
from ..imaging import verify_image
from .base import (
    AccountStatus,
    Capabilities,
    GenerationRequest,
    HTTPProvider,
    Output,
    Submission,
    TaskState,
    check_result_count,
    check_result_urls,
    parse_json,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: A synchronous generation can take minutes: the read timeout must outlast it.
DEFAULT_TIMEOUT = 300.0
#: OpenAI's limit per input image for the edits endpoint.
DEFAULT_MAX_REFERENCE_BYTES = 50 * 1024 * 1024

#: ``size`` for each aspect ratio. gpt-image-1 knows only these three sizes
#: (and ``auto``), so every resolution maps to the same size; models with
#: larger sizes are configured with the ``SIZES`` option, which wins over
#: this table.
#:
#: ============  ===========  ===============================
#: aspect ratio  size         why
#: ============  ===========  ===============================
#: ``auto``      ``auto``     the model picks, as the editor asked
#: ``1:1``       1024x1024    square
#: ``4:3``       1536x1024    landscape (3:2, the nearest size)
#: ``16:9``      1536x1024    landscape
#: ``3:4``       1024x1536    portrait (2:3, the nearest size)
#: ``9:16``      1024x1536    portrait
#: ============  ===========  ===============================
SIZES: dict[str, str] = {
    "auto": "auto",
    "1:1": "1024x1024",
    "4:3": "1536x1024",
    "16:9": "1536x1024",
    "3:4": "1024x1536",
    "9:16": "1024x1536",
}

QUALITIES = ("auto", "low", "medium", "high")
BACKGROUNDS = ("auto", "transparent", "opaque")
OUTPUT_FORMATS = ("png", "jpeg", "webp")
MODERATION_CODES = frozenset({"moderation_blocked", "content_policy_violation"})
#: 429s that are not rate limits: the account is out of money, waiting will not help.
QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})

_SIZE = re.compile(r"^(auto|[1-9][0-9]*x[1-9][0-9]*)$")


class OpenAIImagesProvider(HTTPProvider):
    """OpenAI Images API (``gpt-image-*``).

    Options: ``API_KEY``, ``BASE_URL`` (default ``https://api.openai.com/v1``),
    ``MODEL`` (``gpt-image-1``), ``TIMEOUT`` (read timeout, default 300 s),
    ``QUALITY``, ``BACKGROUND``, ``OUTPUT_FORMAT``, ``OUTPUT_COMPRESSION``,
    ``MODERATION`` (generations only), ``INPUT_FIDELITY`` (edits only),
    ``ORGANIZATION`` and ``PROJECT`` (headers), ``SIZES`` (overrides of
    :data:`SIZES`, keyed ``(resolution, aspect_ratio)`` or ``"2k:16:9"``).
    Reference images are downloaded with :func:`imagegen.fetching.download`
    under ``ALLOW_PRIVATE_HOSTS``, ``REFERENCE_ALLOWED_HOSTS`` (None: any
    public host), ``MAX_REFERENCE_BYTES`` and ``REFERENCE_TIMEOUT``.
    """

    capabilities = Capabilities(
        modes=(Mode.TEXT_TO_IMAGE.value, Mode.IMAGE_TO_IMAGE.value),
        max_references=16,
        max_prompt_length=32000,
        supports_callback=False,
        latency={"1k": (10.0, 60.0), "2k": (20.0, 90.0), "4k": (30.0, 120.0)},
    )
    #: OpenAI's own messages for HTTP statuses (imagegen.failures).
    http_messages = "OPENAI_HTTP_"
    option_names = frozenset(
        {
            "QUALITY",
            "BACKGROUND",
            "OUTPUT_FORMAT",
            "OUTPUT_COMPRESSION",
            "MODERATION",
            "INPUT_FIDELITY",
            "ORGANIZATION",
            "PROJECT",
            "SIZES",
            "REFERENCE_ALLOWED_HOSTS",
            "MAX_REFERENCE_BYTES",
            "MAX_REFERENCE_PIXELS",
            "REFERENCE_TIMEOUT",
        }
    )

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        options = dict(options)
        options["BASE_URL"] = options.get("BASE_URL") or DEFAULT_BASE_URL
        if options.get("TIMEOUT") is None:
            options["TIMEOUT"] = DEFAULT_TIMEOUT
        super().__init__(name, options)
        self.model = self.model or "gpt-image-1"
        self.quality = self._choice("QUALITY", QUALITIES, "auto")
        self.background = self._choice("BACKGROUND", BACKGROUNDS, "auto")
        self.output_format = self._choice("OUTPUT_FORMAT", OUTPUT_FORMATS, "png")
        if self.background == "transparent" and self.output_format == "jpeg":
            raise self._config_error("BACKGROUND", "'transparent' needs OUTPUT_FORMAT png or webp")
        self.sizes = self._sizes(self.options.get("SIZES") or {})
        compression = self.options.get("OUTPUT_COMPRESSION")
        if compression is not None and not (
            isinstance(compression, int) and 0 <= compression <= 100
        ):
            raise self._config_error("OUTPUT_COMPRESSION", "must be an integer from 0 to 100")
        self.output_compression: int | None = compression

    # --- the provider interface -------------------------------------------

    def size_for(self, resolution: str, aspect_ratio: str) -> str:
        """The ``size`` parameter for a resolution and aspect ratio."""
        return self.sizes.get((resolution, aspect_ratio)) or SIZES.get(aspect_ratio, "auto")

    def submit(self, request: GenerationRequest) -> Submission:
        fields: dict[str, Any] = {
            "model": self.model,
            "prompt": request.prompt,
            "n": 1,
            "size": self.size_for(request.resolution, request.aspect_ratio),
            "quality": self.quality,
            "background": self.background,
            "output_format": self.output_format,
        }
        if self.output_compression is not None:
            fields["output_compression"] = self.output_compression
        started_ms, started = _now_ms(), time.monotonic()
        if request.mode == Mode.IMAGE_TO_IMAGE:
            response = self._edit(request, fields)
        else:
            if self.options.get("MODERATION"):
                fields["moderation"] = str(self.options["MODERATION"])
            response = self.request("POST", "/images/generations", json=fields, idempotent=False)
        elapsed_ms = int((time.monotonic() - started) * 1000)
        task_id = response.headers.get("x-request-id") or f"openai-{uuid.uuid4().hex}"
        return Submission(
            task_id=task_id,
            result=TaskState(
                task_id=task_id,
                status=TaskStatus.SUCCESS,
                outputs=self._outputs(response),
                created_at_ms=started_ms,
                completed_at_ms=started_ms + elapsed_ms,
                cost_time_ms=elapsed_ms,
            ),
        )

    def submit_seconds(self, references: int) -> float:
        """The generation call's timeout plus each reference image's download."""
        per_reference = float(self.options.get("REFERENCE_TIMEOUT", 60.0))
        return super().submit_seconds(references) + references * per_reference

    def fetch(self, task_id: str) -> TaskState:
        raise PermanentError(code="SYNCHRONOUS", provider=self.name)

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> TaskState:
        raise MalformedCallbackError(f"The provider {self.name!r} does not send callbacks.")

    def account_status(self, timeout: float | None = None) -> AccountStatus:
        """``GET /models/{model}``: the key is accepted and the model is
        available to it (OpenAI reports no balance)."""
        extra = {"timeout": timeout} if timeout else {}
        self.request("GET", f"/models/{self.model}", idempotent=True, **extra)
        return AccountStatus()

    # --- HTTP ----------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        headers = super().auth_headers()
        if self.options.get("ORGANIZATION"):
            headers["OpenAI-Organization"] = str(self.options["ORGANIZATION"])
        if self.options.get("PROJECT"):
            headers["OpenAI-Project"] = str(self.options["PROJECT"])
        return headers

    def http_error(self, response: httpx.Response) -> TransientError | PermanentError:
        status, code = response.status_code, self._error_field(response, "code")
        if status == 401:
            # OpenAI's 401 text quotes part of the key: never pass it on.
            return PermanentError(
                code="401",
                params={"template": "OPENAI_HTTP_401", "provider": self.name},
                status_code=401,
                provider=self.name,
            )
        if code in MODERATION_CODES:
            return PermanentError(
                code="MODERATION",
                params={"detail": self.error_message(response) or None},
                status_code=status,
                provider=self.name,
            )
        if code in QUOTA_CODES:
            return PermanentError(
                code="INSUFFICIENT_CREDITS",
                params={"template": "OPENAI_QUOTA"},
                status_code=status,
                provider=self.name,
            )
        return super().http_error(response)

    def error_message(self, response: httpx.Response) -> str:
        message = self._error_field(response, "message")
        param = self._error_field(response, "param")
        if message and param and param not in message:
            message = f"{message} [param {param}]"
        return self._scrub(message)[:300]

    def _error_field(self, response: httpx.Response, name: str) -> str:
        try:
            error = jsonparse.loads(response.content).get("error")
        except (jsonparse.MalformedJSON, AttributeError):
            return ""
        value = error.get(name) if isinstance(error, dict) else None
        return str(value) if value not in (None, "") else ""

    def _scrub(self, text: str) -> str:
        key = str(self.options.get("API_KEY") or "")
        return text.replace(key, "***") if key else text

    # --- image-to-image ----------------------------------------------------

    def _edit(self, request: GenerationRequest, fields: dict[str, Any]) -> httpx.Response:
        if not request.image_urls:
            raise PermanentError(
                code="INVALID_REQUEST", params={"template": "NO_REFERENCES"}, provider=self.name
            )
        if self.options.get("INPUT_FIDELITY"):
            fields["input_fidelity"] = str(self.options["INPUT_FIDELITY"])
        data = {key: str(value) for key, value in fields.items()}
        with contextlib.ExitStack() as stack:
            files = [
                ("image[]", self._reference(stack, index, url, request.work_dir))
                for index, url in enumerate(request.image_urls)
            ]
            # httpx streams the open files into the multipart body.
            return self.request("POST", "/images/edits", data=data, files=files, idempotent=False)

    def _reference(
        self, stack: contextlib.ExitStack, index: int, url: str, folder: str | None
    ) -> tuple[str, Any, str]:
        """Download reference ``index`` to a temporary file in ``folder``, check
        it is an image OpenAI accepts, and return the multipart file tuple (open
        on ``stack``)."""
        number = index + 1
        try:
            fetched = stack.enter_context(download(url, self.reference_policy(), dir=folder))
            image = verify_image(
                fetched.path, max_pixels=int(self.options.get("MAX_REFERENCE_PIXELS", 64_000_000))
            )
        except FetchError as exc:
            error = TransientError if exc.retryable else PermanentError
            raise error(
                code="IMAGE_DOWNLOAD_FAILED" if exc.retryable else "INVALID_IMAGE_URL",
                params={"template": "REFERENCE_DOWNLOAD", "number": number, "reason": exc.message},
                provider=self.name,
            ) from None
        except ImageRejectedError as exc:
            raise PermanentError(
                code="UNSUPPORTED_FORMAT",
                params={"template": "REFERENCE_UNUSABLE", "number": number, "reason": str(exc)},
                provider=self.name,
            ) from None
        handle = stack.enter_context(open(fetched.path, "rb"))
        return f"reference-{number}.{image.extension}", handle, image.content_type

    def reference_policy(self) -> FetchPolicy:
        """Download rules for reference images.

        Any public host unless ``REFERENCE_ALLOWED_HOSTS`` lists some: these
        are the editor's own URLs, already checked by job validation (which
        allows any port). Private and loopback addresses only with
        ``ALLOW_PRIVATE_HOSTS`` (the sandbox, a site's own local media).
        """
        hosts = self.options.get("REFERENCE_ALLOWED_HOSTS")
        return FetchPolicy(
            allowed_hosts=None if hosts is None else tuple(hosts),
            allow_private=self.allow_private_hosts,
            allowed_ports=None,
            max_bytes=int(self.options.get("MAX_REFERENCE_BYTES", DEFAULT_MAX_REFERENCE_BYTES)),
            total_timeout=float(self.options.get("REFERENCE_TIMEOUT", 60.0)),
        )

    # --- answers -----------------------------------------------------------

    def answer_limit(self) -> int:
        """Room for one image of ``MAX_DOWNLOAD_BYTES`` as base64 (a 4K PNG is
        well under the default 64 MiB) plus a callback's worth of JSON."""
        image = int(conf.get_setting("MAX_DOWNLOAD_BYTES"))
        return 4 * math.ceil(image / 3) + super().answer_limit()

    def _outputs(self, response: httpx.Response) -> tuple[Output, ...]:
        # A 200 means the images were made (and paid for): an unreadable one
        # is reported, not retried into a second charge.
        try:
            answer = parse_json(response.content, "The answer")
            if not isinstance(answer, dict):
                raise MalformedCallbackError("The answer is not a JSON object.")
            items = answer.get("data")
            if not isinstance(items, list) or not items:
                raise MalformedCallbackError("The answer has no images in 'data'.")
            check_result_count(len(items))
        except MalformedCallbackError as exc:
            raise self._bad_answer(str(exc)) from None
        outputs = []
        for item in items:
            b64 = item.get("b64_json") if isinstance(item, dict) else None
            url = item.get("url") if isinstance(item, dict) else None
            if isinstance(b64, str) and b64:
                try:
                    outputs.append(Output(data=base64.b64decode(b64, validate=True)))
                except (binascii.Error, ValueError):
                    raise self._bad_answer(
                        "OpenAI sent an image that is not valid base64."
                    ) from None
            elif isinstance(url, str) and url:
                outputs.append(Output(url=url))
            else:
                raise self._bad_answer("An image in the answer has neither b64_json nor url.")
        try:
            check_result_urls([output.url for output in outputs if output.url])
        except MalformedCallbackError as exc:
            raise self._bad_answer(str(exc)) from None
        return tuple(outputs)

    def _bad_answer(self, message: str) -> PermanentError:
        return PermanentError(
            code="INVALID_RESPONSE", params={"reason": message}, provider=self.name
        )

    # --- options -----------------------------------------------------------

    def _choice(self, key: str, allowed: tuple[str, ...], default: str) -> str:
        value = str(self.options.get(key) or default)
        if value not in allowed:
            raise self._config_error(key, f"must be one of {', '.join(allowed)}, not {value!r}")
        return value

    def _sizes(self, overrides: Mapping[Any, Any]) -> dict[tuple[str, str], str]:
        sizes = {}
        for key, value in overrides.items():
            if isinstance(key, tuple) and len(key) == 2:
                resolution, ratio = key
            elif isinstance(key, str) and ":" in key:
                resolution, _sep, ratio = key.partition(":")
            else:
                raise self._config_error(
                    "SIZES", f"key {key!r} must be (resolution, aspect_ratio) or 'resolution:ratio'"
                )
            if not isinstance(value, str) or not _SIZE.match(value):
                raise self._config_error("SIZES", f"{key!r} must map to 'WIDTHxHEIGHT' or 'auto'")
            sizes[(str(resolution), str(ratio))] = value
        return sizes

    def _config_error(self, key: str, problem: str) -> ImagegenConfigurationError:
        return ImagegenConfigurationError(
            f"IMAGEGEN['PROVIDERS'][{self.name!r}][{key!r}] {problem}."
        )


def _now_ms() -> int:
    return int(time.time() * 1000)

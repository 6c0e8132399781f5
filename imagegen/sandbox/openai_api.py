"""OpenAI's Images API in the sandbox: ``POST /v1/images/generations`` and
``POST /v1/images/edits``, answered synchronously in OpenAI's own shape, and
``GET /v1/models/{model}`` (what ``manage.py imagegen doctor`` asks).

The answer is ``{"created", "data": [{"b64_json"}], "background",
"output_format", "size", "quality", "usage"}``; errors are
``{"error": {"message", "type", "param", "code"}}`` with OpenAI's statuses.
The official ``openai`` client parses both (see
``tests/test_openai_provider.py``), which is what keeps this honest.

Prompt markers (``markers.py``) that apply here:

- ``latency=S`` / ``latency=A-B``: the call takes that long (default: the
  run's ``--latency``), since generation happens inside the request;
- ``submit-http=STATUS[xN]``: answer that HTTP error (429 with ``Retry-After: 1``);
- ``submit-delay=S`` / ``submit-hangup``: answer late, or close the
  connection without an answer after the image was made;
- ``fail=moderation`` (or ``moderation_blocked``, ``CONTENT_VIOLATION``,
  ``NSFW_DETECTED``, ``SensitiveContentDetected``): 400 ``moderation_blocked``;
  ``fail=INSUFFICIENT_CREDITS``: 429 ``insufficient_quota``; any other code: 500;
- ``noise``: random pixels;
- ``credentials`` / ``credentials=off``: the image carries a C2PA manifest
  signed with the sandbox's test identity (``--credentials`` for every one).

Calls are counted in ``stats()`` as ``openai_generations``, ``openai_edits``
and ``openai_edit_images`` (reference images received).
"""

from __future__ import annotations

import base64
import email.message
import email.utils
import io
import json
import math
import random
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from PIL import Image

from . import render
from .markers import parse_latency, parse_markers

if TYPE_CHECKING:
    from .server import SandboxServer

GENERATIONS = "/v1/images/generations"
EDITS = "/v1/images/edits"
PREFIX = "/v1/images/"
MODELS = "/v1/models/"

MAX_BODY = 256 * 1024 * 1024
MAX_IMAGE_BYTES = 50 * 1024 * 1024
MAX_IMAGES = 16
MAX_PROMPT = 32000
#: Models that know only these sizes; other gpt-image models accept any
#: WIDTHxHEIGHT in multiples of 16 (up to 4096 a side, at most 3:1).
FIXED_SIZES = {"1024x1024", "1536x1024", "1024x1536"}
FIXED_SIZE_MODELS = ("gpt-image-1", "gpt-image-1-mini")
QUALITIES = ("auto", "low", "medium", "high")
BACKGROUNDS = ("auto", "transparent", "opaque")
FORMATS = ("png", "jpeg", "webp")
MIME_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}
COMMON = {"model", "prompt", "n", "size", "quality", "background", "output_format"}
COMMON |= {"output_compression", "user", "safety_identifier", "partial_images", "stream"}
COMMON |= {"response_format"}
GENERATION_PARAMS = COMMON | {"moderation"}
EDIT_PARAMS = COMMON | {"input_fidelity", "mask", "image", "image[]"}
MODERATION_FAILS = {
    "moderation",
    "moderation_blocked",
    "CONTENT_VIOLATION",
    "NSFW_DETECTED",
    "SensitiveContentDetected",
}
#: gpt-image-1's published output tokens per image, square and 3:2 sizes.
OUTPUT_TOKENS = {
    "low": (272, 408),
    "medium": (1056, 1584),
    "high": (4160, 6240),
}
#: Input tokens counted per reference image (a plausible constant).
IMAGE_INPUT_TOKENS = 388


class ApiError(Exception):
    """An error answer in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type, "param": param, "code": code}}
        self.headers = headers or {}


@dataclass(frozen=True)
class Part:
    """One multipart/form-data part."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass(frozen=True)
class Params:
    model: str
    prompt: str
    n: int
    width: int
    height: int
    quality: str
    background: str
    output_format: str
    compression: int | None

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


def handle(handler: BaseHTTPRequestHandler, sandbox: SandboxServer, path: str) -> None:
    """Answer one POST under ``/v1/images/``."""
    try:
        raw = _read_body(handler)
        _authorize(handler, sandbox)
        if path == GENERATIONS:
            params, images = _generation(raw), []
        elif path == EDITS:
            params, images = _edit(raw, handler.headers.get("Content-Type", ""))
        else:
            raise ApiError(404, f"Invalid URL (POST {path})")
        _answer(handler, sandbox, params, images, edit=path == EDITS)
    except ApiError as exc:
        _send(handler, exc.status, exc.body, exc.headers)
    except Exception as exc:
        sys.stderr.write(f"sandbox: internal error {exc!r}\n")
        _send(handler, 500, _server_error().body)


def handle_model(handler: BaseHTTPRequestHandler, sandbox: SandboxServer, path: str) -> None:
    """Answer ``GET /v1/models/{model}``: the model object for ``gpt-image-*``
    models, else OpenAI's 404 ``model_not_found``; 401 for a refused key."""
    model = path[len(MODELS) :]
    try:
        _authorize(handler, sandbox)
        if not model.startswith("gpt-image") or "/" in model:
            raise ApiError(
                404,
                f"The model '{model}' does not exist or you do not have access to it.",
                param="model",
                code="model_not_found",
            )
        _send(handler, 200, {"id": model, "object": "model", "created": 0, "owned_by": "system"})
    except ApiError as exc:
        _send(handler, exc.status, exc.body, exc.headers)


def _answer(
    handler: BaseHTTPRequestHandler,
    sandbox: SandboxServer,
    params: Params,
    images: list[Part],
    *,
    edit: bool,
) -> None:
    started = time.monotonic()
    markers = parse_markers(params.prompt)
    forced = sandbox.forced_http("submit", params.prompt, markers)
    if forced:
        raise _forced(forced, params.model)
    with sandbox._lock:  # the server's counters, under its own lock
        counters = sandbox._counters
        key = "openai_edits" if edit else "openai_generations"
        counters[key] = counters.get(key, 0) + 1
        if edit:
            counters["openai_edit_images"] = counters.get("openai_edit_images", 0) + len(images)
    fail = markers.get("fail", "")
    if fail in MODERATION_FAILS:
        raise ApiError(
            400,
            "Your request was rejected by the safety system. If you believe this is an "
            "error, contact us at help.openai.com and include the request ID.",
            type="image_generation_user_error",
            code="moderation_blocked",
        )
    if fail == "INSUFFICIENT_CREDITS":
        raise ApiError(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            type="insufficient_quota",
            code="insufficient_quota",
        )
    low, high = (
        parse_latency(markers["latency"]) if "latency" in markers else sandbox.config.latency
    )
    time.sleep(random.uniform(low, high))  # the generation happens inside the request
    if fail or (sandbox.config.fail_rate and random.random() < sandbox.config.fail_rate):
        raise _server_error()
    data = [
        {"b64_json": base64.b64encode(_image(params, index, markers, sandbox)).decode("ascii")}
        for index in range(params.n)
    ]
    payload = {
        "created": int(time.time()),
        "data": data,
        "background": "transparent" if params.background == "transparent" else "opaque",
        "output_format": params.output_format,
        "size": params.size,
        "quality": "medium" if params.quality == "auto" else params.quality,
        "usage": _usage(params, len(images)),
    }
    delay = markers.get("submit-delay")
    if delay:
        time.sleep(float(delay))
    if "submit-hangup" in markers:
        handler.close_connection = True  # the image was made; the answer is lost
        return
    headers = {
        "x-request-id": f"req_{uuid.uuid4().hex}",
        "openai-processing-ms": str(int((time.monotonic() - started) * 1000)),
    }
    _send(handler, 200, payload, headers)


# --- requests ----------------------------------------------------------------


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The whole body, by Content-Length or chunked."""
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        chunks, total = [], 0
        while True:
            line = handler.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                handler.close_connection = True
                raise ApiError(400, "Malformed chunked body.") from None
            if size == 0:
                while handler.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                handler.close_connection = True
                raise ApiError(413, "The request body is too large.")
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    try:
        length = int(handler.headers.get("Content-Length") or 0)
    except ValueError:
        handler.close_connection = True
        raise ApiError(400, "Bad Content-Length.") from None
    if length > MAX_BODY:
        handler.close_connection = True
        raise ApiError(413, "The request body is too large.")
    return handler.rfile.read(length)


def _authorize(handler: BaseHTTPRequestHandler, sandbox: SandboxServer) -> None:
    auth = handler.headers.get("Authorization", "")
    key = auth[7:] if auth.startswith("Bearer ") else ""
    if not key:
        raise ApiError(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
    expected = sandbox.config.api_key
    if expected is not None and key != expected:
        # Like OpenAI: the message quotes the key, masked. Clients must not repeat it.
        masked = key[:3] + "*" * max(0, len(key) - 7) + key[-4:]
        raise ApiError(
            401,
            f"Incorrect API key provided: {masked}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )


def _generation(raw: bytes) -> Params:
    try:
        body = json.loads(raw.decode("utf-8"))
    except ValueError:
        raise ApiError(
            400,
            "We could not parse the JSON body of your request. The body must be UTF-8 JSON.",
        ) from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return _params(body, GENERATION_PARAMS)


def _edit(raw: bytes, content_type: str) -> tuple[Params, list[Part]]:
    parts = _multipart(raw, content_type)
    fields: dict[str, Any] = {}
    images = []
    for part in parts:
        if part.name in ("image", "image[]"):
            images.append(_checked_image(part))
        elif part.name == "mask":
            continue  # accepted, not used by the renderer
        else:
            try:
                value: Any = part.data.decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError(400, f"Field {part.name!r} is not UTF-8.", param=part.name) from None
            if part.name in ("n", "output_compression", "partial_images"):
                value = _int(value, part.name)
            fields[part.name] = value
    if not 1 <= len(images) <= MAX_IMAGES:
        raise ApiError(
            400,
            f"Expected between 1 and {MAX_IMAGES} images, got {len(images)}.",
            param="image",
            code="invalid_value" if images else "missing_required_parameter",
        )
    return _params(fields, EDIT_PARAMS), images


def _multipart(raw: bytes, content_type: str) -> list[Part]:
    """Split a multipart/form-data body (RFC 7578) into its parts."""
    header = email.message.Message()
    header["Content-Type"] = content_type
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/form-data" or not isinstance(boundary, str):
        raise ApiError(400, "The edits endpoint expects multipart/form-data with a boundary.")
    chunks = (b"\r\n" + raw).split(b"\r\n--" + boundary.encode("latin-1"))
    if len(chunks) < 2 or not chunks[-1].startswith(b"--"):
        raise ApiError(400, "The multipart body is malformed (no closing boundary).")
    parts = []
    for chunk in chunks[1:-1]:
        _padding, _, rest = chunk.partition(b"\r\n")
        head, sep, data = rest.partition(b"\r\n\r\n")
        if not sep:
            raise ApiError(400, "The multipart body is malformed (a part has no headers).")
        headers = email.message_from_bytes(head + b"\r\n\r\n")
        name = headers.get_param("name", header="content-disposition")
        if not name:
            raise ApiError(400, "A multipart part has no name.")
        parts.append(
            Part(
                name=email.utils.collapse_rfc2231_value(name),
                filename=headers.get_filename(),
                content_type=headers.get_content_type() if "Content-Type" in headers else None,
                data=data,
            )
        )
    return parts


def _checked_image(part: Part) -> Part:
    """OpenAI's checks on an input image: type by mimetype, bytes that match, size."""
    if part.content_type not in MIME_TYPES:
        raise ApiError(
            400,
            f"Invalid file 'image': unsupported mimetype ('{part.content_type}'). Supported "
            "file formats are 'image/jpeg', 'image/png', and 'image/webp'.",
            param="image",
            code="unsupported_file_mimetype",
        )
    if len(part.data) > MAX_IMAGE_BYTES:
        raise ApiError(400, "Image file is too large (at most 50 MB).", param="image")
    try:
        with Image.open(io.BytesIO(part.data)) as image:
            fmt = image.format
    except Exception:
        fmt = None
    if fmt != MIME_TYPES[part.content_type]:
        raise ApiError(
            400,
            f"Invalid image file or mode for image {part.filename!r}: the bytes are not "
            f"{part.content_type}.",
            param="image",
            code="invalid_image_file",
        )
    return part


def _params(body: dict[str, Any], known: set[str]) -> Params:
    for name in body:
        if name not in known:
            raise ApiError(
                400, f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter"
            )
    model = body.get("model")
    if not isinstance(model, str) or not model.startswith("gpt-image"):
        raise ApiError(
            400,
            f"Invalid value: {model!r}. The sandbox serves gpt-image-* models.",
            param="model",
            code="invalid_value",
        )
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise ApiError(
            400,
            "Missing required parameter: 'prompt'.",
            param="prompt",
            code="missing_required_parameter",
        )
    if len(prompt) > MAX_PROMPT:
        raise ApiError(
            400,
            f"Invalid 'prompt': string too long. Expected a maximum length of {MAX_PROMPT}, "
            f"but got {len(prompt)} instead.",
            param="prompt",
            code="string_above_max_length",
        )
    n = body.get("n", 1)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10:
        raise ApiError(400, "Invalid 'n': expected an integer from 1 to 10.", param="n")
    quality = _one_of(body, "quality", QUALITIES, "auto")
    background = _one_of(body, "background", BACKGROUNDS, "auto")
    fmt = _one_of(body, "output_format", FORMATS, "png")
    if background == "transparent" and fmt == "jpeg":
        raise ApiError(
            400,
            "Transparent background is not supported for output format jpeg.",
            param="background",
            code="invalid_value",
        )
    compression = body.get("output_compression")
    if compression is not None and not (isinstance(compression, int) and 0 <= compression <= 100):
        raise ApiError(
            400,
            "Invalid 'output_compression': expected an integer from 0 to 100.",
            param="output_compression",
        )
    if body.get("moderation", "auto") not in ("auto", "low"):
        raise ApiError(400, "Invalid 'moderation': expected 'auto' or 'low'.", param="moderation")
    if body.get("input_fidelity", "low") not in ("low", "high"):
        raise ApiError(400, "Invalid 'input_fidelity'.", param="input_fidelity")
    if body.get("response_format", "b64_json") != "b64_json":
        raise ApiError(
            400,
            "Unknown parameter: 'response_format'. gpt-image models always return b64_json.",
            param="response_format",
            code="unknown_parameter",
        )
    if body.get("stream") in (True, "true"):
        raise ApiError(400, "The sandbox does not stream.", param="stream")
    width, height = _size(str(body.get("size", "auto")), model)
    return Params(model, prompt, n, width, height, quality, background, fmt, compression)


def _size(size: str, model: str) -> tuple[int, int]:
    if size == "auto":
        return 1024, 1024
    fixed = model in FIXED_SIZE_MODELS
    try:
        width, height = (int(side) for side in size.split("x"))
    except ValueError:
        width = height = 0
    valid = (
        size in FIXED_SIZES
        if fixed
        else width % 16 == 0
        and height % 16 == 0
        and 16 <= min(width, height)
        and max(width, height) <= 4096
        and max(width, height) <= 3 * min(width, height)
    )
    if not valid:
        allowed = "'1024x1024', '1024x1536', '1536x1024', and 'auto'"
        raise ApiError(
            400,
            f"Invalid value: '{size}'. Supported values are: {allowed}."
            if fixed
            else f"Invalid value: '{size}'. Use WIDTHxHEIGHT in multiples of 16, at most 4096 "
            "a side and 3:1, or 'auto'.",
            param="size",
            code="invalid_value",
        )
    return width, height


def _one_of(body: dict[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = body.get(name, default)
    if value not in allowed:
        raise ApiError(
            400,
            f"Invalid value: '{value}'. Supported values are: "
            + ", ".join(f"'{a}'" for a in allowed)
            + ".",
            param=name,
            code="invalid_value",
        )
    return value


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, f"Invalid '{name}': expected an integer.", param=name) from None


# --- answers -----------------------------------------------------------------


def _image(params: Params, index: int, markers: Mapping[str, str], sandbox: SandboxServer) -> bytes:
    """The sandbox picture at exactly ``params.size``: rendered at the nearest
    resolution and ratio ``render`` knows, then resized and encoded; signed
    with a C2PA manifest like the APIXO side's results (the ``credentials``
    marker, or the run-wide ``content_credentials``)."""
    noise = "noise" in markers
    width, height = params.width, params.height
    side = max(width, height)
    resolution = "1k" if side <= 1024 else "2k" if side <= 2048 else "4k"
    ratio = min(
        (r for r in render.RATIOS if r != "auto"),
        key=lambda r: abs(math.log(width / height * render.RATIOS[r][1] / render.RATIOS[r][0])),
    )
    png = render.render(params.prompt, resolution, ratio, "png", index, noise=noise)
    with Image.open(io.BytesIO(png)) as image:
        picture = image.convert("RGB")
    if picture.size != (width, height):
        picture = picture.resize((width, height), Image.Resampling.BILINEAR)
    if params.background == "transparent":
        picture.putalpha(255)
    out = io.BytesIO()
    if params.output_format == "jpeg":
        picture.save(out, "JPEG", quality=params.compression or 85)
    elif params.output_format == "webp":
        picture.save(out, "WEBP", quality=params.compression or 80, method=0)
    else:
        picture.save(out, "PNG", compress_level=1)
    default = "on" if sandbox.config.content_credentials else "off"
    if markers.get("credentials", default) != "off":
        return render.with_credentials(out.getvalue(), params.output_format, params.model)
    return out.getvalue()


def _usage(params: Params, images: int) -> dict[str, Any]:
    square, wide = OUTPUT_TOKENS["medium" if params.quality == "auto" else params.quality]
    pixels = params.width * params.height
    per_image = square if pixels <= 1024 * 1024 else round(wide * pixels / (1536 * 1024))
    output = per_image * params.n
    text = max(1, len(params.prompt) // 4)
    image_tokens = IMAGE_INPUT_TOKENS * images
    return {
        "input_tokens": text + image_tokens,
        "input_tokens_details": {"image_tokens": image_tokens, "text_tokens": text},
        "output_tokens": output,
        "output_tokens_details": {"image_tokens": output, "text_tokens": 0},
        "total_tokens": text + image_tokens + output,
    }


def _forced(status: int, model: str) -> ApiError:
    if status == 429:
        return ApiError(
            429,
            f"Rate limit reached for {model} (sandbox). Please try again in 1s.",
            type="requests",
            code="rate_limit_exceeded",
            headers={"Retry-After": "1"},
        )
    if status >= 500:
        error = _server_error()
        error.status = status
        return error
    return ApiError(status, f"Forced HTTP {status}")


def _server_error() -> ApiError:
    return ApiError(
        500,
        "The server had an error while processing your request. Sorry about that!",
        type="server_error",
    )


def _send(
    handler: BaseHTTPRequestHandler,
    status: int,
    payload: Any,
    headers: dict[str, str] | None = None,
) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(data)

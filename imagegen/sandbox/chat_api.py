"""OpenAI's chat completions in the sandbox: ``POST /v1/chat/completions``,
what the describers (``imagegen.describers``) ask for alt text and prompt
drafts, answered deterministically, in OpenAI's shape.

A request whose user message carries an ``image_url`` part (a ``data:`` URL
of a PNG, JPEG or WebP) asks for alt text; one without asks for a prompt.
The answer's language is read from ``language code <code>`` in the system
message: English, French, German and Spanish have their own sentences;
any other language gets the English one.

- Alt text: ``Generated image (<width> by <height>, with a multiplication
  sign): <subject>.``, the subject being the request's text parts without
  their markers (the prompt the image was made from), else a description
  of the sandbox's gradient.
- Prompt: ``An editorial illustration for “<field>”: <text>``, the
  ``Field:`` line and the ``Text:`` that follows it in the user message.

Markers (``[sandbox:...]`` anywhere in the messages' text) make it fail on demand:

- ``describe-http=STATUS[xN]``: answer that HTTP error (always, or the
  first N times for the same text); 429 comes with ``Retry-After: 1``;
- ``describe-delay=S``: answer S seconds late (a client's timeout);
- ``describe-hangup``: close the connection without an answer;
- ``describe=empty``: an answer with no text; ``describe=refusal``: the
  model's refusal; ``describe=long``: 2000 characters of text.

Calls are counted in ``stats()`` as ``chat_completions``.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from PIL import Image

from .markers import parse_markers
from .openai_api import MIME_TYPES, ApiError, _authorize, _forced, _read_body, _send

if TYPE_CHECKING:
    from .server import SandboxServer

PATH = "/v1/chat/completions"

_LANGUAGE = re.compile(r"language code ([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]+)*)")
_MARKERS = re.compile(r"\s*\[sandbox:[^\]]*\]")
_DATA_URL = re.compile(r"data:([\w/+.-]+);base64,(.*)", re.S)

#: Alt text: size, subject. A subject ends without a full stop; it is added.
ALT_TEXT = {
    "en": "Generated image ({size}): {subject}.",
    "fr": "Image générée ({size}) : {subject}.",
    "de": "Generiertes Bild ({size}): {subject}.",
    "es": "Imagen generada ({size}): {subject}.",
}
#: The subject when the request says nothing about the image.
GRADIENT = {
    "en": "a colour gradient with the words “imagegen sandbox”",
    "fr": "un dégradé de couleurs portant les mots « imagegen sandbox »",
    "de": "ein Farbverlauf mit den Worten „imagegen sandbox“",
    "es": "un degradado de color con las palabras «imagegen sandbox»",
}
PROMPT = {
    "en": "An editorial illustration for “{field}”: {text}",
    "fr": "Une illustration éditoriale pour « {field} » : {text}",
    "de": "Eine redaktionelle Illustration für „{field}“: {text}",
    "es": "Una ilustración editorial para «{field}»: {text}",
}
LONG_TEXT = "sandbox " * 250


def handle(handler: BaseHTTPRequestHandler, sandbox: SandboxServer) -> None:
    """Answer one ``POST /v1/chat/completions``."""
    try:
        raw = _read_body(handler)
        _authorize(handler, sandbox)
        body = _body(raw)
        _answer(handler, sandbox, body)
    except ApiError as exc:
        _send(handler, exc.status, exc.body, exc.headers)
    except ConnectionError:
        # The client gave up waiting (``describe-delay`` past its timeout).
        handler.close_connection = True


def _body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise ApiError(400, "you must provide a model parameter", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages must be a non-empty array.", param="messages")
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in (
            "system",
            "developer",
            "user",
            "assistant",
        ):
            raise ApiError(400, "Each message needs a role.", param="messages")
    return body


def _answer(handler: BaseHTTPRequestHandler, sandbox: SandboxServer, body: dict[str, Any]) -> None:
    texts, images = _contents(body["messages"])
    everything = "\n".join(texts)
    markers = parse_markers(everything)
    forced = sandbox.forced_http("describe", everything, markers)
    if forced:
        raise _forced(forced, body["model"])
    with sandbox._lock:  # the server's counters, under its own lock
        sandbox._counters["chat_completions"] = sandbox._counters.get("chat_completions", 0) + 1
    language = _language(everything)
    kind = markers.get("describe", "")
    refusal = None
    if kind == "empty":
        content: str | None = ""
    elif kind == "refusal":
        content, refusal = None, "I'm sorry, I can't help with that."
    elif kind == "long":
        content = LONG_TEXT
    elif images:
        content = _alt_text(language, images[0], _user_text(body["messages"]))
    else:
        content = _prompt(language, _user_text(body["messages"]))
    delay = markers.get("describe-delay")
    if delay:
        time.sleep(float(delay))
    if "describe-hangup" in markers:
        handler.close_connection = True
        return
    completion = len((content or "").split())
    payload = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": len(everything.split()),
            "completion_tokens": completion,
            "total_tokens": len(everything.split()) + completion,
        },
    }
    _send(handler, 200, payload, {"x-request-id": f"req_{uuid.uuid4().hex}"})


def _contents(messages: list[dict[str, Any]]) -> tuple[list[str], list[tuple[int, int]]]:
    """Every text of the messages, and the (width, height) of every image."""
    texts: list[str] = []
    images: list[tuple[int, int]] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        if not isinstance(content, list):
            raise ApiError(400, "content must be a string or an array.", param="messages")
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind == "image_url" and isinstance(part.get("image_url"), dict):
                images.append(_image_size(part["image_url"].get("url")))
            else:
                raise ApiError(400, "Unsupported content part.", param="messages")
    return texts, images


def _user_text(messages: list[dict[str, Any]]) -> str:
    """The user messages' text, without markers."""
    texts = []
    for message in messages:
        if message.get("role") != "user":
            continue
        content = message["content"]
        parts = [content] if isinstance(content, str) else [p.get("text", "") for p in content]
        texts.extend(part for part in parts if part)
    return _MARKERS.sub("", "\n".join(texts)).strip()


def _image_size(url: Any) -> tuple[int, int]:
    match = _DATA_URL.fullmatch(url) if isinstance(url, str) else None
    if match is None or match.group(1) not in MIME_TYPES:
        raise ApiError(
            400,
            "Invalid image: the sandbox takes PNG, JPEG or WebP data URLs.",
            code="invalid_image_url",
        )
    try:
        data = base64.b64decode(match.group(2), validate=True)
        with Image.open(io.BytesIO(data), formats=[MIME_TYPES[match.group(1)]]) as image:
            image.verify()
            return image.size
    except (binascii.Error, OSError, SyntaxError, ValueError):
        raise ApiError(
            400,
            "You uploaded an unsupported image. Please make sure your image is valid.",
            code="invalid_image_format",
        ) from None


def _language(text: str) -> str:
    match = _LANGUAGE.search(text)
    code = match.group(1).lower().replace("_", "-") if match else "en"
    return code.split("-")[0] if code.split("-")[0] in ALT_TEXT else "en"


def _alt_text(language: str, size: tuple[int, int], text: str) -> str:
    # The describer's own sentence before the prompt is not the subject.
    subject = text.split(": ", 1)[1] if text.startswith("The image was generated") else text
    subject = " ".join(subject.split()).rstrip(". ")[:200] or GRADIENT[language]
    return ALT_TEXT[language].format(size=f"{size[0]}×{size[1]}", subject=subject)


def _prompt(language: str, text: str) -> str:
    field, _, rest = text.partition("\n")
    field = field.removeprefix("Field:").strip() if field.startswith("Field:") else ""
    body = rest.strip().removeprefix("Text:").strip() if field or rest else text
    body = " ".join(body.split())[:400]
    return PROMPT[language].format(field=field or "—", text=body)

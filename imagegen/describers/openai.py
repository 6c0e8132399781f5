"""OpenAI-compatible chat completions with vision: ``POST {BASE_URL}/chat/completions``.

The image goes in the request as a data URL, reduced first to at most
``IMAGE_SIZE`` pixels a side (vision models reduce it anyway; a 4K PNG
would be tens of megabytes of base64). Any server that speaks OpenAI's chat
completions with image inputs works through ``BASE_URL`` (a self-hosted
model, a gateway); the sandbox's (:class:`.sandbox.SandboxDescriber`) is one.

The requests name the language as ``language code <code>`` in the system
message, and the sandbox reads it there.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import logging
import re
from functools import cached_property
from typing import Any

from django.utils.translation import get_language_info
from django.utils.translation import gettext as _
from PIL import Image

from .. import conf
from ..exceptions import ImagegenConfigurationError
from ..fields.prompts import trim
from ..imaging import ALLOWED_FORMATS
from ..providers.base import RETRYABLE_STATUSES
from .base import MAX_ALT_TEXT, MAX_PROMPT, Describer, DescriberError

logger = logging.getLogger("imagegen")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"
#: Longest TIMEOUT: the drafting task's soft time limit (100 s) must not cut a request short.
TIMEOUT_LIMIT = 90

ALT_TEXT_INSTRUCTIONS = (
    "You write alt text for images on a website. Describe what the image shows for "
    "someone who cannot see it: one or two plain sentences, at most 250 characters, "
    "without 'image of' or 'picture of', without quotes. Write in {language} "
    "(language code {code})."
)
PROMPT_INSTRUCTIONS = (
    "You write prompts for an image generation model. From the content below, write "
    "one prompt, at most 600 characters, for an image that illustrates it{field}: the "
    "subject, the setting, the style. No text or lettering in the image. Answer with the "
    "prompt only. Write in {language} (language code {code})."
)
_QUOTES = "\"'“”„«»‘’"


class OpenAIDescriber(Describer):
    """An OpenAI-compatible vision model (the ``openai`` extra).

    Options: ``API_KEY`` (None: the ``openai`` provider's, from
    ``IMAGEGEN["PROVIDERS"]["openai"]["API_KEY"]``), ``BASE_URL`` (default
    ``https://api.openai.com/v1``), ``MODEL`` (``gpt-4o-mini``), ``TIMEOUT``
    (seconds, default 60), ``IMAGE_SIZE`` (longest side sent, default 1024),
    ``DETAIL`` (``low``, ``high`` or ``auto``; default ``low``), ``MAX_TOKENS``
    (default 300), ``ORGANIZATION`` and ``PROJECT``.
    """

    name = "openai"
    option_names = frozenset(
        {
            "API_KEY",
            "BASE_URL",
            "MODEL",
            "TIMEOUT",
            "IMAGE_SIZE",
            "DETAIL",
            "MAX_TOKENS",
            "ORGANIZATION",
            "PROJECT",
        }
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # Only looked up: importing openai takes about a second of CPU, which every
        # manage.py command would pay, since the system checks build the describer.
        if importlib.util.find_spec("openai") is None:
            raise ImagegenConfigurationError(
                f"{type(self).__name__} needs the openai package: "
                'pip install "django-imagegen[openai]".'
            )
        self.model = str(self.option("MODEL") or DEFAULT_MODEL)
        self.base_url = str(self.option("BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = _positive(self, "TIMEOUT", 60.0, TIMEOUT_LIMIT)
        self.image_size = int(_positive(self, "IMAGE_SIZE", 1024, 4096))
        self.max_tokens = int(_positive(self, "MAX_TOKENS", 300, 4096))
        self.detail = self.option("DETAIL") or "low"
        if self.detail not in ("low", "high", "auto"):
            raise _option_error(self, "DETAIL", "must be 'low', 'high' or 'auto'")
        self._key = self.api_key()
        if not self._key:
            raise _option_error(self, "API_KEY", "is not set (nor the openai provider's)")

    @cached_property
    def client(self) -> Any:
        """The ``openai.OpenAI`` client, made on the first request."""
        import openai

        return openai.OpenAI(
            api_key=self._key,
            base_url=self.base_url,
            organization=self.option("ORGANIZATION") or None,
            project=self.option("PROJECT") or None,
            timeout=self.timeout,
            # imagegen's task retries, with its own backoff and bound.
            max_retries=0,
            # As imagegen's providers: no proxies or netrc credentials from
            # the environment, no redirects followed.
            http_client=openai.DefaultHttpxClient(trust_env=False, follow_redirects=False),
        )

    def api_key(self) -> str:
        """``API_KEY``, else the ``openai`` provider entry's key (may be empty)."""
        key = self.option("API_KEY")
        if key is None and "openai" in conf.get_setting("PROVIDERS"):
            key = conf.provider_options("openai").get("API_KEY")
        return str(key or "")

    def describe(self, image: bytes, content_type: str, *, language: str, context: str = "") -> str:
        parts: list[dict[str, Any]] = []
        if context:
            parts.append(
                {
                    "type": "text",
                    "text": "The image was generated from this prompt (describe what is "
                    f"actually visible): {trim(context, 2000)}",
                }
            )
        parts.append(
            {
                "type": "image_url",
                "image_url": {
                    "url": data_url(image, content_type, self.image_size),
                    "detail": self.detail,
                },
            }
        )
        messages = [
            {"role": "system", "content": _instructions(ALT_TEXT_INSTRUCTIONS, language)},
            {"role": "user", "content": parts},
        ]
        return tidy(self._complete(messages), MAX_ALT_TEXT)

    def draft_prompt(self, text: str, *, language: str, field_label: str = "") -> str:
        field = f" (its field: {field_label})" if field_label else ""
        messages = [
            {
                "role": "system",
                "content": _instructions(PROMPT_INSTRUCTIONS, language, field=field),
            },
            {"role": "user", "content": f"Field: {field_label}\n\nText:\n{text}"},
        ]
        return tidy(self._complete(messages), MAX_PROMPT)

    def _complete(self, messages: list[dict[str, Any]]) -> str:
        import openai

        try:
            answer = self.client.chat.completions.create(
                model=self.model, messages=messages, max_tokens=self.max_tokens
            )
        except openai.APITimeoutError:
            raise DescriberError(
                _("The describer did not answer in time."), temporary=True
            ) from None
        except openai.APIConnectionError:
            raise DescriberError(_("The describer could not be reached."), temporary=True) from None
        except openai.APIStatusError as exc:
            raise self._status_error(exc) from None
        choice = answer.choices[0] if answer.choices else None
        message = choice.message if choice else None
        if message is not None and getattr(message, "refusal", None):
            raise DescriberError(
                _("The describer declined: %(reason)s")
                % {"reason": self._scrub(message.refusal)[:300]}
            )
        content = (message.content or "") if message is not None else ""
        if not content.strip():
            raise DescriberError(_("The describer answered with no text."))
        return content

    def _status_error(self, exc: Any) -> DescriberError:
        status = exc.status_code
        body = exc.body if isinstance(exc.body, dict) else {}
        code = str(body.get("code") or "")
        if status == 401:
            # OpenAI's text quotes part of the key: never pass it on.
            return DescriberError(
                _("The describer rejected the API key. Check %(setting)s.")
                % {"setting": "IMAGEGEN['DESCRIBER']['OPTIONS']['API_KEY']"}
            )
        if code == "insufficient_quota":
            return DescriberError(_("The describer's account has run out of credit."))
        detail = self._scrub(str(body.get("message") or ""))[:300]
        if detail:
            message = _("The describer answered HTTP %(status)d: %(detail)s") % {
                "status": status,
                "detail": detail,
            }
        else:
            message = _("The describer answered HTTP %(status)d.") % {"status": status}
        retry_after = _seconds(exc.response.headers.get("retry-after"))
        return DescriberError(
            message, temporary=status in RETRYABLE_STATUSES, retry_after=retry_after
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text


def data_url(image: bytes, content_type: str, size: int) -> str:
    """``image`` as a ``data:`` URL, reduced to at most ``size`` pixels a side
    (a JPEG, or a PNG when it has transparency) when it is larger or not a
    PNG, JPEG or WebP."""
    kept = {mime for mime, _ext in ALLOWED_FORMATS.values()}
    with Image.open(io.BytesIO(image)) as im:
        if content_type in kept and max(im.size) <= size:
            return _data(content_type, image)
        im.draft("RGB", (size, size))
        im.thumbnail((size, size), Image.Resampling.BICUBIC, reducing_gap=2.0)
        alpha = "A" in im.getbands()
        reduced = im.convert("RGBA" if alpha else "RGB")
    out = io.BytesIO()
    if alpha:
        reduced.save(out, "PNG")
        return _data("image/png", out.getvalue())
    reduced.save(out, "JPEG", quality=85)
    return _data("image/jpeg", out.getvalue())


def tidy(text: str, limit: int) -> str:
    """A model's answer as one line of text: whitespace collapsed, surrounding
    quotes removed, cut to ``limit`` characters."""
    text = " ".join(text.split()).strip(_QUOTES + " ")
    return trim(text, limit)


def language_name(code: str) -> str:
    """The English name of a Django language code (``fr`` -> ``French``);
    the code itself when Django does not know it."""
    for candidate in (code, code.split("-")[0]):
        try:
            return str(get_language_info(candidate)["name"])
        except KeyError:
            continue
    return code


def _instructions(template: str, language: str, **extra: str) -> str:
    return template.format(language=language_name(language), code=language, **extra)


def _data(content_type: str, data: bytes) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"


def _seconds(value: str | None) -> float | None:
    if value and re.fullmatch(r"\d+(\.\d+)?", value.strip()):
        return float(value)
    return None


def _positive(describer: Describer, key: str, default: float, most: float) -> float:
    value = describer.option(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= most:
        raise _option_error(describer, key, f"must be a positive number up to {most}")
    return float(value)


def _option_error(describer: Describer, key: str, problem: str) -> ImagegenConfigurationError:
    return ImagegenConfigurationError(
        f"IMAGEGEN['DESCRIBER']['OPTIONS'][{key!r}] {problem} ({type(describer).__name__})."
    )

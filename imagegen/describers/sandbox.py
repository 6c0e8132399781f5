"""The sandbox describer: :class:`~.openai.OpenAIDescriber` pointed at the
local sandbox's ``POST /v1/chat/completions``, which answers
deterministically offline (docs/sandbox.md). One code path: what the
sandbox tests is what talks to a real model."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from .. import conf
from ..exceptions import ImagegenConfigurationError
from .openai import OpenAIDescriber


class SandboxDescriber(OpenAIDescriber):
    """Options as :class:`~.openai.OpenAIDescriber`'s; ``BASE_URL`` defaults
    to the sandbox provider's server (``/v1`` on the origin of its
    ``BASE_URL``), ``API_KEY`` to ``"sandbox"``."""

    name = "sandbox"

    def __init__(self, **options: Any) -> None:
        options.setdefault("API_KEY", "sandbox")
        if not options.get("BASE_URL"):
            options["BASE_URL"] = sandbox_base_url()
        super().__init__(**options)


def sandbox_base_url() -> str:
    """``/v1`` on the origin of the sandbox provider's ``BASE_URL``: the
    default provider's when it is a sandbox, else the ``sandbox`` entry's."""
    name = conf.get_setting("PROVIDER")
    options = conf.provider_options(name) if name in conf.provider_names() else {}
    if not options.get("SANDBOX"):
        options = conf.provider_options("sandbox")
    parts = urlsplit(str(options.get("BASE_URL") or conf.SANDBOX_DEFAULT_URL))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ImagegenConfigurationError(
            "The sandbox describer needs the sandbox provider's BASE_URL (an http URL)."
        )
    return f"{parts.scheme}://{parts.netloc}/v1"

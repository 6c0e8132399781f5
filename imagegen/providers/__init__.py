"""Provider registry: loads the provider classes named in settings.

``get_provider(name)`` returns a configured instance; instances are cached
per (name, options) so HTTP connections are reused across tasks in a worker,
and a settings change (``override_settings`` in tests) yields a new instance.
"""

from __future__ import annotations

import threading
from typing import Any

from django.utils.module_loading import import_string

from .. import conf
from ..exceptions import ImagegenConfigurationError
from .base import (
    Capabilities,
    GenerationRequest,
    Output,
    Provider,
    Submission,
    TaskState,
)

__all__ = [
    "Capabilities",
    "GenerationRequest",
    "Output",
    "Provider",
    "Submission",
    "TaskState",
    "get_provider",
]

_cache: dict[tuple[str, str], Provider] = {}
_lock = threading.Lock()


def get_provider(name: str | None = None) -> Provider:
    """The provider called ``name`` (default ``IMAGEGEN["PROVIDER"]``)."""
    name = name or conf.get_setting("PROVIDER")
    options = conf.provider_options(name)
    key = (name, _fingerprint(options))
    with _lock:
        provider = _cache.get(key)
        if provider is None:
            provider = _cache[key] = _load(name, options)
    return provider


def _load(name: str, options: dict[str, Any]) -> Provider:
    try:
        cls = import_string(options["CLASS"])
    except ImportError as exc:
        raise ImagegenConfigurationError(
            f"IMAGEGEN['PROVIDERS'][{name!r}]['CLASS'] cannot be imported: {exc}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise ImagegenConfigurationError(
            f"IMAGEGEN['PROVIDERS'][{name!r}]['CLASS'] must be a subclass of "
            "imagegen.providers.base.Provider."
        )
    return cls(name, options)


def _fingerprint(options: dict[str, Any]) -> str:
    return repr(sorted((k, repr(v)) for k, v in options.items()))

"""Provider registry: loads the provider classes named in settings.

``get_provider(name)`` returns a configured instance; instances are cached
per (name, options) so HTTP connections are reused across tasks in a worker,
and a settings change (``override_settings`` in tests) yields a new instance.

The local sandbox (an entry with the ``SANDBOX`` option) is for
development: unless :func:`sandbox_allowed`, its results may not come from
private or loopback hosts (where it serves them), create_job refuses it,
and system check ``imagegen.E026`` reports the site.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
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
    "is_sandbox",
    "sandbox_allowed",
]

_cache: dict[tuple[str, str], Provider] = {}
_lock = threading.Lock()


def get_provider(name: str | None = None) -> Provider:
    """The provider called ``name`` (default ``IMAGEGEN["PROVIDER"]``)."""
    name = name or conf.get_setting("PROVIDER")
    options = conf.provider_options(name)
    if options.get("SANDBOX") and not sandbox_allowed():
        # The sandbox serves its results on 127.0.0.1; nothing else may.
        options["ALLOW_PRIVATE_HOSTS"] = False
    key = (name, _fingerprint(options))
    with _lock:
        provider = _cache.get(key)
        if provider is None:
            provider = _cache[key] = _load(name, options)
    return provider


def sandbox_allowed() -> bool:
    """Whether the site may use the local sandbox provider: with ``DEBUG``
    on, or when the Django setting ``IMAGEGEN_ALLOW_SANDBOX`` is True (a
    staging site, the example project, the tests). It sits beside
    ``DEBUG``, not in ``IMAGEGEN``: like ``DEBUG`` it belongs to one
    deployment, while ``IMAGEGEN`` is often shared by all of them."""
    return settings.DEBUG or getattr(settings, "IMAGEGEN_ALLOW_SANDBOX", False) is True


def is_sandbox(provider: Provider) -> bool:
    """Whether ``provider`` is the local sandbox (its entry sets ``SANDBOX``)."""
    return bool(provider.options.get("SANDBOX"))


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

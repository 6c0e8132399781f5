"""Describer registry: loads the describer named in ``IMAGEGEN["DESCRIBER"]``.

``get_describer()`` returns a configured instance, cached per settings (as
:func:`imagegen.providers.get_provider` caches providers) so HTTP
connections are reused across tasks in a worker, and a settings change
(``override_settings`` in tests) yields a new instance.
"""

from __future__ import annotations

import threading

from django.utils.module_loading import import_string

from .. import conf
from ..exceptions import ImagegenConfigurationError
from .base import MAX_ALT_TEXT, MAX_PROMPT, Describer, DescriberError

__all__ = ["MAX_ALT_TEXT", "MAX_PROMPT", "Describer", "DescriberError", "get_describer"]

_cache: dict[str, Describer] = {}
_lock = threading.Lock()


def get_describer() -> Describer | None:
    """The configured describer, or None when IMAGEGEN["DESCRIBER"] is None (drafting off).

    Raises :class:`ImagegenConfigurationError` for a setting that names no
    usable describer (system check ``imagegen.E036``).
    """
    config = conf.describer_config()
    if config is None:
        return None
    # The sandbox describer's address follows the provider settings.
    key = repr((config, conf.get_setting("PROVIDER"), conf.get_setting("PROVIDERS")))
    with _lock:
        describer = _cache.get(key)
        if describer is None:
            describer = _cache[key] = _load(config["BACKEND"], config["OPTIONS"])
    return describer


def _load(backend: str, options: dict) -> Describer:
    try:
        cls = import_string(backend)
    except ImportError as exc:
        raise ImagegenConfigurationError(
            f"IMAGEGEN['DESCRIBER']['BACKEND'] cannot be imported: {exc}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Describer)):
        raise ImagegenConfigurationError(
            "IMAGEGEN['DESCRIBER']['BACKEND'] must name a subclass of "
            "imagegen.describers.base.Describer."
        )
    return cls(**options)

"""System checks of imagegen's configuration (ids ``imagegen.E0xx`` / ``W0xx``,
listed in docs/settings.md).

One registered check runs them all, one module per concern: ``values``
(the plain values of ``IMAGEGEN``), ``providers``, ``callbacks``, ``urls``,
``broker`` (the Celery app), ``storage``, ``fields`` (the generable
fields), ``credentials`` (Content Credentials) and ``describers``
(alt text and prompt drafts). Every configuration
mistake is reported here, never as a traceback: a check that cannot run
because of another mistake leaves it to the check that reports that one.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register

from .. import conf
from ..exceptions import ImagegenConfigurationError
from . import broker, callbacks, credentials, describers, fields, providers, storage, urls, values


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Every imagegen check; only ``imagegen.E001`` when ``IMAGEGEN`` is not a dict."""
    try:
        conf.user_settings()
    except ImagegenConfigurationError as exc:
        return [
            Error(
                str(exc),
                hint="IMAGEGEN = {'PROVIDER': 'sandbox', ...}: see docs/settings.md.",
                id="imagegen.E001",
            )
        ]
    return [
        *values.check(),
        *providers.check(),
        *callbacks.check(),
        *urls.check(),
        *broker.check(),
        *storage.check(),
        *fields.check(),
        *credentials.check(),
        *describers.check(),
    ]

"""System checks of imagegen's django-filer integration (ids ``imagegen_filer.E0xx``).

Whether a ``FilerImageField`` declared as a generable field has the filer
adapter is imagegen's own check E032.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.checks import Error, Tags, Warning, register

from imagegen import conf
from imagegen.exceptions import ImagegenConfigurationError

from .adapters import folder_path


@register(Tags.compatibility)
def check_filer(app_configs: Any = None, **kwargs: Any) -> list:
    try:
        conf.user_settings()
    except ImagegenConfigurationError:
        return _check_order()  # IMAGEGEN is not a dict: imagegen.E001
    try:
        folder_path(conf.get_setting("FILER_FOLDER"))
    except ImagegenConfigurationError as exc:
        return [
            Error(
                str(exc),
                hint='None, a folder id, or folder names separated by "/" ("Generated/Covers").',
                id="imagegen_filer.E001",
            ),
            *_check_order(),
        ]
    return _check_order()


def _check_order() -> list:
    """filer's image page shows alt text drafts from a template that extends
    filer's own of the same name: it is found only before filer's."""
    names = [config.name for config in apps.get_app_configs()]
    if names.index("filer") < names.index("imagegen.contrib.filer"):
        return [
            Warning(
                "imagegen.contrib.filer comes after filer in INSTALLED_APPS: filer's image "
                "page will not offer imagegen's alt text drafts.",
                hint="List 'imagegen.contrib.filer' before 'filer'.",
                id="imagegen_filer.W001",
            )
        ]
    return []

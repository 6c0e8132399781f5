"""System checks of imagegen's django-filer integration (ids ``imagegen_filer.E0xx``).

Whether a ``FilerImageField`` declared as a generable field has the filer
adapter is imagegen's own check E032.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Tags, register

from imagegen import conf
from imagegen.exceptions import ImagegenConfigurationError

from .adapters import folder_path


@register(Tags.compatibility)
def check_filer(app_configs: Any = None, **kwargs: Any) -> list:
    try:
        conf.user_settings()
    except ImagegenConfigurationError:
        return []  # IMAGEGEN is not a dict: imagegen.E001
    try:
        folder_path(conf.get_setting("FILER_FOLDER"))
    except ImagegenConfigurationError as exc:
        return [
            Error(
                str(exc),
                hint='None, a folder id, or folder names separated by "/" ("Generated/Covers").',
                id="imagegen_filer.E001",
            )
        ]
    return []

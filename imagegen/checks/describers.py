"""Checks of the drafting settings: ``DESCRIBER`` and ``REQUIRE_ALT_TEXT``."""

from __future__ import annotations

from django.core.checks import CheckMessage, Error

from .. import conf
from ..describers import get_describer
from ..exceptions import ImagegenConfigurationError

HINT = (
    "None (off), 'auto', or {'BACKEND': 'imagegen.describers.openai.OpenAIDescriber', "
    "'OPTIONS': {'API_KEY': ..., 'MODEL': ...}}. See docs/settings.md."
)


def check() -> list[CheckMessage]:
    """``imagegen.E036``: a describer imagegen cannot load (malformed setting,
    unknown backend, bad options, the openai package missing);
    ``imagegen.E037``: ``REQUIRE_ALT_TEXT`` not a bool."""
    errors: list[CheckMessage] = []
    try:
        get_describer()
    except ImagegenConfigurationError as exc:
        errors.append(Error(str(exc), hint=HINT, id="imagegen.E036"))
    required = conf.get_setting("REQUIRE_ALT_TEXT")
    if not isinstance(required, bool):
        errors.append(
            Error(
                f"IMAGEGEN['REQUIRE_ALT_TEXT'] must be True or False, not {required!r}.",
                hint="True: approving or attaching an image needs alt text or the decorative mark.",
                id="imagegen.E037",
            )
        )
    return errors

"""Fixtures of the django-filer tests, which need the filer settings.

They run in their own pytest invocation (Django is configured once per run)::

    DJANGO_SETTINGS_MODULE=tests.filer_settings .venv/bin/pytest tests/filer

Under the main settings this directory is not collected.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps

if not apps.is_installed("imagegen.contrib.filer"):
    # The main runs (tests.settings) have no filer: nothing here applies.
    collect_ignore_glob = ["test_*.py"]
else:
    # The browser fixtures (Debian's Chromium through Playwright), shared with tests/browser.
    from tests.browser.conftest import (  # noqa: F401
        browser,
        chromium_executable,
        page,
        screenshot_dir,
    )

FILER_IMAGEGEN = {
    "ASSET_ADAPTER": "imagegen.contrib.filer.adapters.FilerImageAdapter",
    "FILER_FOLDER": "Generated/Events",
}


@pytest.fixture
def filer_imagegen(imagegen_settings: dict[str, Any], settings: Any) -> dict[str, Any]:
    """imagegen on the test sandbox (tests/conftest.py) with the filer adapter."""
    settings.IMAGEGEN = {**imagegen_settings, **FILER_IMAGEGEN}
    return settings.IMAGEGEN

"""Configuration mistakes that used to crash ``import imagegen.models`` (or any
read of a setting) are system check errors.

Each case runs ``manage.py check`` in a fresh process on a settings module
written for it, so the models really are imported with the mistake in place.
The family: ``IMAGEGEN`` of every non-dict kind (list, string, number,
tuple), also with the Wagtail integration's checks installed;
``STORAGE_ALIAS`` naming an alias STORAGES lacks; STORAGES without
``default`` (and without ``imagegen``), alone and with ``STORAGE_ALIAS``
``"default"``; a STORAGES entry whose backend cannot be imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_STATIC = '{"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}'

CASES = {
    "IMAGEGEN a list": ('IMAGEGEN = ["PROVIDER", "sandbox"]', "imagegen.E001"),
    "IMAGEGEN a string": ('IMAGEGEN = "sandbox"', "imagegen.E001"),
    "IMAGEGEN a number": ("IMAGEGEN = 1", "imagegen.E001"),
    "IMAGEGEN a tuple of pairs": ('IMAGEGEN = (("PROVIDER", "sandbox"),)', "imagegen.E001"),
    "STORAGE_ALIAS not in STORAGES": (
        'IMAGEGEN = {**IMAGEGEN, "STORAGE_ALIAS": "results"}',
        "imagegen.E014",
    ),
    "STORAGES without default or imagegen": (
        f'STORAGES = {{"staticfiles": {_STATIC}}}',
        "imagegen.E014",
    ),
    "STORAGES without default, STORAGE_ALIAS default": (
        f'STORAGES = {{"staticfiles": {_STATIC}}}\n'
        'IMAGEGEN = {**IMAGEGEN, "STORAGE_ALIAS": "default"}',
        "imagegen.E014",
    ),
    "a backend that cannot be imported": (
        'STORAGES = {**STORAGES, "imagegen": {"BACKEND": "no_such_package.Storage"}}',
        "imagegen.E015",
    ),
    "IMAGEGEN a list, with the Wagtail integration": (
        'from tests.wagtail_settings import *  # noqa: F403\nIMAGEGEN = ["PROVIDER"]',
        "imagegen.E001",
    ),
}


@pytest.mark.parametrize("mistake", CASES)
def test_mistake_is_a_check_error_not_a_traceback(tmp_path, mistake):
    settings_source, check_id = CASES[mistake]
    (tmp_path / "mistaken_settings.py").write_text(
        f"from tests.settings import *  # noqa: F403\n{settings_source}\n"
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("IMAGEGEN_TEST_OVERRIDES", "DJANGO_SETTINGS_MODULE")
    }
    env["DJANGO_SETTINGS_MODULE"] = "mistaken_settings"
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT)])
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"({check_id})" in output, output
    assert "Traceback" not in output, output

"""``python manage.py imagegen ...`` as a shell runs it: real argv parsing
(call_command() skips part of it), on a SQLite file of the test's own, with
what tests.settings should change given as IMAGEGEN_TEST_OVERRIDES."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import django
import httpx
import pytest

from .conftest import PROCESSES_TIMEOUT, wait_until

pytestmark = pytest.mark.timeout(PROCESSES_TIMEOUT)

ROOT = Path(__file__).resolve().parent.parent
NOT_MIGRATED = "CommandError: The database is not migrated: run `manage.py migrate` first.\n"


def overrides_for(directory: Path) -> dict[str, Any]:
    """tests.settings on a SQLite file in ``directory``, with an in-memory broker
    (nothing left in a real one) and media stored there."""
    return {
        "DATABASES": {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(directory / "db.sqlite3"),
            }
        },
        "CELERY_BROKER_URL": "memory://",
        "MEDIA_ROOT": str(directory / "media"),
    }


def environment(overrides: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment on tests.settings with ``overrides``, then ``env``."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "IMAGEGEN_TEST_OVERRIDES": json.dumps(overrides),
        **(env or {}),
    }


def manage(
    *argv: str, overrides: dict[str, Any], env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python manage.py ARGV`` to its end."""
    return subprocess.run(
        [sys.executable, "manage.py", *argv],
        cwd=ROOT,
        env=environment(overrides, env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Overrides for a migrated SQLite database with a user ``cli``."""
    overrides = overrides_for(tmp_path_factory.mktemp("cli-site"))
    for argv in (
        ["migrate", "-v", "0"],
        [
            "shell",
            "-c",
            "from django.contrib.auth.models import User; User.objects.create(username='cli')",
        ],
    ):
        result = manage(*argv, overrides=overrides, timeout=120)
        assert result.returncode == 0, result.stderr
    return overrides


@pytest.fixture(scope="module")
def settings_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory (not on the path) holding a settings module, for --pythonpath."""
    directory = tmp_path_factory.mktemp("cli-pythonpath")
    (directory / "imagegen_cli_settings.py").write_text("from tests.settings import *  # noqa\n")
    return directory


def succeeded(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr


def no_job_with_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "CommandError: No job no-such-job." in result.stderr


def no_job_in_color(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 1
    assert "\x1b[" in result.stderr and "No job no-such-job." in result.stderr
    assert "Traceback" not in result.stderr


def both_colors_refused(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 1
    assert "The --no-color and --force-color options can't be used together." in result.stderr


def printed_version(result: subprocess.CompletedProcess[str]) -> None:
    assert (result.returncode, result.stdout.strip()) == (0, django.get_version())


Check = Callable[[subprocess.CompletedProcess[str]], None]

#: Each common option: its argv, the status arguments, an environment in which
#: the option makes a visible difference, tests.settings overrides, the check.
COMMON_OPTIONS: dict[str, tuple[list[str], list[str], dict[str, str], dict[str, Any], Check]] = {
    # The environment names settings that do not exist: only --settings works.
    "--settings": (
        ["--settings", "tests.settings"],
        [],
        {"DJANGO_SETTINGS_MODULE": "imagegen_no_such_settings"},
        {},
        succeeded,
    ),
    # The settings module is only importable from the directory --pythonpath adds.
    "--pythonpath": (
        ["--pythonpath", "{settings_dir}"],
        [],
        {"DJANGO_SETTINGS_MODULE": "imagegen_cli_settings"},
        {},
        succeeded,
    ),
    "--traceback": (["--traceback"], ["no-such-job"], {}, {}, no_job_with_traceback),
    "-v": (["-v", "0"], [], {}, {}, succeeded),
    "--verbosity": (["--verbosity", "2"], [], {}, {}, succeeded),
    # Given with --force-color on the other side of the action: Django refuses
    # the pair, which it can only do if both arrived.
    "--no-color": (["--no-color"], [], {}, {}, both_colors_refused),
    "--force-color": (["--force-color"], ["no-such-job"], {}, {}, no_job_in_color),
    # A settings mistake Django's own checks report (staticfiles.E001).
    "--skip-checks": (["--skip-checks"], [], {}, {"STATICFILES_DIRS": "not-a-list"}, succeeded),
    "--version": (["--version"], [], {}, {}, printed_version),
}


def common_option_run(
    option: str, where: str, site: dict[str, Any], settings_dir: Path, *, given: bool = True
) -> subprocess.CompletedProcess[str]:
    option_argv, status_args, env, extra, _check = COMMON_OPTIONS[option]
    option_argv = [arg.format(settings_dir=settings_dir) for arg in option_argv] if given else []
    status = ["status", *status_args]
    if option == "--no-color":  # the other of the pair goes on the other side
        status = [*status, "--force-color"] if where == "before" else ["--force-color", *status]
    argv = [*option_argv, *status] if where == "before" else [*status, *option_argv]
    return manage("imagegen", *argv, overrides={**site, **extra}, env=env)


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize("option", COMMON_OPTIONS)
def test_common_option_before_and_after_the_action(option, where, site, settings_dir):
    """Family: every Django common option, before and after the action
    (``status``), through real argv parsing; each takes its effect."""
    COMMON_OPTIONS[option][-1](common_option_run(option, where, site, settings_dir))


@pytest.mark.parametrize("option", ["--settings", "--pythonpath", "--skip-checks"])
def test_without_the_option_its_environment_fails(option, site, settings_dir):
    """The environments above really need their option: the command fails
    without it (so the cases above prove the option was applied)."""
    result = common_option_run(option, "after", site, settings_dir, given=False)
    assert result.returncode != 0


def test_generate_then_status_with_options_after(site):
    result = manage("imagegen", "generate", "a paper boat", "--no-color", overrides=site)
    succeeded(result)
    job_id = result.stdout.split()[2]
    result = manage("imagegen", "status", job_id, "-v", "0", overrides=site)
    succeeded(result)
    assert job_id in result.stdout and "queued" in result.stdout


def test_sweep_with_an_option_after(site):
    result = manage("imagegen", "sweep", "--skip-checks", overrides=site)
    succeeded(result)


def test_openapi_with_an_option_after(site):
    result = manage(
        "imagegen",
        "openapi",
        "--settings",
        "tests.settings",
        overrides=site,
        env={"DJANGO_SETTINGS_MODULE": "imagegen_no_such_settings"},
    )
    succeeded(result)
    assert json.loads(result.stdout)["openapi"].startswith("3.")


def test_token_create_and_revoke_with_options_after(site):
    created = manage(
        "imagegen",
        "token",
        "create",
        "--user",
        "cli",
        "--name",
        "argv",
        "--traceback",
        overrides=site,
    )
    succeeded(created)
    token = created.stdout.strip()
    revoked = manage("imagegen", "token", "revoke", token, "--verbosity", "0", overrides=site)
    succeeded(revoked)
    assert revoked.stdout.startswith(f"Revoked token {token[:12]}")


def test_demo_with_an_option_after(site):
    """The demo's options and a common option after it: a Celery app that
    does not exist is a CommandError naming --celery-app, shown with its
    traceback as asked."""
    result = manage(
        "imagegen", "demo", "--celery-app", "imagegen_no_such_app", "--traceback", overrides=site
    )
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "Cannot load the Celery app 'imagegen_no_such_app' (--celery-app)" in result.stderr


@pytest.mark.parametrize("separator", [[], ["--"]], ids=["options", "-- options"])
def test_sandbox_serves_with_its_options_in_both_forms(separator, tmp_path):
    """``imagegen sandbox OPTIONS`` and ``imagegen sandbox -- OPTIONS`` run the
    sandbox with them (port, key, format, latency), a common option among them."""
    argv = ["--port", "0", "--api-key", "k", "--format", "jpeg", "--latency", "0.1", "-v", "0"]
    environ = environment(overrides_for(tmp_path))
    with running(["imagegen", "sandbox", *separator, *argv], environ) as process:
        line = process.stdout.readline()
        assert line.startswith("imagegen sandbox listening on http://127.0.0.1:"), line
        api = line.split(" on ")[1].strip().rstrip("/")
        body = {
            "request_type": "async",
            "input": {"mode": "text-to-image", "prompt": "a kite", "resolution": "1k"},
        }
        submit = f"{api}/generateTask/gpt-image-2"
        wrong = httpx.post(submit, json=body, headers={"Authorization": "Bearer other"})
        assert wrong.status_code == 401
        headers = {"Authorization": "Bearer k"}
        task_id = httpx.post(submit, json=body, headers=headers).json()["data"]["taskId"]

        def finished() -> dict | None:
            data = httpx.get(
                f"{api}/statusTask/gpt-image-2", params={"taskId": task_id}, headers=headers
            ).json()["data"]
            return data if data["state"] == "success" else None

        data = wait_until(finished, timeout=30, what="the sandbox task")
        url = json.loads(data["resultJson"])["resultUrls"][0]
        assert httpx.get(url).headers["content-type"] == "image/jpeg"


@contextlib.contextmanager
def running(argv: list[str], environ: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "manage.py", *argv],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


#: Every action that reads or writes imagegen's tables.
DATABASE_ACTIONS = {
    "generate": ["generate", "a kite"],
    "fill": ["fill", "imagegen_content_tests.Article.cover", "--dry-run"],
    "status": ["status"],
    "sweep": ["sweep"],
    "purge-deliveries": ["purge-deliveries"],
    "token create": ["token", "create", "--user", "cli", "--name", "n"],
    "token revoke": ["token", "revoke", "ig_123456789"],
    "demo": ["demo", "--celery-app", "project"],
}


def tables(database: Path) -> list[str]:
    with sqlite3.connect(database) as connection:
        return [row[0] for row in connection.execute("SELECT name FROM sqlite_master")]


@pytest.mark.parametrize("action", DATABASE_ACTIONS)
def test_unmigrated_database_says_run_migrate(action, tmp_path):
    """Family: every action that touches the database, on a new empty database:
    one line saying to migrate, exit status 1, no traceback, nothing written."""
    result = manage("imagegen", *DATABASE_ACTIONS[action], overrides=overrides_for(tmp_path))
    assert (result.returncode, result.stderr[-len(NOT_MIGRATED) :]) == (1, NOT_MIGRATED)
    assert "Traceback" not in result.stderr
    assert tables(tmp_path / "db.sqlite3") == []


def test_latest_imagegen_migration_unapplied_says_run_migrate(tmp_path):
    """A site upgraded without ``migrate``: every other migration applied,
    imagegen's latest not; status says to migrate, openapi (no database) works."""
    overrides = overrides_for(tmp_path)
    latest = sorted((ROOT / "imagegen" / "migrations").glob("0*.py"))
    assert len(latest) >= 2
    for argv in (["migrate", "-v", "0"], ["migrate", "imagegen", latest[-2].stem, "-v", "0"]):
        succeeded(manage(*argv, overrides=overrides, timeout=120))
    result = manage("imagegen", "status", overrides=overrides)
    assert (result.returncode, result.stderr[-len(NOT_MIGRATED) :]) == (1, NOT_MIGRATED)
    succeeded(manage("imagegen", "openapi", overrides=overrides))

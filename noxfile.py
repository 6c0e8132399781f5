"""The support matrix (docs/support.md), run with nox.

- ``lts``: Django 5.2 LTS on Python 3.11, the whole suite. It is ``scripts/test``
  (lint, migrations and system checks, the PostgreSQL + Redis, SQLite + RabbitMQ and
  Wagtail passes) run in this session's virtualenv, so the two never drift apart.
- ``newest``: the newest Django release (requirements/newest.txt) on Python 3.13 (and
  3.12 on demand), the suites that meet Django most directly, without the Wagtail extra
  (Wagtail may trail a new Django release). ``scripts/test`` runs ``newest-3.13``
  beside its own passes, so CI runs both entries.

``nox`` runs ``lts`` and ``newest-3.13``; ``nox -s newest-3.13 -- -k admin`` passes
arguments to pytest. Interpreters come from PATH or pyenv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nox

LTS_PYTHON = "3.11"
NEWEST_PYTHONS = ["3.12", "3.13"]
# What the newest Django runs: the pipeline through a real worker, the admin, the
# services, system checks, commands with real argv parsing, and install.md followed in
# a new site (which runs the site, worker, beat and sandbox as the demo does, so the
# demo's own tests run on the LTS only). One path a line.
NEWEST_TESTS = [
    "tests/test_pipeline.py",
    *sorted(str(path) for path in Path("tests").glob("test_admin_*.py")),
    "tests/test_services.py",
    "tests/test_checks.py",
    "tests/test_commands.py",
    "tests/test_cli_argv.py",
    "tests/install",
]

nox.options.sessions = ["lts", f"newest-{NEWEST_PYTHONS[-1]}"]
# A session's interpreter missing is an error under CI (nox's default there), a skip
# elsewhere.


def _expose_pyenv_interpreters() -> None:
    """Let nox find pyenv's interpreters.

    pyenv's ``python3.13`` shim fails unless PYENV_VERSION (or a .python-version file)
    selects a 3.13, so name the newest installed patch release of every Python the
    matrix uses, after the current version so that ``python3`` stays what it was.
    """
    pyenv = shutil.which("pyenv")
    if os.environ.get("PYENV_VERSION") or pyenv is None:
        return
    versions: list[str] = []
    for query in [None, LTS_PYTHON, *NEWEST_PYTHONS]:
        args = [pyenv, "version-name"] if query is None else [pyenv, "latest", query]
        found = subprocess.run(args, capture_output=True, text=True, check=False)  # noqa: S603 (fixed arguments)
        name = found.stdout.strip()
        if found.returncode == 0 and name and name != "system" and name not in versions:
            versions.append(name)
    if versions:
        os.environ["PYENV_VERSION"] = ":".join(versions)


_expose_pyenv_interpreters()


def _pytest_status(session: nox.Session) -> list[int]:
    """pytest exit statuses that pass: 5 (no tests collected) only when arguments
    narrowed the run; a full run that collects nothing fails."""
    return [0, 5] if session.posargs else [0]


def _narrowed(tests: list[str], args: list[str]) -> list[str]:
    """pytest's arguments for ``tests`` narrowed by ``args`` (scripts/test's, given to
    every pass): test paths among the arguments keep only what lies in ``tests``
    (``tests`` keeps them all, ``tests/test_checks.py::test_x`` that test,
    ``tests/test_api.py`` nothing); options pass through. No paths: all of ``tests``.
    """

    def path(arg: str) -> Path | None:
        candidate = Path(arg.split("::", 1)[0])
        return candidate.resolve() if not arg.startswith("-") and candidate.exists() else None

    paths = {arg: found for arg in args if (found := path(arg)) is not None}
    options = [arg for arg in args if arg not in paths]
    if not paths:
        return [*tests, *options]
    kept = []
    for test in tests:
        outer = Path(test).resolve()
        for arg, inner in paths.items():
            if inner.is_relative_to(outer):
                kept.append(arg)
            elif outer.is_relative_to(inner):
                kept.append(test)
    return [*dict.fromkeys(kept), *options] if kept else []


@nox.session(python=LTS_PYTHON)
def lts(session: nox.Session) -> None:
    """Django 5.2 LTS on Python 3.11: the whole suite, through scripts/test."""
    session.run(
        "scripts/test",
        *session.posargs,
        external=True,
        # scripts/test installs into this virtualenv; `nox` runs `newest` itself.
        env={"IMAGEGEN_VENV": session.virtualenv.location, "IMAGEGEN_SKIP_NEWEST": "1"},
    )


@nox.session(python=NEWEST_PYTHONS)
def newest(session: nox.Session) -> None:
    """The newest Django on Python 3.12/3.13: migrations and checks, then NEWEST_TESTS."""
    session.install("-e", ".[dev]", "-c", "requirements/newest.txt")
    session.run("python", "-m", "django", "--version")
    checks = {"DJANGO_SETTINGS_MODULE": "tests.settings"}
    session.run("python", "manage.py", "makemigrations", "--check", "--dry-run", env=checks)
    session.run("python", "manage.py", "check", "--fail-level", "ERROR", env=checks)
    selection = _narrowed(NEWEST_TESTS, session.posargs)
    if not selection:
        session.skip("the arguments name none of the newest Django's tests")
    session.run("pytest", "--durations=8", *selection, success_codes=_pytest_status(session))

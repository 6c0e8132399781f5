"""``manage.py imagegen demo`` in a site that is not the example one: a
``django-admin startproject mysite`` site with Celery's standard layout
(mysite/celery.py defines ``app``, mysite/__init__.py imports it), on the test
broker in a queue of its own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from .conftest import PROCESSES_TIMEOUT, require_service

pytestmark = pytest.mark.timeout(PROCESSES_TIMEOUT)

CELERY_PY = """\
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

app = Celery("mysite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
"""

INIT_PY = """\
from .celery import app as celery_app

__all__ = ("celery_app",)
"""

# What the test varies comes from the environment: ports, broker, queue, and
# MYSITE_BREAK to make the worker or beat fail at start, MYSITE_ROUTE_TO to
# send imagegen's tasks to a queue no worker consumes.
SETTINGS_PY = """
import os

from kombu import Queue

INSTALLED_APPS += ["imagegen"]
MEDIA_ROOT = BASE_DIR / "media"
MEDIA_URL = "/media/"
CELERY_BROKER_URL = os.environ["MYSITE_BROKER_URL"]
_queue = os.environ["MYSITE_QUEUE"]
CELERY_TASK_DEFAULT_QUEUE = _queue
CELERY_TASK_QUEUES = (Queue(_queue, routing_key=_queue, queue_arguments={"x-expires": 600_000}),)
if os.environ.get("MYSITE_ROUTE_TO"):
    CELERY_TASK_ROUTES = {"imagegen.*": {"queue": os.environ["MYSITE_ROUTE_TO"]}}
CELERY_BEAT_SCHEDULE = {"imagegen-sweep": {"task": "imagegen.sweep", "schedule": 1.0}}
CELERY_BEAT_SCHEDULE_FILENAME = str(BASE_DIR / "celerybeat-schedule")
if os.environ.get("MYSITE_BREAK") == "worker":
    CELERY_WORKER_POOL = "imagegen_no_such_pool"
if os.environ.get("MYSITE_BREAK") == "beat":
    CELERY_BEAT_SCHEDULER = "imagegen_no_such_module:Scheduler"
IMAGEGEN = {
    "PROVIDER": "sandbox",
    "PROVIDERS": {
        "sandbox": {
            "BASE_URL": os.environ["IMAGEGEN_SANDBOX_URL"],
            "LATENCY": {"1k": (1, 4), "2k": (1, 4), "4k": (1, 4)},
        }
    },
    "CALLBACK_BASE_URL": os.environ["IMAGEGEN_CALLBACK_BASE_URL"],
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def mysite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A migrated startproject site; ``othersite`` beside it is a settings
    package without a Celery app."""
    require_service(f"{django_settings.TEST_BROKER} broker", django_settings.CELERY_BROKER_URL)
    root = tmp_path_factory.mktemp("startproject")
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "mysite", str(root)], check=True
    )
    (root / "mysite" / "celery.py").write_text(CELERY_PY)
    (root / "mysite" / "__init__.py").write_text(INIT_PY)
    with (root / "mysite" / "settings.py").open("a") as settings_py:
        settings_py.write(SETTINGS_PY)
    urls = root / "mysite" / "urls.py"
    urls.write_text(
        urls.read_text()
        .replace("from django.urls import path", "from django.urls import include, path")
        .replace(
            "path('admin/', admin.site.urls),",
            "path('admin/', admin.site.urls),\n    path('imagegen/', include('imagegen.urls')),",
        )
        .replace(
            'path("admin/", admin.site.urls),',
            'path("admin/", admin.site.urls),\n    path("imagegen/", include("imagegen.urls")),',
        )
    )
    assert "imagegen.urls" in urls.read_text()
    (root / "othersite").mkdir()
    (root / "othersite" / "__init__.py").write_text("")
    (root / "othersite" / "settings.py").write_text("from mysite.settings import *  # noqa\n")
    result = demo_site(root, "migrate", "-v", "0")
    assert result.returncode == 0, result.stderr
    yield root


def demo_site(root: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python manage.py ARGV`` in the site, as its developer would run it
    (from its directory, DJANGO_SETTINGS_MODULE unset unless ``env`` sets it)."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "IMAGEGEN_", "CELERY_"))
    }
    environ.update(
        MYSITE_BROKER_URL=django_settings.CELERY_BROKER_URL,
        MYSITE_QUEUE=f"imagegen-demo-test-{uuid.uuid4().hex[:8]}",
        IMAGEGEN_SANDBOX_URL=f"http://127.0.0.1:{free_port()}/api/v1",
        IMAGEGEN_CALLBACK_BASE_URL=f"http://127.0.0.1:{free_port()}",
    )
    environ.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *argv],
        cwd=root,
        env=environ,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def command_error(result: subprocess.CompletedProcess[str]) -> str:
    """The CommandError line the demo ended with (it failed, without a traceback)."""
    assert result.returncode == 1, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("CommandError: "), result.stderr
    return last


def test_demo_runs_with_the_celery_app_derived_from_the_settings(mysite):
    """No --celery-app: DJANGO_SETTINGS_MODULE=mysite.settings gives ``-A
    mysite``; the worker is reported consuming, both jobs are stored, the
    last line is the second image's file."""
    result = demo_site(mysite, "imagegen", "demo", "--timeout", "90")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "celery      worker and beat starting (-A mysite)\n" in out
    assert "celery      worker consuming: it took job 1 after " in out
    assert out.count(": succeeded\n") == 2
    last = Path(out.strip().splitlines()[-1])
    assert last.is_file() and last.is_relative_to(mysite / "media")


@pytest.mark.parametrize("role", ["worker", "beat"])
def test_demo_stops_when_a_celery_process_exits(mysite, role):
    """Family: the worker or beat ends while the demo waits: the demo stops at
    once with its exit code and says where its output is."""
    result = demo_site(mysite, "imagegen", "demo", "--timeout", "90", MYSITE_BREAK=role)
    error = command_error(result)
    assert error.startswith(f"CommandError: The Celery {role} (celery -A mysite {role}) exited ")
    assert "with code " in error and error.endswith("; its output is above.")
    if role == "worker":
        # A worker that failed to start never consumed. With beat broken the
        # worker is healthy and, on a loaded machine, may be consuming (even
        # have taken job 1) before beat gets to loading its scheduler and dies.
        assert "worker consuming" not in result.stdout


def test_demo_says_when_the_worker_is_not_consuming(mysite):
    """imagegen's tasks go to a queue the worker does not consume: after the
    bound (here --timeout 8) the demo says so and what to check."""
    result = demo_site(mysite, "imagegen", "demo", "--timeout", "8", MYSITE_ROUTE_TO="nobody")
    error = command_error(result)
    assert "is running but has not taken job 1 in 8s: it is not consuming" in error
    assert "CELERY_BROKER_URL" in error and "CELERY_TASK_ROUTES" in error
    assert "worker consuming" not in result.stdout


#: (argv after ``demo``, environment) -> what the error names as the app's source.
BAD_APPS = {
    "--celery-app": (
        ["--celery-app", "imagegen_no_such_app"],
        {"IMAGEGEN_CELERY_APP": "mysite"},
        "'imagegen_no_such_app' (--celery-app)",
    ),
    "IMAGEGEN_CELERY_APP": (
        [],
        {"IMAGEGEN_CELERY_APP": "imagegen_no_such_app"},
        "'imagegen_no_such_app' (IMAGEGEN_CELERY_APP)",
    ),
    "derived": (
        [],
        {"DJANGO_SETTINGS_MODULE": "othersite.settings"},
        "'othersite' (derived from DJANGO_SETTINGS_MODULE=othersite.settings)",
    ),
    "not an app": (["--celery-app", "os:sep"], {}, "'os:sep' (--celery-app)"),
}


@pytest.mark.parametrize("case", BAD_APPS)
def test_celery_app_that_cannot_be_loaded_is_named(mysite, case):
    """Family: the app comes from --celery-app, else IMAGEGEN_CELERY_APP, else
    the settings module's package; each that does not load is a CommandError
    naming it, its source and --celery-app, before anything starts."""
    argv, env, named = BAD_APPS[case]
    error = command_error(demo_site(mysite, "imagegen", "demo", *argv, **env))
    assert named in error and "Pass --celery-app" in error

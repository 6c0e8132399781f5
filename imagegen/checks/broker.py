"""The Celery app imagegen's tasks are sent through, and its broker.

imagegen's tasks are ``shared_task``s: they are sent through Celery's
*current* app, which is per thread. A request thread that did not create the
app gets the process's default app, and when nobody made one the default,
Celery's fallback app: no settings, broker ``amqp://localhost``. Celery's
configuration is read from that app (``app.conf``), which reflects the
``CELERY_*`` Django settings only when the app loads them.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from celery import Celery, current_app
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from .. import conf
from .values import non_negative_number

#: Transports that redeliver a message not acknowledged within a visibility
#: timeout, and kombu's default timeout of each.
VISIBILITY_DEFAULTS = {
    "redis": 3600,
    "rediss": 3600,
    "redis+socket": 3600,
    "sentinel": 3600,
    "sqs": 1800,
}


def check() -> list[CheckMessage]:
    app = app_for_requests()
    if _is_fallback(app):
        return [_no_app()]
    if not _first_url(app.conf.broker_write_url):  # falls back to broker_url
        return [
            Error(
                f"The Celery app {app.main!r} has no broker_url: imagegen's tasks would go to "
                "Celery's default, amqp://guest@localhost//.",
                hint="Set CELERY_BROKER_URL (the app reads it with config_from_object("
                "'django.conf:settings', namespace='CELERY')), e.g. 'redis://localhost:6379/0'.",
                id="imagegen.E018",
            )
        ]
    url = _first_url(app.conf.broker_read_url)
    return _check_sqlite_broker(app, url) + _check_countdowns(app, url)


#: imagegen's development broker (imagegen/sqlite_broker.py), as settings name it.
SQLITE_TRANSPORT = "imagegen.sqlite_broker:Transport"


def _check_sqlite_broker(app: Celery, url: str) -> list[CheckMessage]:
    """imagegen's SQLite broker takes a ``sqlite:///`` URL and no other, and
    workers that never fork (docs/install.md)."""
    transport = app.conf.broker_transport
    chosen = transport == SQLITE_TRANSPORT or getattr(transport, "__module__", "") == (
        "imagegen.sqlite_broker"
    )
    sqlite_url = urlsplit(url).scheme == "sqlite"
    if chosen and not sqlite_url:
        return [
            Error(
                f"CELERY_BROKER_TRANSPORT is imagegen's SQLite broker, but the broker URL is "
                f"{urlsplit(url).scheme or 'not'} a sqlite:/// URL.",
                hint="Set CELERY_BROKER_TRANSPORT only together with a sqlite:/// broker URL: "
                "remove it when switching to Redis or RabbitMQ.",
                id="imagegen.E024",
            )
        ]
    if sqlite_url and not chosen:
        return [
            Error(
                "The broker URL is sqlite:///, which kombu has no transport for.",
                hint=f"Add CELERY_BROKER_TRANSPORT = {SQLITE_TRANSPORT!r} (and the sqlalchemy "
                "extra), or use sqla+sqlite:/// for kombu's own SQLAlchemy transport.",
                id="imagegen.E024",
            )
        ]
    if chosen and app.conf.worker_pool not in ("threads", "solo"):
        return [
            Warning(
                f"Celery workers use the {app.conf.worker_pool!r} pool on imagegen's SQLite "
                "broker: a process forked while its parent held the file's lock can never "
                "write to it, and its tasks' messages are lost.",
                hint='Set CELERY_WORKER_POOL = "threads".',
                id="imagegen.W007",
            )
        ]
    return []


def _longest_task_run() -> float:
    """Seconds the longest imagegen task may run: finalize's limit, or a
    submission to the slowest configured provider (services.jobs.enqueue_submit)."""
    from ..services.jobs import longest_submit_seconds
    from ..tasks import FINALIZE_TIME_LIMIT

    try:
        submit = longest_submit_seconds()
    except Exception:  # a provider that cannot be loaded is E004's to report
        submit = 0.0
    return max(float(FINALIZE_TIME_LIMIT), submit + 20)


def app_for_requests() -> Celery:
    """The app a shared task is sent through from a thread that did not create
    one, such as a web server's request threads."""
    found: list[Celery] = []
    thread = threading.Thread(target=lambda: found.append(current_app._get_current_object()))
    thread.start()
    thread.join()
    return found[0]


def _is_fallback(app: Celery) -> bool:
    # How celery._state makes it: Celery("default", fixups=[], set_as_current=False).
    return app.main == "default" and not app.set_as_current and not app.fixups


def _no_app() -> Error:
    here = current_app._get_current_object()
    if not _is_fallback(here):
        return Error(
            f"The Celery app {here.main!r} is current only in the thread that created it: "
            "imagegen's tasks sent from other threads (requests served by runserver or any "
            "threaded server) go through Celery's fallback app, with none of your settings "
            "(broker amqp://localhost).",
            hint="Call app.set_default() after creating the app in your project's celery.py.",
            id="imagegen.E017",
        )
    project = _project_package()
    if project != "<project>" and _has_module(f"{project}.celery"):
        hint = (
            f"{project}/celery.py exists but nothing imports it: add "
            f"'from .celery import app as celery_app' to {project}/__init__.py "
            "(docs/install.md)."
        )
    else:
        hint = (
            f"Create the app in {project}/celery.py (Celery('{project}'), "
            "app.config_from_object('django.conf:settings', namespace='CELERY'), "
            "app.autodiscover_tasks(), app.set_default()) and import it in "
            f"{project}/__init__.py; see docs/install.md."
        )
    return Error(
        "No Celery app is configured for this project (or none is the default app): "
        "imagegen's tasks would go through Celery's fallback app, with none of your "
        "settings (broker amqp://localhost).",
        hint=hint,
        id="imagegen.E017",
    )


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _project_package() -> str:
    """The package of the settings module (``mysite.settings`` -> ``mysite``), where
    a Django project keeps its ``celery.py``; ``<project>`` when unknown."""
    module = getattr(settings, "SETTINGS_MODULE", None) or ""
    package = module.rpartition(".")[0].partition(".")[0]
    return package if package and _has_module(package) else "<project>"


def _first_url(value: Any) -> str:
    """The first of a broker URL, a list of them, or ``;``-separated ones."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else ""
    return str(value or "").split(";")[0].strip()


def _check_countdowns(app: Celery, url: str) -> list[CheckMessage]:
    """Redis and SQS redeliver a task whose countdown outlives the visibility
    timeout; imagegen's longest countdown must stay well inside it."""
    scheme = urlsplit(url).scheme
    countdown = conf.get_setting("MAX_COUNTDOWN")
    if scheme not in VISIBILITY_DEFAULTS or not non_negative_number(countdown):
        return []  # no visibility timeout, or imagegen.E003
    options = app.conf.broker_transport_options
    if not isinstance(options, Mapping):
        options = {}
    visibility = options.get("visibility_timeout", VISIBILITY_DEFAULTS[scheme])
    longest = float(countdown) + _longest_task_run()
    try:
        fits = longest * 2 <= float(visibility)
    except (TypeError, ValueError):
        fits = False
    if fits:
        return []
    return [
        Error(
            f"IMAGEGEN['MAX_COUNTDOWN'] plus task run time ({longest:.0f}s) must be under "
            f"half the broker visibility timeout ({visibility}s, {scheme}).",
            hint="Lower MAX_COUNTDOWN or raise visibility_timeout in the Celery app's "
            "broker_transport_options (CELERY_BROKER_TRANSPORT_OPTIONS).",
            id="imagegen.E009",
        )
    ]

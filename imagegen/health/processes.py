"""The doctor's checks of the processes: database, broker, worker, sweeper."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from celery import Celery
from django.db import connections, router
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from ..models import GenerationJob
from ..services import health
from .celery_app import app_name, has_sweep_entry, queue_name, sweep_interval, sweep_silence
from .findings import FAIL, INFO, OK, Finding, brief, duration

#: How long a ping message waits in the queue before a worker drops it unrun
#: (a worker started after the doctor gave up has nothing to answer).
PING_EXPIRES = 300


def check_database() -> Finding:
    """imagegen's database answers and every migration is applied to it."""
    try:
        executor = MigrationExecutor(connections[router.db_for_write(GenerationJob)])
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:
        return Finding("database", FAIL, f"cannot read it: {brief(exc)}: check DATABASES.")
    if pending:
        return Finding(
            "database",
            FAIL,
            f"{len(pending)} migration(s) not applied: run `manage.py migrate`.",
        )
    return Finding("database", OK, "reachable, every migration applied.")


def check_broker(app: Celery | None, timeout: float) -> Finding:
    """Connect to the broker with the site's Celery app, within ``timeout``."""
    if app is None:
        return Finding(
            "broker",
            FAIL,
            "no Celery app is loaded in this process: add celery.py to your project and "
            "import its app in the project's __init__.py (docs/install.md, Celery).",
        )
    if not app.conf.broker_url:
        return Finding(
            "broker", FAIL, "no broker configured: set CELERY_BROKER_URL (docs/install.md)."
        )
    try:
        connection = app.connection_for_write(connect_timeout=timeout)
    except Exception as exc:
        return Finding("broker", FAIL, f"unusable broker URL: {brief(exc)}: fix CELERY_BROKER_URL.")
    where = connection.as_uri()  # the password masked
    started = time.monotonic()
    try:
        with connection:
            connection.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, timeout=timeout
            )
    except Exception as exc:
        return Finding(
            "broker",
            FAIL,
            f"cannot connect to {where}: {brief(exc)}: start the broker or fix CELERY_BROKER_URL.",
        )
    return Finding("broker", OK, f"connected to {where} in {time.monotonic() - started:.2f} s.")


def check_worker(app: Celery | None, timeout: float, *, reachable: bool) -> Finding:
    """Send ``imagegen.ping`` the way imagegen's tasks go and wait, up to
    ``timeout``, for a worker to record it in the database. Works on every
    broker, including transports without remote control."""
    if app is None or not reachable:
        return Finding("worker", INFO, "not checked: no broker to send a task through.")
    queue = queue_name(app, "imagegen.ping")
    nonce = uuid.uuid4().hex
    started = time.monotonic()
    try:
        app.send_task("imagegen.ping", args=[nonce], expires=PING_EXPIRES, retry=False)
    except Exception as exc:
        return Finding("worker", FAIL, f"could not send a task to queue {queue!r}: {brief(exc)}.")
    try:
        answered = _wait(lambda: health.ping_seen(nonce), timeout)
    finally:
        health.forget_ping(nonce)
    if answered:
        return Finding(
            "worker",
            OK,
            f"a worker ran a task from queue {queue!r} in {time.monotonic() - started:.1f} s.",
        )
    return Finding(
        "worker",
        FAIL,
        f"no worker ran a task sent to queue {queue!r} within {timeout:g} s: start one "
        f"(`celery -A {app_name(app)} worker`) that consumes {queue!r} and uses this "
        "site's settings and database.",
    )


def check_sweeper(app: Celery | None, *, worker_ok: bool, timeout: float = 0.0) -> Finding:
    """The sweeper's last run is recent enough for beat's schedule. One that
    never ran yet gets up to ``timeout`` seconds (or beat's interval, when
    shorter and known) to run a first time: beat sends the first sweep one
    interval after it starts, and the doctor is often run right after."""
    interval = sweep_interval(app)
    if worker_ok and health.last_seen(health.SWEEP).get(health.SWEEP) is None:
        first_run = min(timeout, interval + 2.0) if interval else timeout
        _wait(lambda: health.last_seen(health.SWEEP).get(health.SWEEP) is not None, first_run)
    now = timezone.now()
    seen = health.last_seen(health.SWEEP).get(health.SWEEP)
    silence = sweep_silence(app)
    cadence = f"; beat's schedule runs it every {interval:g} s" if interval else ""
    if seen is not None and seen >= now - silence:
        ago = duration((now - seen).total_seconds())
        return Finding("sweeper", OK, f"last ran {ago} ago{cadence}.")
    found = (
        "never ran" if seen is None else f"last ran {duration((now - seen).total_seconds())} ago"
    )
    command = f"`celery -A {app_name(app)} beat`"
    if app is not None and not has_sweep_entry(app):
        fix = (
            "add an entry for imagegen.sweep to beat's schedule (CELERY_BEAT_SCHEDULE, "
            f"docs/install.md) and start beat ({command})"
        )
    else:
        fix = f"start Celery beat ({command})"
    if not worker_ok:
        fix += "; the sweep runs on a worker, so a worker must run too"
    allowed = duration(silence.total_seconds())
    return Finding("sweeper", FAIL, f"{found} (allowed: {allowed}{cadence}): {fix}.")


def _wait(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)  # polling the database for the worker's record

"""The site's Celery app, as the doctor and the job list's notice see it.

Nothing here talks to the broker: reading the app's configuration is cheap
enough for a page view.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import Celery
from celery.schedules import schedule as every

#: The sweeper counts as stopped after this long when beat's schedule for
#: ``imagegen.sweep`` cannot be read (no Celery app in this process, a crontab).
DEFAULT_SWEEP_SILENCE = timedelta(minutes=5)
#: With a known schedule: three intervals, but never less than this (a worker
#: restart or one slow sweep is no reason for alarm).
MIN_SWEEP_SILENCE = timedelta(minutes=1)
#: The task beat must schedule.
SWEEP_TASK = "imagegen.sweep"


def project_app() -> Celery | None:
    """The site's Celery app, or None when only Celery's fallback exists
    (no ``celery.py`` loaded, or loaded in another thread without
    ``app.set_default()``)."""
    from celery import current_app

    app = current_app._get_current_object()
    # Celery's fallback app is made on demand as Celery("default", fixups=[]);
    # a site's app has the Django fixup (or a name of its own).
    if app.main in (None, "default") and not app.fixups:
        return None
    return app


def app_name(app: Celery | None = None) -> str:
    """What to pass to ``celery -A`` in a hint."""
    app = app or project_app()
    return app.main if app is not None and app.main else "yourproject"


def queue_name(app: Celery, task_name: str) -> str:
    """The queue the app's routing sends ``task_name`` to."""
    route = app.amqp.router.route({}, task_name)
    queue = route.get("queue")
    return getattr(queue, "name", None) or str(queue or app.conf.task_default_queue)


def sweep_interval(app: Celery | None) -> float | None:
    """Seconds between two sweeps in beat's schedule, or None if unknown (no
    app, no entry for ``imagegen.sweep``, or a schedule without a fixed interval)."""
    if app is None:
        return None
    for entry in (app.conf.beat_schedule or {}).values():
        if isinstance(entry, dict) and entry.get("task") == SWEEP_TASK:
            return _seconds(entry.get("schedule"))
    return None


def has_sweep_entry(app: Celery) -> bool:
    """Whether beat's schedule has an entry for ``imagegen.sweep``."""
    return any(
        isinstance(entry, dict) and entry.get("task") == SWEEP_TASK
        for entry in (app.conf.beat_schedule or {}).values()
    )


def sweep_silence(app: Celery | None) -> timedelta:
    """How long the sweeper may go without running before it counts as stopped."""
    interval = sweep_interval(app)
    if interval is None:
        return DEFAULT_SWEEP_SILENCE
    return max(MIN_SWEEP_SILENCE, timedelta(seconds=3 * interval))


def _seconds(schedule: Any) -> float | None:
    if isinstance(schedule, bool):
        return None
    if isinstance(schedule, (int, float)):
        return float(schedule)
    if isinstance(schedule, timedelta):
        return schedule.total_seconds()
    if isinstance(schedule, every):  # not crontab or solar: no fixed interval
        return schedule.run_every.total_seconds()
    return None

"""The job list's health notice: no worker, or no beat.

Read on every view of the job list, so it asks nothing of the broker: one
query for the heartbeats (:mod:`imagegen.services.health`) and one for the
oldest job no worker has picked up. ``manage.py imagegen doctor`` checks
the same things with real round trips.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .. import conf
from ..services import health
from .celery_app import app_name, project_app, sweep_silence


def notices(now: datetime | None = None) -> list[str]:
    """What is wrong with the background processes, one sentence each; empty when healthy.

    - No worker: a job has waited longer than ``SUBMIT_GRACE`` without any
      worker trying to submit it, and no worker started an imagegen task in
      that time either.
    - No beat: the sweeper has not run within :func:`.celery_app.sweep_silence`.
      Not said while no worker runs: the sweep itself runs on a worker.
    """
    now = now or timezone.now()
    seen = health.last_seen(health.SWEEP, health.WORKER)
    app = project_app()
    command = app_name(app)
    waiting = health.unpicked_since(now)
    worker = seen.get(health.WORKER)
    grace = timedelta(seconds=conf.get_setting("SUBMIT_GRACE"))
    if waiting is not None and (worker is None or worker < now - grace):
        minutes = _minutes(now - max(waiting, worker or waiting))
        return [
            ngettext(
                "No Celery worker has picked up jobs for %(minutes)d minute: start a worker "
                "(`celery -A %(app)s worker`).",
                "No Celery worker has picked up jobs for %(minutes)d minutes: start a worker "
                "(`celery -A %(app)s worker`).",
                minutes,
            )
            % {"minutes": minutes, "app": command}
        ]
    sweep = seen.get(health.SWEEP)
    if sweep is None:
        return [
            _(
                "Celery beat is not running: the sweeper, which polls providers and resends "
                "lost tasks, has never run. Start beat (`celery -A %(app)s beat`) with "
                "imagegen.sweep in its schedule."
            )
            % {"app": command}
        ]
    if sweep < now - sweep_silence(app):
        minutes = _minutes(now - sweep)
        return [
            ngettext(
                "Celery beat is not running: the sweeper, which polls providers and resends "
                "lost tasks, last ran %(minutes)d minute ago. Start beat "
                "(`celery -A %(app)s beat`) with imagegen.sweep in its schedule.",
                "Celery beat is not running: the sweeper, which polls providers and resends "
                "lost tasks, last ran %(minutes)d minutes ago. Start beat "
                "(`celery -A %(app)s beat`) with imagegen.sweep in its schedule.",
                minutes,
            )
            % {"minutes": minutes, "app": command}
        ]
    return []


def _minutes(delta: timedelta) -> int:
    return max(1, math.floor(delta.total_seconds() / 60))

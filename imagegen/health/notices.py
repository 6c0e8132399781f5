"""The job list's health notices: what is wrong with the running system.

Read on every view of the job list, so they ask nothing of the broker, a
provider or the storage: they read what the processes and the jobs left in
the database. ``manage.py imagegen doctor`` checks the same things with real
round trips.

- :func:`process_notices`, for everyone who sees the list (their jobs would
  otherwise just stay queued): no worker, no beat. One query for the
  heartbeats (:mod:`imagegen.services.health`), one for the oldest job no
  worker has picked up.
- :func:`operator_notices`, for superusers (only the site's operators can
  fix them; editors see each failed job's own message): the provider
  refuses the key, the provider is unreachable, storing images fails,
  callbacks do not arrive. One query over the latest decided jobs, and one
  over the latest results when ``CALLBACK_BASE_URL`` is set.

Failures are recognised by their ``error_code`` (:mod:`imagegen.failures`),
never by their text.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from .. import conf
from ..choices import Source, Status
from ..exceptions import ImagegenConfigurationError
from ..models import GenerationJob
from ..providers import get_provider
from ..services import callback_health, health
from .celery_app import app_name, project_app, sweep_silence

logger = logging.getLogger("imagegen")

#: The codes a job records when the provider refused its API key (an HTTP
#: 401, from submitting or polling: imagegen.providers.base.http_error).
KEY_REFUSED = frozenset({"401"})
#: ... when no connection to the provider could be made (while the job is
#: retried, and when it gave up).
UNREACHABLE = frozenset({"CONNECT_FAILED"})
#: ... when its images could not be stored after FINALIZE_MAX_ATTEMPTS.
STORE_FAILED = frozenset({"STORE_FAILED"})
#: How many of the latest decided jobs the provider and storage notices read.
DECIDED_SAMPLE = 2 * callback_health.SAMPLE
#: Results of one provider, none by callback, that make the callback notice:
#: one result polled before its callback came is no alarm.
MIN_POLLED = 3

NO_WORKER = ngettext_lazy(
    "No Celery worker has picked up jobs for %(minutes)d minute: start a worker "
    "(`celery -A %(app)s worker`).",
    "No Celery worker has picked up jobs for %(minutes)d minutes: start a worker "
    "(`celery -A %(app)s worker`).",
    "minutes",
)
NO_BEAT_EVER = _(
    "Celery beat is not running: the sweeper, which polls providers and resends "
    "lost tasks, has never run. Start beat (`celery -A %(app)s beat`) with "
    "imagegen.sweep in its schedule."
)
NO_BEAT = ngettext_lazy(
    "Celery beat is not running: the sweeper, which polls providers and resends "
    "lost tasks, last ran %(minutes)d minute ago. Start beat "
    "(`celery -A %(app)s beat`) with imagegen.sweep in its schedule.",
    "Celery beat is not running: the sweeper, which polls providers and resends "
    "lost tasks, last ran %(minutes)d minutes ago. Start beat "
    "(`celery -A %(app)s beat`) with imagegen.sweep in its schedule.",
    "minutes",
)
KEY_REFUSED_NOTICE = _(
    "%(provider)s refuses the API key: its latest job failed with HTTP 401. Set a valid key "
    'in IMAGEGEN["PROVIDERS"]["%(provider)s"]["API_KEY"].'
)
UNREACHABLE_NOTICE = _(
    "%(provider)s cannot be reached: its latest job could not connect to it. Check its "
    "BASE_URL and that the workers' network (firewall, proxy, DNS) lets them reach it."
)
STORE_FAILED_NOTICE = _(
    "Storing images is failing: the latest finished job could not store its images. Check "
    'the storage imagegen uses (STORAGES, IMAGEGEN["STORAGE_ALIAS"]) and that the workers '
    "can download the provider's results."
)
NO_CALLBACKS_NOTICE = ngettext_lazy(
    "No callback from %(provider)s arrives: its latest %(count)d result came by polling. "
    "Check that CALLBACK_BASE_URL (%(url)s) reaches this site from the provider.",
    "No callback from %(provider)s arrives: its latest %(count)d results all came by "
    "polling. Check that CALLBACK_BASE_URL (%(url)s) reaches this site from the provider.",
    "count",
)


def notices(user: Any, now: datetime | None = None) -> list[str]:
    """What ``user`` should be told about the running system, one line
    each, in the active language; empty when all is well.

    Never fails the page: a database error is logged and leaves the list
    without notices (inside the request's transaction, rolled back to a
    savepoint, so the page's own queries still run).
    """
    now = now or timezone.now()
    try:
        with _contained():
            found = process_notices(now)
            if user.is_active and user.is_superuser:
                found += operator_notices(now)
    except DatabaseError as exc:
        logger.warning("The job list's health notices could not be read: %s", exc)
        return []
    return found


def process_notices(now: datetime | None = None) -> list[str]:
    """What is wrong with the background processes, at most one sentence.

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
        return [NO_WORKER % {"minutes": minutes, "app": command}]
    sweep = seen.get(health.SWEEP)
    if sweep is None:
        return [NO_BEAT_EVER % {"app": command}]
    if sweep < now - sweep_silence(app):
        return [NO_BEAT % {"minutes": _minutes(now - sweep), "app": command}]
    return []


def operator_notices(now: datetime | None = None) -> list[str]:
    """What is wrong with the site's setup, as recent jobs tell it; one
    sentence per problem (and provider).

    Each is judged by the latest jobs that decide it (created within
    :data:`.callback_health.WINDOW`), so it goes away as soon as a job
    proves the fix:

    - Key refused: of the provider's jobs that succeeded or met one of
      these problems, the latest failed with HTTP 401 (submitting or
      polling).
    - Unreachable: that job could not connect to the provider
      (``CONNECT_FAILED``: being retried, or given up).
    - Storing fails: the latest job that succeeded or failed storing its
      images failed storing them (``STORE_FAILED``).
    - No callbacks (``CALLBACK_BASE_URL`` set): a provider that takes
      callbacks has at least :data:`MIN_POLLED` results among its latest
      (the sample :mod:`.callback_health` judges by), none by callback.
    """
    now = now or timezone.now()
    return _decided_notices(now) + _callback_notices(now)


def _decided_notices(now: datetime) -> list[str]:
    watched = KEY_REFUSED | UNREACHABLE | STORE_FAILED
    # imagegen_job_created_idx, newest first, stopped at the sample's size.
    latest = (
        GenerationJob.objects.filter(created_at__gte=now - callback_health.WINDOW)
        .filter(Q(status=Status.SUCCEEDED) | Q(error_code__in=watched))
        .order_by("-created_at")
        .values_list("provider", "status", "error_code")[:DECIDED_SAMPLE]
    )
    by_provider: dict[str, str] = {}
    storing: str | None = None
    for provider, status, code in latest:
        by_provider.setdefault(provider, code)
        if storing is None and (status == Status.SUCCEEDED or code in STORE_FAILED):
            storing = code
    found = []
    for provider, code in sorted(by_provider.items()):
        if code in KEY_REFUSED:
            found.append(KEY_REFUSED_NOTICE % {"provider": provider})
        elif code in UNREACHABLE:
            found.append(UNREACHABLE_NOTICE % {"provider": provider})
    if storing in STORE_FAILED:
        found.append(str(STORE_FAILED_NOTICE))
    return found


def _callback_notices(now: datetime) -> list[str]:
    url = conf.get_setting("CALLBACK_BASE_URL")
    providers = _callback_providers() if url else []
    if not providers:
        return []
    # imagegen_job_outcome_idx, as callback_health reads it, for every
    # provider at once.
    latest = (
        GenerationJob.objects.filter(
            provider__in=providers,
            provider_completed_at__gte=now - callback_health.WINDOW,
            completed_via__in=[Source.CALLBACK, Source.POLL],
        )
        .order_by("-provider_completed_at")
        .values_list("provider", "completed_via")[: callback_health.SAMPLE * len(providers)]
    )
    outcomes: dict[str, list[str]] = {}
    for provider, via in latest:
        sample = outcomes.setdefault(provider, [])
        if len(sample) < callback_health.SAMPLE:
            sample.append(via)
    return [
        NO_CALLBACKS_NOTICE % {"provider": provider, "count": len(sample), "url": url}
        for provider, sample in sorted(outcomes.items())
        if len(sample) >= MIN_POLLED and Source.CALLBACK not in sample
    ]


def _callback_providers() -> list[str]:
    """The providers editors may choose that take callbacks."""
    names = []
    for name in conf.configured_providers():
        try:
            takes = get_provider(name).capabilities.supports_callback
        except ImagegenConfigurationError:
            continue  # system checks and the doctor report it
        if takes:
            names.append(name)
    return names


@contextmanager
def _contained() -> Iterator[None]:
    # In a transaction (ATOMIC_REQUESTS), a failed query would abort it and
    # the list's own queries after it: a savepoint keeps the failure here.
    if connection.in_atomic_block:
        with transaction.atomic():
            yield
    else:
        yield


def _minutes(delta: timedelta) -> int:
    return max(1, math.floor(delta.total_seconds() / 60))

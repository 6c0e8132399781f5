"""The job list's health notice (no worker, no beat) and the heartbeats behind it.

The notice is read on every view of the job list: from the heartbeats the
sweeper and the workers record, and the oldest job no worker picked up;
never from the broker.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from imagegen import services
from imagegen.choices import Status
from imagegen.health.notices import notices
from imagegen.models import GenerationJob, Heartbeat
from imagegen.services import health

from .factories import make_job

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:imagegen_generationjob_changelist"
DOCTOR_HINT = "Run manage.py imagegen doctor for details."
NO_WORKER = "No Celery worker has picked up jobs for"
NO_BEAT = "Celery beat is not running"


@pytest.fixture(autouse=True)
def fresh_worker_throttle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a worker process that has recorded nothing yet."""
    monkeypatch.setattr(health, "_worker_recorded", -health.WORKER_EVERY)


def ago(**kwargs: float) -> Any:
    return timezone.now() - timedelta(**kwargs)


def waiting_job(minutes: float, **fields: Any) -> GenerationJob:
    """A queued job created ``minutes`` ago that no worker tried yet."""
    return make_job(status=Status.QUEUED, created_at=ago(minutes=minutes), **fields)


# --- heartbeats --------------------------------------------------------------------------------


def test_record_keeps_one_row_per_name_with_the_latest_time() -> None:
    first, second = ago(minutes=5), ago(seconds=1)
    assert health.record(health.SWEEP, first)
    assert health.record(health.SWEEP, second)
    assert health.record(health.WORKER, first)
    assert health.last_seen(health.SWEEP, health.WORKER, "never") == {
        health.SWEEP: second,
        health.WORKER: first,
    }
    assert Heartbeat.objects.count() == 2


def test_sweep_records_that_it_ran() -> None:
    before = timezone.now()
    services.sweep()
    assert health.last_seen(health.SWEEP)[health.SWEEP] >= before


def test_a_worker_records_at_most_once_per_interval(
    monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(1):
        for _ in range(5):
            health.worker_seen()
    assert health.WORKER in health.last_seen(health.WORKER)
    # The interval passed: the next task records again.
    monkeypatch.setattr(health, "_worker_recorded", health._worker_recorded - health.WORKER_EVERY)
    with django_assert_num_queries(1):
        health.worker_seen()


def test_running_an_imagegen_task_records_the_worker_and_other_tasks_do_not() -> None:
    """Family: an imagegen task (recorded) and a task of another app (not)."""
    from celery import shared_task

    from imagegen.tasks import ping

    @shared_task(name="elsewhere.noop")
    def noop() -> None:
        return None

    noop.apply()
    assert health.WORKER not in health.last_seen(health.WORKER)
    ping.apply(args=["0" * 32])
    assert health.WORKER in health.last_seen(health.WORKER)


@pytest.mark.parametrize(
    ("job", "counted"),
    [
        ({"minutes": 5}, True),
        ({"minutes": 0.2}, False),  # inside SUBMIT_GRACE (30 s)
        ({"minutes": 5, "submit_attempts": 1}, False),  # a worker tried: the provider is down
        ({"minutes": 5, "status": Status.SUBMITTED}, False),
        ({"minutes": 5, "status": Status.FAILED}, False),
        # A worker held it back for a provider slot (MAX_IN_FLIGHT): picked up.
        ({"minutes": 5, "error_code": "WAITING_FOR_SLOT"}, False),
    ],
    ids=["waiting", "young", "tried", "submitted", "finished", "waiting-for-slot"],
)
def test_jobs_no_worker_picked_up(job: dict[str, Any], counted: bool) -> None:
    minutes = job.pop("minutes")
    status = job.pop("status", Status.QUEUED)
    made = make_job(status=status, created_at=ago(minutes=minutes), **job)
    assert health.unpicked_since() == (made.created_at if counted else None)


def test_the_notice_costs_two_queries(django_assert_num_queries: Any) -> None:
    waiting_job(5)
    with django_assert_num_queries(2):
        notices()


# --- the notice --------------------------------------------------------------------------------

#: (heartbeats as minutes ago, a waiting job's age in minutes, the notice expected)
STATES = {
    "healthy": ({"sweep": 0.1, "worker": 0.1}, None, None),
    "healthy-idle-worker": ({"sweep": 0.1, "worker": 60}, None, None),
    "healthy-backlog": ({"sweep": 0.1, "worker": 0.1}, 5, None),
    "just-queued": ({"sweep": 0.1}, 0.2, None),
    "no-worker-ever": ({"sweep": 0.1}, 5, f"{NO_WORKER} 5 minutes"),
    "worker-gone-before-the-job": ({"sweep": 0.1, "worker": 30}, 3, f"{NO_WORKER} 3 minutes"),
    "worker-gone-after-the-job": ({"sweep": 0.1, "worker": 7}, 20, f"{NO_WORKER} 7 minutes"),
    "no-worker-no-beat": ({}, 1.5, f"{NO_WORKER} 1 minute:"),
    "no-beat-ever": (
        {},
        None,
        "the sweeper, which polls providers and resends lost tasks, has never run",
    ),
    "no-beat-recently": ({"sweep": 10, "worker": 0.1}, None, "last ran 10 minutes ago"),
    "beat-within-its-minute": ({"sweep": 0.9}, None, None),
}


def set_state(heartbeats: dict[str, float], waiting: float | None) -> None:
    for name, minutes in heartbeats.items():
        health.record(name, ago(minutes=minutes))
    if waiting is not None:
        waiting_job(waiting)


@pytest.mark.parametrize(("heartbeats", "waiting", "expected"), STATES.values(), ids=STATES.keys())
def test_notice_for_each_state(
    heartbeats: dict[str, float], waiting: float | None, expected: str | None
) -> None:
    """Family: healthy (with an idle worker, a backlog, a job just queued), no
    worker (never seen, gone before or after the job was queued, with beat
    gone too: only the worker is named), no beat (never, long ago), beat
    within its allowed silence (three 5 s intervals, at least a minute)."""
    set_state(heartbeats, waiting)
    found = notices()
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1
        assert expected in found[0]


def test_the_notices_name_the_command_to_run() -> None:
    waiting_job(5)
    assert notices() == [
        "No Celery worker has picked up jobs for 5 minutes: start a worker "
        "(`celery -A project worker`)."
    ]
    GenerationJob.objects.all().delete()
    assert notices() == [
        "Celery beat is not running: the sweeper, which polls providers and resends lost "
        "tasks, has never run. Start beat (`celery -A project beat`) with imagegen.sweep in "
        "its schedule."
    ]


@pytest.fixture(params=["editor", "superuser"])
def viewer(request: Any, client: Any, editor: Any, admin_user: Any) -> Any:
    """The job list as a staff editor (tests/factories.py) and as a superuser."""
    client.force_login(editor if request.param == "editor" else admin_user)
    return client


@pytest.mark.parametrize(
    ("state", "shown"),
    [("healthy", None), ("no-worker-ever", NO_WORKER), ("no-beat-recently", NO_BEAT)],
)
def test_the_job_list_shows_the_notice(viewer: Any, state: str, shown: str | None) -> None:
    heartbeats, waiting, _ = STATES[state]
    set_state(heartbeats, waiting)
    page = viewer.get(reverse(CHANGELIST))
    assert page.status_code == 200
    html = page.content.decode()
    if shown is None:
        assert NO_WORKER not in html and NO_BEAT not in html and DOCTOR_HINT not in html
    else:
        assert shown in html and DOCTOR_HINT in html
        assert 'class="messagelist imagegen-health"' in html

"""The job list's health notices and the heartbeats behind them.

The notices are read on every view of the job list, never from the broker,
a provider or the storage: no worker and no beat (for everyone who sees the
list) from the heartbeats the sweeper and the workers record and the oldest
job no worker picked up; a refused key, an unreachable provider, failing
storage and callbacks that do not arrive (for superusers) from the latest
jobs' error codes and how their results came.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from imagegen import services
from imagegen.choices import Status
from imagegen.health import notices as notices_module
from imagegen.health.notices import notices, operator_notices, process_notices
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


def test_the_process_notice_costs_two_queries(django_assert_num_queries: Any) -> None:
    waiting_job(5)
    with django_assert_num_queries(2):
        process_notices()


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
    found = process_notices()
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1
        assert expected in found[0]


def test_the_notices_name_the_command_to_run() -> None:
    waiting_job(5)
    assert process_notices() == [
        "No Celery worker has picked up jobs for 5 minutes: start a worker "
        "(`celery -A project worker`)."
    ]
    GenerationJob.objects.all().delete()
    assert process_notices() == [
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


# --- the operator notices: key, connection, storage, callbacks ---------------------------------

KEY_REFUSED = "refuses the API key"
UNREACHABLE = "cannot be reached"
STORE_FAILING = "Storing images is failing"
NO_CALLBACKS = "No callback from"
CALLBACK_URL = "https://cms.example.com"

S, F, Q = Status.SUCCEEDED, Status.FAILED, Status.QUEUED


@pytest.fixture(autouse=True)
def providers(settings: Any) -> dict[str, Any]:
    """Three providers editors may choose: the sandbox and APIXO take callbacks,
    OpenAI answers synchronously; callbacks off until a test sets the URL."""
    settings.IMAGEGEN = {
        "PROVIDER": "sandbox",
        "PROVIDERS": {"apixo": {"API_KEY": "test-key"}, "openai": {"API_KEY": "sk-test"}},
    }
    return settings.IMAGEGEN


@pytest.fixture
def callbacks_set(settings: Any, providers: dict[str, Any]) -> None:
    settings.IMAGEGEN = {**providers, "CALLBACK_BASE_URL": CALLBACK_URL}


def decided_job(status: str, code: str = "", minutes: float = 1, **fields: Any) -> GenerationJob:
    """A job created ``minutes`` ago that a worker submitted at least once."""
    return make_job(
        status=status,
        error_code=code,
        created_at=ago(minutes=minutes),
        submit_attempts=fields.pop("submit_attempts", 1),
        **fields,
    )


def result(via: str, minutes: float = 1, provider: str = "sandbox") -> GenerationJob:
    """A job whose result the provider gave ``minutes`` ago, learnt by ``via``."""
    return make_job(
        provider=provider,
        completed_via=via,
        provider_completed_at=ago(minutes=minutes),
        created_at=ago(minutes=minutes + 1),
    )


#: (the jobs, as decided_job's arguments: oldest first; the notices expected, as their starts)
DECIDED = {
    "no-jobs": ([], []),
    "all-well": ([(S,)], []),
    "key-refused": ([(F, "401")], [f"sandbox {KEY_REFUSED}"]),
    "key-refused-after-a-success": ([(S, "", 10), (F, "401")], [f"sandbox {KEY_REFUSED}"]),
    "key-fixed": ([(F, "401", 10), (S, "", 1)], []),
    "key-refused-long-ago": ([(F, "401", 7 * 60)], []),
    "unreachable-being-retried": ([(Q, "CONNECT_FAILED")], [f"sandbox {UNREACHABLE}"]),
    "unreachable-given-up": ([(F, "CONNECT_FAILED")], [f"sandbox {UNREACHABLE}"]),
    "reachable-again": ([(F, "CONNECT_FAILED", 10), (S, "", 1)], []),
    "other-failures": (
        [(F, "429"), (F, "403"), (F, "MODERATION"), (F, "SUBMIT_ANSWERS_LOST"), (F, "BAD_RESULT")],
        [],
    ),
    "storage-failing": ([(F, "STORE_FAILED")], [STORE_FAILING]),
    "storage-failing-after-a-success": ([(S, "", 10), (F, "STORE_FAILED")], [STORE_FAILING]),
    "storage-fixed": ([(F, "STORE_FAILED", 10), (S, "", 1)], []),
    "storage-failing-then-key-refused": (
        [(F, "STORE_FAILED", 10), (F, "401", 1)],
        [f"sandbox {KEY_REFUSED}", STORE_FAILING],
    ),
    "one-provider-each": (
        [
            (S, "", 1, {"provider": "sandbox"}),
            (F, "401", 1, {"provider": "apixo"}),
            (Q, "CONNECT_FAILED", 1, {"provider": "openai"}),
        ],
        [f"apixo {KEY_REFUSED}", f"openai {UNREACHABLE}"],
    ),
    "one-provider-fixed-another-not": (
        [(F, "401", 10), (S, "", 5), (F, "CONNECT_FAILED", 1, {"provider": "apixo"})],
        [f"apixo {UNREACHABLE}"],
    ),
    "everything": (
        [(F, "STORE_FAILED", 20), (F, "401", 5), (Q, "CONNECT_FAILED", 1, {"provider": "apixo"})],
        [f"apixo {UNREACHABLE}", f"sandbox {KEY_REFUSED}", STORE_FAILING],
    ),
}


def make_decided(jobs: list[tuple]) -> None:
    for spec in jobs:
        *args, fields = spec if isinstance(spec[-1], dict) else (*spec, {})
        decided_job(*args, **fields)


def assert_notices(found: list[str], expected: list[str]) -> None:
    assert len(found) == len(expected), found
    for notice, start in zip(found, expected, strict=True):
        assert notice.startswith(start), (notice, start)


@pytest.mark.parametrize(("jobs", "expected"), DECIDED.values(), ids=DECIDED.keys())
def test_provider_and_storage_notices(jobs: list[tuple], expected: list[str]) -> None:
    """Family: nothing to judge by, all well; the key refused (alone, after
    a success, fixed since, long ago), no connection (being retried, given
    up, fixed since), failures that are none of these (rate limit, 403,
    moderation, lost answers, an unusable result); storing failing (alone,
    after a success, fixed since, with a newer key refusal: both said);
    several providers (one notice each, by name; one fixed, another not);
    all at once. Each provider is judged by its own latest job, storing by
    the site's."""
    make_decided(jobs)
    assert_notices(operator_notices(), expected)


def test_the_notices_key_on_codes_not_on_text() -> None:
    """A failure whose code is none of theirs, told in words that are theirs:
    no notice (and the notices never read a job's message)."""
    decided_job(
        F,
        "PROVIDER_ERROR",
        error_message="HTTP 401: could not connect; the results could not be stored",
        error_params={"detail": "401 Unauthorized CONNECT_FAILED STORE_FAILED"},
    )
    assert operator_notices() == []


#: (callbacks set, the results as result()'s arguments, the notice expected)
CALLBACKS = {
    "callbacks-off": (False, [("poll",)] * 5, None),
    "no-results": (True, [], None),
    "two-polled": (True, [("poll",)] * 2, None),
    "three-polled": (True, [("poll",)] * 3, "its latest 3 results all came by polling"),
    "polled-and-the-latest-by-callback": (True, [("poll", 5)] * 5 + [("callback",)], None),
    "a-callback-among-the-latest": (True, [("callback", 30)] + [("poll",)] * 5, None),
    "a-callback-before-the-latest-ten": (
        True,
        [("callback", 60)] + [("poll",)] * 12,
        "its latest 10 results all came by polling",
    ),
    "polled-long-ago": (True, [("poll", 7 * 60)] * 5, None),
    "submission-answers": (True, [("submit",)] * 5, None),
    "a-synchronous-provider": (True, [("poll", 1, "openai")] * 5, None),
    "per-provider": (
        True,
        [("callback", 1, "sandbox")] + [("poll", 1, "apixo")] * 3,
        "No callback from apixo arrives",
    ),
}


@pytest.mark.parametrize(
    ("base_url", "results", "expected"), CALLBACKS.values(), ids=CALLBACKS.keys()
)
def test_callback_notice(
    settings: Any,
    providers: dict[str, Any],
    base_url: bool,
    results: list[tuple],
    expected: str | None,
) -> None:
    """Family: CALLBACK_BASE_URL unset (no notice, whatever the results); no
    results yet, too few to judge (2); results all by polling (3; the latest
    10 when an older callback came); a callback among the latest (newest, or
    older); polled results older than the window; results from submission
    answers, or from a provider that takes no callbacks (never counted);
    one provider's callbacks arriving, another's not (only that one named)."""
    if base_url:
        settings.IMAGEGEN = {**providers, "CALLBACK_BASE_URL": CALLBACK_URL}
    for spec in results:
        result(*spec)
    found = operator_notices()
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and expected in found[0] and CALLBACK_URL in found[0]


def test_the_operator_notices_say_what_to_do(callbacks_set: None) -> None:
    decided_job(F, "STORE_FAILED", 10)
    decided_job(F, "401", provider="apixo")
    decided_job(Q, "CONNECT_FAILED")
    for _ in range(3):
        result("poll", minutes=30)  # older than the storing failure: no verdict on storing
    assert operator_notices() == [
        "apixo refuses the API key: its latest job failed with HTTP 401. Set a valid key in "
        'IMAGEGEN["PROVIDERS"]["apixo"]["API_KEY"].',
        "sandbox cannot be reached: its latest job could not connect to it. Check its "
        "BASE_URL and that the workers' network (firewall, proxy, DNS) lets them reach it.",
        "Storing images is failing: the latest finished job could not store its images. "
        'Check the storage imagegen uses (STORAGES, IMAGEGEN["STORAGE_ALIAS"]) and that the '
        "workers can download the provider's results.",
        "No callback from sandbox arrives: its latest 3 results all came by polling. Check "
        f"that CALLBACK_BASE_URL ({CALLBACK_URL}) reaches this site from the provider.",
    ]


def every_problem() -> None:
    """No worker, a refused key, failing storage, no callbacks (with callbacks_set)."""
    health.record(health.SWEEP)
    waiting_job(5)
    decided_job(F, "STORE_FAILED", 10)
    decided_job(F, "401")
    for _ in range(3):
        result("poll", minutes=30)  # older than the storing failure: no verdict on storing


@pytest.fixture
def manager(django_user_model: Any) -> Any:
    """An editor who sees every user's jobs (imagegen.view_all_jobs), not a superuser."""
    from .factories import make_editor

    return make_editor(django_user_model, "imagegen.view_all_jobs", username="manager")


def test_who_is_told_what(callbacks_set: None, editor: Any, manager: Any, admin_user: Any) -> None:
    """Family: an editor, an editor who sees all jobs, a superuser. Everyone
    who sees the list is told of the processes (their jobs wait); only
    superusers, who run the site, of the setup."""
    every_problem()
    everyone = [f"{NO_WORKER} 5 minutes"]
    setup = [f"sandbox {KEY_REFUSED}", STORE_FAILING, f"{NO_CALLBACKS} sandbox"]
    assert_notices(notices(editor), everyone)
    assert_notices(notices(manager), everyone)
    assert_notices(notices(admin_user), everyone + setup)


@pytest.mark.parametrize("who", ["editor", "manager", "superuser"])
def test_the_job_list_shows_the_operator_notices_to_superusers(
    callbacks_set: None, client: Any, editor: Any, manager: Any, admin_user: Any, who: str
) -> None:
    every_problem()
    client.force_login({"editor": editor, "manager": manager, "superuser": admin_user}[who])
    html = client.get(reverse(CHANGELIST)).content.decode()
    assert NO_WORKER in html
    told = [text in html for text in (KEY_REFUSED, STORE_FAILING, NO_CALLBACKS)]
    assert told == [who == "superuser"] * 3
    # Each notice ends with the doctor's hint.
    assert html.count(DOCTOR_HINT) == (4 if who == "superuser" else 1)


def test_the_operator_notices_cost_at_most_two_queries(
    callbacks_set: None, django_assert_max_num_queries: Any
) -> None:
    every_problem()
    with django_assert_max_num_queries(2):
        assert len(operator_notices()) == 3


def test_without_callbacks_the_operator_notices_cost_one_query(
    django_assert_max_num_queries: Any,
) -> None:
    every_problem()
    with django_assert_max_num_queries(1):
        assert len(operator_notices()) == 2


@pytest.mark.parametrize("who", ["editor", "superuser"])
def test_a_page_view_reads_at_most_four_rows_sets(
    callbacks_set: None,
    editor: Any,
    admin_user: Any,
    who: str,
    django_assert_max_num_queries: Any,
) -> None:
    """Family: an editor (the process notices: 2 queries), a superuser (2
    more). The savepoint that contains a failure is not a query of its own."""
    every_problem()
    user = admin_user if who == "superuser" else editor
    with django_assert_max_num_queries(6) as captured:
        notices(user)
    selects = [q for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(selects) == (4 if who == "superuser" else 2)


@pytest.mark.parametrize("broken", ["heartbeats", "jobs"])
def test_a_database_error_leaves_the_list_without_notices(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    callbacks_set: None,
    client: Any,
    admin_user: Any,
    broken: str,
) -> None:
    """Family: the heartbeats' query fails, the jobs' query fails. A real
    database error (inside the request's transaction here): the list still
    shows, with its jobs, without notices, and the error is logged."""
    from django.db import connection

    def fails(*args: Any, **kwargs: Any) -> Any:
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM imagegen_no_such_table")

    if broken == "heartbeats":
        monkeypatch.setattr(health, "last_seen", fails)
    else:
        monkeypatch.setattr(notices_module, "_decided_notices", fails)
    every_problem()
    client.force_login(admin_user)
    page = client.get(reverse(CHANGELIST))
    assert page.status_code == 200
    html = page.content.decode()
    assert "a red bicycle" in html  # the jobs are listed
    assert "imagegen-health" not in html and DOCTOR_HINT not in html
    assert "health notices could not be read" in caplog.text

"""Submission attempts, certain or not, against one limit; lost answers as
spend; the wait before submitting again after a lost answer.

The service layer against the sandbox over real HTTP, each step called
directly (no worker). A lost answer is the sandbox's: ``submit-hangup``
closes the connection after the task was created, ``submit-delay`` answers
after the client's timeout. The waits are checked on the job's schedule,
then skipped by moving the job's lease into the past (:func:`come_due`):
no test sleeps through them. tests/faults/test_provider_answers_lost.py
runs the same faults through real worker processes and real waits.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from imagegen import conf, services
from imagegen.choices import Status, TaskStatus
from imagegen.exceptions import TransientError
from imagegen.models import GenerationJob
from imagegen.providers import TaskState, get_provider
from imagegen.services import budgets, reports
from imagegen.services.jobs import resubmit_delay

pytestmark = [pytest.mark.services, pytest.mark.django_db]

#: Far more than any test spends: budgets.states() then reports the site's spend.
ROOMY = {"SITE_MONTHLY": "1000"}
#: Where callbacks would go; every prompt that uses it drops its callbacks.
SITE = "https://site.example"
LOST = {
    "hangup": "[sandbox:submit-hangup]",  # the task exists, the connection closes
    "late": "[sandbox:submit-delay=1]",  # the task exists, the answer comes after TIMEOUT
}


@pytest.fixture
def attempts_settings(imagegen_settings: dict[str, Any], settings: Any, sandbox: Any) -> Any:
    """The sandbox (APIXO's protocol) and OpenAI's endpoint on the same
    sandbox, a short client timeout, budgets that report the site's spend."""
    providers = {
        "sandbox": {**imagegen_settings["PROVIDERS"]["sandbox"], "TIMEOUT": 0.4},
        "openai": {
            "CLASS": "imagegen.providers.openai.OpenAIImagesProvider",
            "BASE_URL": f"{sandbox.url}/v1",
            "API_KEY": "sk-test",
            "TIMEOUT": 0.4,
        },
    }

    def configure(**overrides: Any) -> dict[str, Any]:
        settings.IMAGEGEN = {
            **imagegen_settings,
            "PROVIDERS": providers,
            "PRICES": {"openai": {"gpt-image-1": {"1k": "0.04"}}},
            "BUDGETS": ROOMY,
            **overrides,
        }
        return settings.IMAGEGEN

    configure()
    return configure


def spent() -> Decimal:
    """The site's spend as budgets count it; the cost report must say the same."""
    (state,) = budgets.states(None)
    for rows in reports.spend().values():
        assert reports.total(rows).amount.quantize(budgets.COST_QUANTUM) == state.spent
    return state.spent


def come_due(job: GenerationJob) -> None:
    """Move the job's wait into the past, as if it had passed."""
    past = timezone.now() - timedelta(seconds=1)
    GenerationJob.objects.filter(pk=job.pk).update(lease_until=past, next_poll_at=past)


def paid_tasks(sandbox: Any, provider: str) -> int:
    """Tasks the provider made (and would charge): APIXO's tasks, OpenAI's images."""
    stats = sandbox.stats()
    return stats["submits"] if provider == "sandbox" else stats.get("openai_generations", 0)


def assert_waits_before_resubmitting(job: GenerationJob) -> None:
    """Held (lease) and scheduled (sweeper) until the resubmission delay has
    passed: at least the upper bound of the provider's latency."""
    job.refresh_from_db()
    backend = get_provider(job.provider)
    delay = timedelta(seconds=resubmit_delay(backend, job.resolution))
    assert delay >= timedelta(seconds=backend.latency(job.resolution)[1])
    assert job.status == Status.QUEUED
    assert job.lease_until == job.next_poll_at
    assert job.lease_until >= job.updated_at + delay
    assert services.submit(job.pk) == "not-claimed"  # a duplicate message meanwhile


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TestOneAttempt:
    """Family: each outcome of one attempt (answered; refused with a transient
    or a permanent error; provider unreachable; answer lost by a closed
    connection or by a timeout; the worker killed in the call), with and
    without callbacks: what it counts against the limit and the budgets,
    and what comes next."""

    @pytest.mark.parametrize("callbacks", [False, True], ids=["polling", "callbacks"])
    @pytest.mark.parametrize(
        ("marker", "outcome", "accepted", "lost", "spend"),
        [
            ("", "submitted", 1, 0, 1),
            ("[sandbox:submit-http=503]", TransientError, 0, 0, 1),
            ("[sandbox:submit-http=402]", "failed", 0, 0, 0),
            ("unreachable", TransientError, 0, 0, 1),
            (LOST["hangup"], "uncertain", 0, 1, 2),
            (LOST["late"], "uncertain", 0, 1, 2),
        ],
        ids=["answered", "503", "402", "unreachable", "hangup", "late"],
    )
    def test_outcome(
        self, attempts_settings, sandbox, callbacks, marker, outcome, accepted, lost, spend
    ):
        config = attempts_settings(CALLBACK_BASE_URL=SITE if callbacks else None)
        if marker == "unreachable":
            providers = config["PROVIDERS"]
            url = f"http://127.0.0.1:{closed_port()}/api/v1"
            attempts_settings(
                CALLBACK_BASE_URL=config["CALLBACK_BASE_URL"],
                PROVIDERS={**providers, "sandbox": {**providers["sandbox"], "BASE_URL": url}},
            )
        job = services.create_job(prompt=f"a kite {marker} [sandbox:callback=drop]")
        if isinstance(outcome, type):
            with pytest.raises(outcome):
                services.submit(job.pk)
        else:
            assert services.submit(job.pk) == outcome
        job.refresh_from_db()
        assert job.submit_attempts == 1
        assert (job.submit_accepted, job.submit_lost) == (accepted, lost)
        assert job.submitting_since is None
        # The job's own task (or the one it is about to start) and each lost answer.
        assert spent() == spend * job.estimated_cost
        if lost:
            assert job.error_code == "SUBMIT_UNCERTAIN"
            assert_waits_before_resubmitting(job)
        elif outcome is TransientError:
            assert job.lease_until is None  # the task retries with backoff

    @pytest.mark.parametrize("callbacks", [False, True], ids=["polling", "callbacks"])
    def test_worker_killed_in_the_call(self, attempts_settings, sandbox, callbacks):
        attempts_settings(CALLBACK_BASE_URL=SITE if callbacks else None)
        job = services.create_job(prompt="a kite [sandbox:callback=drop]")
        killed_in_the_call(job)
        job.refresh_from_db()
        assert (job.submit_attempts, job.submit_lost, sandbox.stats()["submits"]) == (1, 0, 1)
        # While its lease holds, the job's own reservation covers the attempt.
        assert spent() == job.estimated_cost
        come_due(job)  # the dead worker's lease runs out

        assert services.submit(job.pk) == "uncertain"

        job.refresh_from_db()
        assert (job.submit_attempts, job.submit_lost, job.submitting_since) == (1, 1, None)
        assert sandbox.stats()["submits"] == 1  # the takeover did not submit again yet
        assert spent() == 2 * job.estimated_cost
        assert_waits_before_resubmitting(job)


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing in imagegen catches it."""


def killed_in_the_call(job: GenerationJob) -> None:
    """Submit ``job``; the worker "dies" once the provider made the task."""
    provider = get_provider(job.provider)
    original = provider.submit

    def dying(request: Any) -> Any:
        original(request)
        raise WorkerKilled

    provider.submit = dying
    try:
        with pytest.raises(WorkerKilled):
            services.submit(job.pk)
    finally:
        del provider.submit


class TestOneLimit:
    """Family: answers always lost, for every provider (APIXO's protocol,
    OpenAI's synchronous API), each way of losing them, with and without
    callbacks, at two limits: exactly ``SUBMIT_MAX_ATTEMPTS`` paid tasks,
    then the job fails naming the lost answers, and each counted as spend."""

    @pytest.mark.parametrize("limit", [1, 3])
    @pytest.mark.parametrize("callbacks", [False, True], ids=["polling", "callbacks"])
    @pytest.mark.parametrize("how", sorted(LOST))
    @pytest.mark.parametrize("provider", ["sandbox", "openai"])
    def test_answers_always_lost(self, attempts_settings, sandbox, provider, how, callbacks, limit):
        attempts_settings(SUBMIT_MAX_ATTEMPTS=limit, CALLBACK_BASE_URL=SITE if callbacks else None)
        job = services.create_job(
            prompt=f"a kite {LOST[how]} [sandbox:callback=drop]", provider=provider
        )
        price = job.estimated_cost
        assert price
        # Callbacks on: the last task gets the same wait to call back before the job fails.
        waits = limit if callbacks and provider == "sandbox" else limit - 1
        for attempt in range(1, limit + 1):
            outcome = services.submit(job.pk)
            assert paid_tasks(sandbox, provider) == attempt
            if attempt <= waits:
                assert outcome == "uncertain"
                assert_waits_before_resubmitting(job)
                assert spent() == (attempt + 1) * price  # the lost ones, and the next
                come_due(job)
        if waits == limit:
            assert services.submit(job.pk) == "failed"  # without asking the provider again
        job.refresh_from_db()
        assert paid_tasks(sandbox, provider) == limit
        assert job.status == Status.FAILED
        assert job.error_code == "SUBMIT_ANSWERS_LOST"
        lost = "answer was lost 1 time" if limit == 1 else f"answers were lost {limit} times"
        assert lost in job.error_message
        assert f"{limit} submission attempts" in job.error_message
        assert (job.submit_attempts, job.submit_lost) == (limit, limit)
        assert spent() == limit * price

    @pytest.mark.parametrize(
        ("marker", "outcomes", "code", "message", "tasks", "lost"),
        [
            ("[sandbox:submit-http=503x2]", [503, 503, "submitted"], "", "", 1, 0),
            ("[sandbox:submit-http=503x3]", [503, 503, "failed"], "503", "after 3 attempts", 0, 0),
            (
                f"[sandbox:submit-http=503x2] {LOST['hangup']}",
                [503, 503, "failed"],
                "SUBMIT_ANSWERS_LOST",
                "answer was lost 1 time",
                1,
                1,
            ),
            (
                f"[sandbox:submit-http=503x1] {LOST['hangup']}",
                [503, "uncertain", "failed"],
                "SUBMIT_ANSWERS_LOST",
                "answers were lost 2 times",
                2,
                2,
            ),
        ],
        ids=["refused-refused-answered", "refused x3", "refused-refused-lost", "refused-lost-lost"],
    )
    def test_refusals_and_lost_answers_share_the_limit(
        self, attempts_settings, sandbox, marker, outcomes, code, message, tasks, lost
    ):
        """Family: sequences of refusals (503, nothing started), lost answers
        and an answer, within ``SUBMIT_MAX_ATTEMPTS`` = 3."""
        attempts_settings(SUBMIT_MAX_ATTEMPTS=3)
        job = services.create_job(prompt=f"a kite {marker}")
        for expected in outcomes:
            if expected == 503:
                with pytest.raises(TransientError):
                    services.submit(job.pk)
            else:
                assert services.submit(job.pk) == expected
            come_due(job)
        job.refresh_from_db()
        assert job.submit_attempts == 3
        assert sandbox.stats()["submits"] == tasks
        assert job.submit_lost == lost
        assert job.error_code == code
        assert message in job.error_message
        # Refusals cost nothing; a failed job's own task nothing; each lost answer its price.
        own = 1 if job.status != Status.FAILED else 0
        assert spent() == (own + lost) * job.estimated_cost

    def test_expiry_while_waiting_names_the_lost_answers(self, attempts_settings, sandbox):
        attempts_settings(SUBMIT_MAX_ATTEMPTS=5)
        job = services.create_job(prompt=f"a kite {LOST['hangup']}")
        for _ in range(2):
            assert services.submit(job.pk) == "uncertain"
            come_due(job)
        GenerationJob.objects.filter(pk=job.pk).update(deadline_at=timezone.now())

        assert services.sweep()["expired"] == 1

        job.refresh_from_db()
        assert job.status == Status.EXPIRED
        assert job.error_code == "SUBMIT_ANSWERS_LOST"
        assert "answers were lost 2 times" in job.error_message
        assert spent() == 2 * job.estimated_cost


class TestLostAnswerResolved:
    """Family: after a lost answer, what the provider then says about that
    task (still running, done, failed) or a second attempt accepted: the
    spend ends at one price per task that may be paid, and the job follows
    a task it learnt of by polling its id."""

    @pytest.fixture
    def lost_once(self, attempts_settings, sandbox):
        attempts_settings(CALLBACK_BASE_URL=SITE)
        job = services.create_job(prompt=f"a kite {LOST['hangup']} [sandbox:callback=drop]")
        assert services.submit(job.pk) == "uncertain"
        assert spent() == 2 * job.estimated_cost
        (task_id,) = sandbox.stats()["tasks"]
        return job, task_id

    @pytest.mark.parametrize(
        ("report", "status", "spend"),
        [
            (TaskStatus.PENDING, Status.SUBMITTED, 1),
            (TaskStatus.PROCESSING, Status.RUNNING, 1),
            (TaskStatus.SUCCESS, Status.FINALIZING, 1),
            (TaskStatus.FAILED, Status.FAILED, 0),
        ],
    )
    def test_the_lost_task_reports(self, lost_once, sandbox, report, status, spend):
        job, task_id = lost_once
        outputs = get_provider("sandbox").fetch(task_id).outputs if report == "success" else ()
        state = TaskState(task_id=task_id, status=report, outputs=outputs, error_code="X")

        assert services.apply_update(job.pk, state, source="callback") == "advanced"

        job.refresh_from_db()
        assert job.status == status
        assert job.provider_task_id == task_id
        # The lost answer's task is the job's own: counted once, or not at all if it failed.
        assert spent() == spend * job.estimated_cost
        assert services.submit(job.pk) == "not-claimed"
        if not state.is_terminal:
            # Followed by its id from now on: no second task, a poll of this one.
            assert job.lease_until is None and job.next_poll_at is not None
            assert services.poll(job.pk) != "not-claimed"
            assert sandbox.stats()["tasks"][task_id]["status_calls"] == 1
        assert sandbox.stats()["submits"] == 1

    def test_second_attempt_accepted_then_the_lost_task_reports(self, lost_once, sandbox):
        job, first = lost_once
        come_due(job)
        GenerationJob.objects.filter(pk=job.pk).update(prompt="a kite")  # answered this time
        assert services.submit(job.pk) == "submitted"
        job.refresh_from_db()
        assert job.provider_task_id != first
        assert spent() == 2 * job.estimated_cost  # the lost one may be paid too

        late = TaskState(task_id=first, status=TaskStatus.PROCESSING)
        assert services.apply_update(job.pk, late, source="callback") == "stale"
        assert spent() == 2 * job.estimated_cost

    def test_the_lost_task_reports_while_another_attempt_is_in_flight(self, lost_once, sandbox):
        """Its callback makes it the job's task; the attempt in flight, once
        answered, is an extra paid task."""
        job, first = lost_once
        come_due(job)
        GenerationJob.objects.filter(pk=job.pk).update(prompt="a kite")
        provider = get_provider("sandbox")
        original = provider.submit

        def callback_meanwhile(request: Any) -> Any:
            state = TaskState(task_id=first, status=TaskStatus.PROCESSING)
            assert services.apply_update(job.pk, state, source="callback") == "advanced"
            return original(request)

        provider.submit = callback_meanwhile
        try:
            assert services.submit(job.pk) == "superseded"
        finally:
            del provider.submit
        job.refresh_from_db()
        assert job.provider_task_id == first
        assert (job.submit_attempts, job.submit_accepted, job.submit_lost) == (2, 1, 1)
        assert sandbox.stats()["submits"] == 2
        assert spent() == 2 * job.estimated_cost


class TestBudgets:
    """Lost answers spend the budget like tasks: a job that would exceed it
    is refused until the lost answer's task turns out to be the job's own."""

    def test_lost_answers_fill_the_budget_until_the_task_reports(self, attempts_settings, sandbox):
        price = conf.price("sandbox", "gpt-image-2", "1k")
        attempts_settings(BUDGETS={"SITE_MONTHLY": str(3 * price)})
        job = services.create_job(prompt=f"a kite {LOST['hangup']}")
        assert services.submit(job.pk) == "uncertain"
        come_due(job)
        assert services.submit(job.pk) == "uncertain"
        assert spent() == 3 * price  # two lost answers, and the next attempt
        with pytest.raises(ValidationError) as info:
            services.create_job(prompt="one more")
        assert info.value.code == "budget_exceeded"

        first = next(iter(sandbox.stats()["tasks"]))
        running = TaskState(task_id=first, status=TaskStatus.PROCESSING)
        assert services.apply_update(job.pk, running, source="callback") == "advanced"

        assert spent() == 2 * price  # the job's task, and the other lost answer
        assert services.create_job(prompt="one more").estimated_cost == price

    @pytest.mark.parametrize(
        ("end", "spend"),
        [("cancel", 1), ("expire", 1), ("callback", 1)],
    )
    def test_a_dead_workers_attempt_on_a_job_that_ended(
        self, attempts_settings, sandbox, end, spend
    ):
        """Family: the job ends (canceled, expired, completed by the task's
        callback) before anyone takes over from a worker killed in the call:
        the attempt counts once, as the job's task or as a possibly paid one."""
        attempts_settings(CALLBACK_BASE_URL=SITE)
        job = services.create_job(prompt="a kite [sandbox:callback=drop]")
        killed_in_the_call(job)
        if end == "cancel":
            assert services.cancel(job.pk)
        elif end == "expire":
            GenerationJob.objects.filter(pk=job.pk).update(deadline_at=timezone.now())
            assert services.expire(job.pk)
        else:
            (task_id,) = sandbox.stats()["tasks"]
            outputs = get_provider("sandbox").fetch(task_id).outputs
            state = TaskState(task_id=task_id, status=TaskStatus.SUCCESS, outputs=outputs)
            assert services.apply_update(job.pk, state, source="callback") == "advanced"
        job.refresh_from_db()
        assert job.submitting_since is not None
        assert spent() == spend * job.estimated_cost

"""The provider does the work but its answer never arrives: a submission
whose response is lost or too late, once or every time; status queries that
never answer."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from imagegen import conf, services
from imagegen.choices import Status
from imagegen.providers import get_provider
from imagegen.services.jobs import resubmit_delay

from ..conftest import wait_until
from ..test_submit_attempts import spent
from .conftest import drive_to_end, job_row
from .test_worker_killed import assert_stored_once

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(
    "marker",
    [
        "[sandbox:submit-hangup]",  # accepted, then the connection closes: no answer
        "[sandbox:submit-delay=4]",  # accepted, answered after the client's timeout
    ],
)
def test_accepted_submission_whose_answer_is_lost(
    fault_settings: dict[str, Any], settings: Any, sandbox: Any, workers: Any, marker: str
) -> None:
    providers = {"sandbox": {**fault_settings["PROVIDERS"]["sandbox"], "TIMEOUT": 1.5}}
    settings.IMAGEGEN = {**fault_settings, "PROVIDERS": providers, "BUDGETS": {"SITE_MONTHLY": 9}}
    workers()
    job = services.create_job(prompt=f"A badger at dusk {marker}")
    wait_until(
        lambda: job_row(job.pk).error_code == "SUBMIT_UNCERTAIN" or job_row(job.pk).is_terminal,
        what="the submission to end without an answer",
    )

    job = drive_to_end(job.pk)

    assert_stored_once(job)
    # The task the provider accepted called back with this job's token; the
    # job waited for it instead of paying for a second one.
    assert sandbox.stats()["submits"] == 1
    assert job.submit_attempts == 1
    # The lost answer was reserved as spend until its task called back: then
    # it was the job's own task, one price.
    assert job.submit_lost == 1
    assert spent() == job.estimated_cost


@pytest.mark.parametrize("callbacks", [False, True], ids=["polling", "callbacks"])
def test_answers_always_lost_fail_after_the_attempts(
    fault_settings: dict[str, Any], settings: Any, sandbox: Any, workers: Any, callbacks: bool
) -> None:
    """Every submission's answer is lost (the connection closes after the
    task was made), and with callbacks on every task's callback too."""
    limit = conf.DEFAULTS["SUBMIT_MAX_ATTEMPTS"]
    price = conf.price("sandbox", "gpt-image-2", "1k")
    settings.IMAGEGEN = {
        **fault_settings,
        "CALLBACK_BASE_URL": fault_settings["CALLBACK_BASE_URL"] if callbacks else None,
        "BUDGETS": {"SITE_MONTHLY": str(limit * price)},
    }
    workers()
    job = services.create_job(prompt="A stoat [sandbox:submit-hangup] [sandbox:callback=drop]")

    job = drive_to_end(job.pk)

    assert job.status == Status.FAILED
    assert job.error_code == "SUBMIT_ANSWERS_LOST"
    assert f"the provider's answers were lost {limit} times" in job.error_message
    assert (job.submit_attempts, job.submit_lost) == (limit, limit)
    # Exactly SUBMIT_MAX_ATTEMPTS paid tasks, not one per sweep until the deadline.
    tasks = sandbox.stats()["tasks"]
    assert sandbox.stats()["submits"] == len(tasks) == limit
    # Each made at least the resubmission delay after the one before, by the
    # provider's own clock: never less than its latency's upper bound.
    backend = get_provider("sandbox")
    delay = resubmit_delay(backend, job.resolution)
    assert delay >= backend.latency(job.resolution)[1]
    created = sorted(sandbox.task(task_id).created for task_id in tasks)
    gaps = [later - earlier for earlier, later in pairwise(created)]
    assert min(gaps) >= delay, gaps
    # Every lost answer may be a paid task: budgets count each, and the budget is spent.
    assert spent() == limit * price
    with pytest.raises(ValidationError) as refused:
        services.create_job(prompt="A weasel")
    assert refused.value.code == "budget_exceeded"


def test_status_never_answers_job_expires_on_time(
    fault_settings: dict[str, Any], settings: Any, sandbox: Any, workers: Any
) -> None:
    providers = {"sandbox": {**fault_settings["PROVIDERS"]["sandbox"], "TIMEOUT": 1.0}}
    settings.IMAGEGEN = {
        **fault_settings,
        "PROVIDERS": providers,
        "CALLBACK_BASE_URL": None,
        # The deadline counts from the job's creation: long enough for two polls
        # (each hangs up after TIMEOUT) after a submission that a loaded machine's
        # worker took seconds to take (with 6 s, none was made in time).
        "JOB_TIMEOUT": 15,
    }
    workers()
    job = services.create_job(prompt="A mole underground [sandbox:status-hangup]")

    job = drive_to_end(job.pk, timeout=60)

    assert job.status == Status.EXPIRED
    assert job.poll_count >= 2  # it kept asking, on its schedule, until the deadline
    assert job.completed_at >= job.deadline_at
    assert not job.images.exists()
    assert sandbox.stats()["submits"] == 1

"""The provider does the work but its answer never arrives: a submission
whose response is lost or too late, status queries that never answer."""

from __future__ import annotations

from typing import Any

import pytest

from imagegen import services
from imagegen.choices import Status

from ..conftest import wait_until
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
    settings.IMAGEGEN = {**fault_settings, "PROVIDERS": providers}
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


def test_status_never_answers_job_expires_on_time(
    fault_settings: dict[str, Any], settings: Any, sandbox: Any, workers: Any
) -> None:
    providers = {"sandbox": {**fault_settings["PROVIDERS"]["sandbox"], "TIMEOUT": 1.0}}
    settings.IMAGEGEN = {
        **fault_settings,
        "PROVIDERS": providers,
        "CALLBACK_BASE_URL": None,
        "JOB_TIMEOUT": 6,
    }
    workers()
    job = services.create_job(prompt="A mole underground [sandbox:status-hangup]")

    job = drive_to_end(job.pk, timeout=30)

    assert job.status == Status.EXPIRED
    assert job.poll_count >= 2  # it kept asking, on its schedule, until the deadline
    assert job.completed_at >= job.deadline_at
    assert not job.images.exists()
    assert sandbox.stats()["submits"] == 1

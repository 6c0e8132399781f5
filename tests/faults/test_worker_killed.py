"""A worker process SIGKILLed in the middle of each task: the job still ends
right, its outputs are stored exactly once, and no paid task is repeated
when the provider's callback can account for it."""

from __future__ import annotations

import posixpath
from typing import Any

import pytest

from imagegen import services
from imagegen.choices import Status
from imagegen.models import GenerationJob
from imagegen.storage import get_storage, output_name

from ..conftest import PROCESSES_TIMEOUT, wait_until
from .conftest import drive_to_end, job_row

pytestmark = [
    pytest.mark.faults,
    pytest.mark.brokers,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(PROCESSES_TIMEOUT),
]


def assert_stored_once(job: GenerationJob) -> None:
    """One asset per output, each file present, nothing else in the job's folder."""
    assert job.status == Status.SUCCEEDED, (job.status, job.error_code, job.error_message)
    images = list(job.images.order_by("index"))
    assert [image.index for image in images] == list(range(len(job.result_urls)))
    storage = get_storage()
    folder = posixpath.dirname(output_name(job, 0, "png"))
    _dirs, files = storage.listdir(folder)
    outputs = {posixpath.basename(image.file.name) for image in images}
    assert outputs <= set(files)
    leftovers = {name for name in files if name not in outputs and ".thumb." not in name}
    assert not leftovers, f"orphan files: {leftovers}"


def test_killed_during_submit_callback_accounts_for_the_task(
    fault_settings: dict[str, Any], sandbox: Any, workers: Any
) -> None:
    # The sandbox creates the task, then answers 3 s late: the worker dies
    # holding a request the provider has already accepted (and will charge).
    job = services.create_job(prompt="A fox in the snow [sandbox:submit-delay=3]")
    first = workers()
    wait_until(lambda: sandbox.stats()["submits"] == 1, what="the submit to reach the sandbox")
    first.kill()
    assert job_row(job.pk).status == Status.QUEUED
    workers()

    job = drive_to_end(job.pk)

    assert_stored_once(job)
    # The accepted task's callback (it carries this job's token) completed the
    # job; the lease kept the redelivered message from paying for a second task.
    assert sandbox.stats()["submits"] == 1
    assert job.submit_attempts == 1


def test_killed_during_submit_without_callbacks_resubmits_once(
    fault_settings: dict[str, Any], sandbox: Any, workers: Any, settings: Any
) -> None:
    settings.IMAGEGEN = {**fault_settings, "CALLBACK_BASE_URL": None}
    job = services.create_job(prompt="A hare in the snow [sandbox:submit-delay=3]")
    first = workers()
    wait_until(lambda: sandbox.stats()["submits"] == 1, what="the submit to reach the sandbox")
    first.kill()
    workers()

    job = drive_to_end(job.pk)

    assert_stored_once(job)
    # Without callbacks the first task cannot be found (APIXO has no
    # idempotency key): one resubmission after the lease, never more.
    assert sandbox.stats()["submits"] == 2
    assert job.submit_attempts == 2


def test_killed_during_poll(
    fault_settings: dict[str, Any], sandbox: Any, workers: Any, settings: Any
) -> None:
    settings.IMAGEGEN = {**fault_settings, "CALLBACK_BASE_URL": None}
    job = services.create_job(prompt="An owl at night [sandbox:status-delay=2]")
    first = workers()
    # The sweeper (beat's job) sends the polls.
    wait_until(
        lambda: services.sweep() is not None and sandbox.stats()["status_calls"] >= 1,
        interval=0.25,
        what="a poll to reach the sandbox",
    )
    first.kill()
    workers()

    job = drive_to_end(job.pk)

    assert_stored_once(job)
    assert sandbox.stats()["submits"] == 1


def test_killed_during_finalize_download(
    fault_settings: dict[str, Any], sandbox: Any, workers: Any
) -> None:
    job = services.create_job(prompt="A heron [sandbox:download-delay=3] [sandbox:count=2]")
    first = workers()
    wait_until(
        lambda: job_row(job.pk).status == Status.FINALIZING and sandbox.stats()["downloads"] >= 1,
        what="the finalize to start downloading",
    )
    first.kill()
    workers()

    job = drive_to_end(job.pk)

    assert_stored_once(job)
    assert job.images.count() == 2
    assert job.finalize_attempts >= 2
    assert sandbox.stats()["submits"] == 1

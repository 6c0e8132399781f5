"""Callbacks and task ids: another job's task is never taken (issue 13, Callbacks)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import IntegrityError
from django.urls import reverse
from django.utils import timezone

from imagegen import tokens
from imagegen.choices import Status
from imagegen.models import GenerationJob, WebhookDelivery
from imagegen.services import callbacks

from .factories import make_job

pytestmark = [pytest.mark.services, pytest.mark.django_db]

#: Every state a job can be in when a callback arrives, with or without a
#: task id of its own: queued (never submitted, or a submission in flight
#: whose answer is not back), submitted, running, finalizing, and the
#: terminal states, reached after a task or before any.
JOB_STATES = [
    pytest.param(Status.QUEUED, {}, id="queued-no-task"),
    pytest.param(Status.QUEUED, {"submitting": True}, id="submitting-no-task"),
    pytest.param(Status.SUBMITTED, {}, id="submitted"),
    pytest.param(Status.RUNNING, {}, id="running"),
    pytest.param(Status.FINALIZING, {}, id="finalizing"),
    pytest.param(Status.SUCCEEDED, {}, id="succeeded"),
    pytest.param(Status.FAILED, {"provider_task_id": "task-own"}, id="failed"),
    pytest.param(Status.FAILED, {}, id="failed-no-task"),
    pytest.param(Status.CANCELED, {"provider_task_id": "task-own"}, id="canceled"),
    pytest.param(Status.CANCELED, {}, id="canceled-no-task"),
    pytest.param(Status.EXPIRED, {"provider_task_id": "task-own"}, id="expired"),
    pytest.param(Status.EXPIRED, {}, id="expired-no-task"),
]

#: What the callback reports of the task.
REPORTED = ["processing", "success", "failed"]

SNAPSHOT = ("status", "provider_task_id", "result_urls", "error_code", "updated_at")


def body(task_id: str, state: str) -> bytes:
    data: dict[str, Any] = {"taskId": task_id, "state": state, "failCode": "", "failMsg": ""}
    if state == "success":
        data["resultJson"] = json.dumps({"resultUrls": ["http://127.0.0.1:9/0.png"]})
    if state == "failed":
        data.update(failCode="NSFW_DETECTED", failMsg="no")
    return json.dumps({"code": 200, "message": "success", "data": data}).encode()


def post(client: Any, job: GenerationJob, content: bytes) -> Any:
    path = reverse(
        "imagegen:callback",
        kwargs={
            "provider": job.provider,
            "job_id": job.pk,
            "token": tokens.callback_token(job.pk),
        },
    )
    return client.post(path, content, content_type="application/json")


def snapshot(job: GenerationJob) -> dict[str, Any]:
    return GenerationJob.objects.values(*SNAPSHOT).get(pk=job.pk)


def job_in(status: str, extra: dict[str, Any]) -> GenerationJob:
    fields = dict(extra)
    if fields.pop("submitting", False):
        fields["submitting_since"] = timezone.now()
    return make_job(status=status, **fields)


@pytest.mark.parametrize("reported", REPORTED)
@pytest.mark.parametrize(("status", "extra"), JOB_STATES)
def test_another_jobs_task_is_refused_with_409_in_every_state(
    client: Any, imagegen_settings: Any, status: str, extra: dict[str, Any], reported: str
) -> None:
    """Family: every job state (with its own task and, where a job can have
    none, without) x every reported task state. The answer is 409 (a 4xx:
    the provider does not retry it), the refusal is recorded, and neither
    job changes: the task stays the other job's."""
    other = make_job(status=Status.SUBMITTED, provider_task_id="task-other")
    job = job_in(status, extra)
    before, other_before = snapshot(job), snapshot(other)

    response = post(client, job, body("task-other", reported))

    assert response.status_code == 409
    assert response.json()["message"] == callbacks.FOREIGN_TASK
    assert snapshot(job) == before
    assert snapshot(other) == other_before
    delivery = WebhookDelivery.objects.get()
    assert (delivery.outcome, delivery.status_code, delivery.job_id) == ("malformed", 409, job.pk)
    assert delivery.error == callbacks.FOREIGN_TASK


@pytest.mark.parametrize("reported", ["processing", "success", "failed"])
def test_a_job_without_task_still_adopts_a_task_no_job_has(
    client: Any, imagegen_settings: Any, reported: str
) -> None:
    """Family: a queued job whose submit answer was lost hears of its task
    (processing, success, failed): it takes the task, as docs/flow.md says;
    a second job without task then hearing of that task is refused."""
    job = make_job(status=Status.QUEUED)
    second = make_job(status=Status.QUEUED)

    assert post(client, job, body("task-lost", reported)).status_code == 200
    assert snapshot(job)["provider_task_id"] == "task-lost"

    assert post(client, second, body("task-lost", reported)).status_code == 409
    assert snapshot(second)["provider_task_id"] is None


@pytest.mark.parametrize("reported", REPORTED)
def test_a_task_taken_between_check_and_update_is_refused_not_503(
    client: Any, imagegen_settings: Any, monkeypatch: pytest.MonkeyPatch, reported: str
) -> None:
    """Family: each reported state, for a job without task whose task
    another job takes after the check (a concurrent callback or submit
    answer): the database's unique constraint catches it, and the answer is
    the same recorded 409, not a 503 the provider would retry for ever."""
    job = make_job(status=Status.QUEUED)
    make_job(status=Status.SUBMITTED, provider_task_id="task-raced")
    real_check = callbacks._task_of_another_job
    calls = []

    def not_yet_at_the_check(*args: Any) -> bool:
        # The first call is the check, before the other job took the task.
        calls.append(args)
        return len(calls) > 1 and real_check(*args)

    monkeypatch.setattr(callbacks, "_task_of_another_job", not_yet_at_the_check)
    response = post(client, job, body("task-raced", reported))

    assert response.status_code == 409
    assert len(calls) == 2  # the check, then after the constraint's refusal
    assert snapshot(job)["provider_task_id"] is None
    assert snapshot(job)["status"] == Status.QUEUED
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status_code, delivery.error) == (409, callbacks.FOREIGN_TASK)


def test_replaying_a_delivery_of_another_jobs_task_is_refused(imagegen_settings: Any) -> None:
    """A stored delivery replayed after its task became another job's is
    refused the same way, and changes neither job."""
    job = make_job(status=Status.QUEUED)
    make_job(status=Status.SUBMITTED, provider_task_id="task-other")
    delivery = WebhookDelivery.objects.create(
        job=job,
        job_ref=str(job.pk),
        provider="sandbox",
        body=body("task-other", "success").decode(),
    )

    result = callbacks.replay(delivery)

    assert (result.status_code, result.message) == (409, callbacks.FOREIGN_TASK)
    assert snapshot(job)["provider_task_id"] is None


def test_another_constraint_failing_stays_a_recorded_503(
    client: Any, imagegen_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An integrity error that is not about the task (no other job has it)
    is a database error like any other: 503, recorded with the error."""
    job = make_job(status=Status.QUEUED)

    def violates(*args: Any, **kwargs: Any) -> str:
        raise IntegrityError("another constraint")

    monkeypatch.setattr(callbacks, "apply_update", violates)
    response = post(client, job, body("task-new", "processing"))

    assert response.status_code == 503
    delivery = WebhookDelivery.objects.get()
    assert (delivery.outcome, delivery.status_code) == ("error", 503)
    assert "another constraint" in delivery.error

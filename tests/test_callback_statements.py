"""What one callback costs the database (issue 17, webhook ingest): the
statements its hot path runs, counted, so a change that adds a round trip
shows here (the rate itself is measured by benchmarks/webhook_ingest.py)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from imagegen.choices import Status
from imagegen.models import GenerationJob, WebhookDelivery
from imagegen.services import callbacks

from .factories import make_job
from .test_callback_tasks import REPORTED, body, post

pytestmark = [pytest.mark.services, pytest.mark.django_db]

#: Transaction control, which the test's own transaction turns into savepoints.
CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def statements(context: CaptureQueriesContext) -> list[str]:
    """The captured SQL without transaction control, each as its first word
    and table (``SELECT imagegen_generationjob``)."""
    found = []
    for query in context.captured_queries:
        sql = query["sql"]
        if sql.upper().startswith(CONTROL):
            continue
        table = next(word for word in sql.replace('"', " ").split() if word.startswith("imagegen_"))
        found.append(f"{sql.split()[0].upper()} {table}")
    return found


def looks_up_the_task(context: CaptureQueriesContext, task_id: str) -> bool:
    """Whether a statement asked which other job holds ``task_id``."""
    return any(
        f"\"provider_task_id\" = '{task_id}'" in query["sql"]
        and query["sql"].startswith("SELECT 1")
        for query in context.captured_queries
    )


@pytest.mark.parametrize("reported", REPORTED)
def test_a_callback_for_the_jobs_own_task_does_not_look_for_other_jobs(
    client: Any, imagegen_settings: Any, reported: str
) -> None:
    """Family: each reported state (processing, success, failed) for a job
    that holds the reported task. The unique constraint on (provider, task)
    already says no other job holds it: the callback reads the job, changes
    it and records the delivery, and asks nothing else of the database."""
    job = make_job(status=Status.SUBMITTED)

    with CaptureQueriesContext(connection) as context:
        response = post(client, job, body(job.provider_task_id, reported))

    assert response.status_code == 200
    assert not looks_up_the_task(context, job.provider_task_id)
    assert WebhookDelivery.objects.get().outcome == "accepted"
    if reported == "success":
        assert statements(context) == [
            "SELECT imagegen_generationjob",
            "UPDATE imagegen_generationjob",
            "INSERT imagegen_webhookdelivery",
        ]
        assert GenerationJob.objects.get(pk=job.pk).status == Status.FINALIZING


@pytest.mark.parametrize(
    ("status", "task_id"),
    [
        pytest.param(Status.QUEUED, None, id="job-without-task"),
        pytest.param(Status.SUBMITTED, "task-mine", id="job-with-another-task"),
    ],
)
@pytest.mark.parametrize("reported", REPORTED)
def test_a_callback_for_a_task_the_job_does_not_hold_looks_for_other_jobs(
    client: Any, imagegen_settings: Any, status: str, task_id: str | None, reported: str
) -> None:
    """Family: a job without task and a job with another task x each
    reported state, for a task no other job holds: the lookup runs (a job
    without task may adopt the reported task only if no other job has it;
    a job with another task refuses it with 400, not 409)."""
    job = make_job(status=status, provider_task_id=task_id)

    with CaptureQueriesContext(connection) as context:
        response = post(client, job, body("task-reported", reported))

    assert looks_up_the_task(context, "task-reported")
    assert response.status_code == (200 if task_id is None else 400)


@pytest.mark.parametrize("task_id", ["task-held", None], ids=["with-task", "without-task"])
def test_the_checked_read_gives_the_orms_values_and_nothing_else(task_id: str | None) -> None:
    """Family: a job with and without a task, read for the check as the
    URL gives its id (text), by its own provider, another provider, an id
    no job has, and text that is no id. The written-out SELECT gives what
    the ORM reads (the id as a UUID, the checked fields), defers every
    other field, and finds nothing in the last three cases."""
    job = make_job(status=Status.SUBMITTED, provider_task_id=task_id)
    orm = GenerationJob.objects.get(pk=job.pk)

    read = callbacks._job_to_check(job.provider, str(job.pk))

    assert read is not None and read.pk == orm.pk and isinstance(read.pk, uuid.UUID)
    assert [getattr(read, name) for name in callbacks.CHECKED_FIELDS] == [
        getattr(orm, name) for name in callbacks.CHECKED_FIELDS
    ]
    assert read.get_deferred_fields() == {
        field.attname
        for field in GenerationJob._meta.concrete_fields
        if field.attname not in {"id", *callbacks.CHECKED_FIELDS}
    }
    assert callbacks._job_to_check("apixo", str(job.pk)) is None
    assert callbacks._job_to_check(job.provider, str(uuid.uuid4())) is None
    assert callbacks._job_to_check(job.provider, "not-a-job-id") is None


@pytest.mark.parametrize("job_ref", ["not-a-job-id", "", "1" * 64])
def test_a_reference_that_is_no_job_id_is_an_unknown_job(job_ref: str) -> None:
    """Family: references no URL route lets through (text, empty, too long)
    given to the service directly: a recorded 404, never an exception
    (``handle_callback`` never raises for bad input)."""
    result = callbacks.handle_callback("sandbox", job_ref, "token", b"{}", {}, "127.0.0.1")

    assert (result.status_code, result.outcome) == (404, "unknown_job")
    delivery = WebhookDelivery.objects.get()
    assert (delivery.job_ref, delivery.status_code) == (job_ref, 404)

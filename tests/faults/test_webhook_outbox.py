"""The outbound webhook outbox: an event is recorded in the transaction of
the job change that causes it, and sent after the commit.

A real Django process (``outbox_process.py``, on the test database and
broker) ends a job, and is SIGKILLed at a deterministic pause point where
the test asks for one. Then a real Celery worker and the sweeper run, and a
real HTTP receiver verifies what arrives with the Standard Webhooks
reference library.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from imagegen import services, signals
from imagegen.choices import Status
from imagegen.models import GenerationJob, OutboundDelivery
from imagegen.services.transitions import send_after_commit
from imagegen.webhooks import delivery, events

from ..conftest import require_service, wait_until
from ..factories import make_job
from ..test_outbound_webhooks import endpoint_at, hooks, receiver  # noqa: F401
from .conftest import ROOT, _database_settings

# On every database: the SQLite pass runs them too.
pytestmark = pytest.mark.services

State = OutboundDelivery.State

#: The end each process applies, and the event it sends.
ENDS = {
    "cancel": (Status.CANCELED, events.JOB_CANCELED),
    "fail": (Status.FAILED, events.JOB_FAILED),
    "expire": (Status.EXPIRED, events.JOB_EXPIRED),
}


class _Rollback(Exception):
    """Raised to roll a transaction back."""


def run_process(job_id: Any, end: str, outcome: str) -> subprocess.Popen:
    overrides = {
        "DATABASES": {"default": _database_settings()},
        "IMAGEGEN": django_settings.IMAGEGEN,
    }
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "IMAGEGEN_TEST_QUEUE": django_settings.TEST_QUEUE,
        "IMAGEGEN_TEST_OVERRIDES": json.dumps(overrides),
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.faults.outbox_process", str(job_id), end, outcome],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def take_messages() -> list[tuple[str, list]]:
    """Take every task message off this run's queue: (task name, args)."""
    from project.celery import app

    with app.connection_for_write() as conn:
        queue = app.amqp.queues[django_settings.TEST_QUEUE](conn.default_channel)
        queue.declare()
        taken = []
        while (message := queue.get(no_ack=True)) is not None:
            taken.append((message.headers["task"], message.decode()[0]))
        return taken


@pytest.mark.faults
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("end", sorted(ENDS))
@pytest.mark.parametrize(
    "outcome", ["commit", "rollback", "crash-before-commit", "crash-after-commit"]
)
def test_event_survives_exactly_what_the_job_change_survives(
    request,
    hooks,  # noqa: F811
    receiver,  # noqa: F811
    end,
    outcome,
):
    """The family, for each event-sending end (cancel, fail, expire):

    - commit: the job ended, its delivery row and one task message (taken
      away by the test); the sweeper sends it, delivered once.
    - rollback: the job unchanged, no row, no message, nothing delivered.
    - crash before commit (killed with the row written in its transaction):
      as a rollback.
    - crash after commit, before the message is published: the job ended,
      the row is there, no message; the sweeper sends it, delivered once.
    """
    from project.celery import app

    require_service(f"{django_settings.TEST_BROKER} broker", django_settings.CELERY_BROKER_URL)
    app.control.purge()
    status, event = ENDS[end]
    endpoint = endpoint_at(receiver, "/outbox", events_=(event,))
    job = make_job(status=Status.SUBMITTED, deadline_at=timezone.now() - timedelta(seconds=1))

    process = run_process(job.pk, end, outcome)
    line = process.stdout.readline().strip()  # a pause point, or the end
    if outcome.startswith("crash"):
        assert line == "paused 1", process.communicate()[1]  # the row, in its transaction
        process.kill()
    _out, err = process.communicate(timeout=60)
    if not outcome.startswith("crash"):
        assert (line, process.returncode) == ("done", 0), err

    ended = outcome in ("commit", "crash-after-commit")
    job.refresh_from_db()
    assert job.status == (status if ended else Status.SUBMITTED)
    rows = list(OutboundDelivery.objects.filter(job=job))
    assert len(rows) == (1 if ended else 0)
    # Only a process that lived past the commit published the first attempt;
    # the test takes that message away (as if lost): the sweeper covers it too.
    expected = [("imagegen.deliver_webhook", [str(rows[0].pk), 0])] if outcome == "commit" else []
    assert take_messages() == expected

    request.getfixturevalue("celery_worker")
    # The sweeper, once the first attempt's lease has passed.
    later = timezone.now() + delivery.lease() + timedelta(seconds=1)
    assert services.sweep(later)["webhooks"] == len(rows)
    if ended:
        [row] = rows
        wait_until(
            lambda: OutboundDelivery.objects.filter(pk=row.pk, state=State.DELIVERED).exists(),
            timeout=20,
            what="the delivery to be recorded",
        )
        assert services.sweep(later + delivery.lease())["webhooks"] == 0
        [received] = receiver.at("/outbox")
        assert received.verified, received.error
        assert received.headers["webhook-id"] == row.message_id
        assert received.payload["type"] == event
        assert received.payload["data"]["id"] == str(job.pk)
        assert received.payload["data"]["status"] == status
    else:
        assert receiver.at("/outbox") == []
    assert OutboundDelivery.objects.filter(endpoint=endpoint).count() == len(rows)


@pytest.mark.services
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("signal", "event"),
    [
        (signals.job_succeeded, events.JOB_SUCCEEDED),
        (signals.job_failed, events.JOB_FAILED),
        (signals.job_expired, events.JOB_EXPIRED),
        (signals.job_canceled, events.JOB_CANCELED),
        (signals.job_submitted, None),
    ],
)
@pytest.mark.parametrize("commit", [True, False], ids=["commit", "rollback"])
def test_every_job_event_is_recorded_inside_the_transaction(
    hooks,  # noqa: F811
    receiver,  # noqa: F811
    django_capture_on_commit_callbacks,
    signal,
    event,
    commit,
):
    """Every signal a job change sends (succeeded, failed, expired, canceled;
    submitted has no webhook event), committed or rolled back: the rows
    exist inside the transaction before any after-commit callback runs, the
    first attempt is one of those callbacks, and a rollback leaves none."""
    endpoint_at(receiver, "/all")
    job = make_job(images=1)
    with django_capture_on_commit_callbacks() as callbacks:
        try:
            with transaction.atomic():
                send_after_commit(signal, job.pk)
                inside = OutboundDelivery.objects.filter(job=job)
                assert [r.event for r in inside] == ([event] if event else [])
                if not commit:
                    raise _Rollback
        except _Rollback:
            pass
    recorded = OutboundDelivery.objects.filter(job=job).count()
    assert recorded == (1 if event and commit else 0)
    # The committed change's callbacks: the first attempt (if any), then the signal.
    assert len(callbacks) == (recorded + 1 if commit else 0)
    assert GenerationJob.objects.filter(pk=job.pk).exists()


@pytest.mark.services
@pytest.mark.django_db
@pytest.mark.parametrize("end", sorted(ENDS))
def test_a_payload_that_cannot_be_built_never_undoes_the_job_change(
    hooks,  # noqa: F811
    receiver,  # noqa: F811
    monkeypatch,
    caplog,
    end,
):
    """For each end (cancel, fail, expire): the webhook part failing inside
    the transaction is logged and rolled back alone (its savepoint); the
    job's change commits."""
    status, event = ENDS[end]
    endpoint_at(receiver, "/broken", events_=(event,))
    job = make_job(status=Status.SUBMITTED, deadline_at=timezone.now() - timedelta(seconds=1))

    def broken(job: Any) -> dict:
        raise RuntimeError("no payload")

    monkeypatch.setattr(events, "job_data", broken)
    change = {"cancel": services.cancel, "expire": services.expire}.get(end)
    if change is None:
        assert services.fail(job.pk, "TEST", "test", from_statuses=[Status.SUBMITTED])
    else:
        assert change(job.pk)
    job.refresh_from_db()
    assert job.status == status
    assert not OutboundDelivery.objects.exists()
    assert f"Could not record webhooks for job {job.pk}" in caplog.text

"""The concurrency cap per provider (``IMAGEGEN["MAX_IN_FLIGHT"]``, services.slots).

Families:

- a batch through real Celery workers and the sandbox with latency, for
  caps 1 and 3, polling and callbacks: the sandbox never has more than the
  cap generating at once (its own ``max_concurrent_tasks``), the cap is
  used, every job succeeds with one submission attempt (waiting burns none);
- workers racing for the last slots (threads, each its own connection, on
  PostgreSQL and SQLite): exactly the cap's number of jobs submitted, the
  others wait queued with no attempt counted, no deadline running, not due;
- release: the free slots go to the oldest waiting jobs, at most as many
  as are free, by an ending job (each of failed, canceled, expired,
  succeeded) and by the sweeper;
- no cap (no entry, other provider's entry): nothing waits;
- the 429 answer is handled as without a cap (an attempt counted, retried,
  the job succeeds), its slot freed meanwhile;
- check E033 on every kind of bad ``MAX_IN_FLIGHT``.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from imagegen import services, signals
from imagegen.choices import Status
from imagegen.models import GenerationJob
from imagegen.services import slots

from .conftest import wait_until

# On every database: the SQLite pass runs them too.
pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def capped(settings, cap, provider="sandbox"):
    settings.IMAGEGEN = {**settings.IMAGEGEN, "MAX_IN_FLIGHT": {provider: cap}}


def wait_all(jobs, timeout=90.0):
    def done():
        services.sweep()
        return all(job.is_terminal for job in GenerationJob.objects.filter(pk__in=jobs))

    wait_until(done, timeout=timeout, interval=0.1, what="every job to end")
    return list(GenerationJob.objects.filter(pk__in=jobs))


@pytest.mark.pipeline
@pytest.mark.parametrize("cap", [1, 3])
@pytest.mark.parametrize("callbacks", [False, True], ids=["polling", "callbacks"])
def test_batch_never_has_more_than_the_cap_at_the_provider(
    request, imagegen_settings, celery_worker, sandbox, settings, monkeypatch, cap, callbacks
):
    if callbacks:
        request.getfixturevalue("callbacks_on")
    monkeypatch.setattr(sandbox.config, "latency", (0.6, 0.9))
    capped(settings, cap)
    jobs = [services.create_job(prompt=f"capped batch {n}").pk for n in range(4 * cap + 2)]

    ended = wait_all(jobs)

    assert [job.status for job in ended] == [Status.SUCCEEDED] * len(jobs)
    assert {job.submit_attempts for job in ended} == {1}
    stats = sandbox.stats()
    assert stats["submits"] == len(jobs)
    assert stats["max_concurrent_tasks"] == cap


def _submit_concurrently(job_ids):
    barrier = threading.Barrier(len(job_ids))
    outcomes = {}

    def run(job_id):
        try:
            barrier.wait()
            outcomes[job_id] = services.submit(job_id)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(job_id,)) for job_id in job_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.parametrize("cap", [1, 2, 5])
def test_racing_workers_take_exactly_the_free_slots(imagegen_settings, sandbox, settings, cap):
    capped(settings, cap)
    # Long tasks: every job submitted stays in flight while the others race.
    jobs = [services.create_job(prompt=f"race {n} [sandbox:latency=30]").pk for n in range(8)]

    outcomes = _submit_concurrently(jobs)

    assert sorted(outcomes.values()) == sorted(["submitted"] * cap + ["waiting"] * (8 - cap))
    assert sandbox.stats()["submits"] == cap
    waiting = GenerationJob.objects.filter(pk__in=jobs, status=Status.QUEUED)
    assert waiting.count() == 8 - cap
    for job in waiting:
        assert (job.error_code, job.submit_attempts, job.next_poll_at) == (slots.WAITING, 0, None)
        assert job.lease_until is None
    assert slots.in_flight("sandbox") == cap


def _park(job):
    """A job that found no slot, as submit() leaves it."""
    GenerationJob.objects.filter(pk=job.pk).update(
        error_code=slots.WAITING, next_poll_at=None, lease_until=None
    )


def _in_flight(n, prompt="running"):
    jobs = []
    for index in range(n):
        job = services.create_job(prompt=f"{prompt} {index}")
        GenerationJob.objects.filter(pk=job.pk).update(
            status=Status.SUBMITTED, provider_task_id=f"task-{job.pk}"
        )
        jobs.append(job)
    return jobs


@pytest.mark.parametrize(
    "end",
    [
        lambda job: services.fail(job.pk, "X", "failed", from_statuses=[Status.SUBMITTED]),
        lambda job: services.cancel(job.pk),
        lambda job: (
            GenerationJob.objects.filter(pk=job.pk).update(deadline_at=timezone.now()),
            services.expire(job.pk),
        ),
    ],
    ids=["failed", "canceled", "expired"],
)
def test_an_ending_job_releases_the_oldest_waiting_job(imagegen_settings, settings, end):
    capped(settings, 2)
    running = _in_flight(2)
    waiting = [services.create_job(prompt=f"waiting {n}") for n in range(3)]
    for job in waiting:
        _park(job)

    end(running[0])

    released = GenerationJob.objects.filter(pk__in=[j.pk for j in waiting], error_code="")
    assert [job.pk for job in released] == [waiting[0].pk]
    oldest = released.get()
    assert oldest.next_poll_at is not None and oldest.deadline_at > timezone.now()


def test_a_succeeded_job_releases_a_slot(imagegen_settings, settings):
    capped(settings, 1)
    running = _in_flight(1)[0]
    waiting = services.create_job(prompt="waiting")
    _park(waiting)
    GenerationJob.objects.filter(pk=running.pk).update(status=Status.SUCCEEDED)

    signals.job_succeeded.send(sender=GenerationJob, job=running, assets=[])

    waiting.refresh_from_db()
    assert waiting.error_code == ""


@pytest.mark.parametrize("free", [0, 1, 3])
def test_the_sweeper_releases_as_many_as_are_free(imagegen_settings, settings, free):
    capped(settings, 3)
    _in_flight(3 - free)
    waiting = [services.create_job(prompt=f"waiting {n}") for n in range(5)]
    for job in waiting:
        _park(job)
    # Long past the jobs' first deadlines: waiting does not expire them.
    later = timezone.now() + timedelta(seconds=settings.IMAGEGEN.get("JOB_TIMEOUT", 600) * 2)

    counts = services.sweep(later)

    assert counts["released"] == free
    assert counts["expired"] == 0
    released = GenerationJob.objects.filter(pk__in=[j.pk for j in waiting], error_code="")
    assert sorted(j.pk for j in released) == sorted(j.pk for j in waiting[:free])


@pytest.mark.parametrize("caps", [{}, {"apixo": 1}], ids=["no entry", "another provider"])
def test_without_a_cap_nothing_waits(imagegen_settings, sandbox, settings, caps):
    settings.IMAGEGEN = {**settings.IMAGEGEN, "MAX_IN_FLIGHT": caps}
    jobs = [services.create_job(prompt=f"free {n} [sandbox:latency=30]").pk for n in range(4)]

    outcomes = _submit_concurrently(jobs)

    assert set(outcomes.values()) == {"submitted"}


@pytest.mark.pipeline
def test_429_is_handled_as_without_a_cap(imagegen_settings, celery_worker, sandbox, settings):
    capped(settings, 1)
    first = services.create_job(prompt="rate limited [sandbox:submit-http=429x1]")
    second = services.create_job(prompt="after it")

    ended = {job.pk: job for job in wait_all([first.pk, second.pk])}

    assert ended[first.pk].status == ended[second.pk].status == Status.SUCCEEDED
    assert ended[first.pk].submit_attempts == 2  # the 429 is an attempt, as before
    assert ended[second.pk].submit_attempts == 1
    assert sandbox.stats()["max_concurrent_tasks"] == 1


@pytest.mark.parametrize(
    ("value", "fails"),
    [
        ({}, False),
        ({"sandbox": 1}, False),
        ({"sandbox": 20, "apixo": 3}, False),
        ([("sandbox", 2)], True),
        ({"sandbox": 0}, True),
        ({"sandbox": -1}, True),
        ({"sandbox": 2.5}, True),
        ({"sandbox": "3"}, True),
        ({"sandbox": True}, True),
        ({"sandbox": None}, True),
        ({"nope": 3}, True),
    ],
)
def test_check_e033(settings, value, fails):
    """Family: MAX_IN_FLIGHT not a dict; a cap that is not a whole number from
    1 (zero, negative, fraction, text, bool, None); an unknown provider."""
    from imagegen.checks import check_settings

    settings.IMAGEGEN = {**settings.IMAGEGEN, "MAX_IN_FLIGHT": value}

    found = [message for message in check_settings() if message.id == "imagegen.E033"]

    assert bool(found) is fails

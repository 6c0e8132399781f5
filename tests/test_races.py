"""Racing writers on PostgreSQL with real threads: exactly one winner."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from imagegen import services, tokens
from imagegen.choices import Status
from imagegen.models import GeneratedImage, GenerationJob, WebhookDelivery

from .conftest import require_postgres, wait_until

pytestmark = [pytest.mark.django_db(transaction=True)]


def run_together(functions):
    """Start all functions at the same instant in threads; return their results."""
    barrier = threading.Barrier(len(functions))
    results = [None] * len(functions)
    errors = []

    def run(i, fn):
        try:
            barrier.wait()
            results[i] = fn()
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(functions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return results


@pytest.fixture
def finished_job(imagegen_settings, sandbox):
    """A submitted job whose provider task has finished (callbacks not yet seen)."""
    require_postgres()
    job = services.create_job(prompt="a race")
    services.submit(job.pk)
    job.refresh_from_db()
    from imagegen.providers import get_provider

    provider = get_provider(job.provider)
    wait_until(lambda: provider.fetch(job.provider_task_id).is_terminal, timeout=30)
    return job


def callback_body(job, sandbox):
    provider_state = sandbox.stats()["tasks"][job.provider_task_id]["state"]
    assert provider_state == "success"
    from imagegen.providers import get_provider

    state = get_provider(job.provider).fetch(job.provider_task_id)
    data = {
        "taskId": state.task_id,
        "state": "success",
        "resultJson": json.dumps({"resultUrls": [o.url for o in state.outputs]}),
    }
    return json.dumps({"code": 200, "message": "success", "data": data}).encode()


def post_callback(job, body):
    url = reverse(
        "imagegen:callback",
        kwargs={"provider": job.provider, "job_id": job.pk, "token": tokens.callback_token(job.pk)},
    )
    return Client().post(url, body, content_type="application/json").status_code


def test_concurrent_duplicate_callbacks_one_transition(finished_job, sandbox):
    body = callback_body(finished_job, sandbox)
    statuses = run_together([lambda: post_callback(finished_job, body)] * 4)
    assert statuses == [200, 200, 200, 200]
    outcomes = sorted(WebhookDelivery.objects.values_list("outcome", flat=True))
    assert outcomes == ["accepted", "duplicate", "duplicate", "duplicate"]
    finished_job.refresh_from_db()
    assert finished_job.status == Status.FINALIZING


def test_callback_and_poll_together_then_concurrent_finalizers(finished_job, sandbox):
    body = callback_body(finished_job, sandbox)
    results = run_together(
        [lambda: post_callback(finished_job, body), lambda: services.poll(finished_job.pk)]
    )
    assert results[0] == 200
    finished_job.refresh_from_db()
    assert finished_job.status == Status.FINALIZING
    accepted = WebhookDelivery.objects.filter(outcome="accepted").count()
    # Exactly one of the two moved the job: the callback, or the poll.
    assert accepted + (results[1] == "advanced") == 1

    outcomes = run_together([lambda: services.finalize(finished_job.pk)] * 4)
    assert sorted(outcomes) == ["not-claimed"] * 3 + ["succeeded"]
    finished_job.refresh_from_db()
    assert finished_job.status == Status.SUCCEEDED
    assert GeneratedImage.objects.filter(job=finished_job).count() == 1


def test_two_sweepers_claim_disjoint_jobs(imagegen_settings):
    require_postgres()
    from django.utils import timezone

    jobs = [services.create_job(prompt=f"job {i}") for i in range(40)]
    GenerationJob.objects.filter(pk__in=[j.pk for j in jobs]).update(next_poll_at=timezone.now())
    results = run_together([services.sweep, services.sweep])
    assert results[0]["submit"] + results[1]["submit"] == 40

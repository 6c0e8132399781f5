"""End to end through a real Celery worker on a real broker, the sandbox over
HTTP and the callback view on a live server. The sweeper runs in the wait
loops, as beat would."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from imagegen import services
from imagegen.choices import Source, Status
from imagegen.models import GeneratedImage, GenerationJob

from .conftest import wait_until
from .factories import prove_callbacks

pytestmark = [pytest.mark.pipeline, pytest.mark.django_db(transaction=True)]


def wait_for_end(job, *, timeout=30.0):
    def done():
        services.sweep()
        job.refresh_from_db()
        return job.is_terminal

    wait_until(done, timeout=timeout, interval=0.1, what=f"job {job.pk} to finish")
    return job


def task_stats(sandbox, job):
    return sandbox.stats()["tasks"][job.provider_task_id]


@pytest.fixture
def callbacks_proven(callbacks_on, settings):
    """Callbacks on and proven to arrive (a recent result came by callback), so no
    poll is scheduled inside the latency range; and a grace long enough that no
    poll comes before the callback however loaded the machine (the first poll
    waits 31 times the range's top instead of 1.25)."""
    prove_callbacks()
    settings.IMAGEGEN = {**settings.IMAGEGEN, "CALLBACK_GRACE": 30}


def test_completes_by_callback_without_polling(callbacks_proven, celery_worker, sandbox):
    job = wait_for_end(services.create_job(prompt="a lighthouse at dawn", aspect_ratio="4:3"))
    assert job.status == Status.SUCCEEDED, job.error_message
    assert job.completed_via == Source.CALLBACK
    assert job.poll_count == 0
    assert task_stats(sandbox, job)["status_calls"] == 0
    assert job.deliveries.filter(outcome="accepted").count() == 1
    image = GeneratedImage.objects.get(job=job)
    assert (image.width, image.height) == (1024, 768)
    assert image.file.storage.exists(image.file.name)


def test_first_jobs_of_a_site_end_by_callback_while_polling_in_the_range(
    callbacks_on, celery_worker, sandbox
):
    # No result yet proves that callbacks arrive: the job polls inside its latency
    # range (at most the budget), and its callback arrives all the same.
    job = wait_for_end(services.create_job(prompt="a first lighthouse"))
    assert job.status == Status.SUCCEEDED, job.error_message
    assert job.deliveries.count() == 1
    assert task_stats(sandbox, job)["status_calls"] == job.poll_count <= 6


def test_completes_by_polling_when_callback_is_dropped(callbacks_on, celery_worker, sandbox):
    job = services.create_job(prompt="a lighthouse at night [sandbox:callback=drop]")
    job = wait_for_end(job)
    assert job.status == Status.SUCCEEDED, job.error_message
    assert job.poll_count >= 1
    assert job.deliveries.count() == 0
    assert GeneratedImage.objects.filter(job=job).count() == 1


def test_polling_only_without_callback_base_url(imagegen_settings, celery_worker, sandbox):
    job = wait_for_end(services.create_job(prompt="polling only"))
    assert job.status == Status.SUCCEEDED, job.error_message
    assert task_stats(sandbox, job)["status_calls"] == job.poll_count >= 1


def test_image_to_image_with_stored_reference(callbacks_on, celery_worker, sandbox):
    first = wait_for_end(services.create_job(prompt="a cat"))
    second = services.create_job(
        prompt="the cat, in a hat",
        mode="image-to-image",
        reference_images=list(first.images.all()),
        reference_urls=["https://example.com/hat.png"],
    )
    second = wait_for_end(second)
    assert second.status == Status.SUCCEEDED, second.error_message
    assert second.reference_images.count() == 1


def test_transient_submit_error_is_retried(imagegen_settings, celery_worker, sandbox):
    job = wait_for_end(services.create_job(prompt="retry me [sandbox:submit-http=503x1]"))
    assert job.status == Status.SUCCEEDED, job.error_message
    assert job.submit_attempts == 2


def test_provider_failure_through_worker(callbacks_on, celery_worker, sandbox):
    job = wait_for_end(services.create_job(prompt="x [sandbox:fail=INSUFFICIENT_CREDITS]"))
    assert job.status == Status.FAILED
    assert job.error_code == "INSUFFICIENT_CREDITS"
    assert "credit" in job.error_message


def test_duplicate_callbacks_make_one_asset(callbacks_proven, celery_worker, sandbox):
    job = wait_for_end(services.create_job(prompt="twice [sandbox:callback=duplicate]"))
    assert job.status == Status.SUCCEEDED
    wait_until(lambda: job.deliveries.count() == 2, timeout=30, what="both deliveries")
    assert sorted(job.deliveries.values_list("outcome", flat=True)) == ["accepted", "duplicate"]
    assert GeneratedImage.objects.filter(job=job).count() == 1


def test_generate_command_waits_with_progress(callbacks_on, celery_worker, sandbox):
    out = io.StringIO()
    call_command(
        "imagegen", "generate", "a command-line kite", "--wait", "--timeout", "30", stdout=out
    )
    text = out.getvalue()
    job = GenerationJob.objects.get(prompt="a command-line kite")
    assert job.status == Status.SUCCEEDED
    assert "succeeded" in text
    assert "[" in text and "#" in text
    assert job.images.get().file.name in text

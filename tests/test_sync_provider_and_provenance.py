"""A synchronous provider (OpenAI's Images API, served by the sandbox) through
the job lifecycle, and the provenance every stored file carries."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from PIL import Image

from imagegen import provenance, services
from imagegen.choices import Source, Status
from imagegen.models import GenerationJob
from imagegen.storage import get_storage

from .conftest import wait_until
from .test_services import run_to_end

pytestmark = [pytest.mark.services, pytest.mark.django_db]


@pytest.fixture
def openai_settings(imagegen_settings, settings, sandbox):
    settings.IMAGEGEN = {
        **imagegen_settings,
        "PROVIDERS": {
            **imagegen_settings["PROVIDERS"],
            "openai": {
                "BASE_URL": f"{sandbox.url}/v1",
                "API_KEY": "sandbox",
                "ALLOW_PRIVATE_HOSTS": True,
            },
        },
    }
    return settings.IMAGEGEN


def stored_path(image) -> str:
    return get_storage().path(image.file.name)


def test_images_from_the_submission_answer_are_stored_at_once(openai_settings, sandbox):
    job = services.create_job(prompt="a lighthouse at dusk", provider="openai", aspect_ratio="16:9")
    assert services.submit(job.pk) == "succeeded"
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED
    assert job.completed_via == Source.SUBMIT
    assert job.poll_count == 0
    assert job.provider_task_id
    image = job.images.get()
    with Image.open(stored_path(image)) as stored:
        assert stored.size == (1536, 1024) == (image.width, image.height)
    assert provenance.read(stored_path(image))["job_id"] == str(job.pk)
    assert sandbox.stats()["openai_generations"] == 1


def test_a_refusal_in_the_answer_fails_the_job(openai_settings):
    job = services.create_job(prompt="x [sandbox:fail=moderation]", provider="openai")
    assert services.submit(job.pk) == "failed"
    job.refresh_from_db()
    assert job.status == Status.FAILED
    assert job.error_code == "MODERATION"
    assert not job.images.exists()


def test_images_lost_with_their_worker_fail_the_job_readably(openai_settings):
    # The state a worker leaves when it stops between the answer and the store.
    job = services.create_job(prompt="a kite", provider="openai")
    GenerationJob.objects.filter(pk=job.pk).update(
        status=Status.FINALIZING, provider_task_id="openai-1", completed_via=Source.SUBMIT
    )
    assert services.finalize(job.pk) == "failed"
    job.refresh_from_db()
    assert job.error_code == "RESULTS_LOST"
    assert "retry" in job.error_message


@pytest.mark.django_db(transaction=True)
def test_slow_provider_holds_the_job_for_its_whole_call(openai_settings, settings, sandbox):
    """A provider call several times as long as ``SUBMIT_LEASE`` keeps the
    job: the worker renews its lease while the call runs, so a second
    submission after the first lease would have run out (a duplicate
    message, the sweeper) is not claimed, and the provider is asked once."""
    settings.IMAGEGEN = {**openai_settings, "SUBMIT_LEASE": 0.4}
    job = services.create_job(prompt="a kite [sandbox:latency=3]", provider="openai")
    seen = {}

    def second_submission():
        try:
            first = wait_until(lambda: GenerationJob.objects.get(pk=job.pk).lease_until)
            wait_until(lambda: timezone.now() > first + timedelta(seconds=0.4))
            seen["status"] = GenerationJob.objects.get(pk=job.pk).status
            seen["outcome"] = services.submit(job.pk)
        finally:
            connection.close()

    other = threading.Thread(target=second_submission)
    other.start()
    assert services.submit(job.pk) == "succeeded"
    other.join()
    assert seen == {"status": Status.QUEUED, "outcome": "not-claimed"}
    assert sandbox.stats()["openai_generations"] == 1


def test_every_stored_file_carries_its_provenance(imagegen_settings):
    job = run_to_end(services.create_job(prompt='a "quoted" <prompt> & café'))
    image = job.images.get()
    embedded = provenance.read(stored_path(image))
    assert embedded["prompt"] == job.prompt
    assert embedded["job_id"] == str(job.pk)
    assert embedded["provider"] == "sandbox"
    assert embedded["model"] == job.model
    assert embedded["digital_source_type"] == provenance.AI_GENERATED
    assert image.provenance == {
        key: value for key, value in embedded.items() if key != "digital_source_type"
    }
    with Image.open(stored_path(image)) as stored:
        assert stored.text["Description"] == job.prompt
    assert image.size == get_storage().size(image.file.name)

"""``manage.py imagegen`` subcommands that need no worker."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from imagegen import services
from imagegen.models import GenerationJob

pytestmark = [pytest.mark.django_db]


def run(*args):
    out = io.StringIO()
    call_command("imagegen", *args, stdout=out)
    return out.getvalue()


def test_generate_without_wait_creates_a_job(imagegen_settings):
    text = run("generate", "a paper boat", "--resolution", "2k", "--aspect-ratio", "3:4")
    job = GenerationJob.objects.get()
    assert str(job.pk) in text
    assert (job.resolution, job.aspect_ratio, job.mode) == ("2k", "3:4", "text-to-image")


def test_generate_with_ref_is_image_to_image(imagegen_settings):
    run("generate", "a paper boat at sea", "--ref", "https://example.com/boat.png")
    job = GenerationJob.objects.get()
    assert job.mode == "image-to-image"
    assert job.reference_urls == ["https://example.com/boat.png"]


def test_generate_bad_input_is_a_command_error(imagegen_settings):
    with pytest.raises(CommandError, match="prompt"):
        run("generate", "   ")
    assert GenerationJob.objects.count() == 0


def test_status_lists_and_shows_jobs(imagegen_settings):
    job = services.create_job(prompt="a status report")
    assert str(job.pk) in run("status")
    assert "queued" in run("status", str(job.pk))
    with pytest.raises(CommandError):
        run("status", "not-a-uuid")


def test_sweep_once(imagegen_settings):
    job = services.create_job(prompt="due")
    GenerationJob.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())
    assert "submit 1" in run("sweep")

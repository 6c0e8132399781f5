"""Wagtail's job status JSON answers 304 like the Django admin's
(imagegen.views.status_response; the full family is tests/test_status_etag.py).

Cases: unchanged -> 304 with no body; a new status, a new linked image ->
a new ETag; the clock alone changes nothing; another user, or no job ->
the same 404 with or without If-None-Match, never a 304.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from imagegen.choices import Status
from imagegen.models import GenerationJob

from ..factories import make_job
from .conftest import make_wagtail_user
from .test_views import linked_image

pytestmark = pytest.mark.django_db


def status_url(job_id: Any) -> str:
    return reverse("imagegen_wagtail:status", args=[job_id])


def test_unchanged_is_304_and_the_clock_changes_nothing(client, wagtail_editor):
    job = make_job(wagtail_editor, status=Status.RUNNING)
    client.force_login(wagtail_editor)
    first = client.get(status_url(job.pk))
    assert first.status_code == 200
    assert "private" in first["Cache-Control"] and "no-cache" in first["Cache-Control"]
    later = timezone.now() + timedelta(seconds=30)
    with mock.patch("django.utils.timezone.now", return_value=later):
        again = client.get(status_url(job.pk), headers={"if-none-match": first["ETag"]})
    assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize("change", ["status", "new image"])
def test_a_change_is_a_new_etag(client, wagtail_editor, change):
    job = make_job(wagtail_editor, status=Status.RUNNING)
    client.force_login(wagtail_editor)
    old = client.get(status_url(job.pk))["ETag"]
    if change == "status":
        GenerationJob.objects.filter(pk=job.pk).update(status=Status.FINALIZING)
    else:
        linked_image(job)
    response = client.get(status_url(job.pk), headers={"if-none-match": old})
    assert response.status_code == 200 and response["ETag"] != old


@pytest.mark.parametrize("who", ["another user", "no such job"])
def test_refusals_never_answer_304(client, django_user_model, wagtail_editor, who):
    job = make_job(wagtail_editor, status=Status.RUNNING)
    client.force_login(wagtail_editor)
    etag = client.get(status_url(job.pk))["ETag"]
    job_id = job.pk
    if who == "another user":
        client.force_login(make_wagtail_user(django_user_model, "someone-else"))
    else:
        job_id = "00000000-0000-4000-8000-000000000000"
    for header in (etag, "*"):
        response = client.get(status_url(job_id), headers={"if-none-match": header})
        assert response.status_code == 404
        assert response.get("ETag") is None

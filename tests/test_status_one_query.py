"""The status JSON read in one query (issue 17): ``serializers.job_with_images``
gives the same job and images as the ORM's two reads did, so every status
answer is the same, byte for byte.

Family of jobs, each compared with the two-read path (the job, then
``job_page_status`` prefetching its images) at the same instant: no images;
1 image; 4 images stored in an order other than their index (the review
list keeps the images' model order, the result list their index); a
discarded image whose undo is running, and one whose file is gone; alt text
drafts pending and ready; a job that failed, one refused by moderation, one
canceled after the provider accepted it, one waiting to retry, one overdue.
For each: the payload, the JSON body and ETag of both routes of the status
view (the admin's and the plain URL), and ``job_status`` as the API and
webhooks build it. Also: no such job is None, and the images read carry
their job (no query to reach it).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.http import JsonResponse
from django.urls import reverse
from django.utils import timezone

from imagegen.choices import AltTextDraftState, ReviewStatus, Status
from imagegen.models import GenerationJob
from imagegen.serializers import job_page_status, job_status, job_with_images
from imagegen.views import status_etag

from .factories import EDITOR, make_image, make_job, make_user

pytestmark = pytest.mark.django_db


def _no_images(user: Any) -> GenerationJob:
    return make_job(user, status=Status.RUNNING)


def _one_image(user: Any) -> GenerationJob:
    return make_job(user, status=Status.SUCCEEDED, images=1)


def _four_images_out_of_order(user: Any) -> GenerationJob:
    job = make_job(user, status=Status.SUCCEEDED)
    start = timezone.now() - timedelta(minutes=5)
    # Stored 2, 0, 3, 1: the model's order (newest first) is not the index's.
    for minute, index in enumerate([2, 0, 3, 1]):
        make_image(job, index=index, created_at=start + timedelta(minutes=minute))
    return job


def _discarded(user: Any) -> GenerationJob:
    job = make_job(user, status=Status.SUCCEEDED, images=3)
    now = timezone.now()
    # Undo still running (its file kept), and one whose file is gone.
    job.images.filter(index=0).update(review_status=ReviewStatus.DISCARDED, reviewed_at=now)
    job.images.filter(index=1).update(
        review_status=ReviewStatus.DISCARDED, reviewed_at=now - timedelta(days=1), file=""
    )
    job.images.filter(index=2).update(review_status=ReviewStatus.APPROVED, reviewed_at=now)
    return job


def _drafts(user: Any) -> GenerationJob:
    job = make_job(user, status=Status.SUCCEEDED, images=2)
    job.images.filter(index=0).update(alt_text_draft_state=AltTextDraftState.PENDING)
    job.images.filter(index=1).update(
        alt_text_draft="A red bicycle", alt_text_draft_state=AltTextDraftState.READY
    )
    return job


def _failed(user: Any) -> GenerationJob:
    return make_job(
        user, status=Status.FAILED, error_code="TIMEOUT", error_message="No result in time."
    )


def _refused(user: Any) -> GenerationJob:
    return make_job(user, status=Status.FAILED, error_code="MODERATION", error_message="Refused.")


def _canceled(user: Any) -> GenerationJob:
    return make_job(user, status=Status.CANCELED, provider_task_id="task-canceled")


def _retry_waiting(user: Any) -> GenerationJob:
    return make_job(
        user, status=Status.QUEUED, submit_attempts=1, error_code="HTTP_503", error_message="Busy"
    )


def _overdue(user: Any) -> GenerationJob:
    return make_job(user, status=Status.RUNNING, created_at=timezone.now() - timedelta(hours=1))


JOBS = {
    "no images": _no_images,
    "1 image": _one_image,
    "4 images, stored out of index order": _four_images_out_of_order,
    "discarded: undo running, file gone": _discarded,
    "drafts pending and ready": _drafts,
    "failed": _failed,
    "refused by moderation": _refused,
    "canceled after acceptance": _canceled,
    "waiting to retry": _retry_waiting,
    "overdue": _overdue,
}


@pytest.fixture
def editor(django_user_model: Any) -> Any:
    return make_user(django_user_model, *EDITOR, username="one-query-editor")


@pytest.mark.parametrize("kind", sorted(JOBS))
def test_the_one_query_read_answers_as_the_two_reads_did(client, editor, kind):
    job = JOBS[kind](editor)
    client.force_login(editor)
    at = timezone.now() + timedelta(seconds=3)
    with mock.patch("django.utils.timezone.now", return_value=at):
        two_reads = job_page_status(GenerationJob.objects.get(pk=job.pk), editor)
        read, images = job_with_images(job.pk)
        one_read = job_page_status(read, editor, images)
        assert one_read == two_reads
        expected = JsonResponse(two_reads).content
        assert JsonResponse(one_read).content == expected
        for route in ("admin:imagegen_generationjob_status", "imagegen:job-status"):
            response = client.get(reverse(route, args=[job.pk]))
            assert response.status_code == 200
            assert response.content == expected
            assert response["ETag"] == status_etag(two_reads)
        # The API's and webhooks' shape too.
        assert job_status(read, images) == job_status(GenerationJob.objects.get(pk=job.pk))
    # The family does cover what it names.
    assert len(images) == job.images.count()


def test_no_such_job_is_none():
    assert job_with_images("00000000-0000-4000-8000-000000000000") is None


def test_the_images_carry_their_job(editor, django_assert_num_queries):
    job = make_job(editor, status=Status.SUCCEEDED, images=2)
    with django_assert_num_queries(1):
        read, images = job_with_images(job.pk)
        assert [image.job for image in images] == [read, read]
        assert all(image.job is read for image in images)

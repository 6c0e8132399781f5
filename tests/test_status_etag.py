"""The job status JSON's ETag (issue 17, live progress at scale): a poll of a
job that has not moved is a 304 with no body, any change of the job or its
images is a new ETag, and the refusals stay as they were.

Families covered, on both routes of the admin's status view (the admin's
and the plain ``imagegen:job-status``):

- unchanged: the same ETag, 304 to ``If-None-Match``; the clock alone
  (elapsed time, the progress estimate, an undo countdown) changes nothing;
- each kind of change: status, progress (polls counted, finalizing), a new
  image, a review change (approve, discard, title, alt text), an alt text
  draft, an error: a new ETag, and 200 to the old one;
- ``If-None-Match`` values: strong, weak (``W/``), a list holding it, ``*``:
  304; another tag, a list without it, garbage: 200;
- who asks: anonymous, no permission, another user's job, no such job: the
  same refusal as without the header, never a 304;
- cost: one query of imagegen's per poll (the job and its images joined),
  with 0, 1 or 4 images, answered in full or 304.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from imagegen.choices import ReviewStatus, Status
from imagegen.models import GeneratedImage, GenerationJob

from .factories import EDITOR, make_image, make_job, make_user

pytestmark = pytest.mark.django_db

ROUTES = {
    "admin": "admin:imagegen_generationjob_status",
    "plain": "imagegen:job-status",
}


@pytest.fixture(params=sorted(ROUTES))
def status_url(request: Any) -> Any:
    def url(job_id: Any) -> str:
        return reverse(ROUTES[request.param], args=[job_id])

    url.route = request.param
    return url


@pytest.fixture
def editor(django_user_model: Any) -> Any:
    return make_user(django_user_model, *EDITOR, username="etag-editor")


@pytest.fixture
def logged_in(client: Any, editor: Any) -> Any:
    client.force_login(editor)
    return client


def read(client: Any, url: str, **headers: str) -> Any:
    return client.get(url, headers=headers)


def etag_of(client: Any, url: str) -> str:
    response = read(client, url)
    assert response.status_code == 200
    return response["ETag"]


class TestUnchanged:
    def test_same_etag_answers_304_without_a_body(self, logged_in, editor, status_url):
        job = make_job(editor, status=Status.RUNNING, images=0)
        first = read(logged_in, status_url(job.pk))
        assert first.status_code == 200
        assert first["ETag"].startswith('"') and first["ETag"].endswith('"')
        # Kept privately by the browser and revalidated on every read.
        assert "private" in first["Cache-Control"] and "no-cache" in first["Cache-Control"]
        assert "no-store" not in first["Cache-Control"]
        again = read(logged_in, status_url(job.pk), if_none_match=first["ETag"])
        assert again.status_code == 304
        assert again.content == b""
        assert again["ETag"] == first["ETag"]

    @pytest.mark.parametrize("status", [Status.RUNNING, Status.SUCCEEDED])
    def test_the_clock_alone_changes_nothing(self, logged_in, editor, status_url, status):
        """Elapsed time and the progress estimate move every second: they are
        not the job's state (the page's script runs them on itself)."""
        job = make_job(editor, status=status, images=1)
        image = job.images.get()
        GeneratedImage.objects.filter(pk=image.pk).update(
            review_status=ReviewStatus.DISCARDED, reviewed_at=timezone.now()
        )
        before = read(logged_in, status_url(job.pk))
        later = timezone.now() + timedelta(seconds=20)
        with mock.patch("django.utils.timezone.now", return_value=later):
            after = read(logged_in, status_url(job.pk))
        assert after.status_code == 200
        if status == Status.RUNNING:
            assert after.json()["elapsed_seconds"] > before.json()["elapsed_seconds"]
        assert after["ETag"] == before["ETag"]


def _set_status(job: GenerationJob) -> None:
    GenerationJob.objects.filter(pk=job.pk).update(status=Status.FINALIZING)


def _count_poll(job: GenerationJob) -> None:
    GenerationJob.objects.filter(pk=job.pk).update(poll_count=job.poll_count + 1)


def _new_image(job: GenerationJob) -> None:
    make_image(job, index=1)


def _approve(job: GenerationJob) -> None:
    job.images.update(review_status=ReviewStatus.APPROVED, reviewed_at=timezone.now())


def _discard(job: GenerationJob) -> None:
    job.images.update(review_status=ReviewStatus.DISCARDED, reviewed_at=timezone.now())


def _title(job: GenerationJob) -> None:
    job.images.update(title="A red bicycle at dawn")


def _alt_text(job: GenerationJob) -> None:
    job.images.update(alt_text="A red bicycle leaning on a wall")


def _draft_ready(job: GenerationJob) -> None:
    job.images.update(alt_text_draft="A red bicycle", alt_text_draft_state="ready")


def _draft_pending(job: GenerationJob) -> None:
    job.images.update(alt_text_draft_state="pending")


def _error(job: GenerationJob) -> None:
    GenerationJob.objects.filter(pk=job.pk).update(
        status=Status.FAILED, error_code="TIMEOUT", error_message="No result in time."
    )


def _error_message_only(job: GenerationJob) -> None:
    GenerationJob.objects.filter(pk=job.pk).update(error_message="Provider said: busy.")


CHANGES = {
    "status": _set_status,
    "progress: a poll counted": _count_poll,
    "new image": _new_image,
    "review: approved": _approve,
    "review: discarded": _discard,
    "review: title": _title,
    "review: alt text": _alt_text,
    "alt text draft ready": _draft_ready,
    "alt text draft pending": _draft_pending,
    "error": _error,
    "error message": _error_message_only,
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_each_kind_of_change_is_a_new_etag(logged_in, editor, status_url, change):
    job = make_job(editor, status=Status.RUNNING, images=1)
    old = etag_of(logged_in, status_url(job.pk))
    CHANGES[change](GenerationJob.objects.get(pk=job.pk))
    response = read(logged_in, status_url(job.pk), if_none_match=old)
    assert response.status_code == 200
    assert response["ETag"] != old


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("{etag}", 304),
        ("W/{etag}", 304),
        ('"other", {etag}, "another"', 304),
        ('W/"other", W/{etag}', 304),
        ("*", 304),
        ('"other"', 200),
        ('"other", W/"another"', 200),
        ("not a tag", 200),
        ("", 200),
    ],
)
def test_if_none_match_values(logged_in, editor, status_url, header, expected):
    job = make_job(editor, status=Status.QUEUED)
    etag = etag_of(logged_in, status_url(job.pk))
    response = read(logged_in, status_url(job.pk), if_none_match=header.format(etag=etag))
    assert response.status_code == expected
    if expected == 200:
        assert response.json()["id"] == str(job.pk)


WHO = ("anonymous", "no permission", "another user's job", "no such job")


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("header", ["{etag}", "*"])
def test_refusals_never_answer_304(client, django_user_model, editor, status_url, who, header):
    """The same refusal with or without If-None-Match: a 304 would tell a
    stranger that a job exists and has not changed."""
    job = make_job(editor, status=Status.RUNNING, images=1)
    client.force_login(editor)
    etag = etag_of(client, status_url(job.pk))
    client.logout()
    job_id = job.pk
    if who == "no permission":
        client.force_login(make_user(django_user_model, username="nobody"))
    elif who == "another user's job":
        client.force_login(make_user(django_user_model, *EDITOR, username="other"))
    elif who == "no such job":
        client.force_login(editor)
        job_id = "00000000-0000-4000-8000-000000000000"
    plain = read(client, status_url(job_id))
    conditional = read(client, status_url(job_id), if_none_match=header.format(etag=etag))
    assert plain.status_code != 200
    assert conditional.status_code == plain.status_code
    assert conditional.content == plain.content
    assert conditional.get("ETag") is None


@pytest.mark.parametrize("images", [0, 1, 4])
def test_a_poll_reads_the_job_and_its_images_in_one_query(
    logged_in, editor, status_url, images, django_assert_max_num_queries
):
    """Session, user and permissions (Django's, 4 for a non-superuser), then
    one query of imagegen's: the job and its images joined
    (serializers.job_with_images), whatever the number of images, answered
    in full or 304 (before: a read each, 2)."""
    job = make_job(editor, status=Status.SUCCEEDED, images=images)
    with django_assert_max_num_queries(5) as captured:
        etag = etag_of(logged_in, status_url(job.pk))
    with django_assert_max_num_queries(5) as revalidated:
        assert read(logged_in, status_url(job.pk), if_none_match=etag).status_code == 304
    for queries in (captured, revalidated):
        ours = [q["sql"] for q in queries.captured_queries if "imagegen_" in q["sql"]]
        assert len(ours) == 1
        assert 'FROM "imagegen_generationjob" LEFT OUTER JOIN "imagegen_generatedimage"' in ours[0]

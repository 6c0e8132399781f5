"""The admin's job page reads its job once and its images once (issue 17):
its fieldsets, status JSON, review cards, buttons, Delete check and lineage
share that read, so the page's query count does not grow with the images.

Family: a job with 0, 1 and 4 images, seen by a superuser and by the editor
of docs/admin.md ("Permissions"), each its own job. The count is of a
second view of the page (the first fills the process's content type cache,
as a running site's is). Pinned: 9 queries for the editor, 7 for the
superuser (Django's session and user, 2 permission reads for the editor;
imagegen's job with its creator, run, source and retried job joined; its
images; the lineage's 3 reads: reference images, the jobs generated from it
and its retries in one, which also give the "See the retry" button, jobs
using its images). Before: 15 and 13, the job read twice, its images 3
times, its creator and its retries apart, generated-from and retries apart.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from imagegen.choices import Status

from .factories import DOCUMENTED_EDITOR, make_job, make_user

pytestmark = pytest.mark.django_db

#: The page's queries, by reader (see the module's docstring).
EXPECTED = {"editor": 9, "superuser": 7}


def reader(django_user_model: Any, who: str) -> Any:
    if who == "superuser":
        return django_user_model.objects.create_superuser(username="page-admin", password="x")
    return make_user(django_user_model, *DOCUMENTED_EDITOR, username="page-editor")


@pytest.mark.parametrize("who", sorted(EXPECTED))
@pytest.mark.parametrize("images", [0, 1, 4])
def test_the_job_page_reads_the_job_and_its_images_once(client, django_user_model, who, images):
    user = reader(django_user_model, who)
    job = make_job(user, status=Status.SUCCEEDED, images=images)
    client.force_login(user)
    url = reverse("admin:imagegen_generationjob_change", args=[job.pk])
    assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    # The page still shows every image and the job's state.
    assert len(response.context["review"]["images"]) == images
    assert response.context["job_state"]["id"] == str(job.pk)
    sql = [query["sql"] for query in captured.captured_queries]
    job_reads = [q for q in sql if 'WHERE "imagegen_generationjob"."id" =' in q]
    # The lineage's reference images are other jobs' (job_id IN (SELECT ...)).
    image_reads = [
        q for q in sql if re.search(r'"imagegen_generatedimage"\."job_id" IN \((?!SELECT)', q)
    ]
    assert (len(job_reads), len(image_reads)) == (1, 1)
    assert len(sql) == EXPECTED[who], "\n".join(sql)


@pytest.mark.parametrize("retried_by", ["nobody", "the reader", "another user"])
def test_see_the_retry_is_the_readers_own_retry(client, django_user_model, retried_by):
    """The button now comes from the lineage's retries (the jobs the reader
    may see): the reader's own retry links to it; another user's retry,
    which a superuser sees in the lineage, leaves Retry offered."""
    reader_user = reader(django_user_model, "superuser")
    editor = reader(django_user_model, "editor")
    job = make_job(editor, status=Status.FAILED, error_code="SUBMIT_FAILED")
    retry = None
    if retried_by != "nobody":
        by = reader_user if retried_by == "the reader" else editor
        retry = make_job(by, status=Status.QUEUED, retry_of=job)
    client.force_login(reader_user)
    response = client.get(reverse("admin:imagegen_generationjob_change", args=[job.pk]))
    buttons = {button["name"]: button for button in response.context["job_actions"]}
    if retried_by == "the reader":
        assert "retry_jobs" not in buttons
        assert buttons["see_retry"]["href"].endswith(f"/{retry.pk}/change/")
    else:
        assert "see_retry" not in buttons and "retry_jobs" in buttons
    if retry is not None:  # the lineage lists it whoever made it
        assert [j.pk for j in response.context["lineage"].retries] == [retry.pk]

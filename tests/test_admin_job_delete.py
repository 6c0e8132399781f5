"""A job with images cannot be deleted from the admin, whichever its images'
review state: discarded images stay as the record of what was made and
protect their job as the others do.

Family, seen by a superuser through the admin's delete page (its own read
of the job, not the job page's): no images (deleted), an image not
reviewed, approved, discarded with its file kept for the undo, discarded
with its file gone (each refused: 403 to the page and to the confirmation,
the job kept). Before: the job list's prefetch of kept images stood for
all of them, so a job whose images were all discarded offered a Delete
that could only fail.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from imagegen.choices import ReviewStatus
from imagegen.models import GeneratedImage, GenerationJob

from .factories import make_image, make_job

pytestmark = pytest.mark.django_db

IMAGES: dict[str, dict[str, Any] | None] = {
    "none": None,
    "not reviewed": {},
    "approved": {"review_status": ReviewStatus.APPROVED},
    "discarded, file kept for the undo": {"review_status": ReviewStatus.DISCARDED},
    "discarded, file gone": {"review_status": ReviewStatus.DISCARDED, "file": ""},
}


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_only_a_job_without_images_can_be_deleted(client, django_user_model, image):
    admin = django_user_model.objects.create_superuser("root", password="x")
    job = make_job(admin)
    if IMAGES[image] is not None:
        made = make_image(job)
        GeneratedImage.objects.filter(pk=made.pk).update(
            reviewed_at=timezone.now(), **IMAGES[image]
        )
    client.force_login(admin)
    url = reverse("admin:imagegen_generationjob_delete", args=[job.pk])
    page = client.get(url)
    confirmed = client.post(url, {"post": "yes"})
    if IMAGES[image] is None:
        assert page.status_code == 200
        assert confirmed.status_code == 302
        assert not GenerationJob.objects.filter(pk=job.pk).exists()
    else:
        assert (page.status_code, confirmed.status_code) == (403, 403)
        assert GenerationJob.objects.filter(pk=job.pk).exists()

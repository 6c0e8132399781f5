"""The reference image URLs a submission sends (services.jobs.reference_image_urls).

The family: the job's mode x where its references come from (none, given
URLs, stored images, both). The given URLs come first, then each stored
image's URL (absolute against CALLBACK_BASE_URL when it is set); a
text-to-image job, which create_job lets have no references, is answered
without a query.
"""

from __future__ import annotations

import pytest

from imagegen.choices import Mode, Status
from imagegen.services.jobs import reference_image_urls

from .factories import make_job

pytestmark = pytest.mark.django_db

GIVEN = ["https://example.com/hat.png"]


@pytest.mark.parametrize("base", [None, "https://site.example"], ids=["relative", "absolute"])
@pytest.mark.parametrize(
    ("given", "stored"),
    [([], 1), (GIVEN, 0), (GIVEN, 2)],
    ids=["stored", "given", "both"],
)
def test_image_to_image(
    settings, django_assert_num_queries, given: list[str], stored: int, base: str | None
) -> None:
    settings.IMAGEGEN = {**settings.IMAGEGEN, "CALLBACK_BASE_URL": base}
    source = make_job(images=stored)
    job = make_job(status=Status.QUEUED, mode=Mode.IMAGE_TO_IMAGE, reference_urls=given)
    job.reference_images.set(source.images.order_by("index"))

    with django_assert_num_queries(1):
        urls = reference_image_urls(job)

    files = [(base or "") + image.file.url for image in source.images.order_by("index")]
    assert sorted(urls[len(given) :]) == sorted(files)
    assert urls[: len(given)] == given
    assert len(urls) == len(given) + stored


def test_text_to_image_asks_nothing(django_assert_num_queries) -> None:
    job = make_job(status=Status.QUEUED, mode=Mode.TEXT_TO_IMAGE)

    with django_assert_num_queries(0):
        assert reference_image_urls(job) == []

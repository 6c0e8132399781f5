"""A job's lineage names the Wagtail library images it was made from.

A library image reaches the provider by a signed URL
(imagegen.contrib.wagtail.references); the lineage (``runs.lineage``,
``{% job_lineage %}`` on the job's admin page) shows the image it names
instead of that URL. Families:

- the reader x the image: may change it (title, linked to its Wagtail edit
  page), may only choose it (title, no link), neither, anonymous or no
  reader (neither title nor link: "an image you may not see"), the image
  deleted since ("an image since deleted") -> as said, never the signed URL;
- URLs that name no library image: a forged token on the same route, a
  public URL elsewhere, a path of the site that serves no reference -> stay
  reference URLs, as before;
- the job's lineage (the tag alone, and on the job's admin page) for a
  superuser: the library image linked, the other URL listed, the signed
  URL not in the lineage.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.files.base import ContentFile
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import reverse
from PIL import Image as PILImage
from wagtail.images import get_image_model

from imagegen.choices import Mode
from imagegen.contrib.wagtail import references
from imagegen.services import runs

from ..factories import make_job, make_superuser
from .conftest import make_wagtail_user

pytestmark = pytest.mark.django_db

PUBLIC = "https://cms.example.org"
OTHER = "https://images.example.net/a-harbour.png"


@pytest.fixture(autouse=True)
def public_urls(settings: Any) -> None:
    """The site's URLconf with the public URLs, and a public origin."""
    settings.ROOT_URLCONF = "tests.wagtail.urls"
    settings.IMAGEGEN = {**settings.IMAGEGEN, "CALLBACK_BASE_URL": f"{PUBLIC}/hooks/"}


def library_image(title: str = "Harbour at dawn") -> Any:
    out = io.BytesIO()
    PILImage.new("RGB", (80, 60), (30, 120, 200)).save(out, "PNG")
    image = get_image_model()(title=title, file=ContentFile(out.getvalue(), name="harbour.png"))
    image.save()
    return image


def job_with(*urls: str) -> Any:
    return make_job(mode=Mode.IMAGE_TO_IMAGE, reference_urls=list(urls))


def edit_url(image: Any) -> str:
    return reverse("wagtailimages:edit", args=[image.pk])


@pytest.mark.parametrize(
    "reader,label,linked",
    [
        ("changes", "Harbour at dawn", True),
        ("chooses", "Harbour at dawn", False),
        ("neither", "an image you may not see", False),
        ("anonymous", "an image you may not see", False),
        ("nobody", "an image you may not see", False),
        ("deleted", "an image since deleted", False),
    ],
)
def test_a_library_reference_shows_as_the_reader_may_know_it(
    django_user_model, reader, label, linked
):
    image = library_image()
    url = references.reference_url(image)
    job = job_with(url, OTHER)
    user = {
        "changes": lambda: make_wagtail_user(django_user_model, "c", images=("change",)),
        "chooses": lambda: make_wagtail_user(django_user_model, "o", images=("choose",)),
        "neither": lambda: make_wagtail_user(django_user_model, "n", images=()),
        "anonymous": AnonymousUser,
        "nobody": lambda: None,
        "deleted": lambda: make_superuser(django_user_model),
    }[reader]()
    if reader == "deleted":
        link = edit_url(image)
        image.delete()
    found = runs.lineage(job, reader=user)
    (reference,) = found.site_references
    assert (reference.label, reference.source) == (label, "Image library")
    assert reference.link == (edit_url(image) if linked else "")
    if reader == "deleted":
        assert link not in reference.link
    assert found.reference_urls == [OTHER] and found.made_from


@pytest.mark.parametrize(
    "url",
    [
        f"{PUBLIC}/imagegen/wagtail/references/forged:token/",
        OTHER,
        f"{PUBLIC}/admin/images/",
    ],
    ids=["forged-token", "elsewhere", "site-path-serving-no-reference"],
)
def test_urls_naming_no_library_image_stay_urls(django_user_model, url):
    found = runs.lineage(job_with(url), reader=make_superuser(django_user_model))
    assert found.site_references == [] and found.reference_urls == [url]


def test_the_job_page_links_the_library_image(client, django_user_model):
    image = library_image()
    signed = references.reference_url(image)
    job = job_with(signed, OTHER)
    root = make_superuser(django_user_model)
    request = RequestFactory().get("/")
    request.user = root
    tag = Template("{% load imagegen_lineage %}{% job_lineage job %}")
    html = tag.render(Context({"request": request, "job": job}))
    assert f'<a href="{edit_url(image)}">Harbour at dawn</a>' in html
    assert OTHER in html and signed not in html
    client.force_login(root)
    page = client.get(reverse("admin:imagegen_generationjob_change", args=[job.pk]))
    assert page.status_code == 200
    section = page.content.decode().split('id="imagegen-lineage"', 1)[1].split("</div>", 1)[0]
    assert edit_url(image) in section and OTHER in section and signed not in section

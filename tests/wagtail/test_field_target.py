"""A page's ForeignKey to the Wagtail image model as a generable field
(imagegen.contrib.wagtail.targets), filled from a real generated job, by family:

- the target of each field kind under Wagtail's settings: the page's image
  FK is a Wagtail image target, Profile's FK to GeneratedImage needs the
  other adapter (E032), an ImageField copies any adapter's image;
- filled in memory from the job's Wagtail image, stored by save() only;
- an image the job did not make for this field, and an asset of another
  kind, refused with the page unchanged.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from wagtail.images import get_image_model
from wagtail.models import Page

from imagegen.checks import check_settings
from imagegen.contrib.wagtail.targets import WagtailImageTarget
from imagegen.fields import declaration_for
from imagegen.fields.targets import FileTarget
from imagegen.services import field_jobs
from tests.content_app.models import Article
from tests.test_services import run_to_end
from tests.wagtail_app.models import ArticlePage

pytestmark = [pytest.mark.services, pytest.mark.django_db]

PAGE_IMAGE = "imagegen_wagtail_tests.ArticlePage.image"
COVER = "imagegen_content_tests.Article.cover"
PORTRAIT = "imagegen_content_tests.Profile.portrait"


@pytest.fixture
def declared(settings, wagtail_imagegen):
    settings.IMAGEGEN = {
        **wagtail_imagegen,
        "IMAGE_FIELDS": {
            PAGE_IMAGE: {"prompt": "Header image: {title}", "shape": (1600, 900)},
            COVER: {"prompt": "{title}", "alt_field": "cover_alt"},
        },
    }
    return settings.IMAGEGEN


@pytest.fixture
def page():
    root = Page.get_first_root_node()
    return root.add_child(instance=ArticlePage(title="Lighthouses", slug="lighthouses"))


def test_targets_under_wagtail(declared, settings):
    assert isinstance(declaration_for(ArticlePage, "image").target, WagtailImageTarget)
    assert isinstance(declaration_for(Article, "cover").target, FileTarget)
    settings.IMAGEGEN = {**declared, "IMAGE_FIELDS": {**declared["IMAGE_FIELDS"], PORTRAIT: {}}}
    e032 = [m for m in check_settings() if m.id == "imagegen.E032"]
    assert len(e032) == 1
    assert PORTRAIT in e032[0].msg


def test_page_image_filled_from_a_job(declared, page, wagtail_editor):
    [job] = field_jobs.create_field_jobs(page, "image", user=wagtail_editor)
    assert job.prompt == "Header image: Lighthouses"
    assert job.aspect_ratio == "16:9"
    run_to_end(job)
    [image] = field_jobs.candidates(job)
    assert isinstance(image, get_image_model())
    target = declaration_for(ArticlePage, "image").target
    assert target.is_empty(page)

    assert field_jobs.fill_from_job(page, "image", job, user=wagtail_editor) == image
    assert page.image == image
    assert ArticlePage.objects.get(pk=page.pk).image_id is None  # nothing saved yet
    page.save()
    assert ArticlePage.objects.get(pk=page.pk).image == image
    assert list(field_jobs.jobs_for_field(page, "image")) == [job]


def test_a_wagtail_image_into_an_image_file(declared, wagtail_editor):
    """A file field copies the Wagtail image's file, through its upload_to."""
    article = Article.objects.create(title="Lighthouses")
    [job] = field_jobs.create_field_jobs(article, "cover", user=wagtail_editor)
    run_to_end(job)
    [image] = field_jobs.candidates(job)
    field_jobs.fill_from_job(article, "cover", job, alt_text="A lighthouse", user=wagtail_editor)
    article.save()
    saved = Article.objects.get(pk=article.pk)
    assert saved.cover.name.startswith("covers/")
    assert saved.cover.name != image.file.name
    with saved.cover.open("rb") as copy, image.file.open("rb") as source:
        assert copy.read() == source.read()


@pytest.mark.parametrize("case", ["another page's job", "an asset of another kind"])
def test_refused(declared, page, wagtail_editor, case):
    [job] = field_jobs.create_field_jobs(page, "image", user=wagtail_editor)
    run_to_end(job)
    target = declaration_for(ArticlePage, "image").target
    if case == "another page's job":
        other = Page.get_first_root_node().add_child(
            instance=ArticlePage(title="Other", slug="other")
        )
        with pytest.raises(ValidationError):
            field_jobs.fill_from_job(other, "image", job, user=wagtail_editor)
        assert other.image_id is None
    else:
        with pytest.raises(ValidationError):
            target.fill(page, Article(title="not an image"))
        assert page.image_id is None

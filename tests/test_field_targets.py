"""Targets filled from a real generated job (sandbox over HTTP, the service
steps called directly), by family:

- file fields: an ImageField on the default storage with a dated
  ``upload_to``, an ImageField on a storage of its own with dimension
  fields, a plain FileField. For each: nothing is written (database row,
  field storage) until ``save()``; then the file is in the field's storage
  under its ``upload_to``, with the asset's bytes, under a name of its own
  (never the asset's file), and the alt text is saved with it;
- a foreign key to GeneratedImage: set in memory, saved by ``save()``;
  a discarded image is refused;
- alt text: set when given and declared, left alone when not given,
  refused (object unchanged) when too long for its field;
- ``is_empty`` of each target before and after.
"""

from __future__ import annotations

from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage

from imagegen.choices import ReviewStatus
from imagegen.fields import declaration_for
from imagegen.services import field_jobs
from tests.content_app.models import Article, Profile, banner_storage
from tests.test_services import run_to_end

pytestmark = [pytest.mark.services, pytest.mark.django_db]

ARTICLE = "imagegen_content_tests.Article"


@pytest.fixture
def declared(settings, imagegen_settings):
    settings.IMAGEGEN = {
        **imagegen_settings,
        "IMAGE_FIELDS": {
            f"{ARTICLE}.cover": {"prompt": "Photo: {title}", "alt_field": "cover_alt"},
            f"{ARTICLE}.banner": {"prompt": "Banner: {title}", "shape": (1600, 400)},
            f"{ARTICLE}.attachment": {"prompt": "File: {title}"},
            "imagegen_content_tests.Profile.portrait": {"prompt": "Portrait of {name}"},
        },
    }


def generated(obj, field, user):
    """A job made for ``obj.field`` and run to its end, and its one asset."""
    [job] = field_jobs.create_field_jobs(obj, field, user=user)
    run_to_end(job)
    [asset] = field_jobs.candidates(job)
    return job, asset


FILE_FIELDS = [
    # field, its storage, the upload_to prefix
    ("cover", lambda: default_storage, f"covers/{date.today():%Y}/"),
    ("banner", banner_storage, "banners/"),
    ("attachment", lambda: default_storage, "attachments/"),
]


@pytest.mark.parametrize(("field", "storage", "prefix"), FILE_FIELDS)
def test_file_is_copied_through_upload_to_and_storage_on_save(
    declared, editor, field, storage, prefix
):
    article = Article.objects.create(title="Bikes")
    job, asset = generated(article, field, editor)
    with asset.file.open("rb") as fh:
        source = fh.read()
    storage = storage()
    files_before = _files(storage, prefix)
    target = declaration_for(Article, field).target
    assert target.is_empty(article)

    field_jobs.fill_from_job(article, field, job, 0, user=editor)

    # In memory only: the row and the field's storage are untouched.
    assert not target.is_empty(article)
    assert _files(storage, prefix) == files_before
    assert getattr(Article.objects.get(pk=article.pk), field).name == ""

    article.save()
    stored = getattr(Article.objects.get(pk=article.pk), field)
    assert stored.name.startswith(prefix)
    assert stored.name != asset.file.name
    assert stored.storage.__class__ is storage.__class__
    assert storage.exists(stored.name)
    with storage.open(stored.name, "rb") as fh:
        assert fh.read() == source
    assert _files(storage, prefix) == files_before | {stored.name}
    # The asset keeps its own file.
    assert asset.file.storage.exists(asset.file.name)
    if field == "banner":
        saved = Article.objects.get(pk=article.pk)
        assert (saved.banner_width, saved.banner_height) == (asset.width, asset.height)


def test_alt_text_goes_with_the_image(declared, editor):
    article = Article.objects.create(title="Bikes", cover_alt="old")
    job, _asset = generated(article, "cover", editor)
    field_jobs.fill_from_job(article, "cover", job, alt_text="Red bicycles", user=editor)
    assert Article.objects.get(pk=article.pk).cover_alt == "old"
    article.save()
    assert Article.objects.get(pk=article.pk).cover_alt == "Red bicycles"


def test_alt_text_not_given_is_left_alone(declared, editor):
    article = Article.objects.create(title="Bikes", cover_alt="kept")
    job, _asset = generated(article, "cover", editor)
    field_jobs.fill_from_job(article, "cover", job, user=editor)
    assert article.cover_alt == "kept"


@pytest.mark.parametrize("alt_text", ["x" * 121, 42])
def test_bad_alt_text_is_refused_and_nothing_changes(declared, editor, alt_text):
    article = Article.objects.create(title="Bikes", cover_alt="kept")
    job, _asset = generated(article, "cover", editor)
    with pytest.raises(ValidationError) as info:
        field_jobs.fill_from_job(article, "cover", job, alt_text=alt_text, user=editor)
    assert "cover_alt" in info.value.message_dict
    assert (article.cover.name, article.cover_alt) == ("", "kept")


def test_add_form_fill_then_save_then_link(declared, editor):
    """An add form: the job is made for the model, the chosen image goes
    into the unsaved object, the save stores it, and the link gives the job
    the new object's id."""
    [job] = field_jobs.create_field_jobs(Article, "cover", user=editor, values={"title": "New"})
    run_to_end(job)
    article = Article(title="New")
    field_jobs.fill_from_job(article, "cover", job, alt_text="New cover", user=editor)
    article.save()
    assert field_jobs.link_jobs(article, "cover", [job.pk], user=editor) == 1
    assert list(field_jobs.jobs_for_field(article, "cover")) == [job]
    saved = Article.objects.get(pk=article.pk)
    assert saved.cover.name.startswith(f"covers/{date.today():%Y}/")
    assert saved.cover_alt == "New cover"


def test_generated_image_foreign_key(declared, editor):
    profile = Profile.objects.create(name="Ada")
    job, asset = generated(profile, "portrait", editor)
    target = declaration_for(Profile, "portrait").target
    assert target.is_empty(profile)
    assert field_jobs.fill_from_job(profile, "portrait", job, user=editor) == asset
    assert profile.portrait == asset
    assert not target.is_empty(profile)
    assert Profile.objects.get(pk=profile.pk).portrait_id is None
    profile.save()
    assert Profile.objects.get(pk=profile.pk).portrait == asset


def test_discarded_generated_image_is_refused(declared, editor):
    profile = Profile.objects.create(name="Ada")
    job, asset = generated(profile, "portrait", editor)
    type(asset).objects.filter(pk=asset.pk).update(review_status=ReviewStatus.DISCARDED)
    with pytest.raises(ValidationError):
        field_jobs.fill_from_job(profile, "portrait", job, user=editor)
    assert profile.portrait_id is None


def _files(storage, prefix):
    """Every file under ``prefix`` in ``storage``."""
    found = set()
    folders = [prefix.rstrip("/")]
    while folders:
        folder = folders.pop()
        try:
            dirs, files = storage.listdir(folder)
        except FileNotFoundError:
            continue
        found.update(f"{folder}/{name}" for name in files)
        folders.extend(f"{folder}/{name}" for name in dirs)
    return found

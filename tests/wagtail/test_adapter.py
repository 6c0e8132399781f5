"""The Wagtail image adapter: jobs end as Wagtail images, once per output,
in the configured collection, tagged, ready for renditions."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import transaction
from wagtail.images import get_image_model
from wagtail.models import Collection

from imagegen import services
from imagegen.adapters import StoredOutput, get_adapter
from imagegen.choices import Status
from imagegen.contrib.wagtail.adapters import WagtailImageAdapter, default_collection
from imagegen.contrib.wagtail.models import GeneratedWagtailImage
from imagegen.contrib.wagtail.review import SHORT_TITLE
from imagegen.exceptions import ImagegenConfigurationError
from imagegen.models import GeneratedImage
from imagegen.storage import get_storage, output_name

from ..conftest import wait_until
from ..factories import make_job
from .conftest import WAGTAIL_IMAGEGEN, png_bytes, sha1

Image = get_image_model()


def stored_output(job: Any, index: int = 0, size: tuple[int, int] = (64, 48)) -> StoredOutput:
    """A result file of ``job`` in imagegen's storage, as finalize leaves it."""
    data = png_bytes(size)
    storage = get_storage()
    name = output_name(job, index, "png")
    if storage.exists(name):
        storage.delete(name)
    stored = storage.save(name, ContentFile(data))
    return StoredOutput(
        index=index,
        name=stored,
        width=size[0],
        height=size[1],
        size=len(data),
        sha256="0" * 64,
        content_type="image/png",
    )


@pytest.mark.pipeline
@pytest.mark.django_db(transaction=True)
def test_job_ends_as_a_wagtail_image(wagtail_imagegen, celery_worker, sandbox, wagtail_editor):
    job = services.create_job(
        prompt="a lighthouse at dawn,   watercolour", aspect_ratio="4:3", user=wagtail_editor
    )

    def done() -> bool:
        services.sweep()
        job.refresh_from_db()
        return job.is_terminal

    wait_until(done, timeout=30, interval=0.1, what="the job to finish")
    assert job.status == Status.SUCCEEDED, job.error_message

    image = Image.objects.get()
    assert get_adapter().assets_for(job) == [image]
    assert GeneratedImage.objects.count() == 0
    assert image.title == "a lighthouse at dawn, watercolour"
    assert image.collection.name == "Generated"
    assert image.collection.get_parent() == Collection.get_first_root_node()
    assert sorted(image.tags.names()) == ["1k", "imagegen", "text-to-image"]
    assert image.uploaded_by_user == wagtail_editor
    assert (image.width, image.height) == (1024, 768)
    with image.open_file() as fh:
        data = fh.read()
    assert image.file_size == len(data)
    assert image.file_hash == sha1(data)
    # The image took over imagegen's file (same storage): no copy.
    assert image.file.name == output_name(job, 0, "png")

    rendition = image.get_rendition("fill-100x100")
    assert (rendition.width, rendition.height) == (100, 100)
    assert rendition.file.storage.exists(rendition.file.name)

    link = GeneratedWagtailImage.objects.get(image=image)
    assert (link.job_id, link.index) == (job.pk, 0)
    assert link.settings["resolution"] == "1k" and link.settings["aspect_ratio"] == "4:3"
    # What finalize wrote into the file's metadata is kept on the link too.
    assert link.provenance["job_id"] == str(job.pk)
    assert link.provenance["prompt"] == job.prompt
    assert image.imagegen_output.job.prompt == job.prompt


@pytest.mark.django_db
def test_adapter_twice_makes_one_image(settings):
    settings.IMAGEGEN = {**settings.IMAGEGEN, **WAGTAIL_IMAGEGEN}
    job = make_job(status=Status.SUCCEEDED, prompt="twice")
    output = stored_output(job)
    adapter = WagtailImageAdapter()
    with transaction.atomic():
        first = adapter.create_asset(job, output)
    with transaction.atomic():
        second = adapter.create_asset(job, output)
    assert first.pk == second.pk
    assert Image.objects.count() == 1
    assert GeneratedWagtailImage.objects.count() == 1
    assert adapter.assets_for(job) == [first]


@pytest.mark.django_db
def test_rolled_back_asset_is_made_again(settings):
    """A finalize that lost its lease rolls back; the next one makes the image."""
    settings.IMAGEGEN = {**settings.IMAGEGEN, **WAGTAIL_IMAGEGEN}
    job = make_job(status=Status.SUCCEEDED, prompt="rolled back")
    output = stored_output(job)
    adapter = WagtailImageAdapter()
    with pytest.raises(RuntimeError), transaction.atomic():
        adapter.create_asset(job, output)
        raise RuntimeError("lease lost")
    assert Image.objects.count() == 0
    with transaction.atomic():
        image = adapter.create_asset(job, output)
    assert Image.objects.get() == image
    assert image.file.storage.exists(image.file.name)


@pytest.mark.django_db
def test_each_output_is_its_own_image(settings):
    settings.IMAGEGEN = {**settings.IMAGEGEN, **WAGTAIL_IMAGEGEN, "WAGTAIL_TAGS": ["ai", "x"]}
    job = make_job(status=Status.SUCCEEDED, prompt="x" * 400, resolution="2k")
    adapter = WagtailImageAdapter()
    images = [adapter.create_asset(job, stored_output(job, index)) for index in range(2)]
    assert adapter.assets_for(job) == images
    # A short readable title (review.short_title), the editor confirms or changes it.
    assert len(images[0].title) == SHORT_TITLE and images[0].title.endswith("…")
    assert images[1].title == images[0].title + " (2)"
    assert sorted(images[1].tags.names()) == ["2k", "ai", "text-to-image", "x"]


@pytest.mark.django_db
def test_collection_follows_the_job_target(settings):
    settings.IMAGEGEN = {**settings.IMAGEGEN, **WAGTAIL_IMAGEGEN}
    root = Collection.get_first_root_node()
    chosen = root.add_child(instance=Collection(name="Chosen"))
    job = make_job(status=Status.SUCCEEDED)
    job.target = chosen
    job.save()
    image = WagtailImageAdapter().create_asset(job, stored_output(job))
    assert image.collection == chosen

    # A target that lives in a collection (another image) lends its collection.
    again = make_job(status=Status.SUCCEEDED)
    again.target = image
    again.save()
    assert WagtailImageAdapter().create_asset(again, stored_output(again)).collection == chosen


@pytest.mark.django_db
def test_default_collection_setting(settings):
    root = Collection.get_first_root_node()
    settings.IMAGEGEN = {**settings.IMAGEGEN, "WAGTAIL_COLLECTION": None}
    assert default_collection() == root

    settings.IMAGEGEN = {**settings.IMAGEGEN, "WAGTAIL_COLLECTION": "AI images"}
    made = default_collection()
    assert made.name == "AI images" and made.get_parent() == root
    assert default_collection() == made
    assert Collection.objects.filter(name="AI images").count() == 1

    settings.IMAGEGEN = {**settings.IMAGEGEN, "WAGTAIL_COLLECTION": made.pk}
    assert default_collection() == made

    settings.IMAGEGEN = {**settings.IMAGEGEN, "WAGTAIL_COLLECTION": 987654}
    with pytest.raises(ImagegenConfigurationError, match="987654"):
        default_collection()


@pytest.mark.django_db
def test_file_is_copied_when_storages_differ(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "imagegen": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "imagegen")},
        },
    }
    settings.IMAGEGEN = {**settings.IMAGEGEN, **WAGTAIL_IMAGEGEN}
    job = make_job(status=Status.SUCCEEDED)
    output = stored_output(job)
    source = get_storage()
    assert str(tmp_path) in source.path(output.name)

    image = WagtailImageAdapter().create_asset(job, output)
    with image.open_file() as fh:
        data = fh.read()
    assert image.file.name == output.name
    assert str(tmp_path) not in image.file.path
    assert image.file_hash == sha1(data) and image.file_size == len(data)
    with source.open(output.name, "rb") as fh:
        assert fh.read() == data
    assert image.get_rendition("max-20x20").width == 20


def test_system_checks(settings):
    from imagegen.contrib.wagtail.checks import check_wagtail

    settings.ROOT_URLCONF = "tests.wagtail.urls"  # with the public URLs (references)
    assert check_wagtail() == []
    settings.IMAGEGEN = {
        **settings.IMAGEGEN,
        "ASSET_ADAPTER": "imagegen.adapters.GeneratedImageAdapter",
        "WAGTAIL_COLLECTION": 1.5,
        "WAGTAIL_TAGS": "imagegen",
    }
    ids = sorted(message.id for message in check_wagtail())
    assert ids == ["imagegen_wagtail.E001", "imagegen_wagtail.E002", "imagegen_wagtail.W002"]


@pytest.mark.parametrize(
    ("urlconf", "callback", "admin_base", "ids"),
    [
        ("tests.wagtail.urls", "https://cms.example.org", "", []),
        ("tests.wagtail.urls", None, "https://admin.example.org", []),
        ("tests.wagtail_urls", "https://cms.example.org", "", ["imagegen_wagtail.W003"]),
        ("tests.wagtail.urls", None, "", ["imagegen_wagtail.W004"]),
        ("tests.wagtail.urls", "ftp://cms.example.org", None, ["imagegen_wagtail.W004"]),
        ("tests.wagtail_urls", None, "", ["imagegen_wagtail.W003", "imagegen_wagtail.W004"]),
    ],
)
def test_reference_checks(settings, urlconf, callback, admin_base, ids):
    """The family: public URLs included or not, times a public origin from
    CALLBACK_BASE_URL, from WAGTAILADMIN_BASE_URL, from neither, or not http(s)."""
    from imagegen.contrib.wagtail.checks import check_wagtail

    settings.ROOT_URLCONF = urlconf
    settings.IMAGEGEN = {**settings.IMAGEGEN, "CALLBACK_BASE_URL": callback}
    settings.WAGTAILADMIN_BASE_URL = admin_base
    assert sorted(message.id for message in check_wagtail()) == ids


def test_app_order_check(monkeypatch, settings):
    from django.apps import apps

    from imagegen.contrib.wagtail import checks

    configs = [c for c in apps.get_app_configs() if c.name != "imagegen.contrib.wagtail"]
    configs.append(apps.get_app_config("imagegen_wagtail"))
    monkeypatch.setattr(checks.apps, "get_app_configs", lambda: configs)
    settings.ROOT_URLCONF = "tests.wagtail.urls"
    assert [message.id for message in checks.check_wagtail()] == ["imagegen_wagtail.W001"]


@pytest.mark.django_db
def test_migrations_are_complete():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)

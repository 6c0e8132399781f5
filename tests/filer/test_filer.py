"""imagegen.contrib.filer on a real django-filer install (no django CMS):
jobs end as filer images, and a FilerImageField is a generable field, by family:

- the adapter, from a real job: a filer image with the result's bytes,
  filer's own file name and storage, the prompt as name, the job's user as
  owner, its dimensions; once per output (a second finalize returns it);
- FILER_FOLDER: None (no folder), an existing id, a path made once and
  then reused (also when part of it exists), and every bad value (check
  imagegen_filer.E001; an unknown id refused when an image is stored);
- the FilerImageField target: filled in memory with the job's image and
  alt text, stored by save() only; a GeneratedImage, another job's image
  refused; E032 when the adapter is not the filer one.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from filer.models import Folder

from imagegen.adapters import get_adapter
from imagegen.checks import check_settings
from imagegen.contrib.filer.adapters import FilerImageAdapter, default_folder, image_model
from imagegen.contrib.filer.checks import check_filer
from imagegen.contrib.filer.models import GeneratedFilerImage
from imagegen.contrib.filer.targets import FilerImageTarget
from imagegen.exceptions import ImagegenConfigurationError
from imagegen.fields import declaration_for
from imagegen.services import field_jobs
from imagegen.storage import get_storage
from tests.filer_app.models import Event
from tests.test_services import create, run_to_end

pytestmark = [pytest.mark.services, pytest.mark.django_db]

POSTER = "imagegen_filer_tests.Event.poster"


def finished(user=None, prompt="A poster for a jazz night,\n  blue light"):
    job = create(prompt=prompt, user=user)
    return run_to_end(job)


def test_a_job_ends_as_a_filer_image(filer_imagegen, editor):
    job = finished(editor)
    [image] = get_adapter().assets_for(job)
    assert isinstance(image, image_model())
    assert image.name == "A poster for a jazz night, blue light"
    assert image.owner == editor
    assert image.original_filename == f"{job.pk}-0.png"
    assert image.folder.name == "Events"
    assert image.folder.parent.name == "Generated"
    assert image.folder.parent.parent is None
    link = GeneratedFilerImage.objects.get(job=job)
    assert (link.index, link.image) == (0, image)
    assert link.settings["job_id"] == str(job.pk)
    # filer's copy, in its own storage, with the stored result's bytes.
    assert image.file.name != ""
    with image.file.open("rb") as fh:
        data = fh.read()
    imagegen_files = [
        f for f in _all_files(get_storage(), f"imagegen/{job.created_at:%Y}") if str(job.pk) in f
    ]
    assert len(imagegen_files) == 1
    with get_storage().open(imagegen_files[0], "rb") as fh:
        assert fh.read() == data
    assert image.file.name != imagegen_files[0]
    assert (image.width, image.height) > (0, 0)
    assert image.sha1 and image.size == len(data)


def test_once_per_output(filer_imagegen, editor):
    job = finished(editor)
    [image] = get_adapter().assets_for(job)
    from imagegen.adapters import StoredOutput

    output = StoredOutput(
        index=0, name="unused", width=1, height=1, size=1, sha256="0" * 64, content_type="image/png"
    )
    assert FilerImageAdapter().create_asset(job, output) == image
    assert image_model().objects.count() == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("Generated", ("Generated",)),
        ("Generated/Events", ("Generated", "Events")),
        (" Generated / Events ", ("Generated", "Events")),
        ("Existing/New", ("Existing", "New")),
    ],
)
def test_folder_setting(filer_imagegen, settings, value, expected):
    existing = Folder.objects.create(name="Existing")
    settings.IMAGEGEN = {**filer_imagegen, "FILER_FOLDER": value}
    folder = default_folder()
    if expected is None:
        assert folder is None
        return
    names = []
    node = folder
    while node is not None:
        names.insert(0, node.name)
        node = node.parent
    assert tuple(names) == expected
    count = Folder.objects.count()
    assert default_folder() == folder  # reused, not made again
    assert Folder.objects.count() == count
    if expected[0] == "Existing":
        assert folder.parent == existing


def test_folder_by_id(filer_imagegen, settings):
    folder = Folder.objects.create(name="Chosen")
    settings.IMAGEGEN = {**filer_imagegen, "FILER_FOLDER": folder.pk}
    assert default_folder() == folder
    settings.IMAGEGEN = {**filer_imagegen, "FILER_FOLDER": folder.pk + 1000}
    with pytest.raises(ImagegenConfigurationError, match="no filer folder"):
        default_folder()


@pytest.mark.parametrize(
    "value", ["", "/", "a//b", "a/", "x" * 256, 0, -1, True, 1.5, ["a"], {"name": "a"}]
)
def test_bad_folder_setting(filer_imagegen, settings, value):
    settings.IMAGEGEN = {**filer_imagegen, "FILER_FOLDER": value}
    assert [m.id for m in check_filer() if m.is_serious()] == ["imagegen_filer.E001"]
    with pytest.raises(ImagegenConfigurationError):
        default_folder()


@pytest.fixture
def declared(filer_imagegen, settings):
    settings.IMAGEGEN = {
        **filer_imagegen,
        "IMAGE_FIELDS": {
            POSTER: {"prompt": "Poster: {title} at {venue}", "alt_field": "poster_alt"}
        },
    }
    return settings.IMAGEGEN


def test_filer_image_field_filled_from_a_job(declared, editor):
    event = Event.objects.create(title="Jazz night", venue="the harbour")
    target = declaration_for(Event, "poster").target
    assert isinstance(target, FilerImageTarget)
    assert target.is_empty(event)
    [job] = field_jobs.create_field_jobs(event, "poster", user=editor)
    assert job.prompt == "Poster: Jazz night at the harbour"
    run_to_end(job)
    [image] = field_jobs.candidates(job)

    field_jobs.fill_from_job(event, "poster", job, alt_text="A blue poster", user=editor)
    assert event.poster == image
    assert not target.is_empty(event)
    assert Event.objects.filter(pk=event.pk, poster__isnull=True, poster_alt="").exists()
    event.save()
    saved = Event.objects.get(pk=event.pk)
    assert (saved.poster, saved.poster_alt) == (image, "A blue poster")


def test_other_images_refused(declared, editor):
    event = Event.objects.create(title="Jazz night")
    other = Event.objects.create(title="Other")
    [job] = field_jobs.create_field_jobs(other, "poster", user=editor)
    run_to_end(job)
    with pytest.raises(ValidationError):
        field_jobs.fill_from_job(event, "poster", job, user=editor)
    target = declaration_for(Event, "poster").target
    with pytest.raises(ValidationError):
        target.fill(event, Folder.objects.create(name="not an image"))
    assert event.poster_id is None


def test_filer_field_needs_the_filer_adapter(declared, settings):
    settings.IMAGEGEN = {**declared, "ASSET_ADAPTER": "imagegen.adapters.GeneratedImageAdapter"}
    [message] = [m for m in check_settings() if m.id == "imagegen.E032"]
    assert POSTER in message.msg
    assert "FilerImageAdapter" in message.hint


def _all_files(storage, folder):
    found = []
    try:
        dirs, files = storage.listdir(folder)
    except FileNotFoundError:
        return found
    found.extend(f"{folder}/{name}" for name in files)
    for name in dirs:
        found.extend(_all_files(storage, f"{folder}/{name}"))
    return found


@pytest.mark.django_db(transaction=True)
def test_two_finalizes_make_the_folder_once(filer_imagegen):
    """Two transactions needing the missing folder at once (as two finalizes
    would): the second waits for the first's commit and takes its folder,
    instead of making a second top-level "Generated" (filer's unique
    (parent, name) does not hold for top-level folders on PostgreSQL)."""
    import threading

    from django.db import connection, connections, transaction

    from tests.conftest import require_postgres, wait_until

    require_postgres("advisory locks")
    made = threading.Event()
    go = threading.Event()
    results: dict[str, int] = {}

    def finalize(name: str, hold: bool) -> None:
        try:
            with transaction.atomic():
                results[name] = default_folder().pk
                if hold:
                    made.set()
                    go.wait(timeout=30)
        finally:
            connections.close_all()

    first = threading.Thread(target=finalize, args=("first", True))
    first.start()
    assert made.wait(timeout=30)
    second = threading.Thread(target=finalize, args=("second", False))
    second.start()

    def second_waits_on_the_lock() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            )
            return cursor.fetchone()[0] == 1

    wait_until(second_waits_on_the_lock, timeout=15, what="the second to wait on the folder lock")
    go.set()
    first.join(timeout=30)
    second.join(timeout=30)
    assert results["first"] == results["second"]
    assert Folder.objects.filter(name="Generated").count() == 1
    assert Folder.objects.filter(name="Events").count() == 1

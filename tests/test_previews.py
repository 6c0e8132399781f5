"""Previews on the service: a run that died or lost a race leaves no file
that no row references, and the sweeper sends a lost preview task again at
a bounded number of moments. The fault test with a killed worker and a cut
database is ``tests/faults/test_previews.py``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from imagegen import services, tasks
from imagegen.choices import ReviewStatus, Source, Status
from imagegen.models import GeneratedImage, GenerationJob
from imagegen.services import thumbnails
from imagegen.services.thumbnails import RESENDS, thumbnail_name
from imagegen.storage import get_storage

from .factories import make_image, make_job

pytestmark = pytest.mark.django_db

#: FINALIZE_LEASE here: the steps are 1, 2, 4 ... 32 seconds.
LEASE = 1.0


def stored_names(job: GenerationJob) -> set[str]:
    """Every file in the job's storage folder."""
    storage = get_storage()
    folder = GeneratedImage.objects.filter(job=job).first().file.name.rsplit("/", 1)[0]
    return {f"{folder}/{name}" for name in storage.listdir(folder)[1]}


def referenced_names(job: GenerationJob) -> set[str]:
    rows = GeneratedImage.objects.filter(job=job).values_list("file", "thumbnail")
    return {name for row in rows for name in row if name}


# Making previews ---------------------------------------------------------------


def test_a_preview_left_by_a_dead_run_is_overwritten_and_referenced() -> None:
    """A run killed after writing a preview and before its row update left
    a stale file at the preview's name: the next run overwrites that name
    (no second copy beside it) and points the row at it."""
    job = make_job(images=2)
    image = job.images.get(index=0)
    left = get_storage().save(thumbnail_name(image.file.name), ContentFile(b"half written"))

    assert services.thumbnails.make_thumbnails(job.pk) == 2

    image.refresh_from_db()
    assert image.thumbnail.name == left
    assert image.thumbnail.read()[:4] == b"RIFF"  # a WebP now, not the stale bytes
    assert stored_names(job) == referenced_names(job)


@pytest.mark.parametrize("meanwhile", ["another run made it", "the image was discarded"])
def test_a_run_that_loses_a_race_leaves_exactly_the_referenced_files(
    meanwhile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Family: while one run makes a preview, another run makes the same
    preview first, or an editor discards the image. The slower run's update
    matches nothing; it removes its file only when no row points at that
    name: the other run's preview stays, the discarded image's goes."""
    job = make_job(images=1)
    image = job.images.get()
    preview = thumbnail_name(image.file.name)
    real = thumbnails.make_thumbnail
    interleaved: list[bool] = []

    def slow_then_overtaken(source: Any) -> bytes:
        if not interleaved:
            interleaved.append(True)
            if meanwhile == "another run made it":
                assert services.thumbnails.make_thumbnails(job.pk) == 1
            else:
                assert services.reviews.discard(GeneratedImage.objects.get(pk=image.pk))
        return real(source)

    monkeypatch.setattr(thumbnails, "make_thumbnail", slow_then_overtaken)

    assert services.thumbnails.make_thumbnails(job.pk) == 0

    image.refresh_from_db()
    if meanwhile == "another run made it":
        assert image.thumbnail.name == preview
        assert get_storage().exists(preview)
    else:
        assert image.review_status == ReviewStatus.DISCARDED
        assert not image.thumbnail
        assert not get_storage().exists(preview)


def test_one_failing_image_does_not_stop_the_others() -> None:
    """An image whose file is gone from storage fails; the job's other images
    still get their previews, and the error is raised for the task to retry."""
    job = make_job(images=2)
    broken = job.images.get(index=0)
    get_storage().delete(broken.file.name)

    with pytest.raises(OSError):
        services.thumbnails.make_thumbnails(job.pk)

    assert job.images.get(index=1).thumbnail
    assert not job.images.get(index=0).thumbnail


# The sweeper -------------------------------------------------------------------


@pytest.fixture
def sent(settings: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Job ids of the preview tasks sent (recorded at the broker's edge)."""
    settings.IMAGEGEN = {**settings.IMAGEGEN, "FINALIZE_LEASE": LEASE}
    calls: list[str] = []
    monkeypatch.setattr(
        tasks.make_thumbnails, "apply_async", lambda args, **kw: calls.append(args[0])
    )
    return calls


def finished_job(at: datetime, **fields: Any) -> GenerationJob:
    values = {"provider_completed_at": at, "completed_via": Source.CALLBACK, **fields}
    job = make_job(**values)
    make_image(job)
    return job


def sweep_at(moments: list[datetime], capture: Any) -> list[datetime]:
    """Sweep at each of ``moments``; returns those at which a preview task was sent."""
    sending: list[datetime] = []
    for now in moments:
        with capture(execute=True):
            if services.sweep(now=now)["previews"]:
                sending.append(now)
    return sending


@pytest.mark.parametrize("interval", [0.3, 0.7, 0.95])
def test_a_missing_preview_is_sent_again_once_at_each_step(
    interval: float, sent: list[str], django_capture_on_commit_callbacks: Any
) -> None:
    """Family: sweeps more often than the shortest step (FINALIZE_LEASE),
    evenly or not. The task is sent again exactly once at each of the RESENDS
    steps (FINALIZE_LEASE x 1, 2, 4...) after the provider finished, at the
    first sweep past it, and never after the last."""
    start = timezone.now()
    job = finished_job(start)
    steps = [start + timedelta(seconds=LEASE * 2**k) for k in range(RESENDS)]
    horizon = LEASE * 2**RESENDS
    moments = [start + timedelta(seconds=interval * i) for i in range(int(horizon / interval))]

    sending = sweep_at(moments, django_capture_on_commit_callbacks)

    assert sent == [str(job.pk)] * RESENDS
    assert sending == [min(m for m in moments if m >= step) for step in steps]


@pytest.mark.parametrize("gap", [2.5, 10.0, 3600.0])
def test_a_slow_or_paused_sweeper_sends_at_most_once_per_sweep_and_step(
    gap: float, sent: list[str], django_capture_on_commit_callbacks: Any
) -> None:
    """Family: after the sweep that follows the job's end, sweeps further
    apart than the steps (beat running rarely, or stopped for an hour). Each
    sweep sends a job's task at most once, at least one sweep sends it, and
    never more than RESENDS times in all."""
    start = timezone.now()
    finished_job(start)
    moments = [start + timedelta(seconds=0.5 + gap * i) for i in range(12)]

    sweep_at(moments, django_capture_on_commit_callbacks)

    assert 1 <= len(sent) <= RESENDS
    assert len(sent) <= len(moments)


@pytest.mark.parametrize(
    "case", ["has its preview", "discarded", "job failed", "provider unknown to the site"]
)
def test_nothing_is_sent_when_no_preview_is_missing(
    case: str, sent: list[str], django_capture_on_commit_callbacks: Any
) -> None:
    """Family: an image with its preview, a discarded image, a job that did
    not succeed, a job of a provider no longer configured: the sweeper sends
    nothing for them."""
    start = timezone.now()
    fields: dict[str, Any] = {
        "job failed": {"status": Status.FAILED},
        "provider unknown to the site": {"provider": "retired"},
    }.get(case, {})
    job = finished_job(start, **fields)
    if case == "has its preview":
        services.thumbnails.make_thumbnails(job.pk)
    elif case == "discarded":
        services.reviews.discard(job.images.get())
    moments = [start + timedelta(seconds=0.9 * i) for i in range(int(LEASE * 2**RESENDS / 0.9))]

    sweep_at(moments, django_capture_on_commit_callbacks)

    assert sent == []


@pytest.mark.parametrize(("ago", "sends"), [(timedelta(hours=2), 1), (timedelta(days=2), 0)])
def test_the_first_sweep_looks_back_a_day(
    ago: timedelta, sends: int, sent: list[str], django_capture_on_commit_callbacks: Any
) -> None:
    """Family: the sweeper's first run (no heartbeat yet, as after an
    upgrade, or as after a pause longer than LOOKBACK) and a job whose
    preview went missing within that day, or before it: the first is sent
    once, the second never (the query's range stays bounded)."""
    now = timezone.now()
    finished_job(now - ago)

    sweep_at([now, now + timedelta(seconds=0.5)], django_capture_on_commit_callbacks)

    assert len(sent) == sends

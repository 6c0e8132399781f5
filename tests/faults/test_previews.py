"""Previews half-done: a worker SIGKILLed between writing a preview and
pointing its row at it, then the database unreachable for the next worker
for a while. Every image gets its preview, and storage ends holding exactly
the files the rows reference."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from imagegen import services
from imagegen.choices import Status
from imagegen.models import GeneratedImage, GenerationJob
from imagegen.services.thumbnails import thumbnail_name
from imagegen.storage import get_storage, output_name

from ..conftest import require_postgres, wait_until
from . import conftest as faults
from .conftest import drive_to_end, job_row
from .proxy import TCPProxy

pytestmark = [
    pytest.mark.faults,
    pytest.mark.brokers,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

#: Redis's visibility timeout in the example settings: the killed worker's
#: message is not redelivered within the test (RabbitMQ requeues it at once).
PRODUCTION_VISIBILITY_TIMEOUT = 3600


@pytest.fixture
def workers_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[TCPProxy]:
    """Worker subprocesses reach PostgreSQL through a proxy; this process and
    the live server connect directly."""
    require_postgres("a database connection over TCP to cut")
    direct: Callable[[], dict[str, Any]] = faults._database_settings
    settings_dict = connections.settings["default"]
    proxy = TCPProxy(settings_dict["HOST"] or "127.0.0.1", int(settings_dict["PORT"] or 5432))
    monkeypatch.setattr(
        faults,
        "_database_settings",
        lambda: {**direct(), "HOST": "127.0.0.1", "PORT": str(proxy.port)},
    )
    yield proxy
    proxy.close()


def stored_files(job: GenerationJob) -> set[str]:
    folder = posixpath.dirname(output_name(job, 0, "png"))
    return {f"{folder}/{name}" for name in get_storage().listdir(folder)[1]}


def referenced_files(job: GenerationJob) -> set[str]:
    rows = GeneratedImage.objects.filter(job=job).values_list("file", "thumbnail")
    return {name for row in rows for name in row if name}


def all_previewed(job: GenerationJob) -> bool:
    services.sweep()  # as beat would
    return not GeneratedImage.objects.filter(job=job, thumbnail="").exists()


def test_killed_mid_preview_then_database_down(
    fault_settings: dict[str, Any],
    settings: Any,
    sandbox: Any,
    workers: Any,
    workers_database: TCPProxy,
    tmp_path: Path,
) -> None:
    """The figure: after the kill and the outage, every image has its
    preview and storage holds exactly the referenced files (no preview that
    no row names); the sweeper then has nothing left to send."""
    hold = tmp_path / "hold"
    hold.touch()
    settings.STORAGES = {
        **settings.STORAGES,
        "imagegen": {
            "BACKEND": "tests.faults.holding_storage.HoldingStorage",
            "OPTIONS": {"hold": str(hold)},
        },
    }
    job = services.create_job(prompt="A kingfisher over a stream")
    first = workers(visibility_timeout=PRODUCTION_VISIBILITY_TIMEOUT)
    job = drive_to_end(job.pk)
    assert job.status == Status.SUCCEEDED
    wait_until(hold.with_suffix(".reached").exists, what="a preview to be written")
    first.kill()
    written = thumbnail_name(job.images.get(index=0).file.name)
    assert written in stored_files(job) - referenced_files(job)  # half done

    workers_database.cut()
    hold.unlink()
    second = workers(visibility_timeout=PRODUCTION_VISIBILITY_TIMEOUT)
    # The preview task comes back (the sweeper's or the broker's) and fails
    # on the database: it retries rather than giving up.
    wait_until(
        lambda: services.sweep() is not None and "Previews of job" in second.output(),
        timeout=60,
        interval=0.5,
        what="a preview attempt to fail on the database",
    )
    workers_database.restore()

    wait_until(lambda: all_previewed(job), timeout=120, interval=0.5, what="every preview")

    job = job_row(job.pk)
    images = list(job.images.all())
    assert images and all(image.thumbnail for image in images)
    assert all(get_storage().exists(image.thumbnail.name) for image in images)
    assert stored_files(job) == referenced_files(job)
    assert services.sweep()["previews"] == 0

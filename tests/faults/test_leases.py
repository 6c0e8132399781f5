"""Leases renewed by the working process: a killed finalize is taken over
within 30 s with the production settings, a slow but alive download keeps
its job, and a dead attempt's temporary files do not outlive it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from imagegen import conf, services
from imagegen.choices import Status

from ..conftest import PROCESSES_TIMEOUT, wait_until
from .conftest import drive_to_end, job_row
from .results_server import ResultServer
from .test_worker_killed import assert_stored_once

pytestmark = [
    pytest.mark.faults,
    pytest.mark.brokers,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(PROCESSES_TIMEOUT),
]

#: The example project's beat schedule for ``imagegen.sweep`` (seconds).
BEAT_INTERVAL = 5.0
#: Redis's visibility timeout in the example settings: a killed worker's
#: message is not redelivered within the test.
PRODUCTION_VISIBILITY_TIMEOUT = 3600


@pytest.fixture
def results() -> Iterator[ResultServer]:
    server = ResultServer()
    yield server
    server.close()


def result_prompt(subject: str, results: ResultServer) -> str:
    """A prompt whose single result is downloaded from ``results``."""
    return f"{subject} [sandbox:download=redirect:{results.url}]"


def attempt_files(temp: Path) -> dict[str, list[int]]:
    """The finalize attempt folders in a worker host's temp dir, each with
    the sizes of the files in it (the dir also holds what the test settings
    make there, such as a media folder)."""
    return {
        folder.name: [file.stat().st_size for file in folder.iterdir()]
        for folder in temp.glob("imagegen-finalize-*")
    }


def half_downloaded(temp: Path) -> dict[str, list[int]] | None:
    found = attempt_files(temp)
    return found if any(any(sizes) for sizes in found.values()) else None


def test_killed_finalize_is_taken_over_within_30_seconds(
    fault_settings: dict[str, Any],
    settings: Any,
    sandbox: Any,
    workers: Any,
    results: ResultServer,
    tmp_path: Path,
) -> None:
    """With the production recovery settings: the default ``FINALIZE_LEASE``,
    the sweeper every 5 s (the example project's beat), and no redelivery of
    the killed worker's message (the broker's visibility timeout of an
    hour). The figure: stored at most 30 s after the kill; and the killed
    attempt's half-downloaded file is gone afterwards."""
    settings.IMAGEGEN = {k: v for k, v in fault_settings.items() if k != "FINALIZE_LEASE"}
    host = {"TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    results.hold_first()
    job = services.create_job(prompt=result_prompt("A lynx", results), resolution="4k")
    first = workers(visibility_timeout=PRODUCTION_VISIBILITY_TIMEOUT, env=host)
    wait_until(results.holding.is_set, what="the download to stop half way")
    leftover = wait_until(
        lambda: half_downloaded(tmp_path / "tmp"), what="half the file on the worker's disk"
    )
    first.kill()
    killed_at = timezone.now()
    assert attempt_files(tmp_path / "tmp") == leftover  # SIGKILL cleans nothing up
    assert job_row(job.pk).status == Status.FINALIZING
    workers(visibility_timeout=PRODUCTION_VISIBILITY_TIMEOUT, env=host)

    job = drive_to_end(job.pk, timeout=90, interval=BEAT_INTERVAL)

    assert_stored_once(job)
    assert job.finalize_attempts == 2
    assert results.requests == 2
    taken_over_within = job.completed_at - killed_at
    print(f"killed finalize stored {taken_over_within.total_seconds():.1f} s after the kill")
    assert conf.get_setting("FINALIZE_LEASE") == conf.DEFAULTS["FINALIZE_LEASE"]
    assert taken_over_within <= timedelta(seconds=30)
    # The next attempt on this host removed the dead one's folder; its own goes
    # once the job's row is committed, a moment after the job reads as ended.
    wait_until(lambda: attempt_files(tmp_path / "tmp") == {}, what="the attempts' folders to go")


def test_slow_download_keeps_its_lease(
    fault_settings: dict[str, Any], sandbox: Any, workers: Any, results: ResultServer
) -> None:
    """A 4K result streamed over 10 s, 2.5 times the test's ``FINALIZE_LEASE``
    (4 s), with a second worker idle and the sweeper running every 0.25 s:
    the downloading worker renews its lease, so the job is never taken over
    (one attempt, one download) and is stored once."""
    lease = fault_settings["FINALIZE_LEASE"]
    results.trickle(2.5 * lease)
    job = services.create_job(prompt=result_prompt("A slow lynx", results), resolution="4k")
    workers()
    workers()

    job = drive_to_end(job.pk)

    assert_stored_once(job)
    assert job.finalize_attempts == 1
    assert results.requests == 1
    assert sandbox.stats()["submits"] == 1
    # The download really outlasted the lease.
    assert (job.completed_at - job.provider_completed_at).total_seconds() > 2 * lease


def test_dead_attempt_folder_on_another_host_is_removed_by_the_sweep(
    fault_settings: dict[str, Any],
    sandbox: Any,
    workers: Any,
    results: ResultServer,
    tmp_path: Path,
) -> None:
    """The takeover runs on another host, which cannot see the dead attempt's
    folder: the sweep task, run by a worker on the first host, removes it."""
    from imagegen.tasks import sweep

    host_a, host_b = tmp_path / "host-a", tmp_path / "host-b"
    host_a.mkdir()
    host_b.mkdir()
    results.hold_first()
    job = services.create_job(prompt=result_prompt("A lynx", results))
    first = workers(env={"TMPDIR": str(host_a)})
    wait_until(lambda: half_downloaded(host_a), what="half the file on host A's disk")
    first.kill()
    other = workers(env={"TMPDIR": str(host_b)})

    job = drive_to_end(job.pk)

    assert_stored_once(job)
    assert job.finalize_attempts == 2
    assert attempt_files(host_a), "host A's leftover should still be there"
    # The attempt removes its folder once the job's row is committed, so the
    # job may read as ended a moment before the folder is gone.
    wait_until(lambda: attempt_files(host_b) == {}, what="host B's attempt to clean up")
    other.stop()
    workers(env={"TMPDIR": str(host_a)})
    sweep.delay()
    wait_until(lambda: attempt_files(host_a) == {}, what="the sweep on host A to clean up")

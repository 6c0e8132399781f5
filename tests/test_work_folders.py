"""Temporary folders of submit and finalize attempts
(imagegen.services.work_folders): one folder per attempt, removed when it
ends, at the next attempt of the same work on the host, or by the sweep task
once the attempt no longer holds its job."""

from __future__ import annotations

import os
import tempfile
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from imagegen import services, tasks
from imagegen.choices import Mode, Status
from imagegen.exceptions import FetchError, TransientError
from imagegen.models import GenerationJob
from imagegen.providers import openai as openai_provider

from .test_openai_provider import reference_urls
from .test_services import create, poll_until_done
from .test_sync_provider_and_provenance import openai_settings  # noqa: F401 (fixture)

pytestmark = [pytest.mark.services, pytest.mark.django_db]

KINDS = ("submit", "finalize")


def leave_attempt_folder(kind: str, job_id, attempt: int) -> str:
    """What an attempt killed mid-way leaves in the temp dir: its folder
    (named as imagegen names them) holding a part of a download."""
    folder = tempfile.mkdtemp(prefix=f"imagegen-{kind}-{job_id}-{attempt}-")
    with open(os.path.join(folder, "tmp-part"), "wb") as fh:
        fh.write(b"\x89PNG half a file")
    return os.path.basename(folder)


@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
    """This host's temp dir (``tempfile.gettempdir()``), empty, for this test alone."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def working(kind: str, job_id, *, attempt: int = 1, lease_seconds: float = 30.0) -> None:
    """Put a job in the state of ``kind``'s attempt ``attempt`` holding it, its
    lease running for ``lease_seconds`` more (negative: it ran out)."""
    until = timezone.now() + timedelta(seconds=lease_seconds)
    if kind == "submit":
        GenerationJob.objects.filter(pk=job_id).update(
            status=Status.QUEUED,
            submit_attempts=attempt,
            submitting_since=timezone.now(),
            lease_until=until,
            next_poll_at=until,
        )
    else:
        GenerationJob.objects.filter(pk=job_id).update(
            status=Status.FINALIZING,
            finalize_attempts=attempt,
            lease_until=until,
            next_poll_at=until,
        )


@pytest.mark.parametrize("kind", KINDS)
def test_the_sweep_removes_the_folders_of_attempts_that_no_longer_hold_their_job(
    imagegen_settings, temp_dir, kind
):
    """For each kind of work, the whole family of a folder's attempt:
    its job ended (succeeded, failed, canceled, expired), a later attempt
    took over, its lease ran out, its job moved on to the other kind of work
    (loses the folder), or it still holds the job (keeps it). Folders of jobs
    this database does not know (another site on the host), other names and
    files named like folders are left alone."""
    other = "finalize" if kind == "submit" else "submit"
    ended = {status: create() for status in (Status.SUCCEEDED, Status.FAILED, Status.CANCELED)}
    ended[Status.EXPIRED] = create()
    for status, job in ended.items():
        GenerationJob.objects.filter(pk=job.pk).update(status=status)
    taken_over, ran_out, moved_on, holding = (create() for _ in range(4))
    working(kind, taken_over.pk, attempt=2)
    working(kind, ran_out.pk, attempt=1, lease_seconds=-1)
    working(other, moved_on.pk, attempt=1)
    working(kind, holding.pk, attempt=3)
    dead = {leave_attempt_folder(kind, job.pk, 1) for job in ended.values()} | {
        leave_attempt_folder(kind, taken_over.pk, 1),
        leave_attempt_folder(kind, ran_out.pk, 1),
        leave_attempt_folder(kind, moved_on.pk, 1),
    }
    kept = {
        leave_attempt_folder(kind, taken_over.pk, 2),
        leave_attempt_folder(kind, holding.pk, 3),
        leave_attempt_folder(other, moved_on.pk, 1),
        leave_attempt_folder(kind, uuid.uuid4(), 1),
        tempfile.mkdtemp(prefix="imagegen-test-media-").rsplit(os.sep, 1)[-1],
    }
    lookalike = temp_dir / f"imagegen-{kind}-{ended[Status.SUCCEEDED].pk}-2-file"
    lookalike.write_bytes(b"a file, not a folder")
    kept.add(lookalike.name)

    assert tasks.sweep()["attempt_folders"] == len(dead)

    assert set(os.listdir(temp_dir)) == kept


@pytest.mark.parametrize(
    ("marker", "outcome"),
    [
        ("", "succeeded"),
        ("[sandbox:download=html]", "failed"),
        ("[sandbox:download=redirect:http://127.0.0.1:9/gone.png]", FetchError),
    ],
)
def test_a_finalize_leaves_no_temporary_files(imagegen_settings, temp_dir, marker, outcome):
    """Whatever its outcome (stored, failed on an unusable file, a
    retryable download error), a finalize leaves nothing in the temp dir,
    and removes what an earlier attempt on this host left there."""
    job = create(f"a fox {marker}")
    services.submit(job.pk)
    poll_until_done(job)
    leave_attempt_folder("finalize", job.pk, 1)
    GenerationJob.objects.filter(pk=job.pk).update(finalize_attempts=1)

    if isinstance(outcome, str):
        assert services.finalize(job.pk) == outcome
    else:
        with pytest.raises(outcome):
            services.finalize(job.pk)

    assert os.listdir(temp_dir) == []


@pytest.mark.parametrize(
    ("references", "outcome"),
    [
        ("images", "succeeded"),
        ("not an image", "failed"),
        ("unreachable", "retry"),
    ],
)
def test_a_submit_keeps_its_reference_downloads_in_its_attempt_folder(
    openai_settings,  # noqa: F811 (fixture)
    sandbox,
    temp_dir,
    monkeypatch,
    references,
    outcome,
):
    """A synchronous provider downloads the reference images during the
    submission: every download lands in the attempt's own folder, and
    whatever the outcome (answered, refused reference, a download to retry)
    the temp dir is empty afterwards, including what a killed earlier
    attempt on this host left there."""
    urls = reference_urls(sandbox)
    if references == "not an image":
        status, data = sandbox.submit(
            {
                "request_type": "async",
                "input": {"mode": "text-to-image", "prompt": "x [sandbox:download=html]"},
            }
        )
        assert status == 200
        urls[1] = f"{sandbox.url}/files/{data['taskId']}/0.png"
    elif references == "unreachable":
        urls[1] = "http://127.0.0.1:9/gone.png"
    job = services.create_job(
        prompt="make it blue",
        provider="openai",
        mode=Mode.IMAGE_TO_IMAGE,
        reference_urls=["https://example.com/a.png"],
    )
    # The sandbox serves the references from 127.0.0.1, which a job's own
    # validation refuses: the provider's policy (ALLOW_PRIVATE_HOSTS) admits it.
    GenerationJob.objects.filter(pk=job.pk).update(reference_urls=urls, submit_attempts=1)
    leave_attempt_folder("submit", job.pk, 1)
    folders = []
    real_download = openai_provider.download

    def download(url, policy, *, dir=None):
        folders.append(os.path.basename(dir or ""))
        return real_download(url, policy, dir=dir)

    monkeypatch.setattr(openai_provider, "download", download)

    if outcome == "retry":
        with pytest.raises(TransientError):  # for the task to retry
            services.submit(job.pk)
    else:
        services.submit(job.pk)

    job.refresh_from_db()
    assert job.status == {"retry": Status.QUEUED, "failed": Status.FAILED}.get(
        outcome, Status.SUCCEEDED
    ), job.error_message
    assert folders and all(f.startswith(f"imagegen-submit-{job.pk}-2-") for f in folders)
    assert os.listdir(temp_dir) == []

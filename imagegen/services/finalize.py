"""Storing a finished job's results: download, verify, store, attach.

One worker at a time holds a job in ``finalizing`` through a lease numbered
by ``finalize_attempts`` and renewed while it works (:mod:`.leases`), so a
dead worker's job is taken over ``FINALIZE_LEASE`` seconds after its last
renewal. Files go to deterministic names, so a retried or reclaimed
finalize overwrites rather than duplicates; the assets and the
``succeeded`` transition commit together, and only if the lease is still
this worker's.

Each attempt keeps its downloads in a folder of its own
(:func:`.work_folders.attempt_folder`), which the next attempt on that host,
or the sweeper there, removes when a killed worker left it behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from .. import conf, credentials, failures, signals
from ..adapters import StoredOutput, get_adapter
from ..choices import Source, Status
from ..exceptions import FetchError, ImageRejectedError
from ..fetching import Download, FetchPolicy, download
from ..imaging import verify_image
from ..models import GenerationJob
from ..provenance import Provenance
from ..providers import Output, get_provider
from ..storage import get_storage, output_name, save_file
from . import alt_text
from .jobs import fail
from .leases import Lease, LeaseLostError
from .transitions import send_after_commit
from .work_folders import FINALIZE, attempt_folder

logger = logging.getLogger("imagegen")

#: The longest one finalize attempt runs: the task's hard time limit, and
#: the end of its lease's renewals (a hung worker then loses the job).
TIME_LIMIT = 280


def finalize(job_id: Any, outputs: Sequence[Output] = ()) -> str:
    """Store a job's results and mark it succeeded. Returns what happened.

    The results are downloaded from the job's ``result_urls``, or taken from
    ``outputs`` when a synchronous provider answered with the images
    themselves (the submit task then finalizes at once, in the same process).
    Raises :class:`FetchError` (retryable) or storage errors for the task to
    retry; unusable results fail the job here.
    """
    job = _claim(job_id)
    if job is None:
        return "not-claimed"
    attempt = job.finalize_attempts
    lease = Lease(
        {"pk": job_id, "status": Status.FINALIZING, "finalize_attempts": attempt},
        conf.get_setting("FINALIZE_LEASE"),
        limit=TIME_LIMIT,
    )
    try:
        with lease, attempt_folder(FINALIZE, job_id, attempt) as folder:
            return _finalize(job, attempt, outputs, lease, folder)
    except LeaseLostError:
        logger.info("Finalize of job %s lost its lease; another worker owns it.", job_id)
        return "lease-lost"


def _finalize(
    job: GenerationJob, attempt: int, outputs: Sequence[Output], lease: Lease, folder: str
) -> str:
    if attempt > conf.get_setting("FINALIZE_MAX_ATTEMPTS"):
        _fail(job, attempt, "STORE_FAILED")
        return "failed"
    sources: list[str | bytes] = [o.data for o in outputs if o.data] or list(job.result_urls)
    if not sources:
        if job.completed_via == Source.SUBMIT:
            # The images came in the submission's answer, held only by the
            # worker that stopped before storing them: they cannot be fetched again.
            _fail(job, attempt, "RESULTS_LOST")
        else:
            _fail(job, attempt, "NO_RESULTS")
        return "failed"
    try:
        stored = [_store(job, index, source, lease, folder) for index, source in enumerate(sources)]
    except LeaseLostError:
        raise
    except (ImageRejectedError, FetchError) as exc:
        if isinstance(exc, FetchError) and exc.retryable:
            _release(job.pk, attempt)
            raise
        _fail(job, attempt, "BAD_RESULT", {"reason": str(exc)})
        return "failed"
    except Exception:
        _release(job.pk, attempt)
        raise
    with transaction.atomic():
        _complete(job, attempt, stored)
        # Marked pending with the success; the tasks are sent once it commits.
        alt_text.request_drafts(job)
    return "succeeded"


def _claim(job_id: Any) -> GenerationJob | None:
    """Take the job for one attempt; the job as claimed (its
    ``finalize_attempts`` is the attempt's number), or None if another
    worker holds it or it is not finalizing."""
    now = timezone.now()
    lease = timedelta(seconds=conf.get_setting("FINALIZE_LEASE"))
    claimed = (
        GenerationJob.objects.filter(pk=job_id, status=Status.FINALIZING)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(
            finalize_attempts=F("finalize_attempts") + 1,
            lease_until=now + lease,
            next_poll_at=now + lease,
            updated_at=now,
        )
    )
    if not claimed:
        return None
    # The whole row, read once: the attempt's number and what the store needs.
    return GenerationJob.objects.get(pk=job_id)


def _owned(job_id: Any, attempt: int):
    return GenerationJob.objects.filter(
        pk=job_id, status=Status.FINALIZING, finalize_attempts=attempt
    )


def _release(job_id: Any, attempt: int) -> None:
    """Give the job back at once so a retry need not wait for the lease to run
    out. The task retries within ``MAX_COUNTDOWN``; the sweeper comes a lease
    after that, should the retry message be lost, never before the backoff ends."""
    now = timezone.now()
    wait = conf.get_setting("MAX_COUNTDOWN") + conf.get_setting("FINALIZE_LEASE")
    _owned(job_id, attempt).update(
        lease_until=None, next_poll_at=now + timedelta(seconds=wait), updated_at=now
    )


def _fail(
    job: GenerationJob, attempt: int, code: str, params: dict[str, Any] | None = None
) -> None:
    if fail(
        job.pk,
        code,
        params=params or {},
        from_statuses=[Status.FINALIZING],
        extra_filter=Q(finalize_attempts=attempt),
    ):
        _remove_files(job)


def _store(
    job: GenerationJob, index: int, source: str | bytes, lease: Lease, folder: str
) -> StoredOutput:
    """Verify one result (a URL to download, or the bytes), give it its
    provenance (:func:`.credentials.write`) and store it under its
    deterministic name, unless the lease was lost meanwhile (the new holder
    stores it)."""
    with _obtain(job, source, folder) as fetched:
        image = verify_image(
            fetched.path,
            max_pixels=conf.get_setting("MAX_IMAGE_PIXELS"),
            declared_type=fetched.content_type,
        )
        record = job_provenance(job)
        # Signed into a C2PA manifest, kept byte-for-byte (the provider's own
        # manifest, no identity to sign with), or written as XMP.
        credentials.write(
            fetched.path,
            record,
            format=image.format,
            content_type=image.content_type,
            references=job.reference_images.all(),
        )
        size, sha256 = os.path.getsize(fetched.path), _sha256(fetched.path)
        lease.check()
        # The download is this attempt's own: a local storage moves it into
        # place rather than copying it (one pass over the bytes fewer).
        name = save_file(
            output_name(job, index, image.extension),
            fetched.path,
            image.content_type,
            move=True,
        )
        return StoredOutput(
            index=index,
            name=name,
            width=image.width,
            height=image.height,
            size=size,
            sha256=sha256,
            content_type=image.content_type,
            provenance=record.as_dict(),
        )


def _obtain(job: GenerationJob, source: str | bytes, folder: str) -> Download:
    if isinstance(source, bytes):
        fd, path = tempfile.mkstemp(prefix="result-", dir=folder)
        with os.fdopen(fd, "wb") as fh:
            fh.write(source)
        return Download(path=Path(path), size=len(source), content_type=None, url="")
    return download(source, fetch_policy(get_provider(job.provider)), dir=folder)


def job_provenance(job: GenerationJob) -> Provenance:
    """What every stored file of ``job`` says about its origin."""
    return Provenance(
        prompt=job.prompt,
        model=job.model,
        provider=job.provider,
        job_id=str(job.pk),
        created_at=job.created_at,
        mode=job.mode,
        resolution=job.resolution,
        aspect_ratio=job.aspect_ratio,
    )


def fetch_policy(provider: Any) -> FetchPolicy:
    """Download rules for a provider's result URLs, from settings."""
    hosts = provider.allowed_result_hosts
    if hosts is not None:
        hosts = tuple(hosts) + tuple(conf.get_setting("ALLOWED_RESULT_HOSTS"))
    allow_private = provider.allow_private_hosts or conf.get_setting("ALLOW_PRIVATE_HOSTS")
    return FetchPolicy(
        allowed_hosts=hosts,
        allow_private=allow_private,
        # A local server (the sandbox) listens on an arbitrary port.
        allowed_ports=None if allow_private else (80, 443),
        max_bytes=conf.get_setting("MAX_DOWNLOAD_BYTES"),
        total_timeout=float(conf.get_setting("DOWNLOAD_TIMEOUT")),
    )


def _complete(job: GenerationJob, attempt: int, outputs: list[StoredOutput]) -> None:
    now = timezone.now()
    if not _owned(job.pk, attempt).update(
        status=Status.SUCCEEDED,
        completed_at=now,
        lease_until=None,
        next_poll_at=None,
        charged_cost=job.estimated_cost,
        **failures.NO_FAILURE,
        updated_at=now,
    ):
        raise LeaseLostError
    adapter = get_adapter()
    assets = [adapter.create_asset(job, output) for output in outputs]
    send_after_commit(signals.job_succeeded, job.pk, assets=assets)


def _remove_files(job: GenerationJob) -> None:
    """Delete files a failed finalize may have written (no asset points at them)."""
    storage = get_storage()
    for index in range(len(job.result_urls)):
        for extension in ("png", "jpg", "webp"):
            name = output_name(job, index, extension)
            try:
                if storage.exists(name):
                    storage.delete(name)
            except Exception:
                logger.warning("Could not remove orphan %s", name, exc_info=True)


def _sha256(path: Any) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

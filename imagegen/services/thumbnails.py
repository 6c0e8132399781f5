"""Previews of stored images for the admin, made by a worker after success.

A preview is written under a name derived from its image's
(:func:`thumbnail_name`) before its row points at it, so a task that dies
between the two leaves a file the next run overwrites and then references.
A failed run is retried by its task (database or storage down: a few tries,
backing off up to ``MAX_COUNTDOWN``); a run lost with its worker or its
message is sent again by the sweeper (:func:`resend_missing`), a bounded
number of times.
"""

from __future__ import annotations

import logging
import posixpath
from datetime import datetime, timedelta
from typing import Any

from django.core.files.base import ContentFile
from django.db.models import Q

from .. import conf
from ..choices import Status
from ..imaging import make_thumbnail
from ..models import GeneratedImage, GenerationJob
from ..storage import get_storage
from . import health
from .transitions import enqueue

logger = logging.getLogger("imagegen")

#: Retries of one preview task after an error, with backoff (``imagegen.make_thumbnails``).
MAX_RETRIES = 5
#: The sweeper sends the task again for an image still without a preview
#: ``FINALIZE_LEASE`` x 1, 2, 4 ... 2**(RESENDS - 1) seconds after its job's
#: provider finished.
RESENDS = 6
#: How far back the sweeper looks for those moments on its first run, or
#: after a pause longer than that: a bound on that one query's cost.
LOOKBACK = timedelta(days=1)


def make_thumbnails(job_id: Any) -> int:
    """Make the missing previews of a job's images; returns how many were made.

    Safe to run twice, or at once with another run: an image that has a
    preview is skipped, the preview's name is derived from the image's, so a
    rerun overwrites, and a file is deleted only when no row points at it.
    An image whose preview fails does not stop the others; the first error is
    raised at the end, for the task to retry.
    """
    storage = get_storage()
    made = 0
    error: Exception | None = None
    pending = GeneratedImage.objects.filter(job_id=job_id, thumbnail="").exclude(
        Q(file="") | Q(file__isnull=True)
    )
    for image in pending:
        try:
            made += _make(storage, image)
        except Exception as exc:
            logger.warning("Preview of image %s failed: %r", image.pk, exc)
            error = error or exc
    if error is not None:
        raise error
    return made


def _make(storage: Any, image: GeneratedImage) -> int:
    name = thumbnail_name(image.file.name)
    with storage.open(image.file.name, "rb") as source:
        data = make_thumbnail(source)
    # Replaced whatever the backend's overwrite setting: the name stays the
    # one a row may already point at (a run that died before its update).
    if storage.exists(name):
        storage.delete(name)
    stored = storage.save(name, ContentFile(data))
    # Only if the image is still there: a discard meanwhile deletes the preview too.
    if (
        GeneratedImage.objects.filter(pk=image.pk, thumbnail="")
        .exclude(file="")
        .update(thumbnail=stored)
    ):
        return 1
    # Discarded meanwhile, or another run got there first: the file is ours
    # to remove unless that run's row points at this very name.
    if not GeneratedImage.objects.filter(thumbnail=stored).exists():
        storage.delete(stored)
    return 0


def resend_missing(now: datetime) -> int:
    """The sweeper's part: send ``imagegen.make_thumbnails`` again for the
    succeeded jobs with an image still without a preview, at each of the
    :data:`RESENDS` moments after their provider finished that fell since the
    previous sweep (whose heartbeat holds the ``now`` it ran at: this runs
    before the sweep records itself), looking back :data:`LOOKBACK` at most.
    Returns how many jobs.

    Two queries: the last sweep's heartbeat, then the images, found through
    the index on when each provider's jobs finished
    (``imagegen_job_outcome_idx``), one range per moment: the cost is the
    number of jobs that finished at those moments, not the size of the tables.
    """
    lease = float(conf.get_setting("FINALIZE_LEASE"))
    delays = [timedelta(seconds=lease * 2**step) for step in range(RESENDS)]
    previous = health.last_seen(health.SWEEP).get(health.SWEEP)
    since = max(previous or now - LOOKBACK, now - LOOKBACK)
    # Constant bounds: each range is an index range on the outcome index.
    moments = Q()
    for delay in delays:
        moments |= Q(
            provider_completed_at__gt=since - delay, provider_completed_at__lte=now - delay
        )
    providers = {conf.get_setting("PROVIDER"), *conf.get_setting("PROVIDERS")}
    jobs = GenerationJob.objects.filter(
        moments, provider__in=providers, status=Status.SUCCEEDED
    ).exclude(completed_via="")
    job_ids = list(
        GeneratedImage.objects.filter(job__in=jobs, thumbnail="")
        .exclude(file="")
        .order_by()
        .values_list("job_id", flat=True)
        .distinct()[: int(conf.get_setting("SWEEP_BATCH_SIZE"))]
    )
    from ..tasks import make_thumbnails as task

    for job_id in job_ids:
        enqueue(task, str(job_id))
    return len(job_ids)


def thumbnail_name(name: str) -> str:
    """``imagegen/2026/11/<job>/0.png`` → ``imagegen/2026/11/<job>/0.thumb.webp``."""
    stem, _ext = posixpath.splitext(name)
    return f"{stem}.thumb.webp"

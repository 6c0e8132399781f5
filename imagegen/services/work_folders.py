"""Temporary folders of a job's attempts (submitting, finalizing).

Each attempt keeps its temporary files (a submission's reference images, a
finalize's downloads) in a folder of its own, named after the kind of work,
the job and the attempt number (:func:`attempt_folder`). A worker killed
mid-way leaves its folder behind: the next attempt of the same work on that
host removes it, and so does the sweep task run there
(:func:`remove_dead_attempt_folders`), once the attempt no longer holds its
job. Only the host's own temp dir is looked at: another host's leftovers are
its own sweep's to remove.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from django.db.models import Q
from django.utils import timezone

from ..choices import Status
from ..models import GenerationJob

SUBMIT = "submit"
FINALIZE = "finalize"

#: ``<tmp>/imagegen-<kind>-<job id>-<attempt>-<random>``: one attempt's files.
_PREFIX = "imagegen-"
_FOLDER = re.compile(
    re.escape(_PREFIX)
    + rf"(?P<kind>{SUBMIT}|{FINALIZE})-"
    + r"(?P<job>[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12})-(?P<attempt>[0-9]+)-[^/]+\Z"
)

# What "this attempt still holds its job" means for each kind: the job is in
# the kind's working state, its lease runs, and its attempt counter is the
# folder's attempt (a later attempt took over otherwise).
_HOLDING = {
    SUBMIT: (Q(status=Status.QUEUED, submitting_since__isnull=False), "submit_attempts"),
    FINALIZE: (Q(status=Status.FINALIZING), "finalize_attempts"),
}


@contextlib.contextmanager
def attempt_folder(kind: str, job_id: Any, attempt: int) -> Iterator[str]:
    """A private folder (mode 0700) for one attempt's temporary files,
    removed when the attempt ends. Folders this host still has from the
    job's earlier attempts of the same kind are removed first: a worker
    killed mid-way never got to remove its own."""
    for _kind, _job, earlier, path in _attempt_folders(kind, str(job_id)):
        if earlier < attempt:
            shutil.rmtree(path, ignore_errors=True)
    folder = tempfile.mkdtemp(prefix=f"{_PREFIX}{kind}-{job_id}-{attempt}-")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_dead_attempt_folders() -> int:
    """Remove this host's folders of attempts that no longer hold their job
    (finished, taken over, or their lease ran out). Returns how many were
    removed. Folders of jobs this database does not know are left alone:
    another site on the same host may own them."""
    found = _attempt_folders()
    if not found:
        return 0
    now = timezone.now()
    removed = 0
    for kind in (SUBMIT, FINALIZE):
        folders = [(job, attempt, path) for k, job, attempt, path in found if k == kind]
        if not folders:
            continue
        working, counter = _HOLDING[kind]
        jobs = GenerationJob.objects.filter(pk__in={job for job, _attempt, _path in folders})
        known = {str(pk) for pk in jobs.values_list("pk", flat=True)}
        holders = {
            str(pk): attempt
            for pk, attempt in jobs.filter(working, lease_until__gt=now).values_list("pk", counter)
        }
        for job, attempt, path in folders:
            if job in known and holders.get(job) != attempt:
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
    return removed


def _attempt_folders(kind: str = "", job_id: str = "") -> list[tuple[str, str, int, str]]:
    """``(kind, job id, attempt, path)`` of the attempt folders in this host's
    temp dir, of one kind and job when given."""
    root = tempfile.gettempdir()
    prefix = f"{_PREFIX}{kind}-{job_id}" if kind else _PREFIX
    try:
        names = [name for name in os.listdir(root) if name.startswith(prefix)]
    except OSError:
        return []
    found = []
    for name in names:
        match = _FOLDER.match(name)
        path = os.path.join(root, name)
        if match and os.path.isdir(path) and not os.path.islink(path):
            found.append((match["kind"], match["job"], int(match["attempt"]), path))
    return found

"""Where result files go, and how they are named."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from django.core.files import File
from django.core.files.storage import Storage, storages

from . import conf

if TYPE_CHECKING:
    from .models import GenerationJob


def storage_alias() -> str:
    """``IMAGEGEN["STORAGE_ALIAS"]``, else ``"imagegen"`` if defined in STORAGES, else default."""
    alias = conf.get_setting("STORAGE_ALIAS")
    if alias:
        return alias
    return "imagegen" if "imagegen" in storages.backends else "default"


def get_storage() -> Storage:
    """The storage for result files. Passed to ``FileField(storage=...)`` as a
    callable so migrations do not capture it."""
    return storages[storage_alias()]


def output_name(job: GenerationJob, index: int, extension: str) -> str:
    """Deterministic name of output ``index``: a retried finalize writes the
    same key instead of a second copy. Built from the job only, never from
    anything the provider sent."""
    created = job.created_at
    return f"imagegen/{created:%Y}/{created:%m}/{job.pk}/{index}.{extension}"


def save_file(name: str, path: str | os.PathLike, content_type: str) -> str:
    """Upload a complete local file to ``name`` and return the stored name.

    Uploading from a finished temporary file (never streaming from the
    network into storage) means a failure cannot leave a truncated object at
    the final key. An existing file at ``name`` is replaced, whatever the
    backend's overwrite setting, so retries converge on one object.
    """
    storage = get_storage()
    if storage.exists(name):
        storage.delete(name)
    with open(path, "rb") as fh:
        django_file = File(fh, name=os.path.basename(name))
        django_file.content_type = content_type
        return storage.save(name, django_file)

"""Where result files go, and how they are named."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.core.files import File
from django.core.files.storage import Storage, storages
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.functional import LazyObject, empty

from . import conf

if TYPE_CHECKING:
    from .models import GenerationJob


def storage_alias() -> str:
    """``IMAGEGEN["STORAGE_ALIAS"]``, else ``"imagegen"`` if defined in STORAGES, else default."""
    alias = conf.get_setting("STORAGE_ALIAS")
    if alias:
        return alias
    return "imagegen" if "imagegen" in storages.backends else "default"


class ResultStorage(LazyObject, Storage):
    """The storage of result files, looked up in ``STORAGES`` on first use
    (as Django's ``default_storage`` is).

    Django builds a model's fields when the models module is imported; a
    storage resolved then would turn a wrong ``STORAGES`` or
    ``STORAGE_ALIAS`` into an import-time traceback instead of the system
    check error ``imagegen.E014``. Subclassing :class:`Storage` lets
    ``FileField`` accept this object without resolving it.
    """

    def _setup(self) -> None:
        self._wrapped = storages[storage_alias()]


def _forward(name: str) -> Callable[..., Any]:
    def method(self: ResultStorage, *args: Any, **kwargs: Any) -> Any:
        if self._wrapped is empty:
            self._setup()
        return getattr(self._wrapped, name)(*args, **kwargs)

    method.__name__ = method.__qualname__ = name
    return method


# Storage's own methods would shadow LazyObject's forwarding to the real storage.
for _name, _value in vars(Storage).items():
    if callable(_value) and not _name.startswith("__"):
        setattr(ResultStorage, _name, _forward(_name))

_result_storage = ResultStorage()


@receiver(setting_changed)
def _forget_storage(*, setting: str, **kwargs: Any) -> None:
    # Tests change STORAGES and IMAGEGEN; the next use looks the storage up again.
    if setting in ("STORAGES", "IMAGEGEN"):
        _result_storage._wrapped = empty


def get_storage() -> Storage:
    """The storage for result files. Passed to ``FileField(storage=...)`` as a
    callable so migrations do not capture it; what it returns is resolved on
    first use, never when the model class is built."""
    return _result_storage


def output_name(job: GenerationJob, index: int, extension: str) -> str:
    """Deterministic name of output ``index``: a retried finalize writes the
    same key instead of a second copy. Built from the job only, never from
    anything the provider sent."""
    created = job.created_at
    return f"imagegen/{created:%Y}/{created:%m}/{job.pk}/{index}.{extension}"


def save_file(name: str, path: str | os.PathLike, content_type: str, *, move: bool = False) -> str:
    """Upload a complete local file to ``name`` and return the stored name.

    Uploading from a finished temporary file (never streaming from the
    network into storage) means a failure cannot leave a truncated object at
    the final key. An existing file at ``name`` is replaced, whatever the
    backend's overwrite setting, so retries converge on one object.

    ``move``: the caller is done with ``path``, which the storage may then
    treat as a temporary upload's file: Django's ``FileSystemStorage``
    renames it into place on the same file system instead of copying its
    bytes (``FILE_UPLOAD_PERMISSIONS`` applied as to a copy), its
    ``InMemoryStorage`` deletes it once read. ``path`` may be gone after.
    """
    storage = get_storage()
    if storage.exists(name):
        storage.delete(name)
    with open(path, "rb") as fh:
        django_file = (_FinishedFile if move else File)(fh, name=os.path.basename(name))
        django_file.content_type = content_type
        return storage.save(name, django_file)


class _FinishedFile(File):
    """A complete local file its owner gives up: storages take it as they
    take a temporary upload's (``temporary_file_path``)."""

    def temporary_file_path(self) -> str:
        return os.fspath(self.file.name)

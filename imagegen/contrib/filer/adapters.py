"""The asset adapter that stores each result as a django-filer image.

``IMAGEGEN["ASSET_ADAPTER"] = "imagegen.contrib.filer.adapters.FilerImageAdapter"``
makes every output of every job an image of filer's image model
(``FILER_IMAGE_MODEL``) in the folder ``IMAGEGEN["FILER_FOLDER"]``, owned by
the job's user: filer reads its size, hash and dimensions from the file, so
django CMS's pickers, thumbnails and ``FilerImageField`` s use it as an
uploaded image. :class:`~.models.GeneratedFilerImage` links it to its job
and output.
"""

from __future__ import annotations

import logging
import posixpath
from typing import TYPE_CHECKING, Any

from django.core.files import File
from django.db import connection, models
from filer import settings as filer_settings
from filer.models import Folder
from filer.utils.loader import load_model

from imagegen import conf
from imagegen.adapters import LinkedAssetAdapter, StoredOutput, output_title
from imagegen.exceptions import ImagegenConfigurationError
from imagegen.storage import get_storage

from .models import GeneratedFilerImage

if TYPE_CHECKING:
    from imagegen.models import GenerationJob

logger = logging.getLogger("imagegen")

#: filer's limit on names (of images and of folders).
NAME_LENGTH = 255


def image_model() -> type[models.Model]:
    """filer's image model (``FILER_IMAGE_MODEL``, ``filer.Image`` by default)."""
    return load_model(filer_settings.FILER_IMAGE_MODEL)


class FilerImageAdapter(LinkedAssetAdapter):
    """Stores each output as a filer image.

    Idempotent, as every :class:`~imagegen.adapters.LinkedAssetAdapter`.
    Subclasses may override
    :meth:`folder_for`, :meth:`name_for` and :meth:`image_fields` (extra
    fields of a custom image model).
    """

    link_model = GeneratedFilerImage

    def make_image(self, job: GenerationJob, output: StoredOutput) -> Any:
        extension = posixpath.splitext(output.name)[1].lower()
        original_filename = f"{job.pk}-{output.index}{extension}"
        with get_storage().open(output.name, "rb") as fh:
            # filer reads size, SHA-1, MIME type and dimensions from the file
            # when it is assigned, and copies it into its own storage, under
            # its own name, when the image is saved.
            image = image_model()(
                file=File(fh, name=original_filename),
                original_filename=original_filename,
                name=self.name_for(job, output),
                folder=self.folder_for(job),
                owner=job.created_by,
                **self.image_fields(job, output),
            )
            image.save()
        return image

    # What the image gets ------------------------------------------------

    def folder_for(self, job: GenerationJob) -> Folder | None:
        """``IMAGEGEN["FILER_FOLDER"]``, made if missing (None: no folder)."""
        return default_folder()

    def name_for(self, job: GenerationJob, output: StoredOutput) -> str:
        """The prompt on one line, cut to filer's name length; later outputs numbered."""
        return output_title(" ".join(job.prompt.split()), output.index, NAME_LENGTH)

    def image_fields(self, job: GenerationJob, output: StoredOutput) -> dict[str, Any]:
        """Extra keyword arguments for the image model (a custom model's own fields)."""
        return {}


def folder_path(value: Any) -> int | tuple[str, ...] | None:
    """``FILER_FOLDER`` read: None, a folder id, or the folder names from the
    top. Raises ImagegenConfigurationError for anything else (check
    ``imagegen_filer.E001``)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        names = tuple(name.strip() for name in value.split("/"))
        if all(names) and all(len(name) <= NAME_LENGTH for name in names):
            return names
    raise ImagegenConfigurationError(
        f"IMAGEGEN['FILER_FOLDER'] = {value!r}: not None, a folder id or a path of "
        f"folder names (each 1 to {NAME_LENGTH} characters, separated by '/')."
    )


def default_folder() -> Folder | None:
    """The folder ``IMAGEGEN["FILER_FOLDER"]`` names, each missing folder of
    its path made (at most once, also by workers finishing jobs at the same time)."""
    path = folder_path(conf.get_setting("FILER_FOLDER"))
    if path is None:
        return None
    if isinstance(path, int):
        folder = Folder.objects.filter(pk=path).first()
        if folder is None:
            raise ImagegenConfigurationError(
                f"IMAGEGEN['FILER_FOLDER'] = {path}: there is no filer folder with that id."
            )
        return folder
    folder = _find(path)
    if folder is not None:
        return folder
    # Top-level folders have no parent, so filer's unique (parent, name)
    # cannot stop two workers making the same one: on PostgreSQL they take
    # turns (the lock lasts until the finalize commits), and look again.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('imagegen.filer_folder'))")
    parent = None
    for name in path:
        folder = Folder.objects.filter(parent=parent, name=name).order_by("pk").first()
        if folder is None:
            folder = Folder.objects.create(parent=parent, name=name)
            logger.info("Created the filer folder %r for generated images.", name)
        parent = folder
    return folder


def _find(path: tuple[str, ...]) -> Folder | None:
    parent = None
    for name in path:
        parent = Folder.objects.filter(parent=parent, name=name).order_by("pk").first()
        if parent is None:
            return None
    return parent

"""The asset adapter that stores each result as a Wagtail image.

``IMAGEGEN["ASSET_ADAPTER"] = "imagegen.contrib.wagtail.adapters.WagtailImageAdapter"``
makes every output of every job an image of the site's image model
(``get_image_model()``): titled with the prompt, in a collection, tagged, with
its size, dimensions and hash set, so renditions, choosers and focal points
work as for an uploaded image. :class:`~.models.GeneratedWagtailImage` links
it to its job and output.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import tempfile
from typing import TYPE_CHECKING, Any

from django.core.files import File
from django.core.files.storage import Storage
from django.db import IntegrityError, transaction
from django.utils.functional import LazyObject, empty
from wagtail.images import get_image_model
from wagtail.models import Collection

from imagegen import conf
from imagegen.adapters import LinkedAssetAdapter, StoredOutput, output_title
from imagegen.exceptions import ImagegenConfigurationError
from imagegen.storage import get_storage

from .models import GeneratedWagtailImage
from .review import short_title

if TYPE_CHECKING:
    from imagegen.models import GenerationJob

logger = logging.getLogger("imagegen")

_CHUNK = 1 << 20


class WagtailImageAdapter(LinkedAssetAdapter):
    """Stores each output as an image of the site's Wagtail image model.

    Idempotent, as every :class:`~imagegen.adapters.LinkedAssetAdapter`.
    Subclasses may override
    :meth:`collection_for`, :meth:`title_for`, :meth:`tags_for` and
    :meth:`image_fields` (extra fields of a custom image model).
    """

    link_model = GeneratedWagtailImage

    def make_image(self, job: GenerationJob, output: StoredOutput) -> Any:
        image_model = get_image_model()
        name, sha1 = self.store_file(output, image_model._meta.get_field("file").storage)
        image = image_model(
            title=self.title_for(job, output),
            file=name,
            width=output.width,
            height=output.height,
            file_size=output.size,
            file_hash=sha1,
            collection=self.collection_for(job),
            uploaded_by_user=job.created_by,
            **self.image_fields(job, output),
        )
        image.save()
        tags = self.tags_for(job)
        if tags:
            image.tags.add(*tags)
        return image

    # What the image gets ------------------------------------------------

    def collection_for(self, job: GenerationJob) -> Collection:
        """The job's target when it is a collection (the Wagtail views set
        it to the collection the editor chose), the target's collection when it
        has one, else ``IMAGEGEN["WAGTAIL_COLLECTION"]``."""
        target = job.target
        if isinstance(target, Collection):
            return target
        collection = getattr(target, "collection", None)
        if isinstance(collection, Collection):
            return collection
        return default_collection()

    def title_for(self, job: GenerationJob, output: StoredOutput) -> str:
        """A short readable form of the prompt (its first sentence, cut at a
        word: :func:`.review.short_title`); later outputs numbered. Editors
        confirm or change it, with the alt text, in the chooser."""
        return output_title(short_title(job.prompt), output.index)

    def tags_for(self, job: GenerationJob) -> list[str]:
        """``IMAGEGEN["WAGTAIL_TAGS"]``, then the job's resolution and mode."""
        tags: list[str] = []
        for tag in (*conf.get_setting("WAGTAIL_TAGS"), job.resolution, job.mode):
            if tag and tag not in tags:
                tags.append(str(tag))
        return tags

    def image_fields(self, job: GenerationJob, output: StoredOutput) -> dict[str, Any]:
        """Extra keyword arguments for the image model (a custom model's own fields)."""
        return {}

    # The file -------------------------------------------------------------

    def store_file(self, output: StoredOutput, image_storage: Storage) -> tuple[str, str]:
        """The file name for the image's ``file`` field and the file's SHA-1
        (Wagtail's ``file_hash``).

        When Wagtail's images and imagegen's results use the same storage, the
        image takes over imagegen's file: no copy. Otherwise the file is copied,
        streamed in chunks, to the same deterministic name in the image storage
        (imagegen's own copy stays where finalize stored it).
        """
        source = get_storage()
        hasher = hashlib.sha1(usedforsecurity=False)
        if _resolved(image_storage) is _resolved(source):
            with source.open(output.name, "rb") as fh:
                for chunk in iter(lambda: fh.read(_CHUNK), b""):
                    hasher.update(chunk)
            return output.name, hasher.hexdigest()
        with (
            source.open(output.name, "rb") as fh,
            tempfile.SpooledTemporaryFile(max_size=8 * _CHUNK) as copy,
        ):
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                hasher.update(chunk)
                copy.write(chunk)
            copy.seek(0)
            # Replace rather than suffix, so a repeated finalize converges on one file.
            if image_storage.exists(output.name):
                image_storage.delete(output.name)
            name = image_storage.save(output.name, File(copy, name=posixpath.basename(output.name)))
        return name, hasher.hexdigest()


def default_collection() -> Collection:
    """``IMAGEGEN["WAGTAIL_COLLECTION"]``: None for the root collection, a
    collection id, or the name of a collection directly under the root, made
    there if missing."""
    value = conf.get_setting("WAGTAIL_COLLECTION")
    root = Collection.get_first_root_node()
    if value is None or value == "":
        return root
    if isinstance(value, int) and not isinstance(value, bool):
        collection = Collection.objects.filter(pk=value).first()
        if collection is None:
            raise ImagegenConfigurationError(
                f"IMAGEGEN['WAGTAIL_COLLECTION'] = {value}: there is no collection with that id."
            )
        return collection
    name = str(value)
    existing = root.get_children().filter(name=name).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            created = root.add_child(instance=Collection(name=name))
    except IntegrityError:
        # Made at the same moment by another request or worker.
        existing = Collection.get_first_root_node().get_children().filter(name=name).first()
        if existing is None:
            raise
        return existing
    logger.info("Created the Wagtail collection %r for generated images.", name)
    return created


def _resolved(storage: Any) -> Any:
    """The storage behind ``default_storage`` and other lazy wrappers."""
    if isinstance(storage, LazyObject):
        if storage._wrapped is empty:
            storage._setup()
        return storage._wrapped
    return storage

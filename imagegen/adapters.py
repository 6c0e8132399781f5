"""Asset adapters: turn a stored result file into the site's CMS asset.

``IMAGEGEN["ASSET_ADAPTER"]`` names the adapter class. The built-in
:class:`GeneratedImageAdapter` creates :class:`~imagegen.models.GeneratedImage`
rows; the Wagtail and filer adapters (:class:`LinkedAssetAdapter`) create
the CMS's images and link each to its job and output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.utils.module_loading import import_string

from . import conf
from .exceptions import ImagegenConfigurationError

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from .asset_links import AssetLink
    from .models import GenerationJob


@dataclass(frozen=True)
class StoredOutput:
    """A verified result file, already in storage."""

    index: int
    name: str
    width: int
    height: int
    size: int
    sha256: str
    content_type: str
    #: What was written into the file's metadata (imagegen.provenance).
    provenance: dict[str, str] = field(default_factory=dict)


class AssetAdapter:
    """Base class of asset adapters.

    :meth:`create_asset` runs inside the transaction that marks the job
    succeeded, at most once per ``(job, index)`` in effect: it must be
    idempotent (get-or-create against a unique key), because a finalize that
    lost its lease may have run it in a transaction that was rolled back.
    """

    def create_asset(self, job: GenerationJob, output: StoredOutput) -> Any:
        raise NotImplementedError

    def assets_for(self, job: GenerationJob) -> list[Any]:
        """The assets made from ``job``, in output order."""
        raise NotImplementedError

    def draft_holders(self, job: GenerationJob) -> QuerySet | None:
        """The rows that keep the alt text drafts of ``job``'s assets
        (:mod:`imagegen.services.alt_text`: a model with a ``job``, the
        fields of :class:`~imagegen.draft_fields.AltTextDraftFields`, and
        ``file``, ``content_type`` and ``prompt``), or None: this
        adapter's assets get no drafts."""
        return None


class GeneratedImageAdapter(AssetAdapter):
    """Stores each output as an :class:`imagegen.models.GeneratedImage`."""

    def create_asset(self, job: GenerationJob, output: StoredOutput) -> Any:
        from .models import GeneratedImage

        image, _created = GeneratedImage.objects.get_or_create(
            job=job,
            index=output.index,
            defaults={
                "file": output.name,
                "width": output.width,
                "height": output.height,
                "size": output.size,
                "sha256": output.sha256,
                "content_type": output.content_type,
                "prompt": job.prompt,
                "provider": job.provider,
                "model": job.model,
                "settings": provenance(job),
                "provenance": output.provenance,
            },
        )
        return image

    def assets_for(self, job: GenerationJob) -> list[Any]:
        return list(job.images.order_by("index"))

    def draft_holders(self, job: GenerationJob) -> QuerySet:
        # A discarded image has no file left to describe.
        return job.images.exclude(file="")


class LinkedAssetAdapter(AssetAdapter):
    """Base of adapters that store each output as an image of a CMS's model,
    linked to its job and output by a row of :attr:`link_model`
    (an :class:`imagegen.asset_links.AssetLink`).

    Idempotent: the ``(job, index)`` link is looked up first, so a finalize
    that runs again returns the image it made. Subclasses set
    :attr:`link_model` and implement :meth:`make_image`.
    """

    #: The concrete :class:`~imagegen.asset_links.AssetLink` subclass.
    link_model: type[AssetLink]

    def create_asset(self, job: GenerationJob, output: StoredOutput) -> Any:
        # finalize calls this in the transaction whose first statement updated
        # the job's row: a second finalize of the same job waits on that row
        # lock and then loses its lease, so look-up-then-create cannot race.
        # The unique (job, index) constraint holds it even so.
        link = (
            self.link_model.objects.select_related("image")
            .filter(job=job, index=output.index)
            .first()
        )
        if link is not None:
            return link.image
        image = self.make_image(job, output)
        self.link_model.objects.create(
            job=job,
            index=output.index,
            image=image,
            settings=provenance(job),
            provenance=output.provenance,
        )
        return image

    def assets_for(self, job: GenerationJob) -> list[Any]:
        links = self.link_model.objects.filter(job=job).select_related("image")
        return [link.image for link in links.order_by("index")]

    def draft_holders(self, job: GenerationJob) -> QuerySet | None:
        """The links, when :attr:`link_model` keeps drafts (it has the draft
        fields: :class:`~imagegen.draft_fields.AltTextDraftFields`)."""
        from .draft_fields import AltTextDraftFields

        if not issubclass(self.link_model, AltTextDraftFields):
            return None
        return self.link_model.objects.filter(job=job)

    def make_image(self, job: GenerationJob, output: StoredOutput) -> Any:
        """Create and save the CMS image for ``output`` (its link is made after)."""
        raise NotImplementedError


def output_title(text: str, index: int, limit: int | None = None) -> str:
    """``text`` as the title of output ``index``: later outputs numbered
    (``"… (2)"``); with ``limit``, ``text`` is cut (ending in ``…``) so the
    whole title fits in ``limit`` characters."""
    suffix = f" ({index + 1})" if index else ""
    if limit is not None:
        room = limit - len(suffix)
        if len(text) > room:
            text = text[: room - 1].rstrip() + "…"
    return text + suffix


def provenance(job: GenerationJob) -> dict[str, Any]:
    """The settings that made a job's images, enough to make them again."""
    return {
        "job_id": str(job.pk),
        "mode": job.mode,
        "resolution": job.resolution,
        "aspect_ratio": job.aspect_ratio,
        "reference_urls": list(job.reference_urls),
        "provider_task_id": job.provider_task_id,
        "created_at": job.created_at.isoformat(),
    }


def get_adapter() -> AssetAdapter:
    """An instance of ``IMAGEGEN["ASSET_ADAPTER"]``."""
    path = conf.get_setting("ASSET_ADAPTER")
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ImagegenConfigurationError(
            f"IMAGEGEN['ASSET_ADAPTER'] = {path!r} cannot be imported: {exc}"
        ) from exc
    return cls()

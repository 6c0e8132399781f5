"""Asset adapters: turn a stored result file into the site's CMS asset.

``IMAGEGEN["ASSET_ADAPTER"]`` names the adapter class. The built-in
:class:`GeneratedImageAdapter` creates :class:`~imagegen.models.GeneratedImage`
rows; a Wagtail adapter creates Wagtail images the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.utils.module_loading import import_string

from . import conf
from .exceptions import ImagegenConfigurationError

if TYPE_CHECKING:
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

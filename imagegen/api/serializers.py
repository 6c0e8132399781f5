"""Jobs, runs and images as the API shows them (``Job``, ``Run``, ``Image``).

Only what a client needs: no callback token hash, no provider result URLs
(they may carry the provider's signatures), no leases or internal counters.
URLs are absolute. Lists must prefetch :func:`images_prefetch` and select
``created_by`` so a page costs the same number of queries at any size.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest
from django.urls import reverse

from .. import conf
from ..choices import ReviewStatus
from ..exceptions import ImagegenConfigurationError
from ..models import GeneratedImage, GenerationJob, GenerationRun
from ..providers import get_provider
from ..serializers import progress
from ..services.budgets import COST_QUANTUM


def images_prefetch() -> Prefetch:
    """A job's stored images (discarded ones keep a row but no file)."""
    kept = GeneratedImage.objects.exclude(file="").exclude(review_status=ReviewStatus.DISCARDED)
    return Prefetch("images", kept.order_by("index"))


def jobs_queryset(queryset: QuerySet[GenerationJob]) -> QuerySet[GenerationJob]:
    return queryset.select_related("created_by").prefetch_related(images_prefetch())


def job_data(job: GenerationJob, request: HttpRequest) -> dict[str, Any]:
    url = reverse("imagegen:api-job", kwargs={"job_id": job.pk})
    return {
        "id": str(job.pk),
        "url": request.build_absolute_uri(url),
        "status": job.status,
        "is_terminal": job.is_terminal,
        "progress": _progress(job),
        "provider": job.provider,
        "model": job.model,
        "mode": job.mode,
        "prompt": job.prompt,
        "resolution": job.resolution,
        "aspect_ratio": job.aspect_ratio,
        "reference_urls": list(job.reference_urls or []),
        "created_by": job.created_by.get_username() if job.created_by else None,
        "created_at": _iso(job.created_at),
        "submitted_at": _iso(job.submitted_at),
        "started_at": _iso(job.started_at),
        "completed_at": _iso(job.completed_at),
        "deadline_at": _iso(job.deadline_at),
        "error_code": job.error_code,
        # In the language of the request (imagegen.failures).
        "error_message": job.error_text,
        "estimated_cost": _money(job.estimated_cost),
        "charged_cost": _money(job.charged_cost),
        "currency": conf.get_setting("CURRENCY"),
        "retry_of": str(job.retry_of_id) if job.retry_of_id else None,
        "images": [image_data(image, request) for image in _images(job)],
    }


def run_data(run: GenerationRun, jobs: list[GenerationJob], request: HttpRequest) -> dict[str, Any]:
    """A run of candidates (or a comparison) and its ``jobs`` (the ``Run``
    schema); ``jobs`` as :func:`jobs_queryset` reads them."""
    costs = [job.estimated_cost for job in jobs]
    url = reverse("imagegen:api-run", kwargs={"run_id": run.pk})
    return {
        "id": str(run.pk),
        "url": request.build_absolute_uri(url),
        "kind": run.kind,
        "created_by": run.created_by.get_username() if run.created_by else None,
        "created_at": _iso(run.created_at),
        # What the budgets were checked against: the sum of the jobs' estimates.
        "estimated_cost": _money(None if None in costs else sum(costs, Decimal(0))),
        "currency": conf.get_setting("CURRENCY"),
        "jobs": [job_data(job, request) for job in jobs],
    }


def image_data(image: GeneratedImage, request: HttpRequest) -> dict[str, Any]:
    return {
        "id": image.pk,
        "index": image.index,
        "url": request.build_absolute_uri(image.file.url),
        "thumbnail_url": request.build_absolute_uri(image.thumbnail_url),
        "width": image.width,
        "height": image.height,
        "size": image.size,
        "content_type": image.content_type,
        "sha256": image.sha256,
        "title": image.title,
        "alt_text": image.alt_text,
        "review_status": image.review_status,
        "created_at": _iso(image.created_at),
    }


def _images(job: GenerationJob) -> list[GeneratedImage]:
    cache = getattr(job, "_prefetched_objects_cache", {})
    if "images" in cache:
        return list(cache["images"])
    return list(images_prefetch().queryset.filter(job=job))


def _progress(job: GenerationJob) -> float:
    try:
        _low, high = get_provider(job.provider).latency(job.resolution)
    except ImagegenConfigurationError:
        # A job of a provider the site no longer configures still lists.
        high = float(conf.get_setting("JOB_TIMEOUT"))
    return progress(job.status, job.duration.total_seconds(), high)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _money(value: Decimal | None) -> str | None:
    # The column's precision, also for a job just created (not read back yet).
    return None if value is None else str(value.quantize(COST_QUANTUM))

"""Plain-dict views of jobs and assets, shared by JSON endpoints and commands."""

from __future__ import annotations

from typing import Any

from .choices import TERMINAL, Status
from .models import GenerationJob


def job_status(job: GenerationJob) -> dict[str, Any]:
    """A job's state for status pages and the API (no secrets, no internals)."""
    from .providers import get_provider

    low, high = get_provider(job.provider).latency(job.resolution)
    elapsed = job.duration.total_seconds()
    return {
        "id": str(job.pk),
        "status": job.status,
        "status_display": str(job.get_status_display()),
        "is_terminal": job.is_terminal,
        "provider": job.provider,
        "model": job.model,
        "mode": job.mode,
        "prompt": job.prompt,
        "resolution": job.resolution,
        "aspect_ratio": job.aspect_ratio,
        "created_at": job.created_at.isoformat(),
        "submitted_at": _iso(job.submitted_at),
        "completed_at": _iso(job.completed_at),
        "deadline_at": _iso(job.deadline_at),
        "elapsed_seconds": round(elapsed, 1),
        "expected_seconds": [low, high],
        "progress": progress(job.status, elapsed, high),
        "poll_count": job.poll_count,
        "error_code": job.error_code,
        "error_message": job.error_message,
        "estimated_cost": None if job.estimated_cost is None else str(job.estimated_cost),
        "images": [
            {
                "id": image.pk,
                "index": image.index,
                "url": image.file.url,
                "thumbnail_url": image.thumbnail_url,
                "width": image.width,
                "height": image.height,
                "content_type": image.content_type,
                "size": image.size,
                "review_status": image.review_status,
            }
            for image in job.images.exclude(file="").order_by("index")
        ],
    }


def progress(status: str, elapsed: float, expected_high: float) -> float:
    """A 0-1 estimate for progress bars: time against the expected upper
    latency, held below 1 until the job really finishes."""
    if status in TERMINAL:
        return 1.0
    if status == Status.FINALIZING:
        return 0.97
    return round(min(0.95, elapsed / max(expected_high, 1.0)), 3)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None

"""Plain-dict views of jobs and assets, shared by JSON endpoints and commands."""

from __future__ import annotations

from typing import Any

from .models import GenerationJob


def job_status(job: GenerationJob) -> dict[str, Any]:
    """A job's state for status pages and the API (no secrets, no internals)."""
    from .providers import get_provider

    low, high = get_provider(job.provider).latency(job.resolution)
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
        "elapsed_seconds": round(job.duration.total_seconds(), 1),
        "expected_seconds": [low, high],
        "poll_count": job.poll_count,
        "error_code": job.error_code,
        "error_message": job.error_message,
        "estimated_cost": None if job.estimated_cost is None else str(job.estimated_cost),
        "images": [
            {
                "id": image.pk,
                "index": image.index,
                "url": image.file.url,
                "width": image.width,
                "height": image.height,
                "content_type": image.content_type,
                "size": image.size,
            }
            for image in job.images.order_by("index")
        ],
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None

"""Plain-dict views of jobs and assets, shared by JSON endpoints and commands."""

from __future__ import annotations

from typing import Any

from .choices import TERMINAL, ReviewStatus, Status
from .models import GeneratedImage, GenerationJob


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
            # A discarded image whose file is kept for its undo is no result.
            for image in job.images.exclude(file="")
            .exclude(review_status=ReviewStatus.DISCARDED)
            .order_by("index")
        ],
    }


def job_page_status(job: GenerationJob, user: Any) -> dict[str, Any]:
    """:func:`job_status` and what the admin's job page needs on top, for
    ``user``: whether the job waits to retry, was refused by moderation,
    may cost money if canceled (:mod:`.job_states`), is taking longer than
    usual (``overdue``), and ``review``: every image of the job with its
    name, title, alt text and review state (discarded ones too, with
    ``undo_seconds`` while their discard can be undone), and whether
    ``user`` may edit and approve them (``can_edit``) or discard them
    (``can_discard``)."""
    from . import job_states, permissions
    from .services import reviews

    data = job_status(job)
    # The page's own previews, made on first view (the storage URLs stay for
    # readers of job_status without a session).
    previews = {image.pk: image.preview_url for image in job.images.all()}
    for image in data["images"]:
        image["preview_url"] = previews.get(image["id"], "")
    data.update(job_states.job_flags(job))
    data["overdue"] = not job.is_terminal and data["elapsed_seconds"] > data["expected_seconds"][1]
    data["review"] = {
        "can_edit": permissions.can_review_image(user),
        "can_discard": permissions.can_discard_image(user),
        "images": [review_image(image, reviews.undo_until(image)) for image in job.images.all()],
    }
    return data


def image_name(image: GeneratedImage) -> str:
    """What an image is called where people see it: its title, else the
    start of its prompt; never its storage path."""
    return str(image)


def review_image(image: GeneratedImage, undo_until: Any) -> dict[str, Any]:
    """One image as the job page reviews it; ``undo_until``: until when its
    discard can be undone (:func:`imagegen.services.reviews.undo_until`)."""
    from django.utils import timezone

    left = (undo_until - timezone.now()).total_seconds() if undo_until else 0
    return {
        "id": image.pk,
        "index": image.index,
        "name": image_name(image),
        "title": image.title,
        "alt_text": image.alt_text,
        "prompt": image.prompt,
        "review_status": image.review_status,
        "review_status_display": str(image.get_review_status_display()),
        "thumbnail_url": image.preview_url,
        "width": image.width,
        "height": image.height,
        "undo_seconds": max(0, round(left)),
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

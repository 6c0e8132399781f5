"""Plain-dict views of jobs and assets, shared by JSON endpoints and commands."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .choices import TERMINAL, ReviewStatus, Status
from .models import GeneratedImage, GenerationJob


def job_with_images(job_id: Any) -> tuple[GenerationJob, list[GeneratedImage]] | None:
    """Job ``job_id`` and all its images (in their model's order, each with
    ``image.job`` set), read in one query; None when there is no such job.

    A status poll's read (:func:`job_page_status`): a LEFT OUTER JOIN of the
    job and its images, one row per image, or one row whose image columns
    are NULL for a job without images. Plain ORM, so it is the same SQL on
    every supported database; the job's columns repeat on each image's row,
    a few hundred bytes, cheaper than a second round trip."""
    job_fields = [field.attname for field in GenerationJob._meta.concrete_fields]
    image_fields = [field.attname for field in GeneratedImage._meta.concrete_fields]
    # The images' own ordering, as job.images.all() would give them.
    order = [
        f"-images__{name[1:]}" if name.startswith("-") else f"images__{name}"
        for name in GeneratedImage._meta.ordering
    ]
    queryset = GenerationJob.objects.filter(pk=job_id).order_by(*order)
    rows = list(queryset.values_list(*job_fields, *(f"images__{name}" for name in image_fields)))
    if not rows:
        return None
    split = len(job_fields)
    image_pk = split + image_fields.index(GeneratedImage._meta.pk.attname)
    job = GenerationJob.from_db(queryset.db, job_fields, rows[0][:split])
    images = []
    for row in rows:
        if row[image_pk] is None:  # the job has no images: its one row
            continue
        image = GeneratedImage.from_db(queryset.db, image_fields, row[split:])
        image.job = job
        images.append(image)
    return job, images


def job_status(
    job: GenerationJob, images: Iterable[GeneratedImage] | None = None
) -> dict[str, Any]:
    """A job's state for status pages and the API (no secrets, no internals).

    ``images``: the job's images when already read (:func:`job_with_images`);
    by default ``job.images.all()``."""
    from .providers import get_provider

    images = job.images.all() if images is None else images
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
        # In the reader's language (imagegen.failures); the code stays for programs.
        "error_message": job.error_text,
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
            # Filtered here, not in SQL, so that images prefetched with the
            # job (job_page_status) are read once.
            for image in sorted(images, key=lambda image: image.index)
            if image.file and image.review_status != ReviewStatus.DISCARDED
        ],
    }


def job_page_status(
    job: GenerationJob, user: Any, images: Iterable[GeneratedImage] | None = None
) -> dict[str, Any]:
    """:func:`job_status` and what the admin's job page needs on top, for
    ``user``: whether the job waits to retry, was refused by moderation,
    may cost money if canceled (:mod:`.job_states`), is taking longer than
    usual (``overdue``), and ``review``: every image of the job with its
    name, title, alt text and review state (discarded ones too, with
    ``undo_seconds`` while their discard can be undone), and whether
    ``user`` may edit and approve them (``can_edit``) or discard them
    (``can_discard``). ``images``: all the job's images in their model's
    order when already read (:func:`job_with_images`, a poll's one query);
    by default read here, once, unless prefetched."""
    from django.db.models import prefetch_related_objects

    from . import job_states, permissions
    from .services import reviews

    if images is None:
        # One read of the job's images serves the three uses below, unless
        # the caller prefetched them (the admin's job page).
        prefetch_related_objects([job], "images")
        images = job.images.all()
    images = list(images)
    data = job_status(job, images)
    # The page's own previews, made on first view (the storage URLs stay for
    # readers of job_status without a session).
    previews = {image.pk: image.preview_url for image in images}
    for image in data["images"]:
        image["preview_url"] = previews.get(image["id"], "")
    data.update(job_states.job_flags(job))
    data["overdue"] = not job.is_terminal and data["elapsed_seconds"] > data["expected_seconds"][1]
    data["review"] = {
        "can_edit": permissions.can_review_image(user),
        "can_discard": permissions.can_discard_image(user),
        "images": [review_image(image, reviews.undo_until(image)) for image in images],
    }
    # Drafts arrive after the job ended: the page keeps reading until they are in.
    data["review"]["drafting"] = any(
        image["alt_text_draft_state"] == "pending" for image in data["review"]["images"]
    )
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
        "decorative": image.decorative,
        # A draft is a suggestion for the alt text input, never the alt text
        # itself until an editor saves or approves it (services.alt_text).
        "alt_text_draft": image.alt_text_draft if image.alt_text_draft_state == "ready" else "",
        "alt_text_draft_state": image.alt_text_draft_state,
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

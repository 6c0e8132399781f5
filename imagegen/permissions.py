"""Who may see and act on which jobs: one place for the admin, views and API.

The model permissions (``add``, ``change``, ``view``) say what a user may do
at all; these add the ownership rule: other users' jobs need
``imagegen.view_all_jobs`` to be seen and ``imagegen.cancel_any_job`` to be
canceled.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from .models import GeneratedImage, GenerationJob

VIEW_ALL = "imagegen.view_all_jobs"
CANCEL_ANY = "imagegen.cancel_any_job"


def sees_all(user: Any) -> bool:
    return bool(user.is_active and user.has_perm(VIEW_ALL))


def visible_jobs(user: Any, queryset: QuerySet[GenerationJob] | None = None) -> QuerySet:
    """The jobs ``user`` may see."""
    queryset = GenerationJob.objects.all() if queryset is None else queryset
    return queryset if sees_all(user) else queryset.filter(created_by=user.pk)


def visible_images(user: Any, queryset: QuerySet[GeneratedImage] | None = None) -> QuerySet:
    """The images ``user`` may see: those of the jobs they may see."""
    queryset = GeneratedImage.objects.all() if queryset is None else queryset
    return queryset if sees_all(user) else queryset.filter(job__created_by=user.pk)


def can_view_job(user: Any, job: GenerationJob) -> bool:
    return job.created_by_id == user.pk or sees_all(user)


def can_cancel_job(user: Any, job: GenerationJob) -> bool:
    """Own jobs with ``add`` or ``change`` permission; others' with ``cancel_any_job``."""
    if job.created_by_id == user.pk and job.created_by_id is not None:
        return user.has_perm("imagegen.add_generationjob") or user.has_perm(
            "imagegen.change_generationjob"
        )
    return user.has_perm(CANCEL_ANY)


def can_review_image(user: Any) -> bool:
    """Edit title and alt text, approve (of the images ``user`` may see)."""
    return bool(user.is_active and user.has_perm("imagegen.change_generatedimage"))


def can_discard_image(user: Any) -> bool:
    """Discard, and undo a discard (of the images ``user`` may see)."""
    return bool(user.is_active and user.has_perm("imagegen.delete_generatedimage"))

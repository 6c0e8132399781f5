"""Helpers for the admin tests: users with given permissions, jobs in a given
status, and GeneratedImage rows backed by a real PNG in imagegen's storage."""

from __future__ import annotations

import hashlib
import io
import itertools
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image

from imagegen import conf, tokens
from imagegen.choices import (
    IN_FLIGHT,
    TERMINAL,
    AspectRatio,
    Mode,
    ReviewStatus,
    Source,
    Status,
)
from imagegen.models import GeneratedImage, GenerationJob
from imagegen.storage import get_storage, output_name

#: What an editor may do: generate, watch, act on their jobs, review their images.
EDITOR = (
    "imagegen.add_generationjob",
    "imagegen.view_generationjob",
    "imagegen.change_generationjob",
    "imagegen.view_generatedimage",
    "imagegen.change_generatedimage",
    "imagegen.delete_generatedimage",
)

#: docs/admin.md, "Permissions": exactly what an editor who generates and
#: reviews their own images needs (no "poll now").
DOCUMENTED_EDITOR = (
    "imagegen.add_generationjob",
    "imagegen.view_generationjob",
    "imagegen.view_generatedimage",
    "imagegen.change_generatedimage",
    "imagegen.delete_generatedimage",
)

#: The password of every user made here (the browser tests sign in with it).
PASSWORD = "password"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_usernames = itertools.count(1)
_task_ids = itertools.count(1)


def make_user(
    django_user_model: Any,
    *perms: str,
    username: str | None = None,
    is_staff: bool = True,
) -> Any:
    """A user (staff by default) with exactly ``perms`` (``"app_label.codename"``)."""
    username = username or f"user{next(_usernames)}"
    user = django_user_model.objects.create_user(
        username=username, password=PASSWORD, is_staff=is_staff
    )
    for perm in perms:
        app_label, codename = perm.split(".", 1)
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    # A fresh instance: has_perm caches permissions on the object.
    return django_user_model.objects.get(pk=user.pk)


def make_superuser(django_user_model: Any, username: str = "root") -> Any:
    """A superuser, with the same password as :func:`make_user`'s users."""
    return django_user_model.objects.create_superuser(username, password=PASSWORD)


def make_editor(django_user_model: Any, *extra: str, username: str | None = None) -> Any:
    return make_user(django_user_model, *EDITOR, *extra, username=username)


def png_bytes(
    size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 40, 30)
) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def assert_png(path: Path) -> None:
    """``path`` holds a PNG (a screenshot, a stored image)."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{path} is not a PNG"


def make_job(
    user: Any = None,
    *,
    status: str = Status.SUCCEEDED,
    prompt: str = "a red bicycle",
    resolution: str = "1k",
    provider: str = "sandbox",
    mode: str = Mode.TEXT_TO_IMAGE,
    created_at: datetime | None = None,
    images: int = 0,
    **fields: Any,
) -> GenerationJob:
    """A job saved directly in ``status`` (no provider involved).

    Jobs the provider accepted (in flight, finalizing, succeeded) get a task
    id; the others only when ``provider_task_id`` is given.
    """
    now = timezone.now()
    accepted = status in (*IN_FLIGHT, Status.FINALIZING, Status.SUCCEEDED)
    values: dict[str, Any] = {
        "provider": provider,
        "model": "gpt-image-2",
        "mode": mode,
        "prompt": prompt,
        "resolution": resolution,
        "aspect_ratio": AspectRatio.AUTO,
        "status": status,
        "deadline_at": now + timedelta(minutes=10),
        "estimated_cost": conf.price(provider, "gpt-image-2", resolution),
        "created_by": user,
        "provider_task_id": f"task-{next(_task_ids)}" if accepted else None,
        "completed_at": now if status in TERMINAL else None,
    }
    values.update(fields)
    job = GenerationJob.objects.create(**values)
    GenerationJob.objects.filter(pk=job.pk).update(
        callback_token_hash=tokens.hash_token(tokens.callback_token(job.pk)),
        **({"created_at": created_at} if created_at else {}),
    )
    job.refresh_from_db()
    for index in range(images):
        make_image(job, index=index)
    return job


def prove_callbacks(provider: str = "sandbox") -> GenerationJob:
    """A recent job of ``provider`` that ended by callback: to
    :mod:`imagegen.services.callback_health` the site's callbacks arrive, so new
    jobs wait for theirs instead of polling inside the latency range."""
    return make_job(
        provider=provider, completed_via=Source.CALLBACK, provider_completed_at=timezone.now()
    )


def make_image(
    job: GenerationJob,
    *,
    index: int = 0,
    size: tuple[int, int] = (64, 48),
    review_status: str = ReviewStatus.NEW,
    **fields: Any,
) -> GeneratedImage:
    """A stored result of ``job``: a real PNG saved through imagegen's storage."""
    data = png_bytes(size)
    storage = get_storage()
    name = output_name(job, index, "png")
    if storage.exists(name):
        storage.delete(name)
    stored = storage.save(name, ContentFile(data))
    values: dict[str, Any] = {
        "job": job,
        "index": index,
        "file": stored,
        "width": size[0],
        "height": size[1],
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "content_type": "image/png",
        "prompt": job.prompt,
        "provider": job.provider,
        "model": job.model,
        "settings": {"resolution": job.resolution, "aspect_ratio": job.aspect_ratio},
        "review_status": review_status,
    }
    values.update(fields)
    return GeneratedImage.objects.create(**values)


def messages_of(response: Any) -> list[str]:
    """Messages shown on a page reached with ``follow=True``."""
    return [str(m) for m in response.context["messages"]]


def set_budgets(settings: Any, **limits: Any) -> None:
    settings.IMAGEGEN = {**settings.IMAGEGEN, "BUDGETS": limits}


def run_admin_action(
    client: Any,
    kind: str,
    changelist_url: str,
    button_url: Callable[[Any, str], str],
    action: str,
    objects: tuple[Any, ...],
    *,
    follow: bool = True,
) -> Any:
    """Run an admin action the two ways the admin offers it: ``"list"`` (POST
    to the changelist with the selection) or ``"button"`` (POST to the change
    page's ``<pk>/actions/<action>/``, one object)."""
    if kind == "list":
        data = {"action": action, "_selected_action": [str(obj.pk) for obj in objects]}
        return client.post(changelist_url, data, follow=follow)
    assert len(objects) == 1
    return client.post(button_url(objects[0], action), follow=follow)

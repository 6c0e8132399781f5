"""HTTP endpoints: the provider callback receiver, the job status JSON and
image previews."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.utils.cache import (
    add_never_cache_headers,
    get_conditional_response,
    patch_cache_control,
    patch_vary_headers,
)
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET

from . import conf, log_redaction, permissions, previews, services
from .api.outage import DATABASE_OUTAGE, RETRY_AFTER, answers_outage
from .models import GeneratedImage, WebhookDelivery
from .serializers import job_page_status, job_with_images

logger = logging.getLogger("imagegen")


@sensitive_variables("token")
@csrf_exempt
@login_not_required
@transaction.non_atomic_requests
def callback(request: HttpRequest, provider: str, job_id, token: str) -> JsonResponse:
    """Receive a provider's callback for one job (authenticated by the URL token).

    Answers 200 when accepted or a duplicate, 400 malformed, 403 wrong token,
    404 unknown job, 409 another job's task, 413 too large, 503 when the
    database is unavailable (so the provider or the poller tries again), 500
    on a bug. Only ``REMOTE_ADDR`` is recorded: forwarded-for headers are
    client-controlled and never trusted. The token never reaches a log: it
    is hidden in the request at once, and every error is answered (and
    logged without it) here rather than by Django's handler.
    """
    log_redaction.hide_token(request, token)
    if request.method != "POST":
        # Checked here rather than by require_POST, whose log line has the path.
        response = _answer(405, "Only POST.", job_id)
        response["Allow"] = "POST"
        return response
    try:
        return _receive(request, provider, str(job_id), token)
    except DatabaseError:
        _log_failure("Database unavailable while receiving a callback for %s", job_id, token)
        response = _answer(503, "Temporarily unavailable.", job_id)
        response["Retry-After"] = str(RETRY_AFTER)
        return response
    except Exception:  # Django's handler would log the path, token and all
        _log_failure("Error receiving a callback for %s", job_id, token)
        return _answer(500, "Internal error.", job_id)


def _receive(request: HttpRequest, provider: str, job_ref: str, token: str) -> JsonResponse:
    remote_addr = request.META.get("REMOTE_ADDR")
    limit = int(conf.get_setting("MAX_CALLBACK_BYTES"))
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    body = b"" if declared > limit else request.read(limit + 1)
    if declared > limit or len(body) > limit:
        services.callbacks.record_delivery(
            provider,
            job_ref,
            body=body,
            headers=request.headers,
            remote_addr=remote_addr,
            outcome=WebhookDelivery.Outcome.TOO_LARGE,
            status_code=413,
        )
        return _answer(413, "Body too large.", job_ref)
    result = services.handle_callback(provider, job_ref, token, body, request.headers, remote_addr)
    return _answer(result.status_code, result.message, job_ref)


def _log_failure(message: str, job_id: object, token: str) -> None:
    # The traceback as text without the token, not exc_info: the exception's
    # message (or a handler printing locals) could carry it.
    logger.error(message + ":\n%s", job_id, log_redaction.format_exception(token))


def _answer(status: int, message: str, job_id: object) -> JsonResponse:
    response = JsonResponse({"code": status, "message": message}, status=status)
    if status >= 400:
        # Django's own request log would print the path, and the path carries
        # the callback token: log it here without, and mark it logged.
        logger.warning("Callback for job %s answered %d: %s", job_id, status, message)
        response._has_been_logged = True
    return response


#: The status JSON's answer while the database is unavailable. The admin
#: wraps the view in its login check, which needs the database first: its
#: route applies this around that too.
status_outage = answers_outage(
    lambda: _error(503, _("The database is unavailable; trying again shortly."))
)


@require_GET
@status_outage
def status(request: HttpRequest, job_id) -> HttpResponse:
    """A job's status as JSON, for the admin's live progress and in-place
    review (:func:`imagegen.serializers.job_page_status`).

    Needs ``imagegen.view_generationjob`` (or ``change``, which includes
    viewing, as in the admin); other users' jobs need
    ``imagegen.view_all_jobs`` too. Answers 304 to a reader whose
    ``If-None-Match`` holds the status's ETag (:func:`status_response`).
    While the database is unavailable: 503 with ``Retry-After``, still JSON.
    """
    user = request.user
    if not user.is_authenticated:
        return _error(401, _("Log in to see jobs."))
    # As in the admin, the change permission includes viewing.
    if not (
        user.has_perm("imagegen.view_generationjob")
        or user.has_perm("imagegen.change_generationjob")
    ):
        return _error(403, _("Seeing jobs needs the permission “Can view generation job”."))
    # The job and its images in one query: a poll's whole cost in imagegen's tables.
    found = job_with_images(job_id)
    if found is None:
        return _error(404, _("No such job."))
    job, images = found
    if not permissions.can_view_job(user, job):
        return _error(403, _("This job belongs to another user."))
    return status_response(request, job_page_status(job, user, images))


#: Fields of a status JSON that follow the clock, not the job (at any depth):
#: left out of its ETag, so that a job that has not moved answers 304. The
#: page's script runs these on from its last read (imagegen/status_poll.js).
CLOCK_FIELDS = frozenset({"elapsed_seconds", "progress", "overdue", "undo_seconds"})


def status_etag(data: dict[str, Any]) -> str:
    """The strong ETag of a status JSON: a hash of all of it but its
    :data:`CLOCK_FIELDS`, so that any other field, present or future, changes it."""

    def steady(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: steady(v) for k, v in value.items() if k not in CLOCK_FIELDS}
        if isinstance(value, list):
            return [steady(item) for item in value]
        return value

    body = json.dumps(steady(data), sort_keys=True, cls=DjangoJSONEncoder)
    return f'"{hashlib.sha256(body.encode()).hexdigest()[:32]}"'


def status_response(request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
    """A status JSON for a reader already allowed to see it: 304 when its
    ``If-None-Match`` names the status's ETag (:func:`status_etag`), else
    the JSON. Browsers keep it privately and ask again each time
    (``private, no-cache``): the answer follows the job, never a stale copy."""
    response = JsonResponse(data)
    response["ETag"] = status_etag(data)
    patch_cache_control(response, private=True, no_cache=True)
    patch_vary_headers(response, ["Cookie"])
    return get_conditional_response(request, etag=response["ETag"], response=response)


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": str(message)}, status=status)


#: The preview's answer while the database is unavailable.
preview_outage = answers_outage(
    lambda: HttpResponse(
        _("The database is unavailable; trying again shortly."),
        status=503,
        content_type="text/plain; charset=utf-8",
    )
)
#: Seconds a browser keeps a preview: an image's file never changes (its
#: ETag is the file's hash), so a day of private caching is safe.
PREVIEW_MAX_AGE = 24 * 3600


@require_GET
@preview_outage
def image_preview(request: HttpRequest, image_id: int) -> HttpResponse:
    """An image's WebP preview, made and stored on its first view
    (:func:`imagegen.services.thumbnails.preview_bytes`); the URL is stable.

    Permissions as for seeing the image in the admin:
    ``imagegen.view_generatedimage`` (or ``change``), and other users'
    images need ``imagegen.view_all_jobs`` too: 401 anonymous, 403 without,
    404 unknown, discarded or its file gone from storage. Answered with a
    private ``Cache-Control`` and an ``ETag`` (304 when unchanged); a 302 to
    the original while another request is still making the preview; 503
    with ``Retry-After`` when the storage or the database is unavailable.
    """
    user = request.user
    if not user.is_authenticated:
        return _plain(401, _("Log in to see images."))
    if not (
        user.has_perm("imagegen.view_generatedimage")
        or user.has_perm("imagegen.change_generatedimage")
    ):
        return _plain(403, _("Seeing images needs the permission “Can view generated image”."))
    image = GeneratedImage.objects.select_related("job").filter(pk=image_id).first()
    if image is None or not image.file:
        return _plain(404, _("No such image."))
    if not permissions.can_view_job(user, image.job):
        return _plain(403, _("This image belongs to another user."))
    etag = f'"{image.sha256[:32]}-{previews.PREVIEW_SIZE}"'
    cached = get_conditional_response(request, etag=etag)
    if cached is not None:
        return _preview_cached(cached, etag)
    try:
        data = services.thumbnails.preview_bytes(image)
    except services.thumbnails.OriginalMissingError:
        logger.warning("Preview of image %s: its file is missing from storage", image.pk)
        return _plain(404, _("The image's file is missing from storage."))
    except DATABASE_OUTAGE:
        raise  # answered by preview_outage
    except Exception as exc:
        logger.warning("Preview of image %s failed, storage unavailable? %r", image.pk, exc)
        response = _plain(503, _("The image storage is unavailable; try again shortly."))
        response["Retry-After"] = str(RETRY_AFTER)
        return response
    if data is None:  # another request is making it: the original meanwhile
        response = HttpResponseRedirect(image.file.url)
        add_never_cache_headers(response)
        return response
    return _preview_cached(HttpResponse(data, content_type="image/webp"), etag)


def _preview_cached(response: HttpResponse, etag: str) -> HttpResponse:
    response["ETag"] = etag
    patch_cache_control(response, private=True, max_age=PREVIEW_MAX_AGE)
    patch_vary_headers(response, ["Cookie"])
    return response


def _plain(status: int, message: str) -> HttpResponse:
    return HttpResponse(str(message), status=status, content_type="text/plain; charset=utf-8")

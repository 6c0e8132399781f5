"""The API's handlers: parse, check permissions, call the service layer, serialize.

Each handler is declared in the route table (:data:`api`) with what the
OpenAPI document says about it; the URLconf is built from the same table.
Permissions follow the admin: creating needs ``imagegen.add_generationjob``;
reading needs ``view`` (or ``change``) on jobs, and other users' jobs need
``imagegen.view_all_jobs`` (:mod:`imagegen.permissions`); a job the caller
may not see is 404, so ids of other users' jobs reveal nothing. A token
also needs each operation's ``scope`` (checked by the dispatcher, before
the handler runs: :func:`.auth.require_scope`).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime, time
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .. import conf, jsonparse, permissions, services
from ..choices import TERMINAL, Status
from ..models import GenerationJob, GenerationRun
from ..services import runs
from . import errors
from .errors import ApiError
from .pagination import Cursor, paginate
from .routing import Answer, Api, Param
from .serializers import job_data, jobs_queryset, run_data

api = Api()

ADD = "imagegen.add_generationjob"
VIEW = "imagegen.view_generationjob"
CHANGE = "imagegen.change_generationjob"

#: Largest request body, in bytes: a prompt at the longest provider limit,
#: JSON-escaped, plus sixteen long URLs fit many times over.
MAX_BODY_BYTES = 1024 * 1024
#: What an ``Idempotency-Key`` may be: 1-64 visible ASCII characters.
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,64}")
#: Where the API's keys live: apart from the admin's, Wagtail's and retries'.
IDEMPOTENCY_SOURCE = "api"
BODY_FIELDS = (
    "prompt",
    "mode",
    "resolution",
    "aspect_ratio",
    "reference_urls",
    "provider",
    "candidates",
)

# Parameters ------------------------------------------------------------------

JOB_ID = Param("job_id", "path", {"type": "string", "format": "uuid"}, "The job's id.", True)
STATUS = Param(
    "status",
    "query",
    {"type": "array", "items": {"type": "string", "enum": list(Status.values)}},
    "Only jobs in these statuses (repeat the parameter, or separate with commas).",
    explode=True,
)
CREATED_AFTER = Param(
    "created_after",
    "query",
    {"type": "string", "format": "date-time"},
    "Only jobs created at or after this time (ISO 8601; a date means its midnight, "
    "times without an offset are in the site's time zone).",
)
CREATED_BEFORE = Param(
    "created_before",
    "query",
    {"type": "string", "format": "date-time"},
    "Only jobs created before this time (same format as created_after).",
)
PAGE_SIZE = Param(
    "page_size",
    "query",
    # Lazily: the limits are settings (read when the document is built).
    lambda: {
        "type": "integer",
        "minimum": 1,
        "maximum": conf.get_setting("API_MAX_PAGE_SIZE"),
        "default": conf.get_setting("API_PAGE_SIZE"),
    },
    "Jobs per page.",
)
CURSOR = Param(
    "cursor",
    "query",
    {"type": "string"},
    "Opaque position from a page's next or previous link.",
)
IDEMPOTENCY = Param(
    "Idempotency-Key",
    "header",
    {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[\\x21-\\x7e]+$"},
    "Makes the request safe to repeat: the same key with the same body returns the "
    "first request's job or run (200) instead of creating another; with another body, "
    "409. Keys are per user and apart from the admin's: another user's key never "
    "returns their job.",
)

# Documented answers shared by several operations.
UNAUTHENTICATED = Answer(
    401,
    "No credentials, or a bad, revoked or expired token.",
    headers={
        "WWW-Authenticate": 'Bearer realm="imagegen" (error="invalid_token" for a bad token).'
    },
)
NOT_FOUND = Answer(404, "No such job, or one the caller may not see.")
READ_FORBIDDEN = Answer(
    403, "Missing imagegen.view_generationjob, or a token without the read scope."
)
UNAVAILABLE = Answer(
    503,
    "The database is unavailable (service_unavailable); try again after Retry-After.",
    headers={"Retry-After": "Seconds to wait before trying again."},
)


# Handlers --------------------------------------------------------------------


@api.operation(
    "POST",
    "jobs/",
    name="api-jobs",
    operation_id="createJob",
    summary="Create a job",
    description=(
        "Validates the settings against the provider's capabilities and the budgets, "
        "saves the job and submits it to the provider once the request's transaction "
        "commits. Poll the job's URL (Location) until is_terminal is true. With "
        "candidates 2 to 4, makes a run of that many jobs with these settings (one "
        "budget check for the run's total: all or nothing) and answers the run."
    ),
    parameters=(IDEMPOTENCY,),
    body="JobCreate",
    answers=(
        Answer(
            201,
            "Created: the job, or the run for candidates over 1.",
            "JobOrRun",
            headers={"Location": "The job's (or the run's) URL."},
        ),
        Answer(
            200,
            "The job or run an earlier request with this Idempotency-Key created.",
            "JobOrRun",
        ),
        Answer(
            400,
            "Invalid fields (validation_error), or a body that is not JSON or nests "
            "deeper than MAX_JSON_DEPTH (malformed_request).",
        ),
        UNAUTHENTICATED,
        Answer(402, "The job (or the whole run) would exceed a budget (budget_exceeded)."),
        Answer(
            403,
            "Missing imagegen.add_generationjob, a token without the generate scope "
            "(insufficient_scope), or a failed CSRF check.",
        ),
        Answer(409, "The Idempotency-Key was used with another body (idempotency_conflict)."),
        Answer(413, "The body is larger than 1 MiB."),
        Answer(415, "The body is not application/json."),
        UNAVAILABLE,
    ),
    permission=ADD,
    scope="generate",
)
def create_job(request: HttpRequest) -> JsonResponse:
    user = request.user
    if not user.has_perm(ADD):
        raise errors.permission_denied(
            ADD, _("Creating jobs needs the permission “imagegen.add_generationjob”.")
        )
    data = read_json(request)
    arguments = job_arguments(data)
    # Its type and range are the service's to check (runs.variations).
    candidates = data.get("candidates", 1)
    key = idempotency_key(request)
    try:
        started = runs.start(
            arguments,
            candidates=candidates,
            user=user,
            idempotency_key=key,
            idempotency_source=IDEMPOTENCY_SOURCE,
        )
    except ValidationError as exc:
        raise errors.from_validation_error(exc) from None
    if not started.created:
        # An earlier request with this key (or a concurrent one that won the
        # race) made it: the same answer as its, or a conflict.
        if not _same_request(started, arguments, candidates):
            raise _idempotency_conflict()
        return JsonResponse(_started_data(request, started), status=200)
    body = _started_data(request, started)
    response = JsonResponse(body, status=201)
    response["Location"] = body["url"]
    return response


@api.operation(
    "GET",
    "jobs/",
    name="api-jobs",
    operation_id="listJobs",
    summary="List jobs",
    description=(
        "The caller's jobs, newest first (everyone's with imagegen.view_all_jobs). "
        "Follow next and previous to page; they keep the filters."
    ),
    parameters=(STATUS, CREATED_AFTER, CREATED_BEFORE, PAGE_SIZE, CURSOR),
    answers=(
        Answer(200, "A page of jobs.", "JobPage"),
        Answer(400, "An invalid filter, page size or cursor (validation_error)."),
        UNAUTHENTICATED,
        READ_FORBIDDEN,
        UNAVAILABLE,
    ),
    permission=VIEW,
    scope="read",
)
def list_jobs(request: HttpRequest) -> JsonResponse:
    _require_view(request.user)
    query = request.GET
    problems: dict[str, list[str]] = {}
    statuses = _statuses(query, problems)
    created_after = _moment(query, CREATED_AFTER.name, problems)
    created_before = _moment(query, CREATED_BEFORE.name, problems)
    size = _page_size(query, problems)
    cursor = _cursor(query, problems)
    if problems:
        raise errors.validation_error(problems)
    jobs = permissions.visible_jobs(request.user)
    if statuses:
        jobs = jobs.filter(status__in=statuses)
    if created_after:
        jobs = jobs.filter(created_at__gte=created_after)
    if created_before:
        jobs = jobs.filter(created_at__lt=created_before)
    page = paginate(jobs_queryset(jobs), size, cursor)
    return JsonResponse(
        {
            "results": [job_data(job, request) for job in page.rows],
            "next": _page_link(request, page.next),
            "previous": _page_link(request, page.previous),
        }
    )


@api.operation(
    "GET",
    "jobs/<uuid:job_id>/",
    name="api-job",
    operation_id="getJob",
    summary="Read a job and its images",
    parameters=(JOB_ID,),
    answers=(
        Answer(200, "The job.", "Job"),
        UNAUTHENTICATED,
        READ_FORBIDDEN,
        NOT_FOUND,
        UNAVAILABLE,
    ),
    permission=VIEW,
    scope="read",
)
def get_job(request: HttpRequest, job_id: Any) -> JsonResponse:
    _require_view(request.user)
    return JsonResponse(job_data(_visible_job(request, job_id), request))


RUN_ID = Param("run_id", "path", {"type": "string", "format": "uuid"}, "The run's id.", True)


@api.operation(
    "GET",
    # Any text, so a malformed id is the API's 404 like an unknown one.
    "runs/<str:run_id>/",
    name="api-run",
    operation_id="getRun",
    summary="Read a run of candidates and its jobs",
    description=(
        "A run made by createJob with candidates over 1 (or by the admin's generate "
        "form: candidates or a comparison), its jobs as getJob shows them and their "
        "total estimated cost. Bulk fills are read with getFill."
    ),
    parameters=(RUN_ID,),
    answers=(
        Answer(200, "The run.", "Run"),
        UNAUTHENTICATED,
        READ_FORBIDDEN,
        Answer(404, "No such run, or another user's (without imagegen.view_all_jobs)."),
        UNAVAILABLE,
    ),
    permission=VIEW,
    scope="read",
)
def get_run(request: HttpRequest, run_id: Any) -> JsonResponse:
    _require_view(request.user)
    kinds = (GenerationRun.Kind.CANDIDATES, GenerationRun.Kind.COMPARE)
    run = _visible_run(request, run_id, kinds)
    if run is None:
        raise errors.not_found(_("No such run."))
    jobs = permissions.visible_jobs(request.user).filter(run=run)
    return JsonResponse(run_data(run, _run_jobs(jobs), request))


@api.operation(
    "POST",
    "jobs/<uuid:job_id>/cancel/",
    name="api-job-cancel",
    operation_id="cancelJob",
    summary="Cancel a job",
    description=(
        "Own jobs need imagegen.add_generationjob (or change); other users' jobs "
        "imagegen.cancel_any_job. Canceling a canceled job answers 200 again; a job "
        "that finished, or is storing its results, cannot be canceled (409)."
    ),
    parameters=(JOB_ID,),
    answers=(
        Answer(200, "The canceled job.", "Job"),
        UNAUTHENTICATED,
        Answer(
            403,
            "Missing permission to cancel this job, a token without the cancel scope "
            "(insufficient_scope), or a failed CSRF check.",
        ),
        NOT_FOUND,
        Answer(409, "The job has finished or is storing its results (not_cancelable)."),
        UNAVAILABLE,
    ),
    permission=ADD,
    scope="cancel",
)
def cancel_job(request: HttpRequest, job_id: Any) -> JsonResponse:
    user = request.user
    job = _visible_job(request, job_id)
    if not permissions.can_cancel_job(user, job):
        own = job.created_by_id == user.pk
        raise errors.permission_denied(
            ADD if own else permissions.CANCEL_ANY,
            _("Canceling your jobs needs the permission “imagegen.add_generationjob”.")
            if own
            else _("Canceling other users' jobs needs the permission “imagegen.cancel_any_job”."),
        )
    if job.status != Status.CANCELED:
        services.cancel(job.pk)
        job = _visible_job(request, job_id)
    if job.status != Status.CANCELED:
        raise ApiError(
            "not_cancelable",
            _("The job has finished (%(status)s); there is nothing to cancel.")
            % {"status": job.status}
            if job.status in TERMINAL
            else _("The job is storing its results; it can no longer be canceled."),
            status=job.status,
        )
    return JsonResponse(job_data(job, request))


@api.operation(
    "GET",
    "openapi.json",
    name="api-openapi",
    operation_id="getOpenApiDocument",
    summary="This API's OpenAPI 3.1 document",
    description="Public: it describes the API and holds no data.",
    answers=(Answer(200, "The document.", "OpenApiDocument"),),
    authenticated=False,
)
def openapi_document(request: HttpRequest) -> JsonResponse:
    from .openapi import document

    return JsonResponse(document(), json_dumps_params={"indent": 2})


FILL_ID = Param("run_id", "path", {"type": "string", "format": "uuid"}, "The fill's id.", True)
FILL_FIELDS = ("field", "ids", "missing", "limit", "dry_run", "all_or_none")


@api.operation(
    "POST",
    "fills/",
    name="api-fills",
    operation_id="createFill",
    summary="Bulk fill a model's image field",
    description=(
        "Generates a declared image field (docs/fields.md) for a model's objects: "
        "one job per object, by default only where the field is empty. The body: "
        "field (app_label.Model.field, required), ids (the objects; default all), "
        "missing (default true), limit, dry_run (only the plan) and all_or_none "
        "(make no job unless the budgets cover all; default: make those they cover). "
        "The answer's plan gives the jobs, the price, each budget's money left and "
        "the objects left out (trimmed: over budget; skipped: with a reason)."
    ),
    parameters=(IDEMPOTENCY,),
    body="FillCreate",
    answers=(
        Answer(201, "Started: the fill, its jobs and the plan.", "FillStarted"),
        Answer(
            200,
            "The plan (dry_run), or the fill an earlier request with this key made.",
            "FillAnswer",
        ),
        Answer(400, "Invalid fields, an undeclared field, or nothing to fill (validation_error)."),
        UNAUTHENTICATED,
        Answer(402, "The budgets cover no job, or not all with all_or_none (budget_exceeded)."),
        Answer(
            403,
            "Missing imagegen.add_generationjob or the change permission on the model, "
            "a token without the generate scope, or a failed CSRF check.",
        ),
        Answer(413, "The body is larger than 1 MiB."),
        Answer(415, "The body is not application/json."),
        UNAVAILABLE,
    ),
    permission=ADD,
    scope="generate",
)
def create_fill(request: HttpRequest) -> JsonResponse:
    from ..services import field_jobs, fill

    data = read_json(request)
    arguments = _fill_arguments(data)
    try:
        declaration = fill.resolve(arguments.pop("field"))
    except ValidationError as exc:
        raise errors.validation_error({"field": exc.messages}) from None
    model = declaration.model
    if not field_jobs.may_generate(request.user, model):
        raise errors.permission_denied(
            ADD,
            _("Bulk fill needs “imagegen.add_generationjob” and the change permission on %(m)s.")
            % {"m": model._meta.verbose_name_plural},
        )
    ids = arguments.pop("ids")
    objects = model._default_manager.all()
    if ids is not None:
        objects = objects.filter(pk__in=ids)
    dry_run, all_or_none = arguments.pop("dry_run"), arguments.pop("all_or_none")
    key = idempotency_key(request)
    try:
        if dry_run:
            found = fill.plan(objects, declaration.field_name, user=request.user, **arguments)
            return JsonResponse({"plan": found.as_dict()})
        started = fill.start(
            objects,
            declaration.field_name,
            user=request.user,
            trim=not all_or_none,
            key=hashlib.sha256(key.encode()).hexdigest()[: fill.MAX_KEY] if key else "",
            model=model,
            **arguments,
        )
    except ValidationError as exc:
        error = errors.from_validation_error(exc)
        if error.code == "budget_exceeded":
            found = fill.plan(objects, declaration.field_name, user=request.user, **arguments)
            error.extra["plan"] = found.as_dict()
        raise error from None
    body = _fill_data(request, started.run)
    body["plan"] = started.plan.as_dict() if started.plan else None
    return JsonResponse(body, status=201 if started.created else 200)


@api.operation(
    "GET",
    # Any text, so a malformed id is the API's 404 like an unknown one.
    "fills/<str:run_id>/",
    name="api-fill",
    operation_id="getFill",
    summary="Read a bulk fill's progress",
    description=(
        "Counts of the fill's jobs by status and by outcome (attached, kept, "
        "discarded; pending_review), and each object's latest job."
    ),
    parameters=(FILL_ID,),
    answers=(
        Answer(200, "The fill.", "Fill"),
        UNAUTHENTICATED,
        READ_FORBIDDEN,
        Answer(404, "No such fill, or another user's (without imagegen.view_all_jobs)."),
        UNAVAILABLE,
    ),
    permission=VIEW,
    scope="read",
)
def get_fill(request: HttpRequest, run_id: Any) -> JsonResponse:
    _require_view(request.user)
    run = _visible_run(request, run_id, (GenerationRun.Kind.FILL,))
    if run is None:
        raise errors.not_found(_("No such fill."))
    return JsonResponse(_fill_data(request, run))


def _visible_run(request: HttpRequest, run_id: Any, kinds: tuple[str, ...]) -> Any:
    """The run of one of ``kinds`` with this id that the caller may see, or
    None (unknown, malformed, another kind, or another user's without
    ``view_all_jobs``: one answer for all, so ids reveal nothing)."""
    found = GenerationRun.objects.filter(kind__in=kinds)
    if not permissions.sees_all(request.user):
        found = found.filter(created_by=request.user.pk)
    try:
        return found.filter(pk=uuid.UUID(str(run_id))).first()
    except ValueError:
        return None


def _fill_arguments(data: Any) -> dict[str, Any]:
    """``fill.start()``'s arguments from a ``createFill`` body, types checked."""
    if not isinstance(data, dict):
        raise errors.validation_error({"non_field_errors": [_("The body must be a JSON object.")]})
    problems: dict[str, list[str]] = {}
    for name in sorted(set(data) - set(FILL_FIELDS)):
        problems.setdefault(name, []).append(_("Unknown field."))
    field = data.get("field")
    if not isinstance(field, str) or not field:
        problems.setdefault("field", []).append(_("Give the field as app_label.Model.field."))
    ids = data.get("ids")
    if ids is not None and (
        not isinstance(ids, list) or not ids or not all(isinstance(i, str | int) for i in ids)
    ):
        problems.setdefault("ids", []).append(_("A non-empty list of object ids."))
    limit = data.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        problems.setdefault("limit", []).append(_("A whole number from 1."))
    flags = {"missing": True, "dry_run": False, "all_or_none": False}
    for name in flags:
        if name in data and not isinstance(data[name], bool):
            problems.setdefault(name, []).append(_("true or false."))
    if problems:
        raise errors.validation_error(problems)
    return {
        "field": field,
        "ids": ids,
        "limit": limit,
        **{name: data.get(name, default) for name, default in flags.items()},
    }


def _fill_data(request: HttpRequest, run: Any) -> dict[str, Any]:
    from django.urls import reverse

    from ..services import fill

    return {
        "id": str(run.pk),
        "url": request.build_absolute_uri(reverse("imagegen:api-fill", args=[run.pk])),
        "field": f"{run.target_content_type.app_label}."
        f"{run.target_content_type.model_class().__name__}.{run.target_field}",
        "created_at": run.created_at.isoformat(),
        "review": bool((run.settings or {}).get("review")),
        "summary": fill.summary(run),
        "jobs": [
            {
                "object_id": row.object_id,
                "job": str(row.job.pk),
                "status": row.job.status,
                "error_message": row.job.error_text,
                "outcome": row.outcome,
            }
            for row in fill.rows(run)
        ],
    }


# Parsing ---------------------------------------------------------------------


def read_json(request: HttpRequest) -> Any:
    """The request's JSON body; 415, 413 or 400 (not UTF-8, not JSON, nested
    deeper than ``MAX_JSON_DEPTH``) when it is not one."""
    content_type = (request.content_type or "").lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise ApiError(
            "unsupported_media_type", _("Send the body as JSON (Content-Type: application/json).")
        )
    too_large = ApiError(
        "payload_too_large",
        ngettext(
            "The body is larger than %(n)d byte.",
            "The body is larger than %(n)d bytes.",
            MAX_BODY_BYTES,
        )
        % {"n": MAX_BODY_BYTES},
    )
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        raise too_large
    body = request.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise too_large
    try:
        # Nesting bounded (MAX_JSON_DEPTH): a deep document is a 400, never a
        # RecursionError's 500.
        return jsonparse.loads(body)
    except jsonparse.MalformedJSON as exc:
        # The reason names a position or the bound, never the body's content.
        raise ApiError(
            "malformed_request", _("The body is not valid JSON: %(reason)s.") % {"reason": exc}
        ) from None


def job_arguments(data: Any) -> dict[str, Any]:
    """Keyword arguments for :func:`imagegen.services.create_job` from a
    ``JobCreate`` body (all but ``candidates``, the run's size). Types are
    checked here; values (modes, limits, URLs, budgets) by the service, as
    for the admin's form."""
    if not isinstance(data, dict):
        raise ApiError("malformed_request", _("The body must be a JSON object."))
    problems: dict[str, list[str]] = {}

    def refuse(name: str, message: str) -> None:
        problems.setdefault(name, []).append(message)

    for name in data:
        if name not in BODY_FIELDS:
            refuse(name, _("Unknown field."))
    if "prompt" not in data:
        refuse("prompt", _("This field is required."))
    for name in ("prompt", "mode", "resolution", "aspect_ratio", "provider"):
        value = data.get(name)
        if value is None and name != "prompt":
            continue
        if not isinstance(value, str):
            if name in data:
                refuse(name, _("Must be a string."))
        elif not _encodable(value):
            refuse(name, _("Must be valid Unicode text."))
    urls = data.get("reference_urls")
    if urls is None:
        urls = []
    elif not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
        refuse("reference_urls", _("Must be a list of strings."))
    elif not all(_encodable(url) and url.isprintable() for url in urls):
        refuse("reference_urls", _("URLs may not contain control characters."))
    provider = data.get("provider")
    if isinstance(provider, str) and "provider" not in problems:
        choices = conf.configured_providers()
        if provider not in choices:
            refuse(
                "provider",
                _("Unknown provider %(name)r; choose one of: %(choices)s.")
                % {"name": provider, "choices": ", ".join(choices)},
            )
    if problems:
        raise errors.validation_error(problems)
    defaults = {
        "mode": "image-to-image" if urls else "text-to-image",
        "resolution": "1k",
        "aspect_ratio": "auto",
    }
    # Only a missing (or null) value takes the default: "" is the service's
    # "unsupported value", as the schema's enums say.
    chosen = {
        name: default if data.get(name) is None else data[name]
        for name, default in defaults.items()
    }
    return {
        "prompt": data["prompt"],
        **chosen,
        "reference_urls": [url.strip() for url in urls],
        "provider": provider,
    }


def idempotency_key(request: HttpRequest) -> str:
    """The request's ``Idempotency-Key`` ("" without one), checked.

    The service scopes it to the user and :data:`IDEMPOTENCY_SOURCE`
    (:func:`imagegen.services.jobs.idempotency_scope`): one client's key can
    neither return nor reveal another's job, and never meets a key of the
    admin's forms or of a retry.
    """
    value = request.headers.get(IDEMPOTENCY.name)
    if value is None:
        return ""
    if not IDEMPOTENCY_KEY.fullmatch(value):
        raise errors.validation_error(
            {IDEMPOTENCY.name: [_("Use 1 to 64 visible ASCII characters.")]}
        )
    return value


def _started_data(request: HttpRequest, started: runs.Started) -> dict[str, Any]:
    """What ``createJob`` answers: the job as ``getJob`` shows it, or the run
    as ``getRun`` does (read back with the queries the serializers expect)."""
    jobs = _run_jobs(GenerationJob.objects.filter(pk__in=[job.pk for job in started.jobs]))
    if started.run is None:
        return job_data(jobs[0], request)
    return run_data(started.run, jobs, request)


def _run_jobs(jobs: QuerySet[GenerationJob]) -> list[GenerationJob]:
    # Made in one transaction, maybe at one instant: the id settles ties.
    return list(jobs_queryset(jobs).order_by("created_at", "pk"))


def _same_request(started: runs.Started, arguments: dict[str, Any], candidates: int) -> bool:
    """Whether what a key found (the caller's own: keys are scoped to them)
    was made by this very request: as many candidates, the same settings."""
    kind = started.run.kind if started.run else None
    return (
        kind == (GenerationRun.Kind.CANDIDATES if candidates > 1 else None)
        and len(started.jobs) == candidates
        and all(_same_settings(job, arguments) for job in started.jobs)
    )


def _same_settings(job: GenerationJob, arguments: dict[str, Any]) -> bool:
    provider = arguments["provider"] or conf.get_setting("PROVIDER")
    return (
        job.prompt == arguments["prompt"]
        and job.mode == arguments["mode"]
        and job.resolution == arguments["resolution"]
        and job.aspect_ratio == arguments["aspect_ratio"]
        and list(job.reference_urls) == arguments["reference_urls"]
        and job.provider == provider
    )


def _idempotency_conflict() -> ApiError:
    return ApiError(
        "idempotency_conflict",
        _("This Idempotency-Key was already used with other parameters; use a new key."),
    )


def _require_view(user: Any) -> None:
    if not (user.has_perm(VIEW) or user.has_perm(CHANGE)):
        raise errors.permission_denied(
            VIEW, _("Seeing jobs needs the permission “imagegen.view_generationjob”.")
        )


def _visible_job(request: HttpRequest, job_id: Any) -> GenerationJob:
    jobs: QuerySet[GenerationJob] = permissions.visible_jobs(request.user)
    job = jobs_queryset(jobs.filter(pk=job_id)).first()
    if job is None:
        raise errors.not_found()
    return job


def _statuses(query: Any, problems: dict[str, list[str]]) -> list[str]:
    values = [v for raw in query.getlist(STATUS.name) for v in raw.split(",") if v]
    unknown = sorted(set(values) - set(Status.values))
    if unknown:
        problems[STATUS.name] = [
            _("Unknown status %(value)r; use %(choices)s.")
            % {"value": value, "choices": ", ".join(Status.values)}
            for value in unknown
        ]
    return values


def _moment(query: Any, name: str, problems: dict[str, list[str]]) -> datetime | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        value = parse_datetime(raw)
        if value is None and (day := parse_date(raw)) is not None:
            value = datetime.combine(day, time.min)
        if value is None:
            raise ValueError(raw)
        if timezone.is_naive(value):
            value = timezone.make_aware(value)
        # Out-of-range years (0001-01-01T00:00+01:00) fail here, not in the database.
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        problems[name] = [_("Enter an ISO 8601 date and time, e.g. 2026-01-31T12:00:00Z.")]
        return None


def _page_size(query: Any, problems: dict[str, list[str]]) -> int:
    largest = int(conf.get_setting("API_MAX_PAGE_SIZE"))
    raw = query.get(PAGE_SIZE.name)
    if raw is None:
        return min(int(conf.get_setting("API_PAGE_SIZE")), largest)
    value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else 0
    if not 1 <= value <= largest:
        problems[PAGE_SIZE.name] = [_("Enter a whole number from 1 to %(max)d.") % {"max": largest}]
    return value


def _cursor(query: Any, problems: dict[str, list[str]]) -> Cursor | None:
    raw = query.get(CURSOR.name)
    if not raw:
        return None
    try:
        return Cursor.decode(raw)
    except ValueError:
        problems[CURSOR.name] = [_("Invalid cursor: use a next or previous link as given.")]
        return None


def _page_link(request: HttpRequest, cursor: Cursor | None) -> str | None:
    if cursor is None:
        return None
    params = [(k, v) for k, values in request.GET.lists() for v in values if k != CURSOR.name]
    params.append((CURSOR.name, cursor.encode()))
    return request.build_absolute_uri(f"{request.path}?{urlencode(params)}")


def _encodable(text: str) -> bool:
    """False for lone surrogates (JSON allows ``"\\ud800"``), which no database stores."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

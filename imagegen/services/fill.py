"""Bulk fill: generate a declared image field (imagegen.fields) for many objects.

One fill is one :class:`~imagegen.models.GenerationRun` (kind ``fill``)
with one job per object, made through :mod:`.field_jobs`. Three steps:

- :func:`plan`: which objects get a job (by default only those whose field
  is empty), how many jobs, the total price, each budget's money left, and
  the objects the budgets leave out (trimmed);
- :func:`start`: the run and its jobs, planned again and created under the
  budgets' lock in one transaction, so the budget cannot change between
  the count and the jobs: with ``trim`` the jobs that fit are made and the
  rest reported, without it nothing is made when not all fit;
- attaching: when a job succeeds (the ``job_succeeded`` receiver below) its
  image goes into the object's field and the object is saved, with an
  admin ``LogEntry`` (the object's history), or, when the field's
  declaration says ``review``, it waits for an editor's :func:`attach` or
  :func:`discard` (the review queue: :func:`pending_review`).

What became of each job is recorded in the run's ``settings["outcomes"]``
(``attached``, ``discarded``, ``kept``: the object had an image by then),
written under a lock on the run, so a job is attached once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .. import conf, signals
from ..choices import Status
from ..fields.registry import FieldDeclaration, declaration_for
from ..models import GeneratedImage, GenerationJob, GenerationRun
from . import budgets, field_jobs, reviews
from .jobs import retry as retry_job

logger = logging.getLogger("imagegen")

#: Outcomes of a succeeded job of a fill (``run.settings["outcomes"]``).
ATTACHED, DISCARDED, KEPT = "attached", "discarded", "kept"
#: The idempotency key of a start request: a form's or a client's.
MAX_KEY = 40


@dataclass(frozen=True)
class Skipped:
    """An object that gets no job, and why."""

    obj: models.Model
    reason: str


@dataclass(frozen=True)
class FillPlan:
    """What a fill would make; shown before it is made (the confirmation
    page, the command's first lines, the API's dry run)."""

    declaration: FieldDeclaration
    provider: str
    resolution: str
    #: Price of one job; None when no price is configured.
    unit_price: Decimal | None
    currency: str
    #: The objects that get a job, in order.
    objects: list[models.Model]
    #: Objects left out because a budget does not cover them.
    trimmed: list[models.Model]
    #: Objects that get no job for another reason: the field has an image
    #: (``missing``), the prompt renders empty, past ``limit``.
    skipped: list[Skipped]
    #: Every budget that applies, before the fill.
    budgets: list[budgets.BudgetState]
    review: bool
    missing: bool = True
    limit: int | None = None
    messages: list[str] = field(default_factory=list)

    @property
    def price(self) -> Decimal | None:
        """Price of the jobs that would be made."""
        return None if self.unit_price is None else self.unit_price * len(self.objects)

    @property
    def requested(self) -> int:
        """Objects that would get a job without the budgets."""
        return len(self.objects) + len(self.trimmed)

    def budget_message(self) -> str:
        """Why objects are trimmed ("" when none are)."""
        if not self.trimmed:
            return ""
        return ngettext(
            "The budgets cover %(n)d of %(total)d images: %(left)d object gets none.",
            "The budgets cover %(n)d of %(total)d images: %(left)d objects get none.",
            len(self.trimmed),
        ) % {"n": len(self.objects), "total": self.requested, "left": len(self.trimmed)}

    def as_dict(self) -> dict[str, Any]:
        """The plan as JSON (the API's answer, the command's ``--json``)."""
        return {
            "field": self.declaration.key,
            "provider": self.provider,
            "resolution": self.resolution,
            "review": self.review,
            "missing": self.missing,
            "limit": self.limit,
            "jobs": len(self.objects),
            "requested": self.requested,
            "currency": self.currency,
            "unit_price": _money(self.unit_price),
            "price": _money(self.price),
            "budgets": [
                {
                    "key": state.key,
                    "label": state.label,
                    "limit": _money(state.limit),
                    "spent": _money(state.spent),
                    "left": _money(state.left),
                }
                for state in self.budgets
            ],
            "objects": [str(obj.pk) for obj in self.objects],
            "trimmed": [str(obj.pk) for obj in self.trimmed],
            "skipped": [{"id": str(s.obj.pk), "reason": s.reason} for s in self.skipped],
        }


def resolve(key: str) -> FieldDeclaration:
    """The declaration of ``"app_label.Model.field"``; ValidationError if
    there is none (an unknown model, an undeclared field)."""
    parts = key.split(".") if isinstance(key, str) else []
    if len(parts) != 3 or not all(parts):
        raise ValidationError(
            _("%(key)r is not app_label.Model.field.") % {"key": key}, code="invalid_field"
        )
    try:
        model = apps.get_model(parts[0], parts[1])
    except LookupError:
        raise ValidationError(
            _("There is no model %(model)s.") % {"model": f"{parts[0]}.{parts[1]}"},
            code="invalid_field",
        ) from None
    declaration = declaration_for(model, parts[2])
    if declaration is None:
        raise ValidationError(
            _("%(key)s is not a field imagegen generates.") % {"key": key}, code="not_declared"
        )
    return declaration


def plan(
    objects: models.QuerySet | Iterable[models.Model],
    field_name: str,
    *,
    user: Any,
    missing: bool = True,
    limit: int | None = None,
    model: type[models.Model] | None = None,
) -> FillPlan:
    """What filling ``field_name`` of ``objects`` (a queryset, taken in
    primary key order) would make for ``user``: one job per object whose
    field is empty (every object with ``missing=False``), at most ``limit``,
    as many as the budgets cover.

    Raises ValidationError for a field that is not declared.
    """
    if isinstance(objects, models.QuerySet):
        model = model or objects.model
        objects = objects.order_by("pk")
    objects = list(objects)
    model = model or (type(objects[0]) if objects else None)
    if model is None:
        raise ValidationError(_("Select at least one object."), code="no_objects")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValidationError({"limit": _("The limit must be a whole number from 1.")})
    request = field_jobs.plan(model, field_name, candidates=1)
    declaration = request.declaration
    target = declaration.target
    eligible: list[models.Model] = []
    skipped: list[Skipped] = []
    for obj in objects:
        if missing and not target.is_empty(obj):
            skipped.append(Skipped(obj, _("has an image")))
        elif limit is not None and len(eligible) >= limit:
            skipped.append(Skipped(obj, _("past the limit")))
        elif not field_jobs.plan(obj, field_name, candidates=1).prompt.strip():
            skipped.append(Skipped(obj, _("the prompt template renders empty")))
        else:
            eligible.append(obj)
    states = budgets.states(user)
    fits = len(eligible)
    if request.unit_price:
        for state in states:
            fits = min(fits, int(state.left // request.unit_price))
    return FillPlan(
        declaration=declaration,
        provider=request.provider,
        resolution=request.resolution,
        unit_price=request.unit_price,
        currency=conf.get_setting("CURRENCY"),
        objects=eligible[:fits],
        trimmed=eligible[fits:],
        skipped=skipped,
        budgets=states,
        review=declaration.review,
        missing=missing,
        limit=limit,
    )


@dataclass(frozen=True)
class FillStart:
    """A started fill: its run, its jobs, and the plan it was made from."""

    run: GenerationRun
    plan: FillPlan | None
    jobs: list[GenerationJob]
    #: False when an earlier request with the same key made the run.
    created: bool = True


def start(
    objects: models.QuerySet | Iterable[models.Model],
    field_name: str,
    *,
    user: Any,
    missing: bool = True,
    limit: int | None = None,
    trim: bool = True,
    key: str = "",
    model: type[models.Model] | None = None,
) -> FillStart:
    """Make the run and one job per planned object (:func:`plan`), in one
    transaction under the budgets' lock: the jobs made are exactly those the
    plan says fit. Objects the budgets leave out are reported in the plan
    (``trimmed``); with ``trim=False`` nothing is made then (ValidationError).

    The same ``key`` (at most :data:`MAX_KEY` characters) from the same user
    returns the first request's run. Raises ValidationError when nothing
    would be made.
    """
    if not isinstance(key, str) or len(key) > MAX_KEY or not key.isprintable():
        raise ValidationError(
            {
                "key": ngettext(
                    "The request key must be at most %(max)d character.",
                    "The request key must be at most %(max)d characters.",
                    MAX_KEY,
                )
                % {"max": MAX_KEY}
            }
        )
    with transaction.atomic():
        # The budgets' lock (what budgets.check takes), held to the commit:
        # no other job can spend what the plan counts on.
        budgets.lock()
        if key and (run := _run_for_key(user, key)) is not None:
            return FillStart(run, None, list(run.jobs.order_by("created_at")), created=False)
        found = plan(objects, field_name, user=user, missing=missing, limit=limit, model=model)
        if found.trimmed and not trim:
            raise ValidationError(found.budget_message(), code="budget_exceeded")
        if not found.objects:
            raise ValidationError(
                found.budget_message()
                or _("There is nothing to generate: no object needs an image."),
                code="budget_exceeded" if found.trimmed else "nothing_to_fill",
            )
        declaration = found.declaration
        run = GenerationRun.objects.create(
            kind=GenerationRun.Kind.FILL,
            created_by=user if getattr(user, "is_authenticated", False) else None,
            target_content_type=ContentType.objects.get_for_model(declaration.model),
            target_field=declaration.field_name,
            settings={
                "key": key,
                "missing": missing,
                "limit": limit,
                "review": found.review,
                "requested": found.requested,
                "trimmed": [str(obj.pk) for obj in found.trimmed],
                "outcomes": {},
            },
        )
        jobs = []
        for obj in found.objects:
            made = field_jobs.create_field_jobs(
                obj,
                declaration.field_name,
                user=user,
                candidates=1,
                idempotency_key=_job_key(key, obj) if key else "",
                run=run,
            )
            jobs.extend(made)
    return FillStart(run, found, jobs)


def retry(job: GenerationJob, *, user: Any) -> GenerationJob:
    """Retry a failed or expired job of a fill: a new job for the same object
    and field, in the same run (ValidationError like
    :func:`imagegen.services.jobs.retry`)."""
    if job.run is None or job.run.kind != GenerationRun.Kind.FILL:
        raise ValidationError(_("This job is not part of a bulk fill."), code="not_fill")
    with transaction.atomic():
        new, _created = retry_job(job, user=user)
        GenerationJob.objects.filter(pk=new.pk, run__isnull=True).update(
            run=job.run,
            target_field=job.target_field,
            target_content_type=job.target_content_type,
            target_object_id=job.target_object_id,
        )
    new.refresh_from_db()
    return new


def attach(job: GenerationJob, *, user: Any = None) -> str:
    """Put ``job``'s image into its object's field and save the object, with
    a ``LogEntry`` for ``user`` (the run's creator when None). Returns the
    job's outcome: :data:`ATTACHED`, or what an earlier call recorded.

    On a field that was filled ``missing``-only, an object that got an image
    meanwhile keeps it (:data:`KEPT`). Raises ValidationError for a job that
    has not succeeded or is no job of a fill.
    """
    run = _fill_run(job)
    user = user if getattr(user, "is_authenticated", False) else run.created_by
    with transaction.atomic():
        run = GenerationRun.objects.select_for_update().get(pk=run.pk)
        outcomes = run.settings.setdefault("outcomes", {})
        if str(job.pk) in outcomes:
            return outcomes[str(job.pk)]
        model = run.target_content_type.model_class()
        obj = model._default_manager.select_for_update().filter(pk=job.target_object_id).first()
        if obj is None:
            raise ValidationError(_("The object of this job no longer exists."), code="no_object")
        declaration = declaration_for(model, run.target_field)
        if declaration is None:
            raise ValidationError(
                _("%(field)s is no longer a field imagegen generates.")
                % {"field": run.target_field},
                code="not_declared",
            )
        if run.settings.get("missing", True) and not declaration.target.is_empty(obj):
            outcome = KEPT
        else:
            asset = field_jobs.fill_from_job(obj, run.target_field, job, 0, user=run.created_by)
            obj.save()
            if isinstance(asset, GeneratedImage):
                reviews.approve(asset, user=user)
            _log_change(user, obj, declaration)
            outcome = ATTACHED
        outcomes[str(job.pk)] = outcome
        run.save(update_fields=["settings"])
    return outcome


def discard(job: GenerationJob, *, user: Any = None) -> str:
    """Leave ``job``'s image out of the field (the review queue's "discard");
    a :class:`~imagegen.models.GeneratedImage` is discarded too."""
    run = _fill_run(job)
    with transaction.atomic():
        run = GenerationRun.objects.select_for_update().get(pk=run.pk)
        outcomes = run.settings.setdefault("outcomes", {})
        if str(job.pk) in outcomes:
            return outcomes[str(job.pk)]
        for asset in field_jobs.candidates(job):
            if isinstance(asset, GeneratedImage):
                reviews.discard(asset, user=user)
        outcomes[str(job.pk)] = DISCARDED
        run.save(update_fields=["settings"])
    return DISCARDED


def pending_review(run: GenerationRun) -> list[GenerationJob]:
    """Succeeded jobs of ``run`` whose image waits for an editor."""
    decided = set((run.settings or {}).get("outcomes", {}))
    return [
        job
        for job in run.jobs.filter(status=Status.SUCCEEDED).order_by("created_at")
        if str(job.pk) not in decided
    ]


def attach_pending(run: GenerationRun) -> int:
    """Attach every succeeded job not attached yet, unless the run waits for
    review (what the job_succeeded receiver does, for a receiver that never
    ran: a worker that died after storing the image). Returns how many."""
    if (run.settings or {}).get("review"):
        return 0
    done = 0
    for job in pending_review(run):
        try:
            done += attach(job) == ATTACHED
        except ValidationError as exc:
            logger.warning("Bulk fill: job %s not attached: %s", job.pk, exc)
    return done


@dataclass(frozen=True)
class Row:
    """One object of a fill and its latest job."""

    object_id: str
    object: models.Model | None
    job: GenerationJob
    outcome: str

    @property
    def retryable(self) -> bool:
        return self.job.status in (Status.FAILED, Status.EXPIRED)

    @property
    def reviewable(self) -> bool:
        return self.job.status == Status.SUCCEEDED and not self.outcome


def rows(run: GenerationRun) -> list[Row]:
    """The run's objects, each with its latest job (a retry replaces the
    failed one), in the order the jobs were made."""
    latest: dict[str, GenerationJob] = {}
    for job in run.jobs.order_by("created_at"):
        latest[job.target_object_id] = job
    model = run.target_content_type.model_class() if run.target_content_type else None
    found = model._default_manager.in_bulk(list(latest)) if model else {}
    by_id = {str(pk): obj for pk, obj in found.items()}
    outcomes = (run.settings or {}).get("outcomes", {})
    return [
        Row(object_id, by_id.get(object_id), job, outcomes.get(str(job.pk), ""))
        for object_id, job in latest.items()
    ]


def summary(run: GenerationRun) -> dict[str, Any]:
    """Counts of a run's latest jobs by status, and by outcome."""
    counts: dict[str, int] = {}
    outcomes: dict[str, int] = {}
    for row in rows(run):
        counts[row.job.status] = counts.get(row.job.status, 0) + 1
        if row.outcome:
            outcomes[row.outcome] = outcomes.get(row.outcome, 0) + 1
    total = sum(counts.values())
    finished = sum(counts.get(status, 0) for status in (Status.SUCCEEDED, Status.FAILED))
    finished += counts.get(Status.CANCELED, 0) + counts.get(Status.EXPIRED, 0)
    return {
        "total": total,
        "finished": finished,
        "statuses": counts,
        "outcomes": outcomes,
        "pending_review": len(pending_review(run)) if (run.settings or {}).get("review") else 0,
        "trimmed": len((run.settings or {}).get("trimmed", [])),
    }


def _fill_run(job: GenerationJob) -> GenerationRun:
    run = job.run
    if run is None or run.kind != GenerationRun.Kind.FILL or run.target_content_type is None:
        raise ValidationError(_("This job is not part of a bulk fill."), code="not_fill")
    if job.status != Status.SUCCEEDED:
        raise ValidationError(
            _("The job has not succeeded (it is %(status)s).")
            % {"status": job.get_status_display()},
            code="not_succeeded",
        )
    return run


def _run_for_key(user: Any, key: str) -> GenerationRun | None:
    owner = user if getattr(user, "is_authenticated", False) else None
    return GenerationRun.objects.filter(
        kind=GenerationRun.Kind.FILL, created_by=owner, settings__key=key
    ).first()


def _job_key(key: str, obj: models.Model) -> str:
    pk = str(obj.pk)
    if len(pk) > field_jobs._MAX_KEY - len(key) - 6:
        pk = hashlib.sha256(pk.encode()).hexdigest()[:32]
    return f"fill:{key}:{pk}"


def _log_change(user: Any, obj: models.Model, declaration: FieldDeclaration) -> None:
    if user is None or not apps.is_installed("django.contrib.admin"):
        return  # a LogEntry names a user: a fill started without one has only its jobs
    from django.contrib.admin.models import CHANGE, LogEntry

    fields = [str(declaration.field.verbose_name)]
    LogEntry.objects.log_actions(
        user_id=user.pk,
        queryset=[obj],
        action_flag=CHANGE,
        change_message=[{"changed": {"fields": fields}}],
        single_object=True,
    )


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(budgets.COST_QUANTUM))


def _job_succeeded(sender: Any, job: GenerationJob, **kwargs: Any) -> None:
    """Attach a fill's image as soon as its job succeeded, unless it waits for review."""
    if job.run_id is None or not job.target_field:
        return
    run = GenerationRun.objects.filter(pk=job.run_id, kind=GenerationRun.Kind.FILL).first()
    if run is None or (run.settings or {}).get("review"):
        return
    try:
        attach(job)
    except Exception:
        # The batch page offers to attach it; the signal must not fail the worker.
        logger.exception("Bulk fill: could not attach the image of job %s", job.pk)


def connect() -> None:
    """Attach fill results as their jobs succeed (called by the app's ready())."""
    signals.job_succeeded.connect(_job_succeeded, dispatch_uid="imagegen.fill.attach")

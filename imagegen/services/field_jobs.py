"""Jobs made for a model's field (imagegen.fields): plan, create, list, link, fill.

A field job is an ordinary job whose target is the object and whose
``target_field`` names the field, so the field's history
(:func:`jobs_for_field`) lists it whether or not the editor waited for it.
A request makes one job per candidate (the declaration's ``candidates``),
all or none: a budget refusing the third leaves no job.

Add forms: the object has no id yet. Its jobs keep the model and field with
an empty object id (:func:`unlinked_jobs` finds a user's own, e.g. to show
"generating…" when the add form is reloaded), and :func:`link_jobs`, called
once the form has saved the object, gives them its id; jobs never linked
(the editor left the add form) stay in the job list as the user's.

Nothing here writes to the object: :func:`fill_from_job` sets the field in
memory, and saving the object (the admin form, bulk fill) stores it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .. import conf
from ..adapters import get_adapter
from ..choices import Resolution, Status
from ..exceptions import ImagegenConfigurationError
from ..fields import prompts
from ..fields.registry import MAX_CANDIDATES, FieldDeclaration, declaration_for
from ..models import GenerationJob, GenerationRun
from ..providers import get_provider
from .alt_text import require_alt_text
from .jobs import get_or_create_job

#: The idempotency source of field requests (services.jobs.idempotency_scope).
IDEMPOTENCY_SOURCE = "field"
#: What a request may change from the declaration's defaults.
OVERRIDES = frozenset({"prompt", "resolution", "aspect_ratio", "candidates", "provider"})
_MAX_KEY = 97  # the job's 100 characters, less the candidate's ".N"


@dataclass(frozen=True)
class FieldPlan:
    """What a request for a field would create: shown before it is made
    (the dialog's pre-filled prompt and price, bulk fill's confirmation)."""

    declaration: FieldDeclaration
    prompt: str
    resolution: str
    aspect_ratio: str
    candidates: int
    provider: str
    #: Price of one job (one candidate); None when no price is configured.
    unit_price: Decimal | None

    @property
    def price(self) -> Decimal | None:
        """Price of the whole request: every candidate."""
        return None if self.unit_price is None else self.unit_price * self.candidates

    def job_arguments(self) -> dict[str, Any]:
        """The arguments of :func:`~imagegen.services.jobs.create_job` for one candidate."""
        return {
            "prompt": self.prompt,
            "resolution": self.resolution,
            "aspect_ratio": self.aspect_ratio,
            "provider": self.provider,
        }


def plan(
    obj_or_model: models.Model | type[models.Model],
    field_name: str,
    *,
    values: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> FieldPlan:
    """The request for ``field_name`` of an object (or of a model, on an add
    form), from the field's declaration.

    The prompt is the declaration's template rendered from the object's
    fields, with ``values`` (a form's current values) over them, cut to the
    provider's prompt limit. ``overrides`` (:data:`OVERRIDES`) replace the
    declaration's settings; an overriding ``prompt`` is the editor's own text,
    used as written. Raises ValidationError for a field that is not declared
    and for a bad ``candidates``; ImagegenConfigurationError for a field
    declared wrongly (the system checks report it).
    """
    unknown = set(overrides) - OVERRIDES
    if unknown:
        raise TypeError(f"plan() got unexpected overrides: {', '.join(sorted(unknown))}")
    model, obj = _model_and_object(obj_or_model)
    declaration = declaration_for(model, field_name)
    if declaration is None:
        raise ValidationError(
            _("%(field)s of %(model)s is not a field imagegen generates.")
            % {"field": field_name, "model": model._meta.verbose_name},
            code="not_declared",
        )
    try:
        backend = get_provider(overrides.get("provider"))
    except ImagegenConfigurationError:
        if not overrides.get("provider"):
            raise  # the site's default provider: the system checks report it
        raise ValidationError(
            {"provider": _("Unknown provider %(v)r.") % {"v": overrides["provider"]}},
            code="unknown_provider",
        ) from None
    caps = backend.capabilities
    prompt = overrides.get("prompt")
    if prompt is None:
        found = {**prompts.values_of(obj, model, declaration.prompt), **(values or {})}
        prompt = prompts.render(declaration.prompt, found, limit=caps.max_prompt_length)
    resolution = overrides.get("resolution") or declaration.resolution or Resolution.R1K
    candidates = overrides.get("candidates")
    if candidates is None:
        candidates = declaration.candidates
    if (
        isinstance(candidates, bool)
        or not isinstance(candidates, int)
        or not 1 <= candidates <= MAX_CANDIDATES
    ):
        raise ValidationError(
            {
                "candidates": ngettext(
                    "Choose from 1 to %(max)d image.",
                    "Choose from 1 to %(max)d images.",
                    MAX_CANDIDATES,
                )
                % {"max": MAX_CANDIDATES}
            },
            code="invalid_candidates",
        )
    return FieldPlan(
        declaration=declaration,
        prompt=prompt,
        resolution=resolution,
        aspect_ratio=overrides.get("aspect_ratio")
        or declaration.aspect_ratio_for(caps.aspect_ratios),
        candidates=candidates,
        provider=backend.name,
        unit_price=conf.price(backend.name, backend.model, resolution),
    )


def create_field_jobs(
    obj_or_model: models.Model | type[models.Model],
    field_name: str,
    *,
    user: Any,
    values: Mapping[str, Any] | None = None,
    idempotency_key: str = "",
    run: GenerationRun | None = None,
    **overrides: Any,
) -> list[GenerationJob]:
    """Create the jobs of one request for a field (:func:`plan`): one per
    candidate, all or none, each remembering the object (none yet on an add
    form: pass the model or the unsaved object) and the field. The jobs of
    one request share a :class:`~imagegen.models.GenerationRun` (kind
    ``candidates``, with the model, the field and what was asked for), so a
    page can follow them together through ``job.run``; or they join
    ``run`` when given (a bulk fill's, one request per object).

    Raises ValidationError like :func:`plan` and
    :func:`~imagegen.services.jobs.create_job` (bad input, a budget); no job
    is made then. The same ``idempotency_key`` from the same user returns
    the first request's jobs.
    """
    request = plan(obj_or_model, field_name, values=values, **overrides)
    if len(idempotency_key) > _MAX_KEY:
        raise ValidationError(
            {
                "idempotency_key": ngettext(
                    "The request key must be at most %(max)d character.",
                    "The request key must be at most %(max)d characters.",
                    _MAX_KEY,
                )
                % {"max": _MAX_KEY}
            },
            code="invalid_idempotency_key",
        )
    model, obj = _model_and_object(obj_or_model)
    saved = obj if obj is not None and obj.pk is not None else None
    content_type = ContentType.objects.get_for_model(model)
    jobs = []
    with transaction.atomic():
        for index in range(request.candidates):
            job, created = get_or_create_job(
                user=user,
                target=saved,
                idempotency_key=f"{idempotency_key}.{index}" if idempotency_key else "",
                idempotency_source=IDEMPOTENCY_SOURCE,
                **request.job_arguments(),
            )
            if created:
                # A job found by its key keeps its target and run (it may
                # have been linked to the saved object since).
                if run is None:
                    run = GenerationRun.objects.create(
                        kind=GenerationRun.Kind.CANDIDATES,
                        created_by=job.created_by,
                        target_content_type=content_type,
                        target_field=field_name,
                        settings={**request.job_arguments(), "candidates": request.candidates},
                    )
                GenerationJob.objects.filter(pk=job.pk).update(
                    target_content_type=content_type,
                    target_object_id="" if saved is None else str(saved.pk),
                    target_field=field_name,
                    run=run,
                )
                job.refresh_from_db()
            jobs.append(job)
    return jobs


def jobs_for_field(obj: models.Model, field_name: str) -> QuerySet[GenerationJob]:
    """Every job made for ``field_name`` of ``obj``, newest first: the field's history."""
    if obj.pk is None:
        return GenerationJob.objects.none()
    return GenerationJob.objects.filter(
        target_content_type=ContentType.objects.get_for_model(obj),
        target_object_id=str(obj.pk),
        target_field=field_name,
    ).order_by("-created_at")


def unlinked_jobs(
    model: type[models.Model], field_name: str, *, user: Any
) -> QuerySet[GenerationJob]:
    """``user``'s jobs for ``field_name`` made on an add form and not linked
    to an object yet, newest first."""
    if not getattr(user, "is_authenticated", False):
        return GenerationJob.objects.none()
    return GenerationJob.objects.filter(
        target_content_type=ContentType.objects.get_for_model(model),
        target_object_id="",
        target_field=field_name,
        created_by=user,
    ).order_by("-created_at")


def link_jobs(obj: models.Model, field_name: str, jobs: Iterable[Any], *, user: Any) -> int:
    """Give ``obj``'s id to add-form jobs for ``field_name``: call it when the
    add form has saved ``obj``, with the jobs the form made (or their ids).

    Only ``user``'s own unlinked jobs for this model and field are linked,
    so a forged id cannot take another user's job or move a linked one.
    Returns how many were linked.
    """
    if obj.pk is None:
        raise ValueError("link_jobs() needs a saved object.")
    ids = [getattr(job, "pk", job) for job in jobs]
    return (
        unlinked_jobs(type(obj), field_name, user=user)
        .filter(pk__in=ids)
        .update(target_object_id=str(obj.pk))
    )


def candidates(job: GenerationJob) -> list[Any]:
    """The assets a finished job made, for the editor to choose from (none before it succeeded)."""
    if job.status != Status.SUCCEEDED:
        return []
    return get_adapter().assets_for(job)


def fill_from_job(
    obj: models.Model,
    field_name: str,
    job: GenerationJob,
    index: int = 0,
    *,
    alt_text: str | None = None,
    user: Any = None,
) -> Any:
    """Put output ``index`` of ``job`` into ``obj``'s field (and ``alt_text``
    into its alt field), in memory: saving ``obj`` stores it. Returns the asset.

    The job must have been made for this field of this object, or, on an
    add form (``obj`` not saved), for this model's field by ``user`` and not
    linked yet. Raises ValidationError otherwise, for a job that has not
    succeeded, for an output it did not make and, with
    ``IMAGEGEN["REQUIRE_ALT_TEXT"]``, for an image without alt text (neither
    ``alt_text`` nor its own) that is not marked decorative; ``obj`` is
    unchanged then.
    """
    declaration = declaration_for(obj, field_name)
    if declaration is None or not _made_for(job, obj, field_name, user):
        raise ValidationError(
            {field_name: _("This job was not made for this field.")}, code="other_target"
        )
    if job.status != Status.SUCCEEDED:
        raise ValidationError(
            {
                field_name: _("The job has not succeeded (it is %(status)s).")
                % {"status": job.get_status_display()}
            },
            code="not_succeeded",
        )
    assets = candidates(job)
    if not isinstance(index, int) or not 0 <= index < len(assets):
        raise ValidationError({field_name: _("The job made no such image.")}, code="no_such_output")
    asset = assets[index]
    # The alt text given, or the image's own: the object's old alt text was another image's.
    require_alt_text(asset, alt_text, field=field_name)
    declaration.target.fill(obj, asset, alt_text)
    return asset


def may_generate(user: Any, model: type[models.Model], *, adding: bool = False) -> bool:
    """Whether ``user`` may generate for ``model``'s fields: imagegen's add
    permission, and the change permission on the model (add, on an add form)."""
    opts = model._meta
    action = "add" if adding else "change"
    return bool(
        getattr(user, "is_active", False)
        and user.has_perm("imagegen.add_generationjob")
        and user.has_perm(f"{opts.app_label}.{action}_{opts.model_name}")
    )


def _made_for(job: GenerationJob, obj: models.Model, field_name: str, user: Any) -> bool:
    if job.target_field != field_name:
        return False
    if job.target_content_type_id != ContentType.objects.get_for_model(obj).pk:
        return False
    if job.target_object_id:
        return obj.pk is not None and job.target_object_id == str(obj.pk)
    owner = user.pk if getattr(user, "is_authenticated", False) else None
    return obj.pk is None and owner is not None and job.created_by_id == owner


def _model_and_object(
    obj_or_model: models.Model | type[models.Model],
) -> tuple[type[models.Model], models.Model | None]:
    if isinstance(obj_or_model, type) and issubclass(obj_or_model, models.Model):
        return obj_or_model, None
    if isinstance(obj_or_model, models.Model):
        return type(obj_or_model), obj_or_model
    raise TypeError(f"Expected a model or a model instance, not {obj_or_model!r}.")

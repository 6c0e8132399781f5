"""Bulk fill in the admin: the action "Generate images for the selected
objects", its confirmation page and the batch page (docs/fields.md, "Bulk fill").

A site's ``ModelAdmin`` gets them from :class:`BulkFillAdminMixin`, next to
the Generate control of :class:`~.image_fields.ImageFieldsAdminMixin`::

    class ArticleAdmin(BulkFillAdminMixin, ImageFieldsAdminMixin, admin.ModelAdmin):
        imagegen_fields = {"cover": {"prompt": "Editorial photo: {title}."}}

The action shows what the fill would make (:func:`imagegen.services.fill.plan`:
jobs, price, each budget's money left, the objects the budgets leave out)
and, once confirmed, starts it and opens the batch page, where every job
fills in live (imagegen/fill/batch.js reads :meth:`BulkFillAdminMixin.imagegen_fill_status_view`)
with retry on failed jobs and, for a field declared ``review``, attach or
discard on each image. The service does the work; these views only ask it.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..choices import Status
from ..fields import declarations_for
from ..models import GenerationJob, GenerationRun
from ..services import budgets, field_jobs, fill

#: The action's name in the changelist's action menu.
ACTION = "imagegen_fill"
#: What each button on a batch row does, and the service call behind it.
ROW_ACTIONS = {"retry": fill.retry, "attach": fill.attach, "discard": fill.discard}


def generate_images(modeladmin: Any, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
    """The admin action: the confirmation page; confirmed, the fill starts
    and the batch page opens."""
    declarations = declarations_for(modeladmin.model)
    names = [d.field_name for d in declarations]
    field_name = request.POST.get("imagegen_field") or names[0]
    if field_name not in names:
        field_name = names[0]
    missing = request.POST.get("imagegen_all") != "on"
    key = request.POST.get("imagegen_key") or uuid.uuid4().hex
    error = ""
    if request.POST.get("imagegen_confirm") == "yes":
        try:
            started = fill.start(
                queryset, field_name, user=request.user, missing=missing, key=key[: fill.MAX_KEY]
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            if started.plan and started.plan.trimmed:
                messages.warning(request, started.plan.budget_message())
            return HttpResponseRedirect(
                reverse(_url_name(modeladmin, "fill"), args=[started.run.pk])
            )
    plan = fill.plan(queryset, field_name, user=request.user, missing=missing)
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": _("Generate images for the selected objects"),
        "opts": opts,
        "plan": plan,
        "price": _money(plan.price),
        "unit_price": _money(plan.unit_price),
        "budgets": [
            {"label": s.label, "limit": _money(s.limit), "left": _money(s.left)}
            for s in plan.budgets
        ],
        "fields": [(d.field_name, opts.get_field(d.field_name).verbose_name) for d in declarations],
        "field_name": field_name,
        "missing": missing,
        "selected": [str(pk) for pk in queryset.values_list("pk", flat=True)],
        "action": ACTION,
        "key": key,
        "error": error,
        "media": modeladmin.media,
    }
    return TemplateResponse(request, "imagegen/fill/confirm.html", context)


generate_images.short_description = gettext_lazy("Generate images for the selected objects")  # type: ignore[attr-defined]
generate_images.allowed_permissions = ("change",)  # type: ignore[attr-defined]


class BulkFillAdminMixin:
    """A ``ModelAdmin`` mixin: the bulk fill action for the model's declared
    fields, and the batch page of each fill. Cooperative (``super()``), so it
    combines with :class:`~.image_fields.ImageFieldsAdminMixin` in any order."""

    def may_bulk_fill(self, request: HttpRequest) -> bool:
        """The change permission on the model, as this admin decides it, and
        :func:`imagegen.services.field_jobs.may_generate`."""
        return self.has_change_permission(request) and field_jobs.may_generate(
            request.user, self.model
        )

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if declarations_for(self.model) and self.may_bulk_fill(request):
            actions[ACTION] = (generate_images, ACTION, generate_images.short_description)
        return actions

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "imagegen-fill/<uuid:run_id>/",
                wrap(self.imagegen_fill_view),
                name=_url_name(self, "fill", namespaced=False),
            ),
            path(
                "imagegen-fill/<uuid:run_id>/status/",
                wrap(self.imagegen_fill_status_view),
                name=_url_name(self, "fill_status", namespaced=False),
            ),
            path(
                "imagegen-fill/<uuid:run_id>/jobs/<uuid:job_id>/<str:operation>/",
                wrap(self.imagegen_fill_job_view),
                name=_url_name(self, "fill_job", namespaced=False),
            ),
            *super().get_urls(),
        ]

    def imagegen_fill_view(self, request: HttpRequest, run_id: uuid.UUID) -> HttpResponse:
        """The batch page: every object's latest job, live."""
        run = self._imagegen_run(request, run_id)
        opts = self.model._meta
        context = {
            **self.admin_site.each_context(request),
            "title": _("Bulk fill of %(field)s")
            % {"field": opts.get_field(run.target_field).verbose_name},
            "opts": opts,
            "run": run,
            "status_url": reverse(_url_name(self, "fill_status"), args=[run.pk]),
            "data": self._imagegen_fill_data(request, run),
        }
        return TemplateResponse(request, "imagegen/fill/batch.html", context)

    def imagegen_fill_status_view(self, request: HttpRequest, run_id: uuid.UUID) -> JsonResponse:
        """The batch page's data as JSON, for its live updates."""
        run = self._imagegen_run(request, run_id)
        return JsonResponse(self._imagegen_fill_data(request, run))

    def imagegen_fill_job_view(
        self, request: HttpRequest, run_id: uuid.UUID, job_id: uuid.UUID, operation: str
    ) -> HttpResponse:
        """POST: retry, attach or discard one job of the fill; back to the batch page."""
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        run = self._imagegen_run(request, run_id)
        if operation not in ROW_ACTIONS or not self.may_bulk_fill(request):
            raise PermissionDenied
        job = get_object_or_404(GenerationJob, pk=job_id, run=run)
        try:
            ROW_ACTIONS[operation](job, user=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return HttpResponseRedirect(reverse(_url_name(self, "fill"), args=[run.pk]))

    def _imagegen_run(self, request: HttpRequest, run_id: uuid.UUID) -> GenerationRun:
        runs = GenerationRun.objects.filter(kind=GenerationRun.Kind.FILL)
        if not request.user.has_perm("imagegen.view_all_jobs"):
            runs = runs.filter(created_by=request.user)
        run = get_object_or_404(runs, pk=run_id)
        if run.target_content_type.model_class() is not (
            self.model._meta.concrete_model or self.model
        ):
            raise PermissionDenied
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        return run

    def _imagegen_fill_data(self, request: HttpRequest, run: GenerationRun) -> dict[str, Any]:
        summary = fill.summary(run)
        act = self.may_bulk_fill(request)
        rows = []
        for row in fill.rows(run):
            actions = []
            if act and row.retryable:
                actions.append(("retry", _("Retry")))
            if act and row.reviewable and (run.settings or {}).get("review"):
                actions += [("attach", _("Attach")), ("discard", _("Discard"))]
            elif act and row.reviewable and row.job.status == Status.SUCCEEDED:
                # The attach the job_succeeded receiver does, should it not have run.
                actions.append(("attach", _("Attach")))
            images = field_jobs.candidates(row.job)
            rows.append(
                {
                    "object_id": row.object_id,
                    "object": str(row.object) if row.object is not None else row.object_id,
                    "object_url": self._imagegen_change_url(row.object),
                    "job": str(row.job.pk),
                    "status": row.job.status,
                    "status_display": str(row.job.get_status_display()),
                    "error": row.job.error_text if row.job.is_terminal else "",
                    "outcome": row.outcome,
                    "outcome_display": str(OUTCOMES.get(row.outcome, "")),
                    "image": _image_url(images[0]) if images else "",
                    "actions": [
                        {
                            "name": name,
                            "label": label,
                            "url": reverse(
                                _url_name(self, "fill_job"), args=[run.pk, row.job.pk, name]
                            ),
                        }
                        for name, label in actions
                    ],
                }
            )
        return {
            "summary": summary,
            "done": summary["finished"] >= summary["total"],
            "review": bool((run.settings or {}).get("review")),
            "rows": rows,
        }

    def _imagegen_change_url(self, obj: Any) -> str:
        if obj is None:
            return ""
        opts = self.model._meta
        return reverse(
            f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]
        )


#: How the batch page names each outcome.
OUTCOMES = {
    fill.ATTACHED: gettext_lazy("Attached"),
    fill.KEPT: gettext_lazy("Kept the object's own image"),
    fill.DISCARDED: gettext_lazy("Discarded"),
}


def _url_name(model_admin: Any, what: str, *, namespaced: bool = True) -> str:
    opts = model_admin.model._meta
    name = f"{opts.app_label}_{opts.model_name}_imagegen_{what}"
    return f"{model_admin.admin_site.name}:{name}" if namespaced else name


def _money(value: Any) -> str:
    return "" if value is None else budgets.money(value)


def _image_url(asset: Any) -> str:
    for name in ("preview_url", "thumbnail_url", "url"):
        value = getattr(asset, name, "")
        if isinstance(value, str) and value:
            return value
    file = getattr(asset, "file", None)
    try:
        return file.url if file else ""
    except ValueError:
        return ""

"""The generation run admin: candidates and comparisons side by side.

A run's page is a grid of its jobs, each filling in live from the job's
status JSON (imagegen/runs/run.js), with approve, discard and pick on each
image and "more like this" on each job. The generate form posts here: one
job opens the job's page as before, a run opens the run's page.
"""

from __future__ import annotations

import uuid
from collections import Counter
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Prefetch, QuerySet, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from .. import conf, permissions
from ..choices import AltTextDraftState, ReviewStatus
from ..models import GenerationJob, GenerationRun
from ..serializers import review_image
from ..services import budgets, reviews, runs
from ..services.budgets import money
from .forms import GenerateForm
from .images import posted_decorative
from .jobs import _uuid_or_none

#: The review actions on a run's images and the permissions each needs.
IMAGE_ACTIONS = {
    "approve": ("imagegen.change_generatedimage",),
    "discard": ("imagegen.delete_generatedimage",),
    "pick": ("imagegen.change_generatedimage", "imagegen.delete_generatedimage"),
}
#: What seeing runs needs: the permissions that show jobs.
VIEW_PERMISSIONS = ("imagegen.view_generationjob", "imagegen.change_generationjob")


@admin.register(GenerationRun)
class GenerationRunAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "kind",
        "prompt",
        "job_count",
        "statuses",
        "price",
        "created_by",
        "created_at",
    )
    list_filter = ("kind", ("created_by", admin.RelatedOnlyFieldListFilter), "created_at")
    list_select_related = ("created_by",)
    date_hierarchy = "created_at"
    search_fields = ("jobs__prompt",)
    run_template = "admin/imagegen/generationrun/run.html"
    generate_template = "admin/imagegen/generationjob/generate.html"

    # Permissions: runs are seen like the jobs they hold, and made only by
    # the generate form (through the job's "add" permission).

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user = request.user
        if not any(user.has_perm(p) for p in VIEW_PERMISSIONS):
            return False
        return obj is None or obj.created_by_id == user.pk or permissions.sees_all(user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[GenerationRun]:
        queryset = (
            super()
            .get_queryset(request)
            .annotate(job_total=Count("jobs"), price_total=Sum("jobs__estimated_cost"))
            .prefetch_related(Prefetch("jobs", GenerationJob.objects.only("run", "status")))
        )
        if permissions.sees_all(request.user):
            return queryset
        return queryset.filter(created_by=request.user.pk)

    @admin.display(description=gettext_lazy("jobs"), ordering="job_total")
    def job_count(self, run: GenerationRun) -> int:
        return run.job_total

    @admin.display(description=gettext_lazy("status"))
    def statuses(self, run: GenerationRun) -> str:
        """How many of the run's jobs are in each status, e.g. "2 Succeeded, 1 Running"."""
        counts = Counter(job.get_status_display() for job in run.jobs.all())
        return ", ".join(f"{n} {label}" for label, n in counts.most_common())

    @admin.display(description=gettext_lazy("price"), ordering="price_total")
    def price(self, run: GenerationRun) -> str:
        return "" if run.price_total is None else money(run.price_total)

    @admin.display(description=gettext_lazy("prompt"))
    def prompt(self, run: GenerationRun) -> str:
        text = str(run.settings.get("prompt", ""))
        return text if len(text) <= 80 else text[:79] + "…"

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("generate/", wrap(self.generate_view), name="imagegen_generationrun_generate"),
            path(
                "<uuid:run_id>/images/<int:image_id>/<str:action>/",
                wrap(self.image_action_view),
                name="imagegen_generationrun_image",
            ),
            path(
                "more/<uuid:job_id>/",
                wrap(self.more_like_this_view),
                name="imagegen_generationrun_more",
            ),
            *super().get_urls(),
        ]

    # The run's page ------------------------------------------------------

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        run = self.get_queryset(request).filter(pk=_uuid_or_none(object_id)).first()
        if run is None or not self.has_view_permission(request, run):
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        jobs = list(run.jobs.order_by("created_at").prefetch_related("images"))
        user = request.user
        context = {
            **self.admin_site.each_context(request),
            "title": str(run),
            "subtitle": None,
            "opts": self.opts,
            "original": run,
            "run": run,
            "source_job": permissions.visible_jobs(user)
            .filter(pk=_uuid_or_none(run.settings.get("source_job", "")))
            .first(),
            "cards": [self._card(run, job, number) for number, job in enumerate(jobs, start=1)],
            "total": _total(jobs),
            "currency": conf.get_setting("CURRENCY"),
            "jobs_url": reverse("admin:imagegen_generationjob_changelist")
            + "?"
            + urlencode({"run": run.pk}),
            "can_approve": user.has_perm("imagegen.change_generatedimage"),
            "can_discard": user.has_perm("imagegen.delete_generatedimage"),
            "can_generate": user.has_perm("imagegen.add_generationjob"),
            # The alt text inputs under each image (they go with approve and pick).
            "review": {"can_edit": user.has_perm("imagegen.change_generatedimage")},
            "has_view_permission": True,
            "run_i18n": {
                "elapsed": _("Elapsed %(elapsed)s; usually done in %(low)s to %(high)s."),
                "took": _("Took %(elapsed)s."),
                # The review statuses' labels, for images that arrive reviewed.
                **{status.value: str(status.label) for status in ReviewStatus},
                "confirm_discard": _("Discard this image? Its file is deleted."),
                "failed": _("The action failed; reload the page and try again."),
                "offline": _("The site does not answer; trying again."),
            },
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.run_template, context)

    def _card(self, run: GenerationRun, job: GenerationJob, number: int) -> dict[str, Any]:
        """One job of the grid: what distinguishes it, its price and links."""
        compare = run.settings.get("compare") or {}
        setting = compare.get("setting")
        if setting == "prompt":
            label = _("Wording %(n)d") % {"n": number}
        elif setting:
            label = GenerationJob._meta.get_field(setting).verbose_name.capitalize()
            label = f"{label}: {getattr(job, f'get_{setting}_display')()}"
        else:
            label = _("Candidate %(n)d") % {"n": number}
        more = runs.more_count(job)
        more_price = "" if job.estimated_cost is None else money(job.estimated_cost * more)
        return {
            "job": job,
            "label": label,
            "more_label": ngettext(
                "Generate %(n)d more like this", "Generate %(n)d more like this", more
            )
            % {"n": more},
            "more_price": more_price,
            "price": "" if job.estimated_cost is None else money(job.estimated_cost),
            "status_url": reverse("imagegen:job-status", args=[job.pk]),
            "images": [image for image in job.images.all() if image.file],
            # Drafts come after the job ended: the grid follows such a job too.
            "drafting": any(
                image.alt_text_draft_state == AltTextDraftState.PENDING
                for image in job.images.all()
            ),
        }

    # Generating ------------------------------------------------------------

    def generate_view(self, request: HttpRequest) -> HttpResponse:
        """The generate form's submission: a job, or a run of candidates or
        a comparison. Its errors show on the same form."""
        job_admin = self.admin_site._registry[GenerationJob]
        if not job_admin.has_add_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:imagegen_generationjob_add"))
        form = GenerateForm(request.POST, user=request.user)
        if form.is_valid():
            try:
                started = runs.start(user=request.user, **form.run_arguments())
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                return self._opened(request, started)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Generate image"),
            "subtitle": None,
            "opts": job_admin.opts,
            "form": form,
            "media": job_admin.media + form.media,
            # The same prices and budgets the form's page shows.
            "pricing": budgets.script_pricing(request.user),
            "max_references": form.max_references,
            "has_view_permission": job_admin.has_view_permission(request),
            "has_add_permission": True,
            "has_change_permission": job_admin.has_change_permission(request),
        }
        return TemplateResponse(request, self.generate_template, context)

    def _opened(self, request: HttpRequest, started: runs.Started) -> HttpResponseRedirect:
        """Log what was made and open it: the run's page, or the job's."""
        job_admin = self.admin_site._registry[GenerationJob]
        if started.created:
            for job in started.jobs:
                job_admin.log_addition(request, job, [{"added": {}}])
        if started.run is None:
            if started.created:
                self.message_user(
                    request,
                    _("The job was created; this page follows it until the image is stored."),
                    messages.SUCCESS,
                )
            return HttpResponseRedirect(
                reverse("admin:imagegen_generationjob_change", args=[started.jobs[0].pk])
            )
        if started.created:
            count = len(started.jobs)
            self.message_user(
                request,
                ngettext(
                    "%(n)d job was started; this page shows it as it arrives.",
                    "%(n)d jobs were started; this page shows them side by side as they arrive.",
                    count,
                )
                % {"n": count},
                messages.SUCCESS,
            )
        return HttpResponseRedirect(
            reverse("admin:imagegen_generationrun_change", args=[started.run.pk])
        )

    def more_like_this_view(self, request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
        """ "Generate more like this": new candidates with a job's settings."""
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        if not request.user.has_perm("imagegen.add_generationjob"):
            raise PermissionDenied
        job = get_object_or_404(permissions.visible_jobs(request.user), pk=job_id)
        try:
            started = runs.more_like_this(job, user=request.user)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            back = (
                reverse("admin:imagegen_generationrun_change", args=[job.run_id])
                if job.run_id
                else reverse("admin:imagegen_generationjob_change", args=[job.pk])
            )
            return HttpResponseRedirect(back)
        return self._opened(request, started)

    # Reviewing -----------------------------------------------------------

    def image_action_view(
        self, request: HttpRequest, run_id: uuid.UUID, image_id: int, action: str
    ) -> HttpResponse:
        """Approve, discard or pick one image of the run; answers JSON (the
        grid's script) with every image of the run whose review changed.

        Approve and pick take the image's ``alt_text`` as typed (a draft the
        grid showed is confirmed this way) and its ``decorative`` mark; with
        ``REQUIRE_ALT_TEXT``, approving without either is refused (400, the
        reason) and nothing is saved."""
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        if action not in IMAGE_ACTIONS:
            return JsonResponse({"error": _("Unknown action.")}, status=404)
        missing = [p for p in IMAGE_ACTIONS[action] if not request.user.has_perm(p)]
        if missing:
            return JsonResponse(
                {
                    "error": _("This needs the permission “%(permission)s”.")
                    % {"permission": missing[0]}
                },
                status=403,
            )
        images = permissions.visible_images(request.user).filter(job__run=run_id)
        image = images.filter(pk=image_id).first()
        if image is None:
            return JsonResponse({"error": _("No such image in this run.")}, status=404)
        changed = [image]
        alt_text = request.POST.get("alt_text")
        # A refused approval (REQUIRE_ALT_TEXT) keeps nothing typed either.
        try:
            with transaction.atomic():
                decorative = posted_decorative(request.POST)
                if action != "discard" and (alt_text is not None or decorative is not None):
                    reviews.review(
                        image,
                        user=request.user,
                        action="save",
                        alt_text=alt_text,
                        decorative=decorative,
                    )
                if action == "approve":
                    reviews.approve(image, user=request.user)
                elif action == "discard":
                    if not image.is_discarded:
                        reviews.discard(image, user=request.user)
                else:
                    changed += runs.pick(image, user=request.user)
        except PermissionDenied as exc:
            return JsonResponse({"error": str(exc)}, status=403)
        except ValidationError as exc:
            required = getattr(exc, "code", None) == "alt_text_required"
            return JsonResponse({"error": " ".join(exc.messages)}, status=400 if required else 409)
        image.refresh_from_db()
        return JsonResponse(
            {
                "images": [
                    {
                        **review_image(item, None),
                        "review_display": str(item.get_review_status_display()),
                    }
                    for item in changed
                ]
            }
        )


def _total(jobs: list[GenerationJob]) -> str:
    prices = [job.estimated_cost for job in jobs]
    if not prices or any(p is None for p in prices):
        return ""
    return money(sum(prices, Decimal(0)))

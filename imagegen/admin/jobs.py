"""The generation job admin: generate, watch, act on jobs, see costs."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from .. import job_states, permissions, services, views
from ..choices import IN_FLIGHT, TERMINAL, Mode, ReviewStatus, Status
from ..exceptions import TransientError
from ..health.notices import notices
from ..models import GeneratedImage, GenerationJob
from ..serializers import job_page_status
from ..services import budgets
from ..services.budgets import money
from ..services.runs import Lineage, lineage
from .display import status_badge, thumbnail
from .forms import GenerateForm
from .object_actions import ObjectActionsMixin
from .reports import PERMISSION as COST_PERMISSION
from .reports import cost_report_view

#: Where the job page keeps the job it read (:meth:`GenerationJobAdmin.change_view`)
#: for the admin's own read of it (:meth:`GenerationJobAdmin.get_object`).
PAGE_JOB = "_imagegen_page_job"

#: The sentences the job page's script shows (it takes them from the page,
#: so they are translated like the rest).
JOB_PAGE_TEXTS = {
    "elapsed": gettext_lazy("Elapsed %(elapsed)s; usually done in %(low)s to %(high)s."),
    "took": gettext_lazy("Took %(elapsed)s."),
    "overdue": gettext_lazy(
        "Elapsed %(elapsed)s: taking longer than usual (%(low)s to %(high)s). You can leave "
        "this page: the job carries on, and its images will be here."
    ),
    "waiting": gettext_lazy(
        "Waiting to retry (attempt %(attempt)s of %(of)s): the provider is busy or briefly "
        "unavailable. Nothing to do: it is retried by itself."
    ),
    "cancel_charged": gettext_lazy(
        "The provider has accepted this job: if you cancel it now, it may still be charged."
    ),
    "cancel_free": gettext_lazy(
        "The provider has not accepted this job yet: canceling it now costs nothing."
    ),
    "refused": gettext_lazy(
        "The provider's content policy refused this prompt: retrying it would be refused "
        "again. Edit the prompt and generate again."
    ),
    "logged_out": gettext_lazy(
        "You were logged out. Log in again in another tab: this page carries on by itself."
    ),
    "offline": gettext_lazy(
        "The server is not answering; trying again in %(seconds)s s. The job carries on."
    ),
    "undo": gettext_lazy("Discarded. Undo within %(seconds)s s."),
    "deleted": gettext_lazy("Discarded: the file was deleted."),
    "not_sent": gettext_lazy("Not saved: the server did not answer. Try again."),
}


@admin.register(GenerationJob)
class GenerationJobAdmin(ObjectActionsMixin, admin.ModelAdmin):
    list_display = (
        "list_thumbnail",
        "prompt_short",
        "status_display",
        "resolution",
        "cost",
        "created_by",
        "created_at",
        "duration_display",
    )
    list_display_links = ("list_thumbnail", "prompt_short")
    list_filter = (
        "status",
        "provider",
        "resolution",
        ("created_by", admin.RelatedOnlyFieldListFilter),
        "created_at",
    )
    search_fields = ("prompt",)
    list_select_related = ("created_by",)
    date_hierarchy = "created_at"
    list_per_page = 50
    change_form_template = "admin/imagegen/generationjob/change_form.html"
    change_list_template = "admin/imagegen/generationjob/change_list.html"
    add_form_template = "admin/imagegen/generationjob/generate.html"
    fieldsets = (
        (None, {"fields": ("prompt", "mode", "resolution", "aspect_ratio", "reference_urls")}),
        (
            gettext_lazy("Timeline"),
            {
                "classes": ("collapse",),
                "fields": (
                    "created_by",
                    "created_at",
                    "submitted_at",
                    "started_at",
                    "provider_completed_at",
                    "completed_at",
                    "deadline_at",
                    "error_code",
                ),
            },
        ),
        (
            gettext_lazy("Provider"),
            {
                "classes": ("collapse",),
                "fields": (
                    "provider",
                    "model",
                    "provider_task_id",
                    "poll_count",
                    "next_poll_at",
                    "estimated_cost",
                    "charged_cost",
                    "retry_of",
                ),
            },
        ),
    )
    actions = ["cancel_jobs", "retry_jobs", "poll_jobs", "generate_again", "use_as_reference"]

    # Lists ---------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[GenerationJob]:
        kept = (
            GeneratedImage.objects.exclude(file="")
            .exclude(review_status=ReviewStatus.DISCARDED)
            .order_by("index")
        )
        # Under their own name: job.images stays all the job's images (the
        # Delete check counts discarded ones too, which still protect the job).
        queryset = (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("images", kept, to_attr="kept_images"))
        )
        # What budgets count for each job: the cost column.
        queryset = queryset.annotate(counted_cost=budgets.COST)
        return permissions.visible_jobs(request.user, queryset)

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        """The job ``change_view`` read for this request, with its images
        prefetched, else the admin's own read: the page's fieldsets, status,
        buttons and lineage share one read of the job and one of its images."""
        job = getattr(request, PAGE_JOB, None)
        if job is not None and from_field is None and str(job.pk) == _uuid_or_none(object_id):
            return job
        return super().get_object(request, object_id, from_field)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in GenerationJob._meta.fields]

    @admin.display(description=gettext_lazy("image"))
    def list_thumbnail(self, job: GenerationJob) -> str:
        images = job.kept_images
        return thumbnail(images[0], size=64) if images else ""

    @admin.display(description=gettext_lazy("prompt"), ordering="prompt")
    def prompt_short(self, job: GenerationJob) -> str:
        return job.prompt if len(job.prompt) <= 80 else job.prompt[:79] + "…"

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_display(self, job: GenerationJob) -> str:
        return status_badge(job.status, job.get_status_display())

    @admin.display(description=gettext_lazy("cost"), ordering="counted_cost")
    def cost(self, job: GenerationJob) -> str:
        """What the job cost, as budgets count it: what the provider charged
        (while it runs, the estimate), also when storing the images failed
        after it reported success; nothing when it reported a failure.
        Blank for a job without a price."""
        if job.estimated_cost is None and job.charged_cost is None:
            return ""
        return money(job.counted_cost.quantize(budgets.COST_QUANTUM))

    @admin.display(description=gettext_lazy("duration"))
    def duration_display(self, job: GenerationJob) -> str:
        seconds = int(job.duration.total_seconds())
        return f"{seconds // 60}:{seconds % 60:02d}"

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # Every job field is read-only here, and workers change jobs at any
        # moment: saving the page (to edit the images' titles) must not write
        # the job back as it was read. State changes go through the services.
        if not change:
            super().save_model(request, obj, form, change)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A job with images cannot be deleted (they protect it, and discarding
        # is how their files go): no Delete button that can only fail.
        if obj is not None and obj.images.exists():
            return False
        return super().has_delete_permission(request, obj)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        context = {
            "title": _("Generation jobs"),
            "can_view_costs": request.user.has_perm(COST_PERMISSION),
            # No worker, no beat (and, to superusers, a refused key, an
            # unreachable provider, failing storage, no callbacks): said
            # here, or jobs would just stay queued or fail one by one.
            "health_notices": notices(request.user),
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    # Generating ------------------------------------------------------------

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        """The "Generate image" form; a valid submission creates a job and
        opens its live page. Budget and provider rules are enforced by the
        service, before anything is sent to the provider."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        data = request.POST if request.method == "POST" else None
        form = GenerateForm(data, user=request.user, initial=self._initial(request))
        if data is not None and form.is_valid():
            try:
                job = services.create_job(user=request.user, **form.job_arguments())
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                self.log_addition(request, job, [{"added": {}}])
                self.message_user(
                    request,
                    _("The job was created; this page follows it until the image is stored."),
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(self._change_url(job))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Generate image"),
            "subtitle": None,
            "opts": self.opts,
            "form": form,
            "media": self.media + form.media,
            "pricing": budgets.script_pricing(request.user),
            "max_references": form.max_references,
            "has_view_permission": self.has_view_permission(request),
            "has_add_permission": True,
            "has_change_permission": self.has_change_permission(request),
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.add_form_template, context)

    def _initial(self, request: HttpRequest) -> dict[str, Any]:
        """Prefill from ``?from=<job id>`` (generate again) or
        ``?references=<image ids>`` (use as reference)."""
        initial: dict[str, Any] = {}
        source = request.GET.get("from")
        if source:
            job = permissions.visible_jobs(request.user).filter(pk=_uuid_or_none(source)).first()
            if job is not None:
                initial = services.job_settings(job)
                initial["reference_urls"] = "\n".join(initial["reference_urls"])
                # The new job's lineage: made from this one.
                initial["source_job"] = job.pk
        asked = [v.strip() for v in request.GET.get("references", "").split(",") if v.strip()]
        if asked:
            usable = (
                permissions.visible_images(request.user)
                .filter(pk__in=[v for v in asked if v.isdigit()])
                .exclude(file="")
                .exclude(review_status=ReviewStatus.DISCARDED)
            )
            chosen = list(usable.values_list("pk", flat=True))
            if len(chosen) < len(set(asked)):
                missing = len(set(asked)) - len(chosen)
                self.message_user(
                    request,
                    ngettext(
                        "%d of the chosen images cannot be used as a reference: it was "
                        "discarded, or belongs to another user's job.",
                        "%d of the chosen images cannot be used as references: they were "
                        "discarded, or belong to other users' jobs.",
                        missing,
                    )
                    % missing,
                    messages.WARNING,
                )
            if chosen:
                # The references replace the source job's; its prompt,
                # resolution and aspect ratio stay.
                initial["mode"] = Mode.IMAGE_TO_IMAGE
                initial["reference_images"] = chosen
                initial["reference_urls"] = ""
        return initial

    # Watching ------------------------------------------------------------

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        job = (
            # What the page shows besides the job: its creator and retried job
            # (fieldsets), its run and source (lineage), all its images
            # (status, review, buttons, Delete). Not filtered by visibility:
            # another user's job is said so below, not "doesn't exist".
            GenerationJob.objects.select_related("created_by", "run", "source_job", "retry_of")
            .prefetch_related("images")
            .filter(pk=_uuid_or_none(object_id))
            .first()
        )
        if job is None:
            # Not a job id (a word, a mistyped URL): the admin's own "doesn't
            # exist" answer; the extras below need a real job to link to.
            return super().change_view(request, object_id, form_url, extra_context)
        if not permissions.can_view_job(request.user, job):
            self.message_user(
                request,
                _(
                    "This job belongs to another user. Seeing other users' jobs needs the "
                    "permission “Can see other users' generation jobs”."
                ),
                messages.ERROR,
            )
            return HttpResponseRedirect(reverse("admin:imagegen_generationjob_changelist"))
        setattr(request, PAGE_JOB, job)
        state = job_page_status(job, request.user)
        # Shown by the page (imagegen/includes/lineage.html), and its retries
        # give the "See the retry" button.
        job_lineage = lineage(job, permissions.visible_jobs(request.user), request.user)
        context = {
            "title": _("Generation job"),
            "status_url": reverse("admin:imagegen_generationjob_status", args=[job.pk]),
            "job_i18n": JOB_PAGE_TEXTS,
            "job_state": state,
            "review": state["review"],
            "can_cancel": permissions.can_cancel_job(request.user, job),
            "job_actions": self._object_actions(request, job, job_lineage),
            "lineage": job_lineage,
            # Every job field is read-only and images are reviewed in place:
            # nothing for the admin's Save buttons to save, nothing to delete.
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "show_delete": False,
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, context)

    def _object_actions(
        self, request: HttpRequest, job: GenerationJob, job_lineage: Lineage
    ) -> list[dict[str, Any]]:
        """Buttons of the change page, each with the statuses it applies to
        (the live page shows and hides them as the job moves on)."""
        ended = [Status.FAILED, Status.EXPIRED]
        entries = [
            ("cancel_jobs", _("Cancel"), [Status.QUEUED, *IN_FLIGHT], ""),
            ("poll_jobs", _("Poll now"), list(IN_FLIGHT), ""),
            # A refusal by the content policy would be refused again: the
            # editor edits the prompt instead (the "edit_prompt" link).
            ("retry_jobs", _("Retry"), ended, "not-refused"),
            ("generate_again", _("Generate again"), list(Status), ""),
            # Only while some image is kept: discarded ones are no references.
            ("use_as_reference", _("Use as reference"), [Status.SUCCEEDED], "kept-images"),
        ]
        refused = job_states.refused_by_moderation(job)
        # From the images the page read (prefetched by change_view).
        kept = any(image.file and not image.is_discarded for image in job.images.all())
        conditions = {"": True, "not-refused": not refused, "kept-images": kept}
        # The reader's own first retry: their jobs are all in the lineage's
        # retries (the jobs they may see), oldest first.
        retried = next(
            (retry for retry in job_lineage.retries if retry.created_by_id == request.user.pk),
            None,
        )
        buttons = []
        for name, label, statuses, condition in entries:
            if not self.object_action_allowed(request, name):
                continue
            if name == "cancel_jobs" and not permissions.can_cancel_job(request.user, job):
                continue
            if name == "retry_jobs" and retried is not None:
                # Retrying again would return this retry: link to it instead.
                buttons.append(
                    {
                        "name": "see_retry",
                        "label": _("See the retry"),
                        "href": self._change_url(retried),
                        "statuses": " ".join(ended),
                        "shown": job.status in ended,
                    }
                )
                continue
            buttons.append(
                self.object_action_button(
                    job,
                    name,
                    label,
                    statuses=" ".join(statuses),
                    condition=condition,
                    shown=job.status in statuses and conditions[condition],
                )
            )
        if self.has_add_permission(request):
            buttons.append(
                {
                    "name": "edit_prompt",
                    "label": _("Edit the prompt"),
                    "href": f"{reverse('admin:imagegen_generationjob_add')}?"
                    + urlencode({"from": job.pk}),
                    "statuses": Status.FAILED,
                    "condition": "refused",
                    "shown": refused,
                }
            )
        return buttons

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "costs/",
                wrap(cost_report_view(self)),
                name="imagegen_generationjob_costs",
            ),
            path(
                "<uuid:job_id>/status/",
                # cacheable: the view says how (private, revalidated: ETag and 304).
                views.status_outage(wrap(views.status, cacheable=True)),
                name="imagegen_generationjob_status",
            ),
            *self.object_action_urls(),
            *super().get_urls(),
        ]

    @staticmethod
    def _change_url(job: GenerationJob) -> str:
        return reverse("admin:imagegen_generationjob_change", args=[job.pk])

    # Acting --------------------------------------------------------------

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return any(
            request.user.has_perm(p)
            for p in (
                "imagegen.add_generationjob",
                "imagegen.change_generationjob",
                permissions.CANCEL_ANY,
            )
        )

    @admin.action(description=gettext_lazy("Cancel selected jobs"), permissions=["cancel"])
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[GenerationJob]) -> None:
        outcome: Counter[str] = Counter()
        for job in queryset:
            if job.status in TERMINAL:
                outcome["finished"] += 1
            elif not permissions.can_cancel_job(request.user, job):
                outcome["refused"] += 1
            elif services.cancel(job.pk):
                self.log_change(request, job, _("Canceled."))
                job.refresh_from_db()
                outcome["canceled"] += 1
                if job_states.may_be_charged_if_canceled(job):
                    outcome["charged"] += 1
            else:
                outcome["finished"] += 1
        self._report(
            request,
            outcome,
            {
                "canceled": ngettext("%d job canceled.", "%d jobs canceled.", outcome["canceled"]),
                "charged": ngettext(
                    "%d of them had been accepted by the provider: it may still be charged, "
                    "and counts against the budgets.",
                    "%d of them had been accepted by the provider: they may still be charged, "
                    "and count against the budgets.",
                    outcome["charged"],
                ),
                "finished": ngettext(
                    "%d job had already finished; nothing to cancel.",
                    "%d jobs had already finished; nothing to cancel.",
                    outcome["finished"],
                ),
                "refused": ngettext(
                    "%d job belongs to another user: canceling it needs the permission "
                    "“Can cancel other users' generation jobs”.",
                    "%d jobs belong to other users: canceling them needs the permission "
                    "“Can cancel other users' generation jobs”.",
                    outcome["refused"],
                ),
            },
        )

    @admin.action(
        description=gettext_lazy("Retry selected failed or expired jobs"), permissions=["add"]
    )
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[GenerationJob]) -> Any:
        created: list[GenerationJob] = []
        for job in queryset:
            try:
                new, made = services.retry(job, user=request.user)
            except ValidationError as exc:
                self.message_user(
                    request,
                    _("Job “%(job)s”: %(error)s") % {"job": job, "error": " ".join(exc.messages)},
                    messages.ERROR,
                )
                continue
            if made:
                self.log_addition(request, new, [{"added": {}}])
                created.append(new)
            else:
                self.message_user(
                    request,
                    format_html(
                        _('Job “{job}” was already retried: <a href="{url}">see the retry</a>.'),
                        job=job,
                        url=self._change_url(new),
                    ),
                    messages.INFO,
                )
        if created:
            self.message_user(
                request,
                ngettext("%d retry started.", "%d retries started.", len(created)) % len(created),
                messages.SUCCESS,
            )
        if len(created) == 1 and queryset.count() == 1:
            return HttpResponseRedirect(self._change_url(created[0]))
        return None

    @admin.action(description=gettext_lazy("Ask the provider now"), permissions=["change"])
    def poll_jobs(self, request: HttpRequest, queryset: QuerySet[GenerationJob]) -> None:
        outcome: Counter[str] = Counter()
        for job in queryset:
            if job.status not in IN_FLIGHT or not job.provider_task_id:
                outcome["idle"] += 1
                continue
            try:
                result = services.poll(job.pk)
            except TransientError as exc:
                self.message_user(
                    request,
                    _("The provider did not answer for “%(job)s”: %(error)s")
                    % {"job": job, "error": exc.text()},
                    messages.WARNING,
                )
                continue
            outcome["changed" if result in ("advanced", "failed") else "unchanged"] += 1
        self._report(
            request,
            outcome,
            {
                "changed": ngettext(
                    "%d job has news from the provider.",
                    "%d jobs have news from the provider.",
                    outcome["changed"],
                ),
                "unchanged": ngettext(
                    "%d job is still being generated.",
                    "%d jobs are still being generated.",
                    outcome["unchanged"],
                ),
                "idle": ngettext(
                    "%d job is not waiting on the provider; nothing to ask.",
                    "%d jobs are not waiting on the provider; nothing to ask.",
                    outcome["idle"],
                ),
            },
        )

    @admin.action(
        description=gettext_lazy("Generate again with the same settings"), permissions=["add"]
    )
    def generate_again(self, request: HttpRequest, queryset: QuerySet[GenerationJob]) -> Any:
        jobs = list(queryset[:2])
        if len(jobs) != 1:
            self.message_user(
                request, _("Select exactly one job to generate again."), messages.WARNING
            )
            return None
        return self._add_form_redirect({"from": jobs[0].pk})

    @admin.action(description=gettext_lazy("Use the results as references"), permissions=["add"])
    def use_as_reference(self, request: HttpRequest, queryset: QuerySet[GenerationJob]) -> Any:
        images = (
            GeneratedImage.objects.filter(job__in=queryset)
            .exclude(file="")
            .exclude(review_status=ReviewStatus.DISCARDED)
        )
        rows = list(images.order_by("job__created_at", "index").values_list("pk", "job_id"))
        if not rows:
            self.message_user(
                request, _("The selected jobs have no kept images."), messages.WARNING
            )
            return None
        query: dict[str, Any] = {"references": ",".join(str(pk) for pk, _job in rows)}
        jobs = {job_id for _pk, job_id in rows}
        if len(jobs) == 1:
            # One job's images: its prompt and aspect ratio come along.
            query["from"] = jobs.pop()
        return self._add_form_redirect(query)

    def _add_form_redirect(self, query: dict[str, Any]) -> HttpResponseRedirect:
        url = reverse("admin:imagegen_generationjob_add")
        return HttpResponseRedirect(f"{url}?{urlencode(query)}")

    def _report(self, request: HttpRequest, outcome: Counter[str], texts: dict[str, str]) -> None:
        levels = {
            "refused": messages.ERROR,
            "finished": messages.INFO,
            "idle": messages.INFO,
            "charged": messages.WARNING,
        }
        for key, text in texts.items():
            if outcome[key]:
                self.message_user(request, text % outcome[key], levels.get(key, messages.SUCCESS))


def _uuid_or_none(value: str) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None

"""The Wagtail admin's "Generate image" pages, in full page and in the image chooser.

Both run imagegen's own form and service (``services.create_job``: provider
rules, budgets, idempotency), show the price and budgets with the admin's
script, and follow the job with the admin's progress script reading the
status JSON. In the chooser, the page the job ends on hands the new image
back to whoever opened the chooser.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET
from django.views.generic import View
from wagtail.admin.modal_workflow import render_modal_workflow
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.models import Collection

from imagegen import permissions as job_permissions
from imagegen import services
from imagegen.admin.jobs import GenerationJobAdmin
from imagegen.models import GenerationJob
from imagegen.serializers import job_status

from .adapters import default_collection
from .forms import WagtailGenerateForm
from .models import GeneratedWagtailImage
from .permissions import refusal

#: Rendition shown while watching a job (the size Wagtail's chooser lists use).
PREVIEW_FILTER = "max-165x165"

#: The image chooser's URL parameters that must survive into the "chosen" step
#: (``select_format`` from rich text, ``multiple`` from multiple choosers).
CHOOSER_PARAMETERS = ("multiple", "select_format", "layout")


def pricing(request: HttpRequest) -> dict[str, Any]:
    """Prices and budgets for generate.js, exactly as the Django admin's form
    shows them (the method needs no registered admin site)."""
    return GenerationJobAdmin(GenerationJob, AdminSite())._pricing(request)


def prepare_collections() -> None:
    """Make the configured collection before any permission is looked up:
    adding a collection renumbers its siblings' tree paths (Wagtail sorts
    them by name), and Wagtail caches a user's collection permissions, paths
    included, on the request's user."""
    default_collection()


def progress_i18n() -> dict[str, str]:
    return {
        "elapsed": _("Elapsed %(elapsed)s; usually done in %(low)s to %(high)s."),
        "took": _("Took %(elapsed)s."),
    }


def initial_from_job(request: HttpRequest) -> dict[str, Any]:
    """Prefill from ``?from=<job id>`` (generate again), for jobs the user may see."""
    source = request.GET.get("from")
    try:
        job_id = uuid.UUID(str(source)) if source else None
    except ValueError:
        job_id = None
    job = job_permissions.visible_jobs(request.user).filter(pk=job_id).first() if job_id else None
    if job is None:
        return {}
    initial = services.job_settings(job)
    initial.pop("reference_images")
    initial["reference_urls"] = "\n".join(initial["reference_urls"])
    if isinstance(job.target, Collection):
        initial["collection"] = job.target.pk
    return initial


def create_job(request: HttpRequest, form: WagtailGenerateForm) -> GenerationJob | None:
    """The job for a valid form, or None with the service's errors on the form."""
    if not form.is_valid():
        return None
    try:
        return services.create_job(user=request.user, **form.job_arguments())
    except ValidationError as exc:
        form.add_service_errors(exc)
        return None


def form_context(request: HttpRequest, form: WagtailGenerateForm) -> dict[str, Any]:
    return {"form": form, "pricing": pricing(request), "max_references": form.max_references}


def progress_context(job: GenerationJob) -> dict[str, Any]:
    return {
        "job": job,
        "status_url": reverse("imagegen_wagtail:status", args=[job.pk]),
        # progress.js links each result to this URL with its id in place of 0.
        "image_url": reverse("wagtailimages:edit", args=[0]),
        "images": [_image_data(link) for link in _links(job.pk)],
        "job_i18n": progress_i18n(),
    }


# Full pages ----------------------------------------------------------------


class RefusingMixin:
    """Answers 403 with the reason when the user may not generate."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        prepare_collections()
        reason = refusal(request.user)
        if reason:
            return TemplateResponse(
                request,
                "imagegen_wagtail/refused.html",
                {"page_title": _("Generate image"), "reason": reason},
                status=403,
            )
        return super().dispatch(request, *args, **kwargs)


class GenerateView(RefusingMixin, WagtailAdminTemplateMixin, View):
    """The form; a valid submission creates a job and opens its page."""

    template_name = "imagegen_wagtail/generate.html"
    page_title = gettext_lazy("Generate image")
    header_icon = "image"

    def get_breadcrumbs_items(self) -> list[dict[str, Any]]:
        return [*self.breadcrumbs_items, {"url": "", "label": self.get_page_title()}]

    def get(self, request: HttpRequest) -> HttpResponse:
        form = WagtailGenerateForm(user=request.user, initial=initial_from_job(request))
        return self.render_to_response(self.get_context_data(**form_context(request, form)))

    def post(self, request: HttpRequest) -> HttpResponse:
        form = WagtailGenerateForm(request.POST, user=request.user)
        job = create_job(request, form)
        if job is None:
            return self.render_to_response(self.get_context_data(**form_context(request, form)))
        messages.success(
            request, _("The job was created; this page follows it until the image is stored.")
        )
        return redirect("imagegen_wagtail:job", job.pk)


class JobView(WagtailAdminTemplateMixin, View):
    """A job's live progress, then its images."""

    template_name = "imagegen_wagtail/job.html"
    page_title = gettext_lazy("Generation job")
    header_icon = "image"

    def get_breadcrumbs_items(self) -> list[dict[str, Any]]:
        return [
            *self.breadcrumbs_items,
            {"url": reverse("imagegen_wagtail:generate"), "label": _("Generate image")},
            {"url": "", "label": self.get_page_title()},
        ]

    def get(self, request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
        job = _visible_job(request, job_id)
        context = self.get_context_data(**progress_context(job))
        context["page_subtitle"] = str(job)
        context["generate_again_url"] = (
            f"{reverse('imagegen_wagtail:generate')}?{urlencode({'from': job.pk})}"
        )
        return self.render_to_response(context)


@require_GET
def status(request: HttpRequest, job_id: uuid.UUID) -> JsonResponse:
    """imagegen's job status JSON, with the job's Wagtail images as ``images``.

    A job's creator may follow it (generating needs no ``view`` permission);
    other users' jobs need what the Django admin's status view needs.
    """
    job = GenerationJob.objects.filter(pk=job_id).first()
    if job is None or not _may_watch(request.user, job):
        return JsonResponse({"error": _("No such job.")}, status=404)
    data = job_status(job)
    data["images"] = [_image_data(link) for link in _links(job.pk)]
    response = JsonResponse(data)
    add_never_cache_headers(response)
    return response


# In the image chooser --------------------------------------------------------


class ChooserGenerateView(View):
    """The image chooser's "Generate image" step.

    Its answers are modal-workflow ``choose`` steps, so Wagtail's own chooser
    script takes over the form (``data-chooser-modal-creation-form``: posted
    by AJAX, the answer loaded in the modal) and the links
    (``data-chooser-modal-choice``: loaded in the modal). The job's page ends
    by following such a link to Wagtail's "chosen" view for the new image,
    which hands it to the field, rich text editor or block that opened the
    chooser.
    """

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        prepare_collections()
        reason = refusal(request.user, choose=True)
        if reason:
            return self._render("imagegen_wagtail/chooser/refused.html", {"reason": reason})
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        form = WagtailGenerateForm(
            user=request.user, choose=True, initial=initial_from_job(request)
        )
        return self._form(form)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = WagtailGenerateForm(request.POST, user=request.user, choose=True)
        job = create_job(request, form)
        if job is None:
            return self._form(form)
        context = progress_context(job)
        context["chosen_url"] = self._chosen_url_template()
        context["again_url"] = self._preserving(
            f"{reverse('imagegen_wagtail:chooser')}?{urlencode({'from': job.pk})}"
        )
        return self._render("imagegen_wagtail/chooser/job.html", context)

    def _form(self, form: WagtailGenerateForm) -> HttpResponse:
        context = form_context(self.request, form)
        context["form_action"] = self._preserving(reverse("imagegen_wagtail:chooser"))
        return self._render("imagegen_wagtail/chooser/generate.html", context)

    def _render(self, template: str, context: dict[str, Any]) -> HttpResponse:
        context["back_url"] = self._preserving(reverse("wagtailimages_chooser:choose"))
        return render_modal_workflow(
            self.request, template, None, context, json_data={"step": "choose"}
        )

    def _preserving(self, url: str) -> str:
        params = {k: self.request.GET[k] for k in CHOOSER_PARAMETERS if k in self.request.GET}
        if not params:
            return url
        return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"

    def _chosen_url_template(self) -> str:
        """URL of Wagtail's step that returns the image, with ``{id}`` for its id."""
        if self.request.GET.get("multiple"):
            url = f"{reverse('wagtailimages_chooser:chosen_multiple')}?id={{id}}"
        elif self.request.GET.get("select_format"):
            url = reverse("wagtailimages_chooser:select_format", args=[0]).replace("/0/", "/{id}/")
        else:
            url = reverse("wagtailimages_chooser:chosen", args=[0]).replace("/0/", "/{id}/")
        return self._preserving(url)


# Helpers -----------------------------------------------------------------


def _may_watch(user: Any, job: GenerationJob) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    if job.created_by_id is not None and job.created_by_id == user.pk:
        return True
    may_view = user.has_perm("imagegen.view_generationjob") or user.has_perm(
        "imagegen.change_generationjob"
    )
    return may_view and job_permissions.can_view_job(user, job)


def _visible_job(request: HttpRequest, job_id: uuid.UUID) -> GenerationJob:
    job = GenerationJob.objects.filter(pk=job_id).first()
    if job is None or not _may_watch(request.user, job):
        raise Http404(_("No such job."))
    return job


def _links(job_id: Any) -> list[GeneratedWagtailImage]:
    return list(
        GeneratedWagtailImage.objects.filter(job_id=job_id)
        .select_related("image")
        .order_by("index")
    )


def _image_data(link: GeneratedWagtailImage) -> dict[str, Any]:
    image = link.image
    preview = image.get_rendition(PREVIEW_FILTER)
    return {
        "id": image.pk,
        "index": link.index,
        "title": image.title,
        "url": image.file.url,
        "thumbnail_url": preview.url,
        "width": image.width,
        "height": image.height,
        "size": image.file_size,
        "edit_url": reverse("wagtailimages:edit", args=[image.pk]),
    }

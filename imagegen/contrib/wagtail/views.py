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
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET
from django.views.generic import View
from wagtail.admin.modal_workflow import render_modal_workflow
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.models import Collection

from imagegen import job_states, services
from imagegen import permissions as job_permissions
from imagegen.admin.jobs import JOB_PAGE_TEXTS
from imagegen.choices import IN_FLIGHT, AltTextDraftState, Status
from imagegen.models import GenerationJob
from imagegen.serializers import job_status
from imagegen.views import status_response

from . import review
from .adapters import default_collection
from .forms import ConfirmImageForm, WagtailGenerateForm
from .library import initial_references
from .models import GeneratedWagtailImage
from .permissions import ADD_JOB, refusal

#: Rendition shown while watching a job (the size Wagtail's chooser lists use).
PREVIEW_FILTER = "max-165x165"
#: Rendition shown in the chooser's confirm step.
CONFIRM_FILTER = "max-480x320"
#: The statuses a job can be retried from (services.retry).
RETRYABLE = (Status.FAILED, Status.EXPIRED)

#: The image chooser's URL parameters that must survive into the "chosen" step
#: (``select_format`` from rich text, ``multiple`` from multiple choosers).
CHOOSER_PARAMETERS = ("multiple", "select_format", "layout")


def prepare_collections() -> None:
    """Make the configured collection before any permission is looked up:
    adding a collection renumbers its siblings' tree paths (Wagtail sorts
    them by name), and Wagtail caches a user's collection permissions, paths
    included, on the request's user."""
    default_collection()


#: The sentences of the progress script: the Django admin job page's, so both say the same.
PROGRESS_TEXTS = (
    "elapsed",
    "took",
    "overdue",
    "waiting",
    "cancel_charged",
    "cancel_free",
    "refused",
    "logged_out",
    "offline",
)


def progress_i18n() -> dict[str, str]:
    return {key: str(JOB_PAGE_TEXTS[key]) for key in PROGRESS_TEXTS}


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
    picks, urls = initial_references(initial["reference_urls"], initial["reference_images"])
    initial["reference_images"] = picks
    initial["reference_urls"] = "\n".join(urls)
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
    return {
        "form": form,
        "pricing": services.budgets.script_pricing(request.user),
        "max_references": form.max_references,
    }


def progress_context(job: GenerationJob) -> dict[str, Any]:
    return {
        "job": job,
        "status_url": reverse("imagegen_wagtail:status", args=[job.pk]),
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
        context["generate_again_url"] = _generate_again_url(job)
        context["actions"] = job_actions(request.user, job)
        context["retry_of"] = job.retry_of if job.retry_of_id else None
        return self.render_to_response(context)


def job_actions(user: Any, job: GenerationJob) -> dict[str, Any]:
    """What the job page offers ``user``, as the Django admin's job page does:
    Cancel (``can_cancel_job``) while the job has not finished; Retry
    (``add_generationjob``) once it failed or expired, unless the content
    policy refused it (then "Edit the prompt"), or a link to this user's
    retry when there is one. Each with the statuses it applies to, which the
    progress script shows and hides as the job moves on."""
    retried = job.retries.filter(created_by=user.pk).order_by("created_at").first()
    return {
        "cancel": job_permissions.can_cancel_job(user, job),
        "cancel_statuses": " ".join([Status.QUEUED, *IN_FLIGHT]),
        "cancel_may_charge": job_states.may_be_charged_if_canceled(job),
        "retry": user.has_perm(ADD_JOB) and retried is None,
        "retried_url": reverse("imagegen_wagtail:job", args=[retried.pk]) if retried else "",
        "retry_statuses": " ".join(RETRYABLE),
        "refused": job_states.refused_by_moderation(job),
    }


class JobActionView(View):
    """Retry or Cancel from the job page (POST), through imagegen's services
    and with the Django admin's permissions; back to a job page with a message."""

    action = ""

    def post(self, request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
        job = _visible_job(request, job_id)
        if self.action == "retry":
            return self.retry(request, job)
        return self.cancel(request, job)

    def retry(self, request: HttpRequest, job: GenerationJob) -> HttpResponse:
        if not request.user.has_perm(ADD_JOB):
            return _refused(
                request,
                _(
                    "Retrying needs the permission “Can add generation job” (Image generation). "
                    "Ask an administrator for it."
                ),
            )
        try:
            new, made = services.retry(job, user=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("imagegen_wagtail:job", job.pk)
        if made:
            messages.success(request, _("The retry was started; this page follows it."))
        else:
            messages.info(request, _("This job was already retried: here is the retry."))
        return redirect("imagegen_wagtail:job", new.pk)

    def cancel(self, request: HttpRequest, job: GenerationJob) -> HttpResponse:
        if not job_permissions.can_cancel_job(request.user, job):
            return _refused(
                request,
                _(
                    "This job belongs to another user: canceling it needs the permission "
                    "“Can cancel other users' generation jobs”."
                ),
            )
        may_charge = job_states.may_be_charged_if_canceled(job)
        if not services.cancel(job.pk):
            messages.info(request, _("The job had already finished; nothing to cancel."))
        elif may_charge:
            messages.warning(
                request,
                _("The job was canceled. The provider had accepted it: it may still be charged."),
            )
        else:
            messages.success(
                request, _("The job was canceled before the provider took it: no cost.")
            )
        return redirect("imagegen_wagtail:job", job.pk)


@require_GET
def status(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    """imagegen's job status JSON, with the job's Wagtail images as ``images``.

    A job's creator may follow it (generating needs no ``view`` permission);
    other users' jobs need what the Django admin's status view needs.
    304 when unchanged, as the admin's (:func:`imagegen.views.status_response`).
    """
    job = GenerationJob.objects.filter(pk=job_id).first()
    if job is None or not may_watch(request.user, job):
        return JsonResponse({"error": _("No such job.")}, status=404)
    # Its images are the Wagtail ones below: imagegen's own table is not read.
    data = job_status(job, images=[])
    data.update(job_states.job_flags(job))
    data["images"] = [_image_data(link) for link in _links(job.pk)]
    return status_response(request, data)


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
        context["confirm_url"] = self._preserving(
            reverse("imagegen_wagtail:chooser_confirm", args=[0]).replace("/0/", "/{id}/")
        )
        context["again_url"] = self._again_url(job)
        return self._render("imagegen_wagtail/chooser/job.html", context)

    def _again_url(self, job: GenerationJob) -> str:
        return self._preserving(
            f"{reverse('imagegen_wagtail:chooser')}?{urlencode({'from': job.pk})}"
        )

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


class ChooserConfirmView(ChooserGenerateView):
    """The chooser's last step: the generated image, its title and alt text.

    Shown when the job succeeds, before the image is chosen: the title
    defaults to the short form of the prompt the adapter gave it, the alt
    text (Wagtail's ``description``) is what the editor types, or the
    drafted alt text put in the empty input for them to check (while it is
    being drafted the step reads the job's status until it is in). Posting it
    saves both (:func:`.review.confirm_image`) and goes on to Wagtail's
    "chosen" step for the image (its format step from rich text).
    """

    def get(self, request: HttpRequest, image_id: int) -> HttpResponse:
        image = self._image(image_id)
        form = ConfirmImageForm(
            initial={"title": image.title, "alt_text": getattr(image, "description", "")},
            draft=image.imagegen_output,
        )
        return self._confirm(image, form)

    def post(self, request: HttpRequest, image_id: int) -> HttpResponse:
        image = self._image(image_id)
        form = ConfirmImageForm(request.POST, draft=image.imagegen_output)
        if form.is_valid():
            try:
                review.confirm_image(image, user=request.user, **form.cleaned_data)
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field, errors)
            else:
                # Wagtail's chooser script follows the redirect and runs the step it answers.
                return redirect(self._chosen_url_template().replace("{id}", str(image.pk)))
        return self._confirm(image, form)

    def _image(self, image_id: int) -> Any:
        image = review.generated_image(image_id)
        if (
            image is None
            or not may_watch(self.request.user, image.imagegen_output.job)
            or not review.may_confirm(self.request.user, image)
        ):
            raise Http404(_("No such image."))
        return image

    def _confirm(self, image: Any, form: ConfirmImageForm) -> HttpResponse:
        job = image.imagegen_output.job
        context = {
            "image": image,
            "preview": image.get_rendition(CONFIRM_FILTER),
            "job": job,
            "form": form,
            "form_action": self._preserving(
                reverse("imagegen_wagtail:chooser_confirm", args=[image.pk])
            ),
            "again_url": self._again_url(job),
            "status_url": reverse("imagegen_wagtail:status", args=[job.pk]),
        }
        return self._render("imagegen_wagtail/chooser/confirm.html", context)


# Helpers -----------------------------------------------------------------


def _generate_again_url(job: GenerationJob) -> str:
    return f"{reverse('imagegen_wagtail:generate')}?{urlencode({'from': job.pk})}"


def _refused(request: HttpRequest, reason: str) -> HttpResponse:
    return TemplateResponse(
        request,
        "imagegen_wagtail/refused.html",
        {"page_title": _("Generation job"), "reason": reason},
        status=403,
    )


def may_watch(user: Any, job: GenerationJob) -> bool:
    """Whether ``user`` may follow ``job``'s status: its creator, or a reader
    who may view jobs and may see this one."""
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
    if job is None or not may_watch(request.user, job):
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
        # A suggestion for the confirm step's alt text input, never the
        # image's description until an editor confirms it.
        "alt_text_draft": (
            link.alt_text_draft if link.alt_text_draft_state == AltTextDraftState.READY else ""
        ),
        "alt_text_draft_state": link.alt_text_draft_state,
    }

"""Generate inside any model's admin form (docs/fields.md, "In the admin").

``ImageFieldsAdminMixin`` adds a "Generate" control beside each declared
field (:mod:`imagegen.fields`) of a model's add and change forms::

    class ArticleAdmin(ImageFieldsAdminMixin, admin.ModelAdmin):
        ...

The control opens a dialog (``imagegen/fields/dialog.html``) whose prompt is
rendered on the server from the form's current values; with a describer
configured (``IMAGEGEN["DESCRIBER"]``) the editor may also have a prompt
drafted from the object's text (:mod:`imagegen.services.prompt_drafts`), into
the prompt box to edit: nothing is paid for until they click Generate.
Submitting it makes the field's jobs through :mod:`imagegen.services.field_jobs`. The editor
picks a candidate, which only fills hidden inputs of the form: the field is
filled (:func:`~imagegen.services.field_jobs.fill_from_job`) when the form is
saved, so nothing is written to the object before that. On an add form the
jobs are linked to the object once it is saved.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models.fields.files import FieldFile
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from .. import describers, permissions
from ..choices import AspectRatio, Resolution
from ..fields import FieldDeclaration, declaration_for, declarations_for, prompts
from ..fields.registry import MAX_CANDIDATES
from ..models import GenerationJob
from ..providers import get_provider
from ..serializers import job_status
from ..services import budgets, field_jobs, prompt_drafts

#: The add form's object id in the control's URLs (``<model>/add/imagegen/...``).
ADD = "add"
#: How many of a field's jobs the dialog and the field's history show.
RECENT_JOBS = 8
#: Names of the hidden inputs a picked candidate fills, per field.
HIDDEN = "_imagegen-{field}-{part}"
#: The placeholder job id of the job URL the script fills in.
_ANY_JOB = uuid.UUID(int=0)


def hidden_name(field_name: str, part: str) -> str:
    """The name of a hidden input of ``field_name``'s control: ``job`` (the
    picked job), ``index`` (its output), ``alt`` (alt text, when the alt
    field is not on the form), ``jobs`` (an add form's jobs, linked on save)."""
    return HIDDEN.format(field=field_name, part=part)


def preview_url(asset: Any, *, on_view: bool = True) -> str:
    """A URL showing ``asset`` (a GeneratedImage, Wagtail or filer image):
    imagegen's on-view preview, unless ``on_view`` is False (a reader who may
    not open it: see :func:`_sees_previews`), then the stored preview or file."""
    url = getattr(asset, "preview_url", "") if on_view else ""
    if url:
        return url
    url = getattr(asset, "thumbnail_url", "")
    if url:
        return url
    return _file_url(getattr(asset, "file", None))


def _sees_previews(user: Any, job: GenerationJob) -> bool:
    """Whether ``imagegen:image-preview`` answers ``user`` for ``job``'s
    images. A field's editors need not have imagegen's view permissions:
    generating for the field is what lets them see its images."""
    may_view = user.has_perm("imagegen.view_generatedimage") or user.has_perm(
        "imagegen.change_generatedimage"
    )
    return may_view and permissions.can_view_job(user, job)


class FieldGenerateForm(forms.Form):
    """The dialog's form: the plan's settings, editable. The service
    (:func:`~imagegen.services.field_jobs.create_field_jobs`) validates again
    and checks the budgets; its errors are shown through :meth:`add_service_errors`."""

    prompt = forms.CharField(
        label=gettext_lazy("Prompt"),
        widget=forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField"}),
    )
    resolution = forms.ChoiceField(label=gettext_lazy("Resolution"), widget=forms.RadioSelect)
    aspect_ratio = forms.ChoiceField(label=gettext_lazy("Aspect ratio"))
    candidates = forms.TypedChoiceField(
        label=gettext_lazy("Images to choose from"),
        coerce=int,
        choices=[(n, str(n)) for n in range(1, MAX_CANDIDATES + 1)],
    )
    # One per rendered dialog: submitting it twice makes the jobs once.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=97)

    def __init__(self, *args: Any, plan: field_jobs.FieldPlan, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial",
            {
                "prompt": plan.prompt,
                "resolution": plan.resolution,
                "aspect_ratio": plan.aspect_ratio,
                "candidates": plan.candidates,
            },
        )
        super().__init__(*args, **kwargs)
        caps = get_provider(plan.provider).capabilities
        self.fields["resolution"].choices = [
            (value, label) for value, label in Resolution.choices if value in caps.resolutions
        ]
        self.fields["aspect_ratio"].choices = [
            (value, label) for value, label in AspectRatio.choices if value in caps.aspect_ratios
        ]
        self.fields["prompt"].max_length = caps.max_prompt_length
        self.fields["prompt"].widget.attrs["maxlength"] = caps.max_prompt_length
        self.fields["idempotency_key"].initial = f"field:{uuid.uuid4().hex}"

    def overrides(self) -> dict[str, Any]:
        """The plan's overrides (:data:`~imagegen.services.field_jobs.OVERRIDES`)."""
        return {
            name: self.cleaned_data[name]
            for name in ("prompt", "resolution", "aspect_ratio", "candidates")
        }

    def add_service_errors(self, error: ValidationError) -> None:
        """Show a service's ValidationError on the fields it names (else on the form)."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for name, errors in error.error_dict.items():
            self.add_error(name if name in self.fields else None, errors)


class GenerateControlWidget(forms.Widget):
    """The field's own widget, then the Generate control, the hidden inputs a
    picked candidate fills and the field's history
    (``imagegen/fields/widget.html``). Everything else is the wrapped widget's."""

    template_name = "imagegen/fields/widget.html"

    def __init__(self, widget: forms.Widget, control: dict[str, Any]) -> None:
        super().__init__()
        self.widget = widget
        self.control = control

    def __deepcopy__(self, memo: dict) -> GenerateControlWidget:
        obj = copy.copy(self)
        obj.widget = copy.deepcopy(self.widget, memo)
        obj.attrs = self.widget.attrs
        memo[id(self)] = obj
        return obj

    def __getattr__(self, name: str) -> Any:
        # What this class does not define is the wrapped widget's (input_type...).
        if name == "widget" or "widget" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.widget, name)

    @property
    def is_hidden(self) -> bool:
        return self.widget.is_hidden

    @property
    def use_fieldset(self) -> bool:
        return self.widget.use_fieldset

    @property
    def needs_multipart_form(self) -> bool:
        return self.widget.needs_multipart_form

    @property
    def media(self) -> forms.Media:
        return self.widget.media + forms.Media(
            css={"all": ["imagegen/admin/imagegen.css", "imagegen/fields/fields.css"]},
            # The dialog's script translates with imagegen's catalog: loaded first.
            js=[reverse("imagegen:jsi18n"), "imagegen/fields/dialog.js"],
        )

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        return self.widget.value_from_datadict(data, files, name)

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        return self.widget.value_omitted_from_data(data, files, name)

    def id_for_label(self, id_: str) -> str:
        return self.widget.id_for_label(id_)

    def use_required_attribute(self, initial: Any) -> bool:
        return self.widget.use_required_attribute(initial)

    def subwidgets(self, name: str, value: Any, attrs: dict | None = None) -> Any:
        return self.widget.subwidgets(name, value, attrs)

    def render(self, name: str, value: Any, attrs: dict | None = None, renderer: Any = None) -> str:
        self.widget.is_required = self.is_required
        history = self.control["history"]()
        posted = dict(self.control["posted"])
        if self.control["adding"] and not posted["jobs"]:
            # An add form's jobs listed under the field become the object's when it is saved.
            posted["jobs"] = ",".join(str(job.pk) for job in history)
        context = {
            "field_widget": self.widget.render(name, value, attrs, renderer),
            # A file field's current image, seen beside its link.
            "current_url": _file_url(value) if isinstance(value, FieldFile) else "",
            **self.control,
            "posted": posted,
            "history": [
                _job_row(job, self.control["job_url"], self.control["user"]) for job in history
            ],
        }
        return render_to_string(self.template_name, context)


class ImageFieldsFormMixin:
    """Added to the admin's model form: checks the picked candidates (errors
    are the form's), and fills the fields when the admin saves the form."""

    #: Set on the form class the admin makes per request.
    imagegen_fields: tuple[str, ...] = ()
    imagegen_user: Any = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        self.imagegen_choices: dict[str, tuple[GenerationJob, int, str | None]] = {}
        for name in self.imagegen_fields:
            picked = self.data.get(hidden_name(name, "job"), "")
            if not picked:
                continue
            try:
                job = GenerationJob.objects.filter(pk=uuid.UUID(picked)).first()
                index = int(self.data.get(hidden_name(name, "index"), "0"))
            except ValueError:
                job, index = None, -1
            if job is None:
                self.add_error(_error_field(self, name), _("The chosen image does not exist."))
                continue
            declaration = declaration_for(self.instance, name)
            alt = None
            if declaration.alt_field and declaration.alt_field not in self.fields:
                alt = self.data.get(hidden_name(name, "alt"))
            elif declaration.alt_field:
                # The alt field as typed on this form: what REQUIRE_ALT_TEXT
                # checks, and what the form saves into it anyway.
                alt = cleaned.get(declaration.alt_field)
            try:
                # On a copy: the form's instance stays as it is until it is saved.
                field_jobs.fill_from_job(
                    copy.copy(self.instance),
                    name,
                    job,
                    index,
                    alt_text=alt,
                    user=self.imagegen_user,
                )
            except ValidationError as exc:
                for key, errors in exc.message_dict.items():
                    self.add_error(_error_field(self, key), errors)
                continue
            self.imagegen_choices[name] = (job, index, alt)
        return cleaned

    def imagegen_fill(self, obj: models.Model) -> list[str]:
        """Fill ``obj`` (the form's unsaved instance) with the picked
        candidates; returns the names of the fields filled."""
        filled = []
        for name, (job, index, alt) in getattr(self, "imagegen_choices", {}).items():
            field_jobs.fill_from_job(obj, name, job, index, alt_text=alt, user=self.imagegen_user)
            filled.append(name)
            alt_field = declaration_for(obj, name).alt_field
            if alt is not None and alt_field not in self.fields:
                filled.append(alt_field)
        return filled


class ImageFieldsAdminMixin:
    """A ``ModelAdmin`` mixin: a Generate control beside each field declared
    for the model (:func:`imagegen.fields.declarations_for`), on the add and
    change forms, for users who :meth:`may_generate_images`."""

    def may_generate_images(self, request: HttpRequest, obj: models.Model | None) -> bool:
        """imagegen's add permission, and the add (no ``obj``: add form) or
        change permission on the object, as this admin decides them."""
        allowed = (
            self.has_add_permission(request)
            if obj is None
            else self.has_change_permission(request, obj)
        )
        return allowed and field_jobs.may_generate(request.user, self.model, adding=obj is None)

    # The form ---------------------------------------------------------------

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)
        if not self.may_generate_images(request, obj):
            return form
        names = tuple(
            d.field_name for d in declarations_for(self.model) if d.field_name in form.base_fields
        )
        if not names:
            return form
        form = type(
            form.__name__,
            (ImageFieldsFormMixin, form),
            {"imagegen_fields": names, "imagegen_user": request.user},
        )
        for name in names:
            # A copy: a field the site's form declares is shared by its subclasses.
            field = form.base_fields[name] = copy.deepcopy(form.base_fields[name])
            field.widget = GenerateControlWidget(
                field.widget, self._imagegen_control(request, obj, name, form)
            )
        return form

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Any:
        obj = super().save_form(request, form, change)
        if isinstance(form, ImageFieldsFormMixin):
            form.imagegen_filled = form.imagegen_fill(obj)
        return obj

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change or not isinstance(form, ImageFieldsFormMixin):
            return
        for name in form.imagegen_fields:
            posted = form.data.get(hidden_name(name, "jobs"), "").split(",")
            posted.append(form.data.get(hidden_name(name, "job"), ""))
            ids = [value for value in (_uuid(v) for v in posted) if value is not None]
            if ids:
                field_jobs.link_jobs(obj, name, ids, user=request.user)

    def construct_change_message(
        self, request: HttpRequest, form: Any, formsets: Any, add: bool = False
    ) -> list[dict[str, Any]]:
        message = super().construct_change_message(request, form, formsets, add)
        filled = getattr(form, "imagegen_filled", [])
        if filled and not add:
            labels = [str(self.model._meta.get_field(name).verbose_name) for name in filled]
            for entry in message:
                if "changed" in entry:
                    known = entry["changed"]["fields"]
                    known.extend(label for label in labels if label not in known)
                    break
            else:
                message.insert(0, {"changed": {"fields": labels}})
        return message

    def _imagegen_control(
        self, request: HttpRequest, obj: Any, name: str, form: Any
    ) -> dict[str, Any]:
        declaration = _declaration(self.model, name)
        object_id = ADD if obj is None else str(obj.pk)
        data = request.POST if request.method == "POST" else {}
        alt_field = declaration.alt_field
        return {
            "field_name": name,
            "label": form.base_fields[name].label or name,
            "dialog_url": self._imagegen_url("generate", object_id, name),
            "job_url": self._imagegen_url("job", object_id, name, _ANY_JOB),
            "placeholders": list(prompts.placeholders(declaration.prompt)),
            "value_limit": get_provider(None).capabilities.max_prompt_length,
            "alt_input": alt_field if alt_field in form.base_fields else "",
            "hidden": {part: hidden_name(name, part) for part in ("job", "index", "alt", "jobs")},
            # What was picked, kept when the form comes back with errors.
            "posted": {
                part: data.get(hidden_name(name, part), "")
                for part in ("job", "index", "alt", "jobs")
            },
            "adding": obj is None,
            "user": request.user,
            "history": lambda: list(self._imagegen_jobs(request, obj, name)[:RECENT_JOBS]),
        }

    # The dialog's views -----------------------------------------------------

    def get_urls(self) -> list[Any]:
        opts = self.model._meta
        prefix = f"{opts.app_label}_{opts.model_name}_imagegen"
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/imagegen/<str:field_name>/generate/",
                wrap(self.imagegen_generate_view),
                name=f"{prefix}_generate",
            ),
            path(
                "<path:object_id>/imagegen/<str:field_name>/draft-prompt/",
                wrap(self.imagegen_draft_prompt_view),
                name=f"{prefix}_draft_prompt",
            ),
            path(
                "<path:object_id>/imagegen/<str:field_name>/jobs/<uuid:job_id>/",
                wrap(self.imagegen_job_view),
                name=f"{prefix}_job",
            ),
            *super().get_urls(),
        ]

    def imagegen_generate_view(
        self, request: HttpRequest, object_id: str, field_name: str
    ) -> HttpResponse:
        """The dialog. GET: the form, its prompt rendered from the form's
        current values (query parameters named after the template's
        placeholders; nothing else is read). POST: make the jobs, then the
        dialog again with them listed (400 with the form's errors)."""
        obj, declaration = self._imagegen_target(request, object_id, field_name)
        subject = self.model if obj is None else obj
        status = 200
        if request.method == "POST":
            plan = field_jobs.plan(subject, field_name)
            form = FieldGenerateForm(request.POST, plan=plan)
            if form.is_valid():
                try:
                    field_jobs.create_field_jobs(
                        subject,
                        field_name,
                        user=request.user,
                        idempotency_key=form.cleaned_data["idempotency_key"],
                        **form.overrides(),
                    )
                except ValidationError as exc:
                    form.add_service_errors(exc)
                else:
                    # A fresh dialog (a new key) keeping the editor's settings.
                    form = FieldGenerateForm(plan=plan, initial=form.overrides())
            if form.errors:
                status = 400
        elif request.method == "GET":
            limit = get_provider(None).capabilities.max_prompt_length
            values = {
                name: request.GET[name][: 4 * limit]
                for name in prompts.placeholders(declaration.prompt)
                if name in request.GET
            }
            plan = field_jobs.plan(subject, field_name, values=values)
            form = FieldGenerateForm(plan=plan)
        else:
            return HttpResponseNotAllowed(["GET", "POST"])
        jobs = self._imagegen_jobs(request, obj, field_name)[:RECENT_JOBS]
        job_url = self._imagegen_url("job", object_id, field_name, _ANY_JOB)
        context = {
            "form": form,
            "label": self.model._meta.get_field(field_name).verbose_name,
            "declaration": declaration,
            "action": request.path,
            "pricing": _pricing(request, plan),
            "jobs": [_job_row(job, job_url, request.user) for job in jobs],
            "alt_field": declaration.alt_field,
            "alt_max_length": declaration.alt_field
            and self.model._meta.get_field(declaration.alt_field).max_length,
            "draft_prompt_url": self._imagegen_url("draft_prompt", object_id, field_name)
            if describers.get_describer() is not None
            else "",
        }
        return TemplateResponse(request, "imagegen/fields/dialog.html", context, status=status)

    def imagegen_draft_prompt_view(
        self, request: HttpRequest, object_id: str, field_name: str
    ) -> JsonResponse:
        """Draft a prompt from the object's text (POST, CSRF-checked), for the
        dialog's prompt box: ``{"prompt": ...}``; nothing is generated or paid
        for. The text is the object's as the form has it now: the posted
        values of its text fields (saved or not) over the stored object's
        (:func:`imagegen.services.prompt_drafts.draft_prompt`).

        Answers ``{"error": reason}`` with 405 (not POST), 403 (may not
        generate here), 404 (no such object or field, or no describer
        configured), 400 (the object has no text yet) or 502 (the describer
        failed)."""
        if request.method != "POST":
            return JsonResponse({"error": _("Only POST.")}, status=405, headers={"Allow": "POST"})
        try:
            obj, declaration = self._imagegen_target(request, object_id, field_name)
        except PermissionDenied:
            return JsonResponse(
                {"error": _("You may not generate images for this field.")}, status=403
            )
        except Http404 as exc:
            return JsonResponse({"error": str(exc)}, status=404)
        if describers.get_describer() is None:
            return JsonResponse(
                {"error": _("Drafting prompts is off: no describer is configured.")},
                status=404,
            )
        values = {
            name: value for name, value in request.POST.items() if name != "csrfmiddlewaretoken"
        }
        text = prompt_drafts.object_text(
            self.model, obj, declaration.prompt, declaration.alt_field, values
        )
        if not text:
            return JsonResponse(
                {"error": _("There is no text to draft a prompt from yet: write some first.")},
                status=400,
            )
        try:
            prompt = prompt_drafts.draft_prompt(
                self.model if obj is None else obj,
                field_name,
                language=get_language() or settings.LANGUAGE_CODE,
                values=values,
            )
        except describers.DescriberError as exc:
            return JsonResponse({"error": str(exc)}, status=502)
        return JsonResponse({"prompt": prompt})

    def imagegen_job_view(
        self, request: HttpRequest, object_id: str, field_name: str, job_id: uuid.UUID
    ) -> HttpResponse:
        """One job of the field, for the dialog's live progress: status,
        progress and, once it succeeded, its candidates."""
        obj, _declaration = self._imagegen_target(request, object_id, field_name)
        job = self._imagegen_jobs(request, obj, field_name).filter(pk=job_id).first()
        if job is None:
            raise Http404(_("No such job for this field."))
        job_url = self._imagegen_url("job", object_id, field_name, _ANY_JOB)
        response = TemplateResponse(
            request, "imagegen/fields/job.html", {"row": _job_row(job, job_url, request.user)}
        )
        response["Cache-Control"] = "no-store"
        return response

    def _imagegen_target(
        self, request: HttpRequest, object_id: str, field_name: str
    ) -> tuple[Any, FieldDeclaration]:
        obj = None
        if object_id != ADD:
            obj = self.get_object(request, unquote(object_id))
            if obj is None:
                raise Http404(_("No such object."))
        if not self.may_generate_images(request, obj):
            raise PermissionDenied
        declaration = next(
            (d for d in declarations_for(self.model) if d.field_name == field_name), None
        )
        if declaration is None:
            raise Http404(_("This field is not generated by imagegen."))
        return obj, declaration

    def _imagegen_jobs(self, request: HttpRequest, obj: Any, field_name: str) -> Any:
        if obj is None:
            return field_jobs.unlinked_jobs(self.model, field_name, user=request.user)
        return field_jobs.jobs_for_field(obj, field_name)

    def _imagegen_url(self, view: str, object_id: str, field_name: str, *job: Any) -> str:
        opts = self.model._meta
        return reverse(
            f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_imagegen_{view}",
            args=[object_id, field_name, *job],
        )


def _declaration(model: type[models.Model], name: str) -> FieldDeclaration:
    return next(d for d in declarations_for(model) if d.field_name == name)


def _error_field(form: Any, name: str) -> str | None:
    return name if name in form.fields else None


def _file_url(file: Any) -> str:
    try:
        return file.url if file else ""
    except ValueError:  # a file field without a file
        return ""


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        return None


def _job_row(job: GenerationJob, job_url: str, user: Any) -> dict[str, Any]:
    """What the dialog and the field's history show of one job, to ``user``."""
    status = job_status(job)
    assets = field_jobs.candidates(job)
    on_view = _sees_previews(user, job)
    try:
        admin_url = reverse("admin:imagegen_generationjob_change", args=[job.pk])
    except NoReverseMatch:
        admin_url = ""
    return {
        "job": job,
        "status": status,
        "percent": round(status["progress"] * 100),
        "url": job_url.replace(str(_ANY_JOB), str(job.pk)),
        "admin_url": admin_url,
        "candidates": [
            {
                "index": index,
                "url": preview_url(asset, on_view=on_view),
                "alt": getattr(asset, "alt_text", "") or "",
            }
            for index, asset in enumerate(assets)
        ],
    }


def _pricing(request: HttpRequest, plan: field_jobs.FieldPlan) -> dict[str, Any]:
    """:func:`budgets.script_pricing` for the plan's provider, with its prices
    per resolution (no provider level) as the dialog's script reads them;
    ``imagegen/includes/price.html`` shows the budgets."""
    pricing = budgets.script_pricing(request.user, providers=[plan.provider])
    return {**pricing, "prices": pricing["prices"][plan.provider]}

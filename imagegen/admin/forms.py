"""The "Generate image" form: what an editor asks for, checked before any cost."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from .. import conf, permissions
from ..choices import AspectRatio, Mode, Resolution, ReviewStatus
from ..models import GeneratedImage, GenerationJob
from ..providers import get_provider
from ..services.runs import COMPARABLE, MAX_CANDIDATES, Comparison
from .widgets import ReferenceImagesWidget, ReferenceUrlsWidget

#: How many recent images the reference picker offers besides the chosen ones.
RECENT_REFERENCES = 24

#: The fields of a run (candidates, comparison): only on forms that offer runs.
RUN_FIELDS = (
    "candidates",
    "compare",
    "compare_resolutions",
    "compare_aspect_ratios",
    "source_job",
)
#: The other wordings of a prompt comparison (the prompt itself is the first).
OTHER_PROMPTS = tuple(f"other_prompt_{n}" for n in range(1, COMPARABLE["prompt"][1]))


class GenerateForm(forms.Form):
    """Collects a job's settings. :func:`imagegen.services.create_job` does the
    authoritative validation (and the budget check); its errors are shown on
    the matching fields through :meth:`add_service_errors`."""

    prompt = forms.CharField(
        label=_("Prompt"),
        widget=forms.Textarea(attrs={"rows": 5, "class": "vLargeTextField"}),
        help_text=_("Describe the image. Be specific about subject, style and composition."),
    )
    mode = forms.ChoiceField(
        label=_("Mode"), choices=Mode.choices, initial=Mode.TEXT_TO_IMAGE, widget=forms.RadioSelect
    )
    resolution = forms.ChoiceField(
        label=_("Resolution"),
        choices=Resolution.choices,
        initial=Resolution.R1K,
        widget=forms.RadioSelect,
    )
    aspect_ratio = forms.ChoiceField(
        label=_("Aspect ratio"), choices=AspectRatio.choices, initial=AspectRatio.AUTO
    )
    reference_urls = forms.CharField(
        label=_("Reference image URLs"),
        required=False,
        widget=ReferenceUrlsWidget(),
        help_text=_("One public http(s) URL per line (image-to-image only)."),
    )
    reference_images = forms.ModelMultipleChoiceField(
        label=_("Reference images"),
        queryset=GeneratedImage.objects.none(),
        required=False,
        widget=ReferenceImagesWidget,
        help_text=_("Earlier results to start from (image-to-image only)."),
    )
    provider = forms.ChoiceField(label=_("Provider"), required=False)
    candidates = forms.IntegerField(
        label=_("Candidates"),
        required=False,
        min_value=1,
        max_value=MAX_CANDIDATES,
        initial=1,
        help_text=format_lazy(
            _("How many images to make with these settings, to pick from (1 to {max})."),
            max=MAX_CANDIDATES,
        ),
    )
    compare = forms.ChoiceField(
        label=_("Compare"),
        required=False,
        choices=[
            ("", _("No comparison")),
            ("resolution", _("Resolutions")),
            ("aspect_ratio", _("Aspect ratios")),
            ("prompt", _("Prompt wordings")),
        ],
        help_text=_("One image per chosen value, side by side, each at its own price."),
    )
    compare_resolutions = forms.MultipleChoiceField(
        label=_("Resolutions to compare"),
        required=False,
        choices=Resolution.choices,
        # A list, not checkboxes: a checkbox labelled "2K" would share the
        # resolution radio's label.
        widget=forms.SelectMultiple(attrs={"size": len(Resolution.choices)}),
        help_text=_("Choose two or more (Ctrl or ⌘ click)."),
    )
    compare_aspect_ratios = forms.MultipleChoiceField(
        label=_("Aspect ratios to compare"),
        required=False,
        choices=AspectRatio.choices,
        widget=forms.SelectMultiple(attrs={"size": 6}),
        help_text=_("Choose two to four (Ctrl or ⌘ click)."),
    )
    # "Generate again": the job the form was prefilled from (initial
    # ``source_job``), recorded on the new jobs as what they were made from.
    source_job = forms.ModelChoiceField(
        queryset=GenerationJob.objects.none(),
        required=False,
        widget=forms.HiddenInput,
        error_messages={
            "invalid_choice": _("The job to generate again from is not one you may see.")
        },
    )
    # One per rendered form: submitting the same form twice makes one job.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)
    #: Where the form's keys are unique, with the user who posts them
    #: (:func:`imagegen.services.jobs.idempotency_scope`): a key posted by
    #: another user, or through another form, never finds this form's job.
    idempotency_source = "admin"
    #: Whether the form offers candidates and comparisons. Its view must
    #: start them with :func:`imagegen.services.runs.start`
    #: (:meth:`run_arguments`), so a subclass offers them only if it says so.
    offers_runs = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.offers_runs = cls.__dict__.get("offers_runs", False)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        if self.offers_runs:
            self.fields["source_job"].queryset = permissions.visible_jobs(user)
            for number, name in enumerate(OTHER_PROMPTS, start=2):
                self.fields[name] = forms.CharField(
                    label=_("Prompt wording %(n)d") % {"n": number},
                    required=False,
                    widget=forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField"}),
                )
        else:
            for name in RUN_FIELDS:
                del self.fields[name]
        self.fields["idempotency_key"].initial = f"{self.idempotency_source}:{uuid.uuid4().hex}"
        providers = conf.configured_providers()
        field = self.fields["provider"]
        field.choices = [(name, f"{name} ({get_provider(name).model})") for name in providers]
        field.initial = providers[0]
        if len(providers) == 1:
            field.widget = forms.HiddenInput()
        caps = get_provider(self.provider_name).capabilities
        self.max_references = caps.max_references
        for name in ("prompt", *OTHER_PROMPTS):
            if name in self.fields:
                self.fields[name].max_length = caps.max_prompt_length
                self.fields[name].widget.attrs["maxlength"] = caps.max_prompt_length
        images = (
            permissions.visible_images(user)
            .exclude(file="")
            .exclude(review_status=ReviewStatus.DISCARDED)
        )
        self.fields["reference_images"].queryset = images
        chosen = {str(getattr(v, "pk", v)) for v in self["reference_images"].value() or []}
        offered = list(images[:RECENT_REFERENCES])
        # Only well-formed ids: anything else is the field's validation error, not a crash.
        missing = {pk for pk in chosen - {str(image.pk) for image in offered} if pk.isdigit()}
        if missing:
            offered = list(images.filter(pk__in=missing)) + offered
        self.fields["reference_images"].widget.images = offered

    @property
    def provider_name(self) -> str:
        """The provider the form is for (as submitted, else the default)."""
        value = self.data.get(self.add_prefix("provider")) if self.is_bound else None
        return value if value in conf.configured_providers() else conf.get_setting("PROVIDER")

    def clean_reference_urls(self) -> list[str]:
        lines = self.cleaned_data.get("reference_urls", "").splitlines()
        return [line.strip() for line in lines if line.strip()]

    def clean_provider(self) -> str:
        return self.cleaned_data.get("provider") or conf.get_setting("PROVIDER")

    def job_arguments(self) -> dict[str, Any]:
        """Keyword arguments for :func:`imagegen.services.create_job`."""
        data = self.cleaned_data
        return {
            "prompt": data["prompt"],
            "mode": data["mode"],
            "resolution": data["resolution"],
            "aspect_ratio": data["aspect_ratio"],
            "reference_urls": data["reference_urls"],
            "reference_images": list(data["reference_images"]),
            "provider": data["provider"],
            "idempotency_key": data["idempotency_key"],
            "idempotency_source": self.idempotency_source,
        }

    def comparison(self) -> Comparison | None:
        """The comparison asked for, if any (values checked by the service)."""
        data = self.cleaned_data
        setting = data.get("compare") if self.offers_runs else ""
        if not setting:
            return None
        if setting == "prompt":
            values = [data["prompt"], *(data.get(name, "") for name in OTHER_PROMPTS)]
        else:
            values = data.get(f"compare_{setting}s") or []
        return Comparison(setting, tuple(values))

    def run_arguments(self) -> dict[str, Any]:
        """Keyword arguments for :func:`imagegen.services.runs.start`: the
        job's settings, the candidates and comparison, the idempotency key."""
        arguments = self.job_arguments()
        return {
            "idempotency_key": arguments.pop("idempotency_key"),
            "idempotency_source": arguments.pop("idempotency_source"),
            "candidates": self.cleaned_data.get("candidates") or 1,
            "source_job": self.cleaned_data.get("source_job"),
            "compare": self.comparison(),
            "settings": arguments,
        }

    def add_service_errors(self, error: ValidationError) -> None:
        """Show a service's ValidationError on the fields it names (else on the form)."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for field, errors in error.error_dict.items():
            self.add_error(field if field in self.fields else None, errors)

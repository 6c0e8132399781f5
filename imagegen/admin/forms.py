"""The "Generate image" form: what an editor asks for, checked before any cost."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .. import conf, permissions
from ..choices import AspectRatio, Mode, Resolution
from ..models import GeneratedImage
from ..providers import get_provider
from .widgets import ReferenceImagesWidget

#: How many recent images the reference picker offers besides the chosen ones.
RECENT_REFERENCES = 24


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
        widget=forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField"}),
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
    # One per rendered form: submitting the same form twice makes one job.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)
    #: Where the form's keys are unique, with the user who posts them
    #: (:func:`imagegen.services.jobs.idempotency_scope`): a key posted by
    #: another user, or through another form, never finds this form's job.
    idempotency_source = "admin"

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["idempotency_key"].initial = f"{self.idempotency_source}:{uuid.uuid4().hex}"
        providers = conf.configured_providers()
        field = self.fields["provider"]
        field.choices = [(name, f"{name} ({get_provider(name).model})") for name in providers]
        field.initial = providers[0]
        if len(providers) == 1:
            field.widget = forms.HiddenInput()
        caps = get_provider(self.provider_name).capabilities
        self.max_references = caps.max_references
        self.fields["prompt"].max_length = caps.max_prompt_length
        self.fields["prompt"].widget.attrs["maxlength"] = caps.max_prompt_length
        images = permissions.visible_images(user).exclude(file="")
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

    def add_service_errors(self, error: ValidationError) -> None:
        """Show a service's ValidationError on the fields it names (else on the form)."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for field, errors in error.error_dict.items():
            self.add_error(field if field in self.fields else None, errors)

"""The Wagtail "Generate image" form: imagegen's admin form, plus a collection."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from wagtail.admin.forms.collections import CollectionChoiceField

from imagegen.admin.forms import GenerateForm

from .adapters import default_collection
from .permissions import generating_collections


class WagtailGenerateForm(GenerateForm):
    """:class:`imagegen.admin.forms.GenerateForm` for Wagtail editors.

    The job's target is the chosen collection, which the Wagtail adapter puts
    the images in (a retry keeps it). Earlier results as references are
    imagegen's own images, which a Wagtail site does not make, so that field
    is left out; reference URLs remain.
    """

    idempotency_source = "wagtail"

    # Wagtail's chooser modal validates `required` inputs with a script that
    # expects its own field markup; the server validates everything anyway.
    use_required_attribute = False

    collection = CollectionChoiceField(
        label=_("Collection"),
        queryset=None,
        help_text=_("Where the generated image is added."),
    )

    field_order = [
        "prompt",
        "mode",
        "resolution",
        "aspect_ratio",
        "collection",
        "reference_urls",
        "provider",
    ]

    def __init__(self, *args: Any, user: Any, choose: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, user=user, **kwargs)
        del self.fields["reference_images"]
        # Before the permission queryset: making the default collection
        # renumbers its siblings' tree paths, which that queryset is built from.
        default = default_collection()
        collections = generating_collections(user, choose=choose)
        field = self.fields["collection"]
        field.queryset = collections
        field.initial = (
            default.pk
            if collections.filter(pk=default.pk).exists()
            else collections.values_list("pk", flat=True).first()
        )
        if collections.count() < 2:
            field.widget = forms.HiddenInput()

    def job_arguments(self) -> dict[str, Any]:
        self.cleaned_data.setdefault("reference_images", [])
        return {**super().job_arguments(), "target": self.cleaned_data["collection"]}

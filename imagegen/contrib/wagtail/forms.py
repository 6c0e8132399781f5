"""The Wagtail "Generate image" form: imagegen's admin form, plus a
collection, with references picked from the image library."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from wagtail.admin.forms.collections import CollectionChoiceField

from imagegen.admin.forms import GenerateForm
from imagegen.draft_fields import draft_note

from .adapters import default_collection
from .library import LibraryReferencesField, Picked
from .models import GeneratedWagtailImage
from .permissions import generating_collections
from .references import reference_url
from .review import TITLE_LENGTH


class WagtailGenerateForm(GenerateForm):
    """:class:`imagegen.admin.forms.GenerateForm` for Wagtail editors.

    The job's target is the chosen collection, which the Wagtail adapter puts
    the images in (a retry keeps it). References are picked from the image
    library and imagegen's own results (:mod:`.library`; library images go
    to the provider by signed URL), besides reference URLs.
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

    reference_images = LibraryReferencesField(
        label=_("Reference images"),
        help_text=_(
            "Images from the library to start from (image-to-image only); "
            "the provider fetches them by a short-lived signed link."
        ),
    )

    field_order = [
        "prompt",
        "mode",
        "resolution",
        "aspect_ratio",
        "collection",
        "reference_images",
        "reference_urls",
        "provider",
    ]

    def __init__(self, *args: Any, user: Any, choose: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, user=user, **kwargs)
        chosen = self["reference_images"].value() or []
        self.fields["reference_images"].offer(user, [str(value) for value in chosen])
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
        picked: Picked = self.cleaned_data["reference_images"]
        arguments = super().job_arguments()
        return {
            **arguments,
            # Library images first, as picked, then the URLs typed.
            "reference_urls": [reference_url(image) for image in picked.library]
            + arguments["reference_urls"],
            "reference_images": list(picked),
            "target": self.cleaned_data["collection"],
        }


class ConfirmImageForm(forms.Form):
    """The chooser's last step: the generated image's title and alt text
    (:func:`.review.confirm_image` checks and saves them).

    With the image's link as ``draft``, a drafted alt text
    (``IMAGEGEN["DESCRIBER"]``) is put in the empty alt text input, marked
    as such; it becomes the image's ``description`` only when the editor
    confirms it. :attr:`draft_note` says which note the step shows beside
    the input.
    """

    use_required_attribute = False
    # The chooser opens over the page editor, whose fields have ids such as id_title.
    prefix = "imagegen"

    title = forms.CharField(
        label=_("Title"),
        max_length=TITLE_LENGTH,
        help_text=_("How the image is named in the image library."),
    )
    alt_text = forms.CharField(
        label=_("Alt text"),
        max_length=TITLE_LENGTH,
        help_text=_(
            "What the image shows, for people who cannot see it. Used wherever the "
            "image is shown without alt text of its own."
        ),
    )

    def __init__(
        self, *args: Any, draft: GeneratedWagtailImage | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        #: Where the draft stands, for the note beside the input (:func:`draft_note`).
        self.draft_note = draft_note(draft, self.initial.get("alt_text"), bound=self.is_bound)
        if self.draft_note == "ready":
            self.initial["alt_text"] = draft.alt_text_draft
            self.fields["alt_text"].widget.attrs.update({"class": "is-draft", "data-draft": ""})

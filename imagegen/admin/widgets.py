"""Form widgets of the admin's generate form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _


class ReferenceImagesWidget(forms.CheckboxSelectMultiple):
    """Checkboxes with thumbnails, over a short list of images.

    The form sets :attr:`images` (recent images plus any already chosen), so
    the page stays small however many images exist; the field's queryset
    still validates against every image the editor may use.
    """

    template_name = "imagegen/widgets/reference_images.html"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)
        self.images: list[Any] = []

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        selected = {str(v) for v in self.format_value(value)}
        context["widget"]["images"] = [
            {"image": image, "checked": str(image.pk) in selected} for image in self.images
        ]
        return context

    def format_value(self, value: Any) -> list[str]:
        values = value if isinstance(value, list | tuple) else [value] if value else []
        return [str(getattr(v, "pk", v)) for v in values if v not in (None, "")]


class ReferenceUrlsWidget(forms.Textarea):
    """The reference URLs textarea, one URL a line, with a preview of each.

    Its script (``imagegen/admin/reference_urls.js``) shows every line that
    is an http(s) address as a thumbnail in an aligned row, a sentence in
    place of any image that does not load (the provider may not reach it
    either), and a note for each line that is not an address. It keeps the
    number of usable URLs in the textarea's ``data-valid-count`` and sends
    ``imagegen:reference-urls`` when it changes, so a count of references
    leaves out the lines that are not addresses.
    """

    template_name = "imagegen/widgets/reference_urls.html"
    texts = {
        "failed": _(
            "This image could not be loaded: check the address (the provider must reach it)."
        ),
        "invalid": _("Line %(line)s is not an http:// or https:// address."),
    }

    class Media:
        js = ["imagegen/admin/reference_urls.js"]

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__({"rows": 3, "class": "vLargeTextField", **(attrs or {})})

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        context["widget"]["texts"] = {key: str(text) for key, text in self.texts.items()}
        return context

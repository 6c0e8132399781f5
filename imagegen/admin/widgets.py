"""Form widgets of the admin's generate form."""

from __future__ import annotations

from typing import Any

from django import forms


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

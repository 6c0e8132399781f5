"""``{% imagegen_chooser_button %}``: the image chooser's "Generate image" button."""

from __future__ import annotations

from typing import Any

from django import template
from django.template.loader import render_to_string
from django.urls import reverse

from ..permissions import may_generate

register = template.Library()


@register.simple_tag(takes_context=True)
def imagegen_chooser_button(context: Any) -> str:
    """The button, for users who may generate and choose; the chooser's own
    URL parameters (``select_format``, ``multiple``) are carried along."""
    request = context.get("request")
    if request is None or not may_generate(request.user, choose=True):
        return ""
    url = reverse("imagegen_wagtail:chooser")
    view = context.get("view")
    if view is not None and hasattr(view, "append_preserved_url_parameters"):
        url = view.append_preserved_url_parameters(url)
    return render_to_string(
        "imagegen_wagtail/includes/chooser_button.html", {"url": url}, request=request
    )

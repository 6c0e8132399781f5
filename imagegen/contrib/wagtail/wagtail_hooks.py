"""Wagtail admin registrations: the URLs and the "Generate image" menu item."""

from __future__ import annotations

from typing import Any

from django.urls import include, path, reverse
from django.utils.translation import gettext_lazy as _
from wagtail import hooks
from wagtail.admin.menu import MenuItem

from . import urls
from .permissions import may_generate


@hooks.register("register_admin_urls")
def register_admin_urls() -> list[Any]:
    return [path("imagegen/", include(urls, namespace="imagegen_wagtail"))]


class GenerateMenuItem(MenuItem):
    """Shown to users who may generate: imagegen's and Wagtail's permissions."""

    def is_shown(self, request: Any) -> bool:
        return may_generate(request.user)


@hooks.register("register_admin_menu_item")
def register_generate_menu_item() -> MenuItem:
    return GenerateMenuItem(
        _("Generate image"),
        reverse("imagegen_wagtail:generate"),
        name="imagegen-generate",
        icon_name="image",
        # Just after Wagtail's "Images" (300).
        order=310,
    )

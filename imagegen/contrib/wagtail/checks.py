"""System checks of imagegen's Wagtail integration (ids ``imagegen_wagtail.E0xx`` / ``W0xx``)."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.checks import Error, Tags, Warning, register
from django.utils.module_loading import import_string

from imagegen import conf
from imagegen.exceptions import ImagegenConfigurationError

ADAPTER = "imagegen.contrib.wagtail.adapters.WagtailImageAdapter"


@register(Tags.compatibility)
def check_wagtail(app_configs: Any = None, **kwargs: Any) -> list:
    try:
        conf.user_settings()
    except ImagegenConfigurationError:
        return _check_order()  # IMAGEGEN is not a dict: imagegen.E001
    return [*_check_order(), *_check_adapter(), *_check_options(), *_check_references()]


def _check_order() -> list:
    names = [config.name for config in apps.get_app_configs()]
    if "wagtail.images" in names and names.index("wagtail.images") < names.index(
        "imagegen.contrib.wagtail"
    ):
        return [
            Warning(
                "imagegen.contrib.wagtail comes after wagtail.images in INSTALLED_APPS: "
                "the image chooser will have no “Generate image” button and the image "
                "edit page will not offer alt text drafts.",
                hint="List 'imagegen.contrib.wagtail' before 'wagtail.images'.",
                id="imagegen_wagtail.W001",
            )
        ]
    return []


def _check_adapter() -> list:
    from .adapters import WagtailImageAdapter

    path = conf.get_setting("ASSET_ADAPTER")
    try:
        adapter = import_string(path)
    except ImportError:
        return []  # imagegen's own checks and get_adapter() report it
    if isinstance(adapter, type) and issubclass(adapter, WagtailImageAdapter):
        return []
    return [
        Warning(
            f"IMAGEGEN['ASSET_ADAPTER'] is {path!r}: images generated from the Wagtail "
            "admin will not become Wagtail images, and the chooser cannot choose them.",
            hint=f"Set IMAGEGEN['ASSET_ADAPTER'] = {ADAPTER!r} (or a subclass).",
            id="imagegen_wagtail.W002",
        )
    ]


def _check_options() -> list:
    errors = []
    collection = conf.get_setting("WAGTAIL_COLLECTION")
    if collection is not None and (
        isinstance(collection, bool) or not isinstance(collection, int | str)
    ):
        errors.append(
            Error(
                "IMAGEGEN['WAGTAIL_COLLECTION'] must be None, a collection id or a name.",
                id="imagegen_wagtail.E001",
            )
        )
    tags = conf.get_setting("WAGTAIL_TAGS")
    if isinstance(tags, str) or not isinstance(tags, list | tuple):
        errors.append(
            Error(
                "IMAGEGEN['WAGTAIL_TAGS'] must be a list or tuple of tag names.",
                hint='For one tag write ("imagegen",), with the comma.',
                id="imagegen_wagtail.E002",
            )
        )
    elif not all(isinstance(tag, str) and tag.strip() for tag in tags):
        errors.append(
            Error(
                "IMAGEGEN['WAGTAIL_TAGS'] must hold non-empty strings.",
                id="imagegen_wagtail.E002",
            )
        )
    return errors


def _check_references() -> list:
    """Library images as references need a public route and a public origin (references.py)."""
    from .references import ReferenceBaseError, public_base, routed

    warnings = []
    if not routed():
        warnings.append(
            Warning(
                "imagegen.contrib.wagtail.public_urls is not in the URLconf: editors cannot "
                "pick library images as references (the provider fetches them from there).",
                hint="Add path('imagegen/wagtail/', "
                "include('imagegen.contrib.wagtail.public_urls')) to the site's urlpatterns.",
                id="imagegen_wagtail.W003",
            )
        )
    try:
        public_base()
    except ReferenceBaseError:
        warnings.append(
            Warning(
                "Neither IMAGEGEN['CALLBACK_BASE_URL'] nor WAGTAILADMIN_BASE_URL is an http(s) "
                "URL: editors cannot pick library images as references (the provider needs "
                "the site's public address to fetch them).",
                hint="Set one of them to the address the provider reaches the site at.",
                id="imagegen_wagtail.W004",
            )
        )
    return warnings

"""Fixtures of the Wagtail tests, which need the Wagtail settings.

They run in their own pytest invocation (Django is configured once per run)::

    DJANGO_SETTINGS_MODULE=tests.wagtail_settings .venv/bin/pytest tests/wagtail

Under the main settings this directory is not collected.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest
from django.apps import apps

if not apps.is_installed("imagegen.contrib.wagtail"):
    # The main runs (tests.settings) have no Wagtail: nothing here applies.
    collect_ignore_glob = ["test_*.py"]
else:
    # The browser fixtures (Debian's Chromium through Playwright), shared with tests/browser.
    from tests.browser.conftest import (  # noqa: F401
        browser,
        chromium_executable,
        page,
        screenshot_dir,
    )

WAGTAIL_IMAGEGEN = {
    "ASSET_ADAPTER": "imagegen.contrib.wagtail.adapters.WagtailImageAdapter",
    "WAGTAIL_COLLECTION": "Generated",
}
#: imagegen's permissions of a Wagtail editor: generate and follow their jobs.
EDITOR_PERMISSIONS = ("imagegen.add_generationjob", "imagegen.view_generationjob")


@pytest.fixture(autouse=True)
def wagtail_tree(request: pytest.FixtureRequest) -> None:
    """The default locale, root collection and root page Wagtail's migrations
    make; transactional tests flush them, so each test puts them back."""
    if request.node.get_closest_marker("django_db") is None:
        return
    from django.conf import settings
    from wagtail.coreutils import get_supported_content_language_variant
    from wagtail.models import Collection, Locale, Page

    Locale.objects.get_or_create(
        language_code=get_supported_content_language_variant(settings.LANGUAGE_CODE)
    )
    if not Collection.objects.exists():
        Collection.add_root(name="Root")
    if not Page.objects.exists():
        Page.add_root(instance=Page(title="Root", slug="root"))


@pytest.fixture
def wagtail_imagegen(imagegen_settings: dict[str, Any], settings: Any) -> dict[str, Any]:
    """imagegen on the test sandbox (tests/conftest.py) with the Wagtail adapter."""
    settings.IMAGEGEN = {**imagegen_settings, **WAGTAIL_IMAGEGEN}
    return settings.IMAGEGEN


def grant_images(user: Any, *actions: str, collection: Any = None) -> None:
    """Give ``user`` (through a group of their own) Wagtail image permissions,
    e.g. ``"add"``, ``"choose"``, in ``collection`` (default: the root) and below."""
    from django.contrib.auth.models import Group, Permission
    from wagtail.models import Collection, GroupCollectionPermission

    group, _ = Group.objects.get_or_create(name=f"images-{user.username}")
    user.groups.add(group)
    collection = collection or Collection.get_first_root_node()
    for action in actions:
        GroupCollectionPermission.objects.get_or_create(
            group=group,
            collection=collection,
            permission=Permission.objects.get(
                content_type__app_label="wagtailimages", codename=f"{action}_image"
            ),
        )


def make_wagtail_user(
    django_user_model: Any,
    username: str,
    *,
    imagegen: tuple[str, ...] = EDITOR_PERMISSIONS,
    images: tuple[str, ...] = ("add", "choose"),
) -> Any:
    """A Wagtail admin user with imagegen permissions and image permissions on the root."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user(username, password="password")
    perms = ["wagtailadmin.access_admin", *imagegen]
    for perm in perms:
        app_label, codename = perm.split(".", 1)
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    if images:
        grant_images(user, *images)
    # A fresh instance: has_perm caches permissions on the object.
    return django_user_model.objects.get(pk=user.pk)


@pytest.fixture
def wagtail_editor(django_user_model: Any) -> Any:
    return make_wagtail_user(django_user_model, "editor")


def png_bytes(size: tuple[int, int] = (64, 48)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


def sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()

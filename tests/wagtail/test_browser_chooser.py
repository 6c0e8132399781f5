"""An editor's path in real Chromium: from a page's image field, open Wagtail's
image chooser, generate an image there, watch it arrive, name it (title and
alt text) in the confirm step, and get it chosen; and the Generate page.

Each flow runs as each of :data:`ROLES`: the documented editor (exactly the
permissions docs/wagtail.md lists) and a superuser. Screenshots come from the
editor's run, the one the docs show.

All real: the live server, a Celery worker on the test broker, the sandbox
over HTTP with callbacks to the live server, Wagtail's own chooser scripts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from wagtail.images import get_image_model
from wagtail.models import GroupPagePermission, Page

from imagegen.choices import Status
from imagegen.models import GenerationJob
from tests.wagtail_app.models import ArticlePage

from ..conftest import wait_for_status
from ..factories import make_superuser
from .conftest import WAGTAIL_IMAGEGEN, make_wagtail_user

pytestmark = [
    pytest.mark.browser,
    pytest.mark.pipeline,
    pytest.mark.django_db(transaction=True),
]


#: Who drives the browser: the documented editor, and a superuser (every
#: permission, every object), whose pages must offer the same flow.
ROLES = ("editor", "superuser")


def make_driver(django_user_model: Any, role: str, editor: Callable[[Any], Any]) -> Any:
    """The user of ``role``: ``editor(django_user_model)``'s editor, or a superuser."""
    return editor(django_user_model) if role == "editor" else make_superuser(django_user_model)


def screenshot(page: Any, role: str, path: Path, **options: Any) -> None:
    """Save a screenshot from the editor's run (the docs show the editor's pages)."""
    if role == "editor":
        page.screenshot(path=path, **options)


def log_in(page: Any, live_server: Any, user: Any) -> None:
    """Sign the browser in as ``user`` with a session made by Django's test client."""
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )


def wait_for_modal(page: Any) -> None:
    """Until the modal has faded in (for screenshots)."""
    page.wait_for_function(
        "() => { const m = document.querySelector('.modal');"
        " return m && getComputedStyle(m).opacity === '1'; }"
    )


def wagtail_editor(django_user_model: Any) -> Any:
    """The documented Wagtail editor: generate, follow their jobs, add and choose images."""
    return make_wagtail_user(django_user_model, "editor")


def make_page_editor(django_user_model: Any) -> Any:
    """An editor who may edit pages, add and choose images, and generate."""
    user = make_wagtail_user(django_user_model, "editor")
    group = Group.objects.create(name="page editors")
    for codename in ("add_page", "change_page", "publish_page"):
        GroupPagePermission.objects.create(
            group=group,
            page=Page.get_first_root_node(),
            permission=Permission.objects.get(
                content_type__app_label="wagtailcore", codename=codename
            ),
        )
    user.groups.add(group)
    return django_user_model.objects.get(pk=user.pk)


@pytest.mark.parametrize("role", ROLES)
def test_generate_from_the_image_chooser_of_a_page(
    role: str,
    page: Any,
    live_server: Any,
    imagegen_settings: dict[str, Any],
    settings: Any,
    celery_worker: Any,
    sandbox: Any,
    django_user_model: Any,
    screenshot_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Slow enough that the progress is seen in the modal before the image arrives.
    monkeypatch.setattr(sandbox.config, "latency", (3.0, 4.0))
    settings.IMAGEGEN = {
        **imagegen_settings,
        **WAGTAIL_IMAGEGEN,
        "PROVIDERS": {"sandbox": {"BASE_URL": sandbox.api_url, "LATENCY": {"2k": (2.0, 6.0)}}},
        "CALLBACK_BASE_URL": live_server.url,
    }
    editor = make_driver(django_user_model, role, make_page_editor)
    article = Page.get_first_root_node().add_child(
        instance=ArticlePage(title="Kites", slug="kites")
    )
    log_in(page, live_server, editor)

    page.goto(f"{live_server.url}/admin/pages/{article.pk}/edit/")
    page.get_by_role("button", name="Choose an image").click()
    modal = page.locator(".modal-body")
    generate = modal.locator("a[data-imagegen-generate]")
    generate.wait_for()
    wait_for_modal(page)
    screenshot(page, role, screenshot_dir / "wagtail-chooser.png")
    generate.click()

    # imagegen's form, in the modal, with the admin's live price.
    modal.locator("#imagegen-generate-form").wait_for()
    price = modal.locator("#imagegen-price")
    assert price.inner_text() == "0.02 USD"
    modal.get_by_label("2K").check()
    assert price.inner_text() == "0.04 USD"
    prompt = "A red kite over the dunes, flat illustration"
    modal.locator("#id_prompt").fill(prompt)
    screenshot(page, role, screenshot_dir / "wagtail-generate.png")
    modal.get_by_role("button", name="Generate").click()

    # The job's progress in the modal, then the image is chosen for the field.
    modal.locator("#imagegen-progress").wait_for()
    job = GenerationJob.objects.get(created_by=editor)
    assert job.prompt == prompt and job.resolution == "2k"
    page.wait_for_function(
        "() => ['submitted', 'running']"
        ".includes(document.querySelector('#imagegen-status').dataset.status)"
    )
    assert "usually done in" in modal.locator("#imagegen-elapsed").inner_text()
    screenshot(page, role, screenshot_dir / "wagtail-progress.png")

    # The confirm step: the image, a short title from the prompt to edit, the alt text.
    confirm = modal.locator("#imagegen-confirm")
    confirm.wait_for(timeout=30_000)
    page.wait_for_function(
        "() => { const i = document.querySelector('.imagegen-confirm__preview img');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    image = get_image_model().objects.get()
    title = modal.get_by_label("Title")
    assert title.input_value() == "A red kite over the dunes, flat illustration"
    assert modal.locator(".imagegen-prompt").inner_text() == prompt
    title.fill("Red kite")
    alt = "A red kite flying above pale sand dunes"
    alt_field = modal.get_by_label("Alt text")
    alt_field.fill(alt)
    screenshot(page, role, screenshot_dir / "wagtail-confirm.png")
    # No alt text: the step says so, and no image is chosen.
    alt_field.fill("")
    modal.get_by_role("button", name="Use this image").click()
    modal.locator(".field-alt_text.errors").wait_for()
    assert page.locator("input[name='image']").input_value() == ""
    assert modal.get_by_label("Title").input_value() == "Red kite"
    modal.get_by_label("Alt text").fill(alt)
    modal.get_by_role("button", name="Use this image").click()
    page.locator(".modal").wait_for(state="detached", timeout=30_000)

    image.refresh_from_db()
    assert (image.title, image.description) == ("Red kite", alt)
    chosen = page.locator("input[name='image']")
    assert chosen.input_value() == str(image.pk)
    assert "Red kite" in page.locator("[data-chooser-title]").first.inner_text()
    screenshot(page, role, screenshot_dir / "wagtail-chosen.png")

    # Saving the page keeps the generated image.
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_load_state()
    revision = ArticlePage.objects.get(pk=article.pk).get_latest_revision_as_object()
    assert revision.image == image


@pytest.mark.parametrize("role", ROLES)
def test_generate_page_from_the_menu(
    role: str,
    page: Any,
    live_server: Any,
    imagegen_settings: dict[str, Any],
    settings: Any,
    celery_worker: Any,
    sandbox: Any,
    django_user_model: Any,
    screenshot_dir: Path,
) -> None:
    settings.IMAGEGEN = {
        **imagegen_settings,
        **WAGTAIL_IMAGEGEN,
        "BUDGETS": {"USER_DAILY": "1.00"},
        "CALLBACK_BASE_URL": live_server.url,
    }
    editor = make_driver(django_user_model, role, wagtail_editor)
    log_in(page, live_server, editor)

    page.goto(f"{live_server.url}/admin/")
    page.get_by_role("link", name="Generate image").click()
    page.wait_for_url("**/admin/imagegen/")
    assert page.locator("#imagegen-price").inner_text() == "0.02 USD"
    budgets = page.locator("#imagegen-budgets")
    if role == "editor":
        assert "1.00 of 1.00 USD left" in budgets.inner_text()
    else:
        # imagegen.exceed_budget, which a superuser has: no per-user budget applies.
        assert budgets.count() == 0
    page.fill("#id_prompt", "A harbour at night, long exposure")
    page.select_option("#id_aspect_ratio", "4:3")
    screenshot(page, role, screenshot_dir / "wagtail-generate-page.png", full_page=True)
    page.get_by_role("button", name="Generate").click()

    page.wait_for_url("**/admin/imagegen/jobs/*/")
    result = page.locator("#imagegen-results img")
    result.first.wait_for(timeout=30_000)
    page.wait_for_function(
        "() => { const i = document.querySelector('#imagegen-results img');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    wait_for_status(page, Status.SUCCEEDED)
    assert page.locator("#imagegen-reload").is_visible()
    image = get_image_model().objects.get()
    link = page.locator(f"#imagegen-results [data-image-id='{image.pk}']")
    assert link.get_attribute("href") == f"/admin/images/{image.pk}/"
    screenshot(page, role, screenshot_dir / "wagtail-job.png", full_page=True)

    link.click()
    page.wait_for_url(f"**/admin/images/{image.pk}/")
    # The short form of the prompt (its first sentence), to edit with the alt text.
    assert page.locator("#id_title").input_value() == "A harbour at night, long exposure"

"""The Generate control of a declared field in real Chromium, on the example
site's Article admin (project.articles), as an editor with exactly the
documented permissions (imagegen's add permission, the article's add and
change permissions), on the add form and the change form:

- the dialog opens from the keyboard, takes the focus, closes with Esc and
  gives the focus back to the control;
- its prompt is rendered from the form's current (unsaved) values;
- generating against the sandbox shows the jobs' progress live, then the
  candidates; the editor picks one, edits the alt text and saves: the image
  is in the field (copied through upload_to) and the alt text in its field;
- a reload while the job runs shows "generating…" under the field, and the
  dialog opened again follows the same job to its end.

The whole pipeline is real: the live server, a Celery worker on the test
broker, the sandbox over HTTP with callbacks to the live server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from imagegen.choices import TERMINAL
from imagegen.models import GenerationJob
from project.articles.models import Article
from tests.factories import PASSWORD, assert_png, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]

#: The documented permissions of an editor who generates into articles (docs/fields.md).
PERMISSIONS = (
    "imagegen.add_generationjob",
    "articles.add_article",
    "articles.change_article",
)


@pytest.fixture
def declared(
    settings: Any, callbacks_on: str, sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example site's declaration of the cover, on the test sandbox, slow
    enough that the progress and a reload mid-job are seen."""
    monkeypatch.setattr(sandbox.config, "latency", (3.0, 4.0))
    settings.IMAGEGEN = {
        **settings.IMAGEGEN,
        "IMAGE_FIELDS": {
            "articles.Article.cover": {
                "prompt": "Editorial photo: {title}. {summary}",
                "shape": (1200, 630),
                "candidates": 2,
                "alt_field": "cover_alt",
            }
        },
    }


@pytest.fixture
def writer(django_user_model: Any) -> Any:
    return make_user(django_user_model, *PERMISSIONS, username="writer")


def open_dialog_with_keyboard(page: Any) -> Any:
    control = page.locator(".imagegen-field__generate")
    control.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("dialog.imagegen-field-dialog")
    dialog.locator("textarea[name=prompt]").wait_for()
    assert dialog.evaluate("d => d.open && d.contains(document.activeElement)")
    return dialog


def generate_and_pick(page: Any, dialog: Any, alt_text: str) -> None:
    """Wait for the candidates, pick the second with the keyboard, set the alt text, use it."""
    candidate = dialog.locator(".imagegen-field-candidate").nth(1)
    candidate.wait_for(timeout=45_000)
    dialog.locator(".imagegen-field-candidate img").last.evaluate(
        "i => i.complete || new Promise(r => i.addEventListener('load', r))"
    )
    candidate.focus()
    page.keyboard.press("Enter")
    assert candidate.get_attribute("aria-pressed") == "true"
    dialog.locator("#imagegen-field-alt").fill(alt_text)


def test_add_form(
    page: Any,
    live_server: Any,
    admin_login: Any,
    screenshot_dir: Path,
    celery_worker: Any,
    declared: None,
    writer: Any,
) -> None:
    admin_login(page, live_server.url, "writer", PASSWORD)
    page.goto(f"{live_server.url}/admin/articles/article/add/")
    page.fill("#id_title", "Harbour at dawn")
    page.fill("#id_summary", "Fishing boats return {summary} as the fog lifts.")

    control = page.locator(".imagegen-field__generate")
    dialog = open_dialog_with_keyboard(page)
    # The form's unsaved values, rendered by the server; braces stay text.
    assert dialog.locator("textarea[name=prompt]").input_value() == (
        "Editorial photo: Harbour at dawn. Fishing boats return {summary} as the fog lifts."
    )
    assert dialog.locator("#imagegen-price").inner_text() == "0.04 USD"
    page.keyboard.press("Escape")
    assert not dialog.evaluate("d => d.open")
    assert control.evaluate("b => b === document.activeElement")

    dialog = open_dialog_with_keyboard(page)
    dialog.get_by_role("button", name="Generate").click()
    dialog.locator('.imagegen-field-job[data-terminal="false"] .imagegen-bar').first.wait_for()
    assert GenerationJob.objects.filter(target_field="cover", target_object_id="").count() == 2
    generate_and_pick(page, dialog, "Boats in a foggy harbour")
    page.screenshot(path=screenshot_dir / "field-dialog.png")
    dialog.get_by_role("button", name="Use this image").click()
    assert not dialog.evaluate("d => d.open")
    assert page.locator("#id_cover_alt").input_value() == "Boats in a foggy harbour"
    chosen = page.locator(".imagegen-field__chosen")
    assert chosen.is_visible()
    # Changing one's mind clears the choice; choosing again restores it.
    chosen.get_by_role("button", name="Don't use it").click()
    assert chosen.is_hidden()
    assert page.locator("[name='_imagegen-cover-job']").input_value() == ""
    dialog = open_dialog_with_keyboard(page)
    dialog.locator(".imagegen-field-candidate").nth(1).click()
    assert dialog.locator("#imagegen-field-alt").input_value() == "Boats in a foggy harbour"
    dialog.get_by_role("button", name="Use this image").click()
    assert chosen.is_visible()
    # Nothing is stored before the form is saved.
    assert Article.objects.count() == 0

    page.get_by_role("button", name="Save and continue editing").click()
    page.wait_for_url("**/change/")
    article = Article.objects.get()
    assert article.cover.name.startswith("articles/covers/")
    assert article.cover_alt == "Boats in a foggy harbour"
    assert GenerationJob.objects.filter(target_object_id=str(article.pk)).count() == 2
    current = page.locator("img.imagegen-field__current")
    current.wait_for()
    current.evaluate("i => i.complete || new Promise(r => i.addEventListener('load', r))")
    assert current.evaluate("i => i.naturalWidth") > 0
    page.screenshot(path=screenshot_dir / "field-filled.png", full_page=True)
    for name in ("field-dialog", "field-filled"):
        assert_png(screenshot_dir / f"{name}.png")


def test_change_form_reload_mid_job(
    page: Any,
    live_server: Any,
    admin_login: Any,
    celery_worker: Any,
    declared: None,
    writer: Any,
) -> None:
    article = Article.objects.create(title="Mountain hut", summary="Snow on the roof.")
    admin_login(page, live_server.url, "writer", PASSWORD)
    change_url = f"{live_server.url}/admin/articles/article/{article.pk}/change/"
    page.goto(change_url)
    page.fill("#id_summary", "Lights in the windows at night.")
    dialog = open_dialog_with_keyboard(page)
    assert dialog.locator("textarea[name=prompt]").input_value() == (
        "Editorial photo: Mountain hut. Lights in the windows at night."
    )
    dialog.locator("select[name=candidates]").select_option("1")
    assert dialog.locator("#imagegen-price").inner_text() == "0.02 USD"
    dialog.get_by_role("button", name="Generate").click()
    dialog.locator('.imagegen-field-job[data-terminal="false"]').first.wait_for()

    # The editor leaves mid-job and comes back: the field says so.
    page.reload()
    job = GenerationJob.objects.get(target_object_id=str(article.pk))
    row = page.locator(f'.imagegen-field__history li[data-job-id="{job.pk}"]')
    # The sandbox takes 3 to 4 s: the reload comes well before the job ends.
    assert row.get_attribute("data-status") not in TERMINAL
    assert "generating…" in row.inner_text()
    # The reload dropped the unsaved edit, as any reload of an admin form does.
    assert page.locator("#id_summary").input_value() == "Snow on the roof."

    dialog = open_dialog_with_keyboard(page)
    candidate = dialog.locator(".imagegen-field-candidate").first
    candidate.wait_for(timeout=45_000)
    candidate.click()
    dialog.locator("#imagegen-field-alt").fill("A lit hut in the snow")
    dialog.get_by_role("button", name="Use this image").click()
    article.refresh_from_db()
    assert not article.cover  # not before the save
    page.get_by_role("button", name="Save and continue editing").click()
    page.wait_for_url("**/change/")
    article.refresh_from_db()
    assert article.cover.name.startswith("articles/covers/")
    assert article.cover_alt == "A lit hut in the snow"
    assert page.locator("img.imagegen-field__current").count() == 1

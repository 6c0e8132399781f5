"""Alt text drafts, the decorative mark and prompt drafting in real Chromium,
as the editor of docs/admin.md (exactly its permissions) and as a superuser:

- the whole pipeline (live server, Celery worker, the sandbox and its
  describer over HTTP): a new image's draft arrives on the job page without
  a reload, in the alt text input, marked "Drafted — check it", while the
  image's alt text stays empty; the editor edits it and approves: the
  edited text is the alt text;
- a draft that is pending when the page opens (the job already ended): the
  page says "Drafting alt text…" and shows the draft once it is ready,
  without a reload; one that failed: a quiet note, the input empty;
- REQUIRE_ALT_TEXT: approving with the input emptied is refused on the card
  with the reason and nothing is saved; then marked decorative, the same
  approval passes;
- a run's grid: the draft waits in each image's alt text input; Approve
  saves the edited text; an emptied input under REQUIRE_ALT_TEXT is refused
  above the grid, nothing saved;
- the field dialog (docs/fields.md's writer, and a superuser): "Draft a
  prompt from the content" puts the describer's prompt, drafted from the
  unsaved form, in the prompt box, editable, and makes no job; a describer
  that fails says why in the dialog.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from imagegen import services
from imagegen.choices import AltTextDraftState, ReviewStatus
from imagegen.models import GeneratedImage, GenerationJob
from tests.content_app.models import Article
from tests.factories import DOCUMENTED_EDITOR, make_image, make_job, make_superuser, make_user
from tests.test_alt_text_views import describer

from .conftest import SignIn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("drafting")]

DRAFTED_NOTE = "Drafted — check it"


@pytest.fixture(params=["editor", "superuser"])
def user(request: pytest.FixtureRequest, sign_in: SignIn, imagegen_settings: Any) -> Any:
    """The editor of docs/admin.md (exactly its permissions) and a superuser, signed in."""
    if request.param == "superuser":
        return sign_in(superuser=True)
    return sign_in(*DOCUMENTED_EDITOR)


@pytest.fixture
def open_job(page: Any, live_server: Any) -> Callable[[Any], None]:
    def goto(job: Any) -> None:
        page.goto(f"{live_server.url}/admin/imagegen/generationjob/{job.pk}/change/")
        # A marker that a reload would wipe.
        page.evaluate("window.__sameDocument = true")

    return goto


@pytest.mark.pipeline
def test_the_draft_arrives_without_reload_and_approve_keeps_the_edit(
    user: Any,
    page: Any,
    open_job: Callable[[Any], None],
    live_pipeline: Any,
    screenshot_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live_pipeline.config, "latency", (1.0, 2.0))
    job = services.create_job(
        user=user, prompt="A harbour at dawn, fishing boats, watercolour", resolution="1k"
    )
    open_job(job)
    card = page.locator(".imagegen-review[data-image-id]")
    card.first.wait_for(timeout=30_000)
    note = card.locator("[data-role=draft-note]")
    card.locator('[data-role=draft-note][data-state="ready"]').wait_for(timeout=30_000)
    assert note.inner_text().strip().startswith(DRAFTED_NOTE)
    image = GeneratedImage.objects.get(job=job)
    assert image.alt_text_draft_state == AltTextDraftState.READY
    alt = card.locator("[name=alt_text]")
    assert alt.input_value() == image.alt_text_draft
    assert "is-draft" in (alt.get_attribute("class") or "")
    # A suggestion only: the image has no alt text until the editor confirms.
    assert image.alt_text == ""
    if not user.is_superuser:
        page.wait_for_function(
            "() => { const i = document.querySelector('.imagegen-review img');"
            " return i && i.complete && i.naturalWidth > 0; }"
        )
        page.screenshot(path=screenshot_dir / "job-alt-text-draft.png", full_page=True)

    assert alt.is_editable()
    edited = f"{image.alt_text_draft} Gulls overhead."
    alt.fill(edited)
    with page.expect_response(lambda r: "/review/" in r.url) as answered:
        card.get_by_role("button", name="Approve").click()
    assert answered.value.status == 200
    card.locator("[data-role=review-status]").filter(has_text="Approved").wait_for()
    image.refresh_from_db()
    assert (image.alt_text, image.review_status) == (edited, ReviewStatus.APPROVED)
    assert note.get_attribute("data-state") == ""
    assert note.inner_text().strip() == ""
    assert alt.input_value() == edited
    assert page.evaluate("window.__sameDocument") is True


def test_a_pending_draft_is_followed_after_the_job_ended_and_a_failed_one_is_said(
    user: Any, page: Any, open_job: Callable[[Any], None]
) -> None:
    job = make_job(user)
    pending = make_image(job, index=0, alt_text_draft_state=AltTextDraftState.PENDING)
    failed = make_image(job, index=1, alt_text_draft_state=AltTextDraftState.FAILED)
    open_job(job)
    first = page.locator(f'.imagegen-review[data-image-id="{pending.pk}"]')
    second = page.locator(f'.imagegen-review[data-image-id="{failed.pk}"]')
    first.locator('[data-role=draft-note][data-state="pending"]').wait_for()
    assert first.locator("[data-role=draft-note]").inner_text().strip() == "Drafting alt text…"
    failed_note = second.locator('[data-role=draft-note][data-state="failed"]')
    assert (
        failed_note.inner_text().strip() == "No draft could be made: describe the image yourself."
    )
    assert second.locator("[name=alt_text]").input_value() == ""

    # The worker's answer, while the page is open.
    GeneratedImage.objects.filter(pk=pending.pk).update(
        alt_text_draft="Two fishing boats moored at sunrise",
        alt_text_draft_state=AltTextDraftState.READY,
    )
    first.locator('[data-role=draft-note][data-state="ready"]').wait_for(timeout=30_000)
    alt = first.locator("[name=alt_text]")
    assert alt.input_value() == "Two fishing boats moored at sunrise"
    assert alt.is_editable()
    pending.refresh_from_db()
    assert pending.alt_text == ""
    assert page.evaluate("window.__sameDocument") is True


def test_require_alt_text_refuses_on_the_card_then_decorative_passes(
    user: Any, page: Any, open_job: Callable[[Any], None], settings: Any
) -> None:
    settings.IMAGEGEN = {**settings.IMAGEGEN, "REQUIRE_ALT_TEXT": True}
    job = make_job(user)
    image = make_image(
        job,
        alt_text_draft="A red square on white",
        alt_text_draft_state=AltTextDraftState.READY,
    )
    open_job(job)
    card = page.locator(f'.imagegen-review[data-image-id="{image.pk}"]')
    alt = card.locator("[name=alt_text]")
    assert alt.input_value() == "A red square on white"
    alt.fill("")
    card.locator("[name=title]").fill("Red square")
    with page.expect_response(lambda r: "/review/" in r.url) as answered:
        card.get_by_role("button", name="Approve").click()
    assert answered.value.status == 400
    message = card.locator("[data-role=message]")
    message.filter(has_text="alt text").wait_for()
    assert "is-error" in (message.get_attribute("class") or "")
    image.refresh_from_db()
    assert (image.title, image.alt_text, image.review_status) == ("", "", ReviewStatus.NEW)

    card.get_by_label("Decorative image (no alt text)").check()
    with page.expect_response(lambda r: "/review/" in r.url) as answered:
        card.get_by_role("button", name="Approve").click()
    assert answered.value.status == 200
    card.locator("[data-role=review-status]").filter(has_text="Approved").wait_for()
    image.refresh_from_db()
    assert image.review_status == ReviewStatus.APPROVED
    assert image.decorative is True and image.alt_text == ""
    assert card.get_by_label("Decorative image (no alt text)").is_checked()


# The field dialog ------------------------------------------------------------


@pytest.fixture
def declared(settings: Any, imagegen_settings: dict[str, Any]) -> dict[str, Any]:
    settings.IMAGEGEN = {
        **imagegen_settings,
        "IMAGE_FIELDS": {
            "imagegen_content_tests.Article.cover": {
                "prompt": "Editorial photo: {title}.",
                "alt_field": "cover_alt",
            }
        },
        "DESCRIBER": describer(),
    }
    return settings.IMAGEGEN


@pytest.fixture(params=["writer", "superuser"])
def writer(
    request: pytest.FixtureRequest,
    page: Any,
    live_server: Any,
    admin_login: Any,
    django_user_model: Any,
    declared: dict[str, Any],
) -> Any:
    """docs/fields.md's writer (imagegen's add, the model's add and change) and a superuser."""
    from tests.factories import PASSWORD

    if request.param == "superuser":
        user = make_superuser(django_user_model)
    else:
        user = make_user(
            django_user_model,
            "imagegen.add_generationjob",
            "imagegen_content_tests.add_article",
            "imagegen_content_tests.change_article",
            username="writer",
        )
    admin_login(page, live_server.url, user.username, PASSWORD)
    return user


@pytest.mark.urls("tests.field_admin")
def test_the_field_dialog_drafts_a_prompt_from_the_content(
    writer: Any, page: Any, live_server: Any, settings: Any, declared: dict[str, Any]
) -> None:
    article = Article.objects.create(title="Bikes", summary="Saved summary.")
    page.goto(
        f"{live_server.url}/content-admin/imagegen_content_tests/article/{article.pk}/change/"
    )
    page.fill("#id_title", "Tandems on a mountain pass")
    page.locator(".imagegen-field__generate").click()
    dialog = page.locator("dialog.imagegen-field-dialog")
    prompt = dialog.locator("textarea[name=prompt]")
    prompt.wait_for()
    assert prompt.input_value() == "Editorial photo: Tandems on a mountain pass."

    with page.expect_response(lambda r: "/draft-prompt/" in r.url) as answered:
        dialog.get_by_role("button", name="Draft a prompt from the content").click()
    assert answered.value.status == 200
    dialog.locator("[data-role=draft-done]").wait_for()
    drafted = prompt.input_value()
    # From the form as typed (unsaved), by the describer, in the editor's language.
    assert drafted.startswith("Drafted (en")
    assert "Tandems on a mountain pass" in drafted and "Saved summary." in drafted
    assert prompt.evaluate("p => p === document.activeElement")
    prompt.fill(f"{drafted} Golden hour.")
    assert prompt.input_value().endswith("Golden hour.")
    # Nothing is generated or paid for until Generate.
    assert not GenerationJob.objects.exists()

    settings.IMAGEGEN = {**declared, "DESCRIBER": describer(fail=True)}
    with page.expect_response(lambda r: "/draft-prompt/" in r.url) as answered:
        dialog.get_by_role("button", name="Draft a prompt from the content").click()
    assert answered.value.status == 502
    error = dialog.locator("[data-role=draft-error]")
    error.wait_for()
    assert "unavailable" in error.inner_text()
    # The editor's text stays.
    assert prompt.input_value().endswith("Golden hour.")
    assert not GenerationJob.objects.exists()


def test_the_run_grid_offers_the_draft_and_approve_confirms_it(
    user: Any, page: Any, live_server: Any, settings: Any
) -> None:
    """A run's grid: the draft waits in the image's alt text input, marked;
    Approve saves the input's (edited) text; a draft pending when the page
    opened (its job ended) arrives without a reload; with REQUIRE_ALT_TEXT an
    emptied input is refused above the grid and nothing is saved."""
    from imagegen.models import GenerationRun

    settings.IMAGEGEN = {**settings.IMAGEGEN, "REQUIRE_ALT_TEXT": True}
    run = GenerationRun.objects.create(
        created_by=user, kind=GenerationRun.Kind.CANDIDATES, settings={"prompt": "a red bicycle"}
    )
    first = make_image(
        make_job(user, run=run),
        alt_text_draft="A red bicycle against a wall",
        alt_text_draft_state=AltTextDraftState.READY,
    )
    second = make_image(make_job(user, run=run), alt_text_draft_state=AltTextDraftState.PENDING)
    page.goto(f"{live_server.url}/admin/imagegen/generationrun/{run.pk}/change/")
    figure = page.locator(f'.imagegen-run-image[data-image-id="{first.pk}"]')
    alt = figure.locator("[name=alt_text]")
    assert alt.input_value() == "A red bicycle against a wall"
    assert figure.locator("[data-role=draft-note]").get_attribute("data-state") == "ready"
    alt.fill("A red bicycle leaning on a brick wall")
    with page.expect_response(lambda r: "/approve/" in r.url) as answered:
        figure.locator("[data-action=approve]").click()
    assert answered.value.status == 200
    figure.locator(".imagegen-run-review").filter(has_text="Approved").wait_for()
    first.refresh_from_db()
    assert (first.alt_text, first.review_status) == (
        "A red bicycle leaning on a brick wall",
        ReviewStatus.APPROVED,
    )
    assert figure.locator("[data-role=draft-note]").get_attribute("data-state") == ""

    # A draft still being made when the page opened (its job ended): it
    # arrives without a reload.
    other = page.locator(f'.imagegen-run-image[data-image-id="{second.pk}"]')
    assert other.locator("[data-role=draft-note]").inner_text().strip() == "Drafting alt text…"
    GeneratedImage.objects.filter(pk=second.pk).update(
        alt_text_draft="A red bicycle in the rain", alt_text_draft_state=AltTextDraftState.READY
    )
    other.locator('[data-role=draft-note][data-state="ready"]').wait_for(timeout=30_000)
    assert other.locator("[name=alt_text]").input_value() == "A red bicycle in the rain"
    other.locator("[name=alt_text]").fill("")
    with page.expect_response(lambda r: "/approve/" in r.url) as answered:
        other.locator("[data-action=approve]").click()
    assert answered.value.status == 400
    notice = page.locator("#imagegen-run-notice")
    notice.wait_for()
    assert "alt text" in notice.inner_text()
    second.refresh_from_db()
    assert (second.alt_text, second.review_status) == ("", ReviewStatus.NEW)

"""Review in place and honest waiting, in real Chromium, as the editor
docs/admin.md describes (exactly its permissions) and as a superuser.

- review without reload: the image arrives on the job page (real pipeline:
  live server, Celery worker, sandbox over HTTP, callbacks), the editor
  types a title and alt text and approves: one request, nothing reloaded,
  both saved;
- discard offers undo for DISCARD_UNDO_SECONDS; undo restores the image;
- a logout and a server that does not answer are said on the page, which
  carries on by itself once it can;
- a retry after a temporary provider error reads "waiting to retry (attempt
  n of m)" in neutral colours, with no provider code; a job past its usual
  time says so with a running clock and no frozen bar;
- a moderation refusal offers "Edit the prompt" (the form prefilled), not
  Retry, also when it happens while the page is open;
- the job list shows all its columns at 1280 px and Status at 390 px; the
  job page's images stay inside their box at both widths.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from imagegen import services
from imagegen.choices import ReviewStatus, Status
from imagegen.models import GeneratedImage

from ..conftest import wait_until
from ..factories import DOCUMENTED_EDITOR, make_image, make_job
from .conftest import SignIn

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["editor", "superuser"])
def user(request: pytest.FixtureRequest, sign_in: SignIn, imagegen_settings: Any) -> Any:
    """Every test here runs as each member of the family: the editor of
    docs/admin.md (exactly its permissions) and a superuser, signed in on ``page``."""
    if request.param == "superuser":
        return sign_in(superuser=True)
    return sign_in(*DOCUMENTED_EDITOR)


@pytest.fixture
def usual_latency(imagegen_settings: dict[str, Any], settings: Any) -> dict[str, Any]:
    """The sandbox's usual time as a real provider's (20 s to 1 min), so a
    job opened at once is not past it (the suite's scale is a second)."""
    providers = imagegen_settings["PROVIDERS"]
    sandbox = {**providers["sandbox"], "LATENCY": {"1k": (20.0, 60.0)}}
    settings.IMAGEGEN = {**imagegen_settings, "PROVIDERS": {**providers, "sandbox": sandbox}}
    return settings.IMAGEGEN


@pytest.fixture
def open_job(page: Any, live_server: Any) -> Callable[[Any], None]:
    """A function ``open_job(job)`` that opens the job's page in the admin."""

    def goto(job: Any) -> None:
        page.goto(f"{live_server.url}/admin/imagegen/generationjob/{job.pk}/change/")

    return goto


def shot(page: Any, directory: Path, name: str, user: Any, **options: Any) -> None:
    """A screenshot for docs/screenshots: the editor's run only (the
    superuser's page is the same), so a refresh does not double them."""
    if not user.is_superuser:
        page.screenshot(path=directory / f"{name}.png", **options)


def visible_text(page: Any, selector: str) -> str:
    locator = page.locator(selector)
    locator.wait_for(state="visible")
    return locator.inner_text()


@pytest.mark.pipeline
def test_review_without_reload_keeps_the_text_and_discard_can_be_undone(
    user: Any,
    page: Any,
    open_job: Callable[[Any], None],
    screenshot_dir: Path,
    live_pipeline: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live_pipeline.config, "latency", (2.0, 3.0))
    settings.IMAGEGEN = {**settings.IMAGEGEN, "DISCARD_UNDO_SECONDS": 60}
    job = services.create_job(
        user=user, prompt="A harbour at dawn, fishing boats, watercolour", resolution="1k"
    )
    open_job(job)
    # A marker that a reload would wipe.
    page.evaluate("window.__sameDocument = true")

    card = page.locator(".imagegen-review[data-image-id]")
    card.first.wait_for(timeout=30_000)
    assert page.locator("#imagegen-status").get_attribute("data-status") in (
        Status.FINALIZING,
        Status.SUCCEEDED,
    )
    image = job.images.get()
    # The documented editor gets the same editable form as a superuser.
    title, alt = card.locator("[name=title]"), card.locator("[name=alt_text]")
    assert title.is_editable() and alt.is_editable()
    title.fill("Harbour at dawn")
    alt.fill("Fishing boats moored in a harbour at sunrise, in watercolour")
    with page.expect_response(lambda r: "/review/" in r.url) as answered:
        card.get_by_role("button", name="Approve").click()
    assert answered.value.status == 200
    card.locator("[data-role=review-status]").filter(has_text="Approved").wait_for()
    image.refresh_from_db()
    assert image.review_status == ReviewStatus.APPROVED
    assert image.title == "Harbour at dawn"
    assert image.alt_text == "Fishing boats moored in a harbour at sunrise, in watercolour"
    assert card.locator("[data-role=name]").inner_text() == "Harbour at dawn"
    assert page.evaluate("window.__sameDocument") is True
    page.wait_for_function(
        "() => { const i = document.querySelector('.imagegen-review img');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    shot(page, screenshot_dir, "job-review", user, full_page=True)

    # Discard: the file stays for the undo time; Undo brings the image back.
    card.get_by_role("button", name="Discard").click()
    undo = card.locator("[data-role=undo]")
    undo.wait_for()
    assert "Undo within" in undo.inner_text()
    image.refresh_from_db()
    assert image.review_status == ReviewStatus.DISCARDED and image.file
    # Every image discarded: nothing to use as a reference.
    assert page.locator(".imagegen-tool button[name=use_as_reference]").is_hidden()
    shot(page, screenshot_dir, "job-discard-undo", user, full_page=True)
    undo.get_by_role("button", name="Undo").click()
    undo.wait_for(state="hidden")
    image.refresh_from_db()
    assert image.review_status == ReviewStatus.NEW and image.file
    assert page.locator(".imagegen-tool button[name=use_as_reference]").is_visible()
    assert page.evaluate("window.__sameDocument") is True


def test_the_image_page_buttons_keep_the_text_typed(
    user: Any,
    page: Any,
    live_server: Any,
) -> None:
    image = make_image(make_job(user))
    page.goto(f"{live_server.url}/admin/imagegen/generatedimage/{image.pk}/change/")
    page.fill("#id_title", "Red square")
    page.fill("#id_alt_text", "A red square on white")
    page.locator(".imagegen-tool button[value=approve]").click()
    page.wait_for_load_state()
    assert "Approved." in page.locator(".messagelist").inner_text()
    image.refresh_from_db()
    assert (image.title, image.alt_text, image.review_status) == (
        "Red square",
        "A red square on white",
        ReviewStatus.APPROVED,
    )
    # Named by its title, never by the storage path.
    assert image.file.name not in page.locator("#content h2, .breadcrumbs").all_inner_texts()
    assert "Red square" in page.locator(".breadcrumbs").inner_text()


def test_logged_out_and_server_down_are_said_and_the_page_resumes(
    user: Any,
    page: Any,
    open_job: Callable[[Any], None],
    screenshot_dir: Path,
    usual_latency: dict[str, Any],
) -> None:
    job = make_job(user, status=Status.RUNNING)
    open_job(job)
    notice = page.locator("#imagegen-connection")
    page.wait_for_function("() => document.querySelector('#imagegen-elapsed').textContent")
    assert notice.is_hidden()

    # The server stops answering (the network edge: requests fail).
    page.route("**/status/", lambda route: route.abort("connectionrefused"))
    assert "not answering" in visible_text(page, "#imagegen-connection")
    shot(page, screenshot_dir, "job-offline", user, full_page=True)
    page.unroute("**/status/")
    notice.wait_for(state="hidden", timeout=30_000)

    # Logged out (in another tab, by an expired session): the status URL
    # answers with the login page.
    cookies = page.context.cookies()
    page.context.clear_cookies()
    assert "logged out" in visible_text(page, "#imagegen-connection")
    shot(page, screenshot_dir, "job-logged-out", user, full_page=True)
    page.context.add_cookies(cookies)
    notice.wait_for(state="hidden", timeout=30_000)
    # And it carries on: the job's end shows without a reload.
    services.fail(job.pk, "GENERATION_FAILED", "The provider failed.", from_statuses=["running"])
    page.wait_for_function(
        "() => document.querySelector('#imagegen-status').dataset.status === 'failed'",
        timeout=30_000,
    )


def test_waiting_to_retry_is_neutral_and_names_no_provider_code(
    user: Any,
    page: Any,
    open_job: Callable[[Any], None],
    screenshot_dir: Path,
    usual_latency: dict[str, Any],
) -> None:
    job = make_job(
        user,
        status=Status.QUEUED,
        submit_attempts=2,
        error_code="429",
        error_message="The provider is rate limiting requests.",
    )
    open_job(job)
    text = visible_text(page, "#imagegen-waiting")
    assert "Waiting to retry (attempt 3 of 5)" in text
    panel = page.locator("#imagegen-progress").inner_text()
    assert "429" not in panel and "rate limiting" not in panel
    assert page.locator("#imagegen-error").is_hidden()
    # Neutral: not the error colours of a failed job.
    assert page.locator("#imagegen-waiting").evaluate("e => e.className") == "imagegen-note"
    assert "imagegen-bar--waiting" in page.locator("#imagegen-bar-track").get_attribute("class")
    shot(page, screenshot_dir, "job-waiting", user, full_page=True)


def test_past_the_usual_time_the_clock_runs_and_the_bar_is_not_frozen(
    user: Any,
    page: Any,
    open_job: Callable[[Any], None],
    screenshot_dir: Path,
) -> None:
    job = make_job(user, status=Status.RUNNING, created_at=timezone.now() - timedelta(minutes=10))
    open_job(job)
    elapsed = page.locator("#imagegen-elapsed")
    page.wait_for_function(
        "() => document.querySelector('#imagegen-elapsed').textContent.includes('longer')"
    )
    assert "you can leave this page" in elapsed.inner_text().lower()
    first = elapsed.inner_text()
    page.wait_for_function(
        "(first) => document.querySelector('#imagegen-elapsed').textContent !== first", arg=first
    )
    track = page.locator("#imagegen-bar-track")
    assert "imagegen-bar--overdue" in track.get_attribute("class")
    assert track.get_attribute("aria-valuenow") is None  # no figure pretending to know
    shot(page, screenshot_dir, "job-overdue", user, full_page=True)
    # An ended job gets its own bar: canceled is not a failure's red.
    services.cancel(job.pk)
    page.wait_for_function(
        "() => document.querySelector('#imagegen-bar-track').classList"
        ".contains('imagegen-bar--canceled')"
    )
    assert "imagegen-bar--overdue" not in track.get_attribute("class")


def test_a_moderation_refusal_offers_edit_the_prompt(
    user: Any,
    page: Any,
    open_job: Callable[[Any], None],
    screenshot_dir: Path,
    usual_latency: dict[str, Any],
) -> None:
    job = make_job(
        user,
        status=Status.RUNNING,
        prompt="A forbidden thing",
        aspect_ratio="16:9",
    )
    open_job(job)
    cancel_note = visible_text(page, "#imagegen-cancel-note")
    assert "may still be charged" in cancel_note
    # Refused while the page is open.
    services.fail(
        job.pk,
        "CONTENT_VIOLATION",
        "The prompt or a reference image was refused by the content policy.",
        from_statuses=["running"],
    )
    edit = page.get_by_role("link", name="Edit the prompt")
    edit.wait_for()
    assert page.locator(".imagegen-tool button[name=retry_jobs]").count() in (0, 1)
    assert page.locator(".imagegen-tool button[name=retry_jobs]").is_hidden()
    assert page.locator("#imagegen-refused").is_visible()
    assert page.locator("#imagegen-cancel-note").is_hidden()
    assert "imagegen-bar--failed" in page.locator("#imagegen-bar-track").get_attribute("class")
    shot(page, screenshot_dir, "job-refused", user, full_page=True)
    edit.click()
    page.wait_for_url("**/generationjob/add/**")
    assert page.locator("#id_prompt").input_value() == "A forbidden thing"
    assert page.locator("#id_aspect_ratio").input_value() == "16:9"


def _right_edges(page: Any, selector: str) -> list[float]:
    return page.locator(selector).evaluate_all(
        "els => els.map(e => e.getBoundingClientRect().right)"
    )


def test_layouts_at_1280_and_390_px(
    user: Any,
    page: Any,
    open_job: Callable[[Any], None],
    live_server: Any,
    screenshot_dir: Path,
) -> None:
    long_prompt = "A very long prompt about a lighthouse on a cliff at dusk " * 6
    for status in (Status.SUCCEEDED, Status.FAILED, Status.RUNNING):
        make_job(user, status=status, prompt=long_prompt, images=1 if status == "succeeded" else 0)
    shown = make_job(user, prompt=long_prompt)
    for index in range(3):
        make_image(shown, index=index, size=(640, 480))

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/admin/imagegen/generationjob/")
    headers = page.locator("#result_list thead th")
    assert headers.count() >= 9
    # Inside the list's own box (which scrolls sideways what does not fit).
    edge = page.locator("#changelist .results").bounding_box()
    limit = edge["x"] + edge["width"] + 1
    widths = page.locator("#result_list thead th").evaluate_all(
        "els => els.map(e => e.className + ':' + Math.round(e.getBoundingClientRect().width))"
    )
    for right in _right_edges(page, "#result_list thead th"):
        assert right <= limit, f"a column of the job list is cut off at 1280 px: {widths}"
    shot(page, screenshot_dir, "job-list-1280", user, full_page=False)

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/admin/imagegen/generationjob/")
    badge = page.locator("#result_list .imagegen-badge").first
    box = badge.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert badge.is_visible()
    shot(page, screenshot_dir, "job-list-390", user, full_page=False)

    for width in (390, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        open_job(shown)
        results = page.locator("#imagegen-results")
        results.locator(".imagegen-review").first.wait_for()
        module = page.locator("#imagegen-progress").bounding_box()
        for right in _right_edges(page, "#imagegen-results .imagegen-review"):
            assert right <= module["x"] + module["width"] + 1
        # What sticks out, named, should it fail.
        wide = results.evaluate(
            "r => { const edge = r.getBoundingClientRect().right + 1;"
            " return [...r.querySelectorAll('*')]"
            ".filter(e => e.getBoundingClientRect().right > edge).map(e => e.tagName); }"
        )
        assert results.evaluate("e => e.scrollWidth <= e.clientWidth"), wide
        shot(page, screenshot_dir, f"job-page-{width}", user, full_page=True)
    wait_until(lambda: GeneratedImage.objects.filter(job=shown).count() == 3, what="images")


def test_review_on_a_page_opened_after_the_job_ended(
    user: Any,
    page: Any,
    open_job: Callable[[Any], None],
) -> None:
    """The cards the server renders (images already stored) work like the
    ones the script adds: text and decision in one request, no reload."""
    image = make_image(make_job(user))
    open_job(image.job)
    page.evaluate("window.__sameDocument = true")
    card = page.locator(f'.imagegen-review[data-image-id="{image.pk}"]')
    card.locator("[name=title]").fill("Red square")
    card.locator("[name=alt_text]").fill("A red square")
    card.get_by_role("button", name="Approve").click()
    card.locator("[data-role=review-status]").filter(has_text="Approved").wait_for()
    image.refresh_from_db()
    assert (image.title, image.alt_text, image.review_status) == (
        "Red square",
        "A red square",
        ReviewStatus.APPROVED,
    )
    assert page.evaluate("window.__sameDocument") is True

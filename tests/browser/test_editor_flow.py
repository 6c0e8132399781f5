"""An editor's path through the admin in real Chromium: generate, watch the
live page, see the image; and the refusals (budget, permission).

The whole pipeline is real: the live server, a Celery worker on the test
broker, the sandbox over HTTP with callbacks to the live server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from imagegen.choices import Status
from imagegen.models import GenerationJob

from ..conftest import wait_for_status, wait_until
from ..factories import EDITOR, assert_png, make_user
from .conftest import SignIn

pytestmark = pytest.mark.django_db(transaction=True)

#: tests.factories' editor (who may "poll now") without discard.
EDITOR_PERMISSIONS = tuple(perm for perm in EDITOR if perm != "imagegen.delete_generatedimage")


@pytest.mark.pipeline
def test_editor_generates_and_watches_the_image_arrive(
    page: Any,
    live_server: Any,
    sign_in: SignIn,
    screenshot_dir: Path,
    live_pipeline: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Slow enough that the live page is seen mid-way, and announced as such.
    sandbox = live_pipeline
    monkeypatch.setattr(sandbox.config, "latency", (4.0, 5.0))
    settings.IMAGEGEN = {
        **settings.IMAGEGEN,
        "PROVIDERS": {"sandbox": {"BASE_URL": sandbox.api_url, "LATENCY": {"2k": (3.0, 8.0)}}},
    }
    editor = sign_in(*EDITOR_PERMISSIONS)

    page.goto(f"{live_server.url}/admin/imagegen/generationjob/add/")
    price = page.locator("#imagegen-price")
    assert price.inner_text() == "0.02 USD"
    page.get_by_label("2K").check()
    assert price.inner_text() == "0.04 USD"
    prompt = "A lighthouse on a cliff at dusk, oil painting, warm light"
    page.fill("#id_prompt", prompt)
    assert page.locator("#imagegen-prompt-count").inner_text().startswith(f"{len(prompt)} / ")
    # Reference fields only apply to image-to-image.
    assert page.locator(".field-reference_urls").is_hidden()
    page.screenshot(path=screenshot_dir / "generate-form.png", full_page=True)
    page.get_by_role("button", name="Generate").click()

    page.wait_for_url("**/change/")
    job = GenerationJob.objects.get(created_by=editor)
    assert job.prompt == prompt and job.resolution == "2k"
    page.wait_for_function(
        "() => ['submitted', 'running']"
        ".includes(document.querySelector('#imagegen-status').dataset.status)"
    )
    page.wait_for_function(
        "() => parseFloat(document.querySelector('#imagegen-bar').style.width) > 10"
    )
    assert "usually done in" in page.locator("#imagegen-elapsed").inner_text()
    assert page.locator(".imagegen-tool button[name=cancel_jobs]").is_visible()
    page.screenshot(path=screenshot_dir / "job-progress.png", full_page=True)

    # No reload: the page sees the job finish and shows the stored image.
    result = page.locator("#imagegen-results img")
    result.first.wait_for(timeout=30_000)
    page.wait_for_function(
        "() => { const i = document.querySelector('#imagegen-results img');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    wait_for_status(page, Status.SUCCEEDED)
    assert page.locator(".imagegen-tool button[name=cancel_jobs]").is_hidden()
    assert page.locator(".imagegen-tool button[name=generate_again]").is_visible()
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED and job.images.count() == 1
    page.screenshot(path=screenshot_dir / "job-result.png", full_page=True)
    # The admin's dark theme: imagegen's styles use its colour variables.
    page.emulate_media(color_scheme="dark")
    page.screenshot(path=screenshot_dir / "job-result-dark.png", full_page=True)
    page.emulate_media(color_scheme="light")

    page.goto(f"{live_server.url}/admin/imagegen/generationjob/")
    row = page.locator("#result_list tbody tr").first
    assert prompt in row.inner_text() and "Succeeded" in row.inner_text()
    page.screenshot(path=screenshot_dir / "job-list.png", full_page=True)

    # The image grid shows it too (thumbnail or full image, whichever exists).
    page.goto(f"{live_server.url}/admin/imagegen/generatedimage/")
    grid_image = page.locator("#result_list img").first
    grid_image.wait_for()
    wait_until(lambda: grid_image.evaluate("i => i.complete && i.naturalWidth > 0"), what="grid")
    page.screenshot(path=screenshot_dir / "image-grid.png", full_page=True)

    shots = (
        "generate-form",
        "job-progress",
        "job-result",
        "job-result-dark",
        "job-list",
        "image-grid",
    )
    for name in shots:
        assert_png(screenshot_dir / f"{name}.png")


def test_budget_refusal_is_a_form_error(
    page: Any,
    live_server: Any,
    sign_in: SignIn,
    screenshot_dir: Path,
    imagegen_settings: dict[str, Any],
    settings: Any,
) -> None:
    settings.IMAGEGEN = {**imagegen_settings, "BUDGETS": {"USER_DAILY": "0.05"}}
    sign_in(*EDITOR_PERMISSIONS)

    page.goto(f"{live_server.url}/admin/imagegen/generationjob/add/")
    assert "0.05 of 0.05 USD left" in page.locator("#imagegen-budgets").inner_text()
    page.fill("#id_prompt", "A very expensive poster")
    page.get_by_label("4K").check()
    # The page warns before the click; the server refuses on the click.
    assert page.locator("#imagegen-over-budget").is_visible()
    page.get_by_role("button", name="Generate").click()
    page.wait_for_load_state()
    error = page.locator(".errorlist.nonfield")
    assert "your daily budget" in error.inner_text()
    assert page.locator("#id_prompt").input_value() == "A very expensive poster"
    page.screenshot(path=screenshot_dir / "budget-refusal.png", full_page=True)
    assert GenerationJob.objects.count() == 0


def test_permission_refusals(
    page: Any,
    live_server: Any,
    sign_in: SignIn,
    django_user_model: Any,
    imagegen_settings: dict[str, Any],
) -> None:
    author = make_user(django_user_model, *EDITOR_PERMISSIONS, username="author")
    other_job = GenerationJob.objects.create(
        provider="sandbox",
        model="gpt-image-2",
        mode="text-to-image",
        prompt="Someone else's job",
        resolution="1k",
        aspect_ratio="auto",
        deadline_at="2099-01-01T00:00:00Z",
        created_by=author,
    )
    sign_in("imagegen.view_generationjob", "imagegen.view_generatedimage", username="viewer")

    response = page.goto(f"{live_server.url}/admin/imagegen/generationjob/add/")
    assert response is not None and response.status == 403

    page.goto(f"{live_server.url}/admin/imagegen/generationjob/{other_job.pk}/change/")
    page.wait_for_url("**/generationjob/")
    # The job list may also carry the health notice (a queued job, no worker here).
    assert "belongs to another user" in " ".join(page.locator(".messagelist").all_inner_texts())
    assert page.get_by_text("Someone else's job").count() == 0
    assert page.get_by_role("link", name="Generate image").count() == 0


@pytest.mark.parametrize(
    ("lines", "counted"),
    [
        (["{ok}"], 1),
        (["{ok}", "not an address", "", "{ok}?2"], 2),
        (["ftp://example.com/a.png", "   "], 0),
    ],
    ids=["one", "two-and-noise", "none-usable"],
)
def test_generate_form_counts_usable_reference_urls(
    page: Any,
    live_server: Any,
    sign_in: SignIn,
    imagegen_settings: dict[str, Any],
    lines: list[str],
    counted: int,
) -> None:
    """Family: one usable URL; two usable among a word and a blank line; no
    usable line (ftp, blanks). On the real generate form the reference URL
    widget previews each usable URL, and the form's count of references
    (against the provider's 16) counts only those."""
    sign_in(*EDITOR_PERMISSIONS)
    page.goto(f"{live_server.url}/admin/imagegen/generationjob/add/")
    page.get_by_label("Image to image").check()
    ok = f"{live_server.url}/static/admin/img/icon-yes.svg"
    page.fill("#id_reference_urls", "\n".join(line.format(ok=ok) for line in lines))

    page.wait_for_function(
        "(n) => document.getElementById('imagegen-ref-count').textContent.includes(`(${n} / 16)`)",
        arg=counted,
    )
    assert page.locator(".imagegen-url-list img").count() == counted

"""Bulk fill in real Chromium, as an editor with the documented permissions
(imagegen's add permission, the article's view and change permissions), on
the example site's Article admin with BulkFillAdminMixin (tests.fill_admin):

- select articles, run "Generate images for the selected objects": the
  confirmation shows the jobs, the price and the budget, and the article
  the budget does not cover;
- confirm: the batch page fills in live (no reload) until every job ended;
  the articles' covers are filled and saved, each with a history entry;
- a failed job gets Retry: its retry joins the fill and the row follows it.

The whole pipeline is real: the live server, a Celery worker on the test
broker, the sandbox over HTTP with callbacks to the live server.
Screenshots: fill-confirm.png, fill-batch.png, fill-batch-done.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry

from imagegen.choices import Status
from imagegen.models import GenerationJob, GenerationRun
from project.articles.models import Article
from tests.factories import PASSWORD, assert_png, make_user

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.pipeline,
    pytest.mark.urls("tests.fill_admin"),
]

PERMISSIONS = (
    "imagegen.add_generationjob",
    "imagegen.view_generationjob",
    "articles.view_article",
    "articles.change_article",
)
TITLES = [
    "Harbour at dawn",
    "Alpine meadow",
    "Night market",
    "Old lighthouse [sandbox:fail=GENERATION_FAILED]",
    "Desert road",
    "Snowy village",
]


@pytest.fixture
def declared(settings: Any, callbacks_on: str, sandbox: Any, monkeypatch: Any) -> None:
    """The cover declared; a budget for 5 images; two jobs at a time at the
    provider, slow enough that the batch is seen half done."""
    monkeypatch.setattr(sandbox.config, "latency", (1.5, 2.5))
    settings.IMAGEGEN = {
        **settings.IMAGEGEN,
        "IMAGE_FIELDS": {"articles.Article.cover": {"prompt": "Editorial photo: {title}."}},
        "BUDGETS": {"SITE_MONTHLY": "0.10"},
        "MAX_IN_FLIGHT": {"sandbox": 2},
    }


@pytest.fixture
def editor(django_user_model: Any) -> Any:
    return make_user(django_user_model, *PERMISSIONS, username="filler")


def test_bulk_fill_with_a_budget_and_a_retry(
    page: Any,
    live_server: Any,
    admin_login: Any,
    screenshot_dir: Path,
    celery_worker: Any,
    sandbox: Any,
    declared: None,
    editor: Any,
) -> None:
    articles = [Article.objects.create(title=title) for title in TITLES]
    admin_login(page, live_server.url, "filler", PASSWORD)
    page.goto(f"{live_server.url}/fill-admin/articles/article/")
    page.locator("#action-toggle").check()
    page.select_option("select[name=action]", "imagegen_fill")
    page.locator("div.actions button[type=submit]").click()

    # The confirmation: 5 of 6 covered by the budget, the price, the budget left.
    page.locator("#imagegen-fill-plan").wait_for()
    assert page.locator("#imagegen-fill-jobs").inner_text() == "5"
    assert page.locator("#imagegen-fill-price").inner_text().startswith("0.10 USD")
    assert "0.10 of 0.10 USD left" in page.locator(".imagegen-fill-budget").inner_text()
    trimmed = page.locator("#imagegen-fill-trimmed")
    assert "cover 5 of 6 images" in trimmed.inner_text()
    assert "Snowy village" in trimmed.inner_text()  # the last in id order
    assert GenerationJob.objects.count() == 0
    page.screenshot(path=screenshot_dir / "fill-confirm.png", full_page=True)
    page.locator("#imagegen-fill-confirm").click()

    # The batch page, live: the count moves without a reload.
    page.wait_for_url("**/imagegen-fill/**")
    run = GenerationRun.objects.get(kind=GenerationRun.Kind.FILL)
    assert run.jobs.count() == 5
    count = page.locator("#imagegen-fill-count")
    assert count.inner_text().startswith("0 of 5")
    page.wait_for_function(
        "() => /^[1-4] of 5/.test(document.querySelector('#imagegen-fill-count').innerText)",
        timeout=30_000,
    )
    page.screenshot(path=screenshot_dir / "fill-batch.png", full_page=True)
    page.wait_for_function(
        "() => document.querySelector('#imagegen-fill-count').dataset.done === 'true'"
        " && document.querySelectorAll('.imagegen-fill-outcome:not(:empty)').length === 4",
        timeout=45_000,
    )
    assert count.inner_text().startswith("5 of 5")
    assert sandbox.stats()["max_concurrent_tasks"] == 2
    failed_row = page.locator("tr", has_text="Old lighthouse")
    assert "Failed" in failed_row.inner_text()
    image = page.locator(".imagegen-fill-image img").first
    image.evaluate("i => i.complete || new Promise(r => i.addEventListener('load', r))")
    page.screenshot(path=screenshot_dir / "fill-batch-done.png", full_page=True)

    filled = [a for a in Article.objects.order_by("pk") if a.cover]
    assert [a.title for a in filled] == [t for t in TITLES[:5] if "lighthouse" not in t]
    for article in filled:
        assert article.cover.name.startswith("articles/covers/")
        assert_png(Path(article.cover.path)) if article.cover.name.endswith(".png") else None
        assert LogEntry.objects.filter(object_id=str(article.pk), user=editor).exists()

    # Retry the failed one: a new job in the same fill, followed by its row.
    failed = run.jobs.get(status=Status.FAILED)
    failed_row.get_by_role("button", name="Retry").click()
    page.wait_for_load_state()
    retry = wait_for_retry(failed)
    assert retry.run_id == run.pk and retry.target_object_id == str(articles[3].pk)
    page.locator(f'tr[data-job="{retry.pk}"]').wait_for()
    page.wait_for_function(
        "() => document.querySelector('#imagegen-fill-count').dataset.done === 'true'",
        timeout=45_000,
    )


def wait_for_retry(failed: GenerationJob) -> GenerationJob:
    from ..conftest import wait_until

    return wait_until(lambda: failed.retries.first(), timeout=15, what="the retry")

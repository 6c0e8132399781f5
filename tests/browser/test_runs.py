"""Candidates in real Chromium, as the editor docs/admin.md describes (exactly
its permissions): ask for three, see the run's price, watch the grid fill,
approve one and discard one without a reload.

The pipeline is real: the live server, a Celery worker on the test broker,
the sandbox over HTTP with callbacks to the live server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from imagegen.choices import ReviewStatus
from imagegen.models import GeneratedImage, GenerationRun

from ..factories import DOCUMENTED_EDITOR
from .conftest import SignIn

pytestmark = pytest.mark.django_db(transaction=True)

IMAGES = ".imagegen-run-grid .imagegen-run-image[data-image-id]:not([data-image-id=''])"


@pytest.mark.pipeline
def test_editor_generates_three_candidates_and_reviews_them_in_the_grid(
    page: Any,
    live_server: Any,
    sign_in: SignIn,
    screenshot_dir: Path,
    live_pipeline: Any,
) -> None:
    editor = sign_in(*DOCUMENTED_EDITOR)

    page.goto(f"{live_server.url}/admin/imagegen/generationjob/add/")
    page.fill("#id_prompt", "A lighthouse on a cliff at dusk, three takes")
    page.fill("#id_candidates", "3")
    # The price is the run's: three jobs at 0.02.
    assert page.locator("#imagegen-price").inner_text() == "0.06 USD"
    assert page.locator("#imagegen-price-detail").inner_text() == "(0.02 + 0.02 + 0.02)"
    page.get_by_role("button", name="Generate").click()

    page.wait_for_url("**/generationrun/*/change/")
    run = GenerationRun.objects.get(created_by=editor)
    assert run.jobs.count() == 3
    # A marker that a reload would wipe.
    page.evaluate("window.imagegenNoReload = true")
    assert page.locator(".imagegen-run-job").count() == 3

    # The grid fills as each job's images are stored.
    page.wait_for_function(
        f'() => document.querySelectorAll("{IMAGES}").length === 3', timeout=60_000
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('.imagegen-run-status')]"
        ".every((b) => b.dataset.status === 'succeeded')"
    )
    first, second, third = page.locator(IMAGES).all()

    first.get_by_role("button", name="Approve", exact=True).click()
    first.locator(".imagegen-run-review", has_text="Approved").wait_for()

    page.once("dialog", lambda dialog: dialog.accept())
    second.get_by_role("button", name="Discard").click()
    page.wait_for_function(
        f"() => document.querySelectorAll(\"{IMAGES}\")[1].dataset.review === 'discarded'"
    )
    assert page.evaluate("window.imagegenNoReload") is True
    page.screenshot(path=screenshot_dir / "run-grid.png", full_page=True)

    ids = [int(figure.get_attribute("data-image-id")) for figure in (first, second, third)]
    states = dict(GeneratedImage.objects.filter(pk__in=ids).values_list("pk", "review_status"))
    assert [states[pk] for pk in ids] == [
        ReviewStatus.APPROVED,
        ReviewStatus.DISCARDED,
        ReviewStatus.NEW,
    ]
    assert not GeneratedImage.objects.get(pk=ids[1]).file


@pytest.mark.parametrize(
    "setting,choose,price,detail,labels",
    [
        (
            "resolution",
            ["1k", "2k"],
            "0.06 USD",
            "(0.02 + 0.04)",
            ["Resolution: 1K", "Resolution: 2K"],
        ),
        (
            "aspect_ratio",
            ["1:1", "16:9", "9:16"],
            "0.06 USD",
            "(0.02 + 0.02 + 0.02)",
            ["Aspect ratio: 1:1", "Aspect ratio: 16:9", "Aspect ratio: 9:16"],
        ),
        ("prompt", ["at dawn", "in fog"], "0.06 USD", "(0.02 + 0.02 + 0.02)", None),
    ],
)
def test_editor_compares_settings_side_by_side_with_each_price(
    page: Any,
    live_server: Any,
    sign_in: SignIn,
    setting: str,
    choose: list[str],
    price: str,
    detail: str,
    labels: list[str] | None,
) -> None:
    """Each kind of comparison: only its own choices are shown, the price is
    the sum with each job's price, and the run page puts them side by side."""
    editor = sign_in(*DOCUMENTED_EDITOR)
    page.goto(f"{live_server.url}/admin/imagegen/generationjob/add/")
    page.fill("#id_prompt", "A lighthouse on a cliff")
    rows = {
        name: page.locator(f"[data-compare='{name}']") for name in ("resolution", "aspect_ratio")
    }
    assert all(row.is_hidden() for row in rows.values())
    page.select_option("#id_compare", setting)
    if setting == "prompt":
        assert all(row.is_hidden() for row in rows.values())
        page.fill("#id_other_prompt_1", f"A lighthouse on a cliff {choose[0]}")
        page.fill("#id_other_prompt_2", f"A lighthouse on a cliff {choose[1]}")
        labels = ["Wording 1", "Wording 2", "Wording 3"]
    else:
        assert rows[setting].is_visible()
        page.select_option(f"#id_compare_{setting}s", choose)
    assert page.locator("#imagegen-price").inner_text() == price
    assert page.locator("#imagegen-price-detail").inner_text() == detail
    page.get_by_role("button", name="Generate").click()

    page.wait_for_url("**/generationrun/*/change/")
    run = GenerationRun.objects.get(created_by=editor)
    assert run.kind == GenerationRun.Kind.COMPARE
    assert page.locator(".imagegen-run-label").all_inner_texts() == labels
    prices = page.locator(".imagegen-run-price").all_inner_texts()
    assert " + ".join(p.removesuffix(" USD") for p in prices) == detail.strip("()")

"""The reference URLs widget (imagegen.admin.widgets.ReferenceUrlsWidget) in
real Chromium: its own markup and script, the admin's stylesheet, images
served by the live server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.staticfiles import finders

from imagegen.admin.widgets import ReferenceUrlsWidget


def static_path(name: str) -> str:
    found = finders.find(name)
    assert found, name
    return str(found)


@pytest.mark.parametrize(
    ("lines", "valid", "images", "broken", "invalid"),
    [
        (["{ok}"], 1, 1, 0, 0),
        (["{ok}", "{missing}"], 2, 1, 1, 0),
        (["{ok}", "not an address", "", "ftp://example.com/a.png"], 1, 1, 0, 2),
        (["https://", "   ", "{missing}"], 1, 0, 1, 1),
        ([], 0, 0, 0, 0),
    ],
)
def test_previews_messages_and_the_count_of_usable_urls(
    page: Any,
    live_server: Any,
    screenshot_dir: Path,
    lines: list[str],
    valid: int,
    images: int,
    broken: int,
    invalid: int,
) -> None:
    """Family: one loadable URL; one loadable and one that does not load;
    lines that are not http(s) addresses (a word, ftp) around a blank one;
    a bare scheme and a blank line with a URL that does not load; nothing.
    Each usable URL gets a preview or, when it does not load, a sentence
    (never a broken icon); each other non-blank line a note; blank lines
    nothing; data-valid-count counts only usable URLs; previews line up."""
    base = live_server.url + django_settings.STATIC_URL
    urls = {"ok": base + "admin/img/icon-yes.svg", "missing": base + "imagegen/nope.png"}
    html = ReferenceUrlsWidget().render("reference_urls", "", {"id": "id_reference_urls"})
    page.set_content(f'<form class="aligned"><div class="form-row">{html}</div></form>')
    page.add_style_tag(path=static_path("imagegen/admin/imagegen.css"))
    page.add_script_tag(path=static_path("imagegen/admin/reference_urls.js"))
    area = page.locator("#id_reference_urls")
    counted: list[int] = []
    page.expose_function("counted", lambda n: counted.append(n))
    page.evaluate(
        "() => document.addEventListener('imagegen:reference-urls', e => counted(e.detail.valid))"
    )
    area.fill("\n".join(line.format(**urls) for line in lines))

    items = page.locator(".imagegen-url-list__item")
    assert items.count() == images + broken + invalid
    page.wait_for_function(
        "(n) => [...document.querySelectorAll('.imagegen-url-list img')]"
        ".filter(i => i.complete && i.naturalWidth > 0).length === n",
        arg=images,
    )
    page.wait_for_function(
        "(n) => document.querySelectorAll('.imagegen-url-list__item.is-broken').length === n",
        arg=broken,
    )
    assert area.get_attribute("data-valid-count") == str(valid)
    if valid:
        assert counted and counted[-1] == valid
    for note in page.locator(".is-broken").all():
        assert "could not be loaded" in note.inner_text()
        assert note.locator("img").count() == 0  # no broken icon
    assert page.locator(".is-invalid").count() == invalid
    tops = {round(box["y"]) for box in (i.bounding_box() for i in items.all()) if box}
    assert len(tops) <= 1, "previews are not on one line"
    assert page.locator(".imagegen-url-list").is_visible() is bool(lines and any(lines))
    if images and broken and invalid == 0:
        page.screenshot(path=screenshot_dir / "reference-url-previews.png")

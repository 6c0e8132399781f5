"""imagegen's admin in French, in real Chromium, as a site with LocaleMiddleware
serves it (docs/translations.md).

- the reader asks for French by the browser's language or by Django's language
  cookie (an English browser without the cookie gets English): the generate form's
  Python labels, template texts and the texts its scripts show are French;
- a whole job in French (real pipeline: live server, Celery worker, sandbox over
  HTTP, callbacks): the job's live progress (status and clock drawn by the scripts
  from the status JSON), the review in place (approve, its answer) and the scripts'
  own catalog (``imagegen:jsi18n``) all speak French.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from django.conf import settings as django_settings
from django.utils import translation

from imagegen.choices import ReviewStatus, Status
from imagegen.models import GenerationJob

from ..factories import DOCUMENTED_EDITOR, PASSWORD, make_user
from ..test_translations import messages
from .conftest import LoginFunc

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.django_db(transaction=True)


def say(language: str, msgid: str, **values: Any) -> str:
    """``msgid`` as imagegen's catalog for ``language`` says it (so a reworded
    translation needs no change here)."""
    with translation.override(language):
        text = translation.gettext(msgid)
    return text % values if values else text


def fr(msgid: str, **values: Any) -> str:
    text = say("fr", msgid, **values)
    assert text != say("en", msgid, **values), f"no French for {msgid!r}"
    return text


OpenPage = Callable[..., "Page"]


@pytest.fixture
def open_page(
    browser: Browser, live_server: Any, admin_login: LoginFunc, django_user_model: Any
) -> Iterator[OpenPage]:
    """``open_page(locale, cookie=None)``: a documented editor signed in on a new page
    of a browser set to ``locale``, with Django's language cookie set to ``cookie``."""
    contexts = []

    def open_as(locale: str, cookie: str | None = None) -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale=locale)
        context.set_default_timeout(15_000)
        contexts.append(context)
        if cookie:
            name = django_settings.LANGUAGE_COOKIE_NAME
            context.add_cookies([{"name": name, "value": cookie, "url": live_server.url}])
        page = context.new_page()
        user = make_user(django_user_model, *DOCUMENTED_EDITOR, username=f"editor{len(contexts)}")
        admin_login(page, live_server.url, user.username, PASSWORD)
        return page

    yield open_as
    for context in contexts:
        context.close()


@pytest.mark.parametrize(
    ("locale", "cookie", "language"),
    [("fr-FR", None, "fr"), ("en-US", "fr", "fr"), ("en-US", None, "en")],
    ids=["browser-language", "language-cookie", "english-browser"],
)
def test_generate_form_speaks_the_readers_language(
    open_page: OpenPage,
    live_server: Any,
    imagegen_settings: Any,
    locale: str,
    cookie: str | None,
    language: str,
) -> None:
    """Family: French asked for by the browser's language, by the language cookie on
    an English browser, and neither (English). Python (form labels), the template
    (title, button, price) and a text the reference URL script shows as it checks
    each line."""
    page = open_page(locale, cookie)
    page.goto(f"{live_server.url}/admin/imagegen/generationjob/add/")
    assert page.locator("html").get_attribute("lang") == language

    def text(msgid: str, **values: Any) -> str:
        return say(language, msgid, **values)

    assert page.locator("#content h1").inner_text() == text("Generate image")
    assert page.locator("label[for=id_aspect_ratio]").inner_text().startswith(text("Aspect ratio"))
    assert page.locator("input[name=_generate]").get_attribute("value") == text("Generate")
    assert text("Price:") in page.locator(".imagegen-price").inner_text()

    page.get_by_label(text("Image to image")).check()
    page.fill("#id_reference_urls", "not an address")
    note = page.locator(".imagegen-url-list .is-invalid")
    assert note.inner_text() == text("Line %(line)s is not an http:// or https:// address.", line=1)


@pytest.mark.pipeline
def test_a_job_in_french_from_progress_to_review(
    open_page: OpenPage,
    live_server: Any,
    live_pipeline: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A French browser generates an image, watches its progress and approves it on
    the job's page: every text there (server-rendered, drawn by the scripts from the
    status JSON, answered by the review endpoint, or from the scripts' own catalog)
    is the French one."""
    sandbox = live_pipeline
    monkeypatch.setattr(sandbox.config, "latency", (1.0, 2.0))
    settings.IMAGEGEN = {
        **settings.IMAGEGEN,
        "PROVIDERS": {"sandbox": {"BASE_URL": sandbox.api_url, "LATENCY": {"1k": (1.0, 8.0)}}},
    }
    page = open_page("fr-FR")
    page.goto(f"{live_server.url}/admin/imagegen/generationjob/add/")
    page.fill("#id_prompt", "Un phare sur une falaise au crépuscule, peinture à l’huile")
    page.get_by_role("button", name=fr("Generate"), exact=True).click()
    page.wait_for_url("**/change/")
    job = GenerationJob.objects.get()

    # Progress: the page's scripts draw the status and the clock from the status JSON.
    status = page.locator("#imagegen-status")
    page.wait_for_function(
        "() => document.querySelector('#imagegen-status').dataset.status === 'succeeded'",
        timeout=60_000,
    )
    assert status.inner_text() == fr("Succeeded")
    took = re.escape(fr("Took %(elapsed)s.")).replace(re.escape("%(elapsed)s"), r"\d+:\d\d")
    assert re.fullmatch(took, page.locator("#imagegen-elapsed").inner_text())
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED

    # The scripts' own catalog: every string of the djangojs domain, in French.
    js_catalog = {entry.msgid: entry.msgstr[0] for entry in messages("fr", "djangojs")}
    assert js_catalog, "the scripts have no strings to translate"
    assert page.evaluate("strings => strings.map((s) => gettext(s))", list(js_catalog)) == list(
        js_catalog.values()
    )

    # Review in place: the card the script added, its button, the endpoint's answer.
    card = page.locator(".imagegen-review").first
    card.wait_for()
    badge = card.locator("[data-role=review-status]")
    assert badge.inner_text() == fr("Not reviewed")
    card.get_by_role("button", name=fr("Approve"), exact=True).click()
    page.wait_for_function(
        "() => document.querySelector('.imagegen-review').dataset.reviewStatus === 'approved'"
    )
    assert card.locator("[data-role=message]").inner_text() == fr("Approved.")
    assert badge.inner_text() == fr("Approved")
    assert job.images.get().review_status == ReviewStatus.APPROVED

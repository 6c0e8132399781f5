"""Alt text drafts on filer's own image page (admin:filer_image_change), for
images imagegen made, by family:

- the page as served, with imagegen.contrib.filer before filer, for each
  draft state (none, pending, ready, failed, confirmed: the image has alt
  text) and an image imagegen did not make: the note says where drafting
  stands (the Django admin's words) and links to imagegen's page for the
  image for an editor who may open it (not otherwise); the draft is handed
  to the script only when ready; the input's own value is the image's
  ``default_alt_text``, never the draft;
- saving filer's form, for each draft state x what the input holds (empty,
  the draft, edited text): ``default_alt_text`` is what was posted;
- the order of INSTALLED_APPS: with imagegen.contrib.filer after filer the
  page is filer's alone and check imagegen_filer.W001 says why; before, no
  warning;
- in Chromium, a ready draft, then saved, cleared and saved, or left: in
  the empty input, marked, the note beside it; saved as
  ``default_alt_text`` only by filer's Save, and a cleared draft unmarked,
  its note gone, nothing saved.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from imagegen.contrib.filer.checks import check_filer
from tests.factories import EDITOR, make_job, make_user

from .test_alt_text_drafts import CONFIRMED, DRAFT, FAILED, OFF, PENDING, READY, drafted, linked

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("drafting")]

NOT_GENERATED = "not-generated"
STATES = [OFF, PENDING, READY, FAILED, CONFIRMED, NOT_GENERATED]
#: filer's permissions to change an image in its admin.
FILER = ("filer.change_file", "filer.change_image", "filer.view_image")


def list_imagegen_filer(settings: Any, *, before_filer: bool) -> None:
    names = [name for name in settings.INSTALLED_APPS if name != "imagegen.contrib.filer"]
    names.insert(names.index("filer") + (0 if before_filer else 1), "imagegen.contrib.filer")
    settings.INSTALLED_APPS = names


@pytest.fixture
def drafts_first(settings) -> None:
    """imagegen.contrib.filer listed before filer, as docs/fields.md says."""
    list_imagegen_filer(settings, before_filer=True)


@pytest.fixture
def owner(django_user_model) -> Any:
    return make_user(django_user_model, *EDITOR, *FILER, username="filer-owner")


def image_in(state: str, user: Any) -> Any:
    """A filer image of ``user``'s in draft ``state`` (NOT_GENERATED: the
    same kind of image, its link gone: imagegen did not make it)."""
    link = drafted(linked(make_job(user)), OFF if state == NOT_GENERATED else state, "")
    if state in (READY, CONFIRMED):
        link = drafted(link, state, DRAFT)
    image = link.image
    if state == NOT_GENERATED:
        link.delete()
    return image


def page_url(image: Any) -> str:
    return reverse("admin:filer_image_change", args=[image.pk])


def alt_input(html: str) -> str:
    before, after = html.split('id="id_default_alt_text"', 1)
    return before.rsplit("<input", 1)[1] + after.split(">", 1)[0]


def note(html: str) -> str:
    """The note's opening tag and text ("" when there is none)."""
    if "data-imagegen-filer-draft" not in html:
        return ""
    return html.split("data-imagegen-filer-draft")[1].split("</div>")[0]


def posted(response: Any, alt_text: str) -> dict[str, Any]:
    """filer's form data as shown, with ``alt_text`` typed."""
    form = response.context["adminform"].form
    data: dict[str, Any] = {}
    for field in form:
        if field.name == "file":
            continue
        value = field.value()
        data[field.name] = "" if value is None else value
    data["default_alt_text"] = alt_text
    return data


@pytest.mark.usefixtures("drafts_first")
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("opens_imagegen", [True, False], ids=["may-open", "may-not-open"])
def test_filer_page_as_served(client, django_user_model, filer_imagegen, state, opens_imagegen):
    """Each draft state x whether the editor may open imagegen's page for it."""
    link_permissions = ("imagegen_filer.view_generatedfilerimage",) if opens_imagegen else ()
    owner = make_user(django_user_model, *EDITOR, *FILER, *link_permissions)
    image = image_in(state, owner)
    client.force_login(owner)
    response = client.get(page_url(image))
    assert response.status_code == 200
    html = response.content.decode()
    field = alt_input(html)
    assert DRAFT not in field and "is-draft" not in field
    assert ('value="Set before"' in field) == (state == CONFIRMED)
    words = {
        READY: "Drafted — check it",
        PENDING: "Drafting alt text…",
        FAILED: "No draft could be made",
    }
    shown = note(html)
    if state not in words:
        assert shown == "" and "imagegen_filer/draft.js" not in html
        return
    assert f'data-state="{state}"' in shown and words[state] in shown
    assert 'data-draft-field="default_alt_text"' in shown
    assert (f'data-draft="{DRAFT}"' in shown) == (state == READY)
    link_url = reverse(
        "admin:imagegen_filer_generatedfilerimage_change", args=[image.imagegen_output.pk]
    )
    assert (f'href="{link_url}"' in shown) == opens_imagegen
    assert "imagegen_filer/draft.js" in html
    image.refresh_from_db()
    assert (image.default_alt_text or "") == ("Set before" if state == CONFIRMED else "")


@pytest.mark.usefixtures("drafts_first")
@pytest.mark.parametrize("typed", ["empty", "the-draft", "edited"])
@pytest.mark.parametrize("state", STATES)
def test_saving_filer_form(client, filer_imagegen, owner, state, typed):
    image = image_in(state, owner)
    client.force_login(owner)
    alt_text = {"empty": "", "the-draft": DRAFT, "edited": "A kite, dunes behind"}[typed]
    response = client.post(page_url(image), posted(client.get(page_url(image)), alt_text))
    assert response.status_code == 302, response.context["adminform"].form.errors
    image.refresh_from_db()
    assert (image.default_alt_text or "") == alt_text


@pytest.mark.parametrize("order", ["after-filer", "before-filer"])
def test_order_of_installed_apps(settings, client, filer_imagegen, owner, order):
    list_imagegen_filer(settings, before_filer=order == "before-filer")
    image = image_in(READY, owner)
    client.force_login(owner)
    html = client.get(page_url(image)).content.decode()
    warnings = [m.id for m in check_filer() if not m.is_serious()]
    if order == "after-filer":
        assert note(html) == "" and warnings == ["imagegen_filer.W001"]
    else:
        assert "Drafted — check it" in note(html) and warnings == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("drafts_first")
@pytest.mark.parametrize("then", ["save", "clear-and-save", "leave"])
def test_ready_draft_in_the_browser(page, live_server, screenshot_dir, filer_imagegen, owner, then):
    image = image_in(READY, owner)
    client = Client()
    client.force_login(owner)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page.goto(f"{live_server.url}{page_url(image)}")
    field = page.locator("#id_default_alt_text")
    page.wait_for_function(
        "() => document.getElementById('id_default_alt_text').closest('.form-row')"
        ".contains(document.querySelector('[data-imagegen-filer-draft]'))"
    )
    assert field.input_value() == DRAFT
    assert "is-draft" in (field.get_attribute("class") or "")
    page.locator("[data-imagegen-filer-draft]").get_by_text("Drafted — check it").wait_for()
    page.screenshot(path=str(screenshot_dir / "filer-alt-text-draft.png"), full_page=True)
    image.refresh_from_db()
    assert not image.default_alt_text  # not before the editor saves
    if then == "clear-and-save":
        field.fill("")
        assert "is-draft" not in (field.get_attribute("class") or "")
        page.locator("[data-imagegen-filer-draft]").wait_for(state="hidden")
    if then == "leave":
        page.goto(f"{live_server.url}/admin/")
    else:
        with page.expect_navigation():
            page.locator("input[name=_save]").click()
    image.refresh_from_db()
    assert (image.default_alt_text or "") == (DRAFT if then == "save" else "")

"""Alt text drafts on Wagtail's own image edit page (wagtailimages:edit), for
images imagegen made, against the sandbox's describer, by family:

- the page as served, for each draft state (none, pending, ready, failed,
  confirmed: the image has a description) and an image imagegen did not
  make: the note beside the description input says where drafting stands
  (the Django admin's words), the draft is handed to the script only when
  ready, the input's own value is the image's description (never the draft
  nor the prompt), the job's status URL only while pending and only for an
  editor who may follow the job;
- saving the form, for each draft state x what the input holds when saved
  (empty, the draft, edited text): the description is what was posted, so a
  draft is never the description unless the editor saves it; a re-shown
  form (an error) keeps what was posted, a cleared draft included;
- in Chromium, for each way the page is opened (ready; pending and then
  ready; pending and then ready after the editor typed; pending and then
  failed): the draft comes into the empty input, marked, beside which the
  note stands; only while the editor has not typed there; it is the
  description once the editor clicks Save, and not before.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from wagtail.images import get_image_model

from imagegen.choices import AltTextDraftState
from imagegen.contrib.wagtail.models import GeneratedWagtailImage

from ..factories import make_job
from .conftest import make_wagtail_user
from .test_confirm import linked_image
from .test_lineage import library_image

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("drafting")]

PENDING, READY, FAILED, OFF = (
    AltTextDraftState.PENDING,
    AltTextDraftState.READY,
    AltTextDraftState.FAILED,
    AltTextDraftState.NONE,
)
CONFIRMED, NOT_GENERATED = "confirmed", "not-generated"
PROMPT = "A red kite over the dunes. Flat, pastel"
DRAFT = "A red kite flying above pale sand dunes."
SET_BEFORE = "Set by an editor before"


def image_in(state: str, user: Any) -> Any:
    """An image of ``user``'s in draft ``state`` (CONFIRMED: a ready draft
    and a description; NOT_GENERATED: a library image imagegen did not make)."""
    if state == NOT_GENERATED:
        image = library_image()
        get_image_model().objects.filter(pk=image.pk).update(uploaded_by_user=user)
        return image
    image = linked_image(make_job(user, prompt=PROMPT))
    GeneratedWagtailImage.objects.filter(image=image).update(
        alt_text_draft_state=READY if state == CONFIRMED else state,
        alt_text_draft=DRAFT if state in (READY, CONFIRMED) else "",
    )
    if state == CONFIRMED:
        get_image_model().objects.filter(pk=image.pk).update(description=SET_BEFORE)
    return image


def edit_url(image: Any) -> str:
    return reverse("wagtailimages:edit", args=[image.pk])


def description_input(html: str) -> str:
    """The description input's tag (the page's head has a meta of that name too)."""
    before, after = html.split('id="id_description"', 1)
    return before.rsplit("<input", 1)[1] + after.split(">", 1)[0]


def draft_root(html: str) -> str:
    """The draft root's attributes ("" when there is none)."""
    if "data-imagegen-draft" not in html:
        return ""
    return html.split("data-imagegen-draft")[1].split(">")[0]


def note_state(html: str) -> str | None:
    if 'data-role="draft-note"' not in html:
        return None
    return html.split('data-role="draft-note" data-state="')[1].split('"')[0]


def posted(response: Any, description: str) -> dict[str, Any]:
    """The edit form's data as shown, with ``description`` typed."""
    form = response.context["form"]
    data: dict[str, Any] = {}
    for field in form:
        if field.name == "file":
            continue
        value = field.value()
        data[field.name] = "" if value is None else value
    data["description"] = description
    return data


STATES = [OFF, PENDING, READY, FAILED, CONFIRMED, NOT_GENERATED]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("watcher", [True, False], ids=["job-creator", "other-editor"])
def test_the_page_as_served(client, django_user_model, wagtail_editor, state, watcher):
    """Each draft state x whether the editor may follow the job (its
    creator, or an editor with Wagtail's change permission only)."""
    image = image_in(state, wagtail_editor)
    user = (
        wagtail_editor
        if watcher
        else make_wagtail_user(django_user_model, "changer", imagegen=(), images=("change",))
    )
    client.force_login(user)
    response = client.get(edit_url(image))
    assert response.status_code == 200
    html = response.content.decode()
    field = description_input(html)
    assert PROMPT not in field and DRAFT not in field and "is-draft" not in field
    assert (f'value="{SET_BEFORE}"' in field) == (state == CONFIRMED)
    expected_note = {PENDING: "pending", READY: "ready", FAILED: "failed"}.get(state)
    assert note_state(html) == expected_note
    root = draft_root(html)
    if expected_note is None:
        assert root == "" and "imagegen_wagtail/draft.js" not in html
        return
    assert 'data-draft-field="description"' in root
    assert f'data-image-id="{image.pk}"' in root
    assert (f'data-draft="{DRAFT}"' in root) == (state == READY)
    status_url = reverse("imagegen_wagtail:status", args=[image.imagegen_output.job_id])
    assert (f'data-status-url="{status_url}"' in root) == (state == PENDING and watcher)
    # The script after the catalog it reads its words from.
    assert html.index("/jsi18n/") < html.index("imagegen_wagtail/draft.js")
    image.refresh_from_db()
    assert image.description == (SET_BEFORE if state == CONFIRMED else "")


@pytest.mark.parametrize("typed", ["empty", "the-draft", "edited"])
@pytest.mark.parametrize("state", STATES)
def test_saving_the_form(client, wagtail_editor, state, typed):
    """Each draft state x what the input holds when the editor saves."""
    image = image_in(state, wagtail_editor)
    client.force_login(wagtail_editor)
    shown = client.get(edit_url(image))
    description = {"empty": "", "the-draft": DRAFT, "edited": "A kite, dunes behind"}[typed]
    data = posted(shown, description)
    response = client.post(edit_url(image), data)
    assert response.status_code == 302, response.context["form"].errors
    image.refresh_from_db()
    assert image.description == description
    if state not in (NOT_GENERATED,):
        link = GeneratedWagtailImage.objects.get(image=image)
        assert link.alt_text_draft == (DRAFT if state in (READY, CONFIRMED) else "")

    # A form shown again (an error: no title) keeps what was posted.
    again = client.post(edit_url(image), {**data, "title": ""})
    assert again.status_code == 200
    html = again.content.decode()
    assert f'value="{description}"' in description_input(html) or not description
    assert note_state(html) == ("pending" if state == PENDING and not description else None)


# In Chromium -----------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("opened", ["ready", "pending-ready", "pending-typed", "pending-failed"])
def test_the_draft_in_the_browser(
    page, live_server, screenshot_dir, wagtail_imagegen, wagtail_editor, opened
):
    image = image_in(READY if opened == "ready" else PENDING, wagtail_editor)
    client = Client()
    client.force_login(wagtail_editor)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page.goto(f"{live_server.url}{edit_url(image)}")
    field = page.locator('input[name="description"]')
    note = page.locator("[data-role=draft-note]")
    # The note stands right after the description's own field wrapper.
    page.wait_for_function(
        "() => document.getElementById('id_description').closest('.w-field__wrapper')"
        ".nextElementSibling?.matches('[data-imagegen-draft]')"
    )
    if opened != "ready":
        note.get_by_text("Drafting alt text…").wait_for(state="visible")
        assert field.input_value() == ""
        if opened == "pending-typed":
            field.fill("Typed by the editor")
        link = GeneratedWagtailImage.objects.filter(image=image)
        if opened == "pending-failed":
            link.update(alt_text_draft_state=FAILED)
        else:
            link.update(alt_text_draft_state=READY, alt_text_draft=DRAFT)
    expected_state = {
        "ready": "ready",
        "pending-ready": "ready",
        "pending-typed": "",
        "pending-failed": "failed",
    }[opened]
    page.wait_for_function(
        "state => document.querySelector('[data-role=draft-note]').dataset.state === state",
        arg=expected_state,
        timeout=20_000,
    )
    expected_value = {"pending-typed": "Typed by the editor", "pending-failed": ""}.get(
        opened, DRAFT
    )
    assert field.input_value() == expected_value
    assert ("is-draft" in (field.get_attribute("class") or "")) == (expected_state == "ready")
    if expected_state == "ready":
        note.get_by_text("Drafted — check it").wait_for(state="visible")
        page.screenshot(path=str(screenshot_dir / "wagtail-edit-alt-text-draft.png"))
    elif expected_state == "failed":
        note.get_by_text("No draft could be made").wait_for(state="visible")
    image.refresh_from_db()
    assert image.description == ""  # not before the editor saves

    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    image.refresh_from_db()
    assert image.description == expected_value

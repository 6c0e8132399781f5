"""Alt text drafts for Wagtail results (kept on GeneratedWagtailImage, the
link of each image to its job), against the sandbox's describer, by family:

- requesting, after finalize with the Wagtail adapter: the job's links
  without a draft become pending and one task each, naming the link model,
  is sent once the transaction commits; none with drafting off; a draft
  already made is left alone;
- drafting: the describer reads the stored Wagtail image's file (its size is
  in the sandbox's answer) in the job's language, with the prompt as
  context; a describer failure ends failed; a message naming a model that
  keeps no drafts does nothing; the image's description is never touched;
- resending: pending links past RESEND_AFTER are sent again (naming the link
  model) by the sweep, past GIVE_UP_AFTER they end failed;
- the chooser's confirm step, for each draft state (pending, ready, failed,
  off) x how the editor confirms (the input as shown, edited, cleared): the
  input holds the draft only when it is ready, marked "Drafted — check it",
  and never the prompt; the note says where drafting stands; the
  description is the text posted, saved only on confirm, and an empty input
  is refused with nothing saved; an image that has a description keeps it
  in the input;
- the status JSON the step reads while drafting: the draft only when ready;
- end to end: a job through a real worker ends with its link's draft ready
  and the image's description empty;
- in Chromium, the confirm step opened while the draft is pending, for each
  way it ends (ready with the input untouched, ready after the editor typed,
  failed): the draft comes into the input without a reload, marked, only
  while the editor has not typed there; the note follows.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from wagtail.images import get_image_model

from imagegen import services
from imagegen.choices import AltTextDraftState, Status
from imagegen.contrib.wagtail.models import GeneratedWagtailImage
from imagegen.services import alt_text
from imagegen.tasks import draft_alt_text

from ..conftest import wait_until
from ..factories import make_job
from .test_confirm import confirm_url, linked_image, modal, post

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("drafting")]

LABEL = "imagegen_wagtail.generatedwagtailimage"
PENDING, READY, FAILED, OFF = (
    AltTextDraftState.PENDING,
    AltTextDraftState.READY,
    AltTextDraftState.FAILED,
    AltTextDraftState.NONE,
)
PROMPT = "A red kite over the dunes. Flat, pastel"
DRAFT = "A red kite flying above pale sand dunes."


def link_of(image: Any) -> GeneratedWagtailImage:
    return GeneratedWagtailImage.objects.get(image=image)


def drafted(image: Any, state: str, text: str = "") -> GeneratedWagtailImage:
    GeneratedWagtailImage.objects.filter(image=image).update(
        alt_text_draft_state=state, alt_text_draft=text, alt_text_draft_language="en"
    )
    return link_of(image)


def state(link: GeneratedWagtailImage) -> tuple[str, str, str]:
    link.refresh_from_db()
    return link.alt_text_draft_state, link.alt_text_draft, link.alt_text_draft_language


@pytest.fixture
def sent(monkeypatch) -> list[tuple]:
    sent: list[tuple] = []
    monkeypatch.setattr(
        draft_alt_text, "apply_async", lambda args, **kwargs: sent.append(tuple(args))
    )
    return sent


# Requesting and resending ----------------------------------------------------------------


@pytest.mark.parametrize("describer", ["on", "off"])
def test_request_after_finalize(
    settings, wagtail_imagegen, wagtail_editor, sent, django_capture_on_commit_callbacks, describer
):
    """Drafting on and off, over a job's links: one without a draft, one
    whose draft is ready (left alone)."""
    if describer == "off":
        settings.IMAGEGEN = {**wagtail_imagegen, "DESCRIBER": None}
    job = make_job(wagtail_editor, prompt=PROMPT)
    first = link_of(linked_image(job))
    done = drafted(linked_image(make_job(wagtail_editor)), READY, DRAFT)
    GeneratedWagtailImage.objects.filter(pk=done.pk).update(job=job, index=1)
    with django_capture_on_commit_callbacks(execute=True):
        count = alt_text.request_drafts(job)
        assert sent == []  # nothing before the commit
    if describer == "off":
        assert count == 0 and sent == [] and state(first)[0] == OFF
    else:
        assert count == 1 and sent == [(str(first.pk), LABEL)]
        assert state(first)[0] == PENDING and first.alt_text_draft_requested_at is not None
    assert state(done) == (READY, DRAFT, "en")


@pytest.mark.parametrize(
    ("age", "resent", "final"),
    [
        (timedelta(0), False, PENDING),
        (alt_text.RESEND_AFTER, True, PENDING),
        (alt_text.GIVE_UP_AFTER, False, FAILED),
    ],
    ids=["now", "past", "given-up"],
)
def test_resend_lost(
    wagtail_imagegen, wagtail_editor, sent, django_capture_on_commit_callbacks, age, resent, final
):
    """A pending link by when its task was last sent: just now, past
    RESEND_AFTER (sent again by the sweep, naming the link model), past
    GIVE_UP_AFTER (failed)."""
    now = timezone.now()
    link = drafted(linked_image(make_job(wagtail_editor)), PENDING)
    GeneratedWagtailImage.objects.filter(pk=link.pk).update(alt_text_draft_requested_at=now - age)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.sweep(now)["drafts"] == int(resent)
    assert sent == ([(str(link.pk), LABEL)] if resent else [])
    link.refresh_from_db()
    assert link.alt_text_draft_state == final
    assert link.alt_text_draft_requested_at == (now if resent else now - age)


# Drafting --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "language", "result", "expected"),
    [
        (
            "a red bicycle",
            "fr",
            alt_text.READY,
            (READY, "Image générée (64×48) : a red bicycle.", "fr"),
        ),
        (
            "a red bicycle",
            "",
            alt_text.READY,
            (READY, "Generated image (64×48): a red bicycle.", "en"),
        ),
        ("a red bicycle [sandbox:describe-http=400]", "", alt_text.FAILED, (FAILED, "", "")),
    ],
    ids=["fr", "site-language", "describer-fails"],
)
def test_draft_describes_the_wagtail_image(
    settings, wagtail_imagegen, wagtail_editor, sandbox, prompt, language, result, expected
):
    """The family: the job's language, the site's language, a describer
    that refuses. The file read is the Wagtail image's (its size, 64 by 48,
    is in the sandbox's answer)."""
    settings.LANGUAGE_CODE = "en"
    image = linked_image(make_job(wagtail_editor, prompt=prompt, language=language))
    link = drafted(image, PENDING)
    GeneratedWagtailImage.objects.filter(pk=link.pk).update(alt_text_draft_language="")
    assert draft_alt_text.apply(args=(str(link.pk), LABEL)).get() == result
    assert state(link) == expected
    assert sandbox.stats().get("chat_completions", 0) == int(result == alt_text.READY)
    image.refresh_from_db()
    assert image.description == ""


@pytest.mark.parametrize("holder", ["imagegen_wagtail.nosuchmodel", "wagtailimages.image", "x"])
def test_draft_of_no_holder_does_nothing(wagtail_imagegen, wagtail_editor, sandbox, holder):
    """A message naming no model, a model without draft fields, a bad label."""
    link = drafted(linked_image(make_job(wagtail_editor)), PENDING)
    assert alt_text.draft(link.pk, holder=holder) == alt_text.SKIPPED
    assert state(link)[0] == PENDING
    assert sandbox.stats().get("chat_completions", 0) == 0


# The confirm step ------------------------------------------------------------------------


def alt_input(html: str) -> str:
    return html.split('name="imagegen-alt_text"')[1].split(">")[0]


def note_state(html: str) -> str:
    return html.split('data-role="draft-note" data-state="')[1].split('"')[0]


@pytest.mark.parametrize("confirm", ["as-shown", "edited", "cleared"])
@pytest.mark.parametrize("draft_state", [PENDING, READY, FAILED, OFF])
def test_confirm_step_with_a_draft(client, wagtail_editor, wagtail_imagegen, draft_state, confirm):
    """Each draft state x each way of confirming (see the module docstring)."""
    image = linked_image(make_job(wagtail_editor, prompt=PROMPT))
    drafted(image, draft_state, DRAFT if draft_state == READY else "")
    client.force_login(wagtail_editor)

    html = modal(client.get(confirm_url(image)))["html"]
    field = alt_input(html)
    assert PROMPT not in field
    if draft_state == READY:
        assert f'value="{DRAFT}"' in field and "is-draft" in field
        assert note_state(html) == "ready"
        assert "Drafted — check it" in html
    else:
        assert "value=" not in field or 'value=""' in field
        assert note_state(html) == {PENDING: "pending", FAILED: "failed", OFF: ""}[draft_state]
    assert (
        'data-status-url="{}"'.format(
            reverse("imagegen_wagtail:status", args=[image.imagegen_output.job_id])
        )
        in html
    )
    image.refresh_from_db()
    assert image.description == ""  # not before the editor confirms

    shown = DRAFT if draft_state == READY else ""
    typed = {"as-shown": shown, "edited": "A kite, dunes behind", "cleared": ""}[confirm]
    response = client.post(confirm_url(image), post(title="Red kite", alt_text=typed))
    image.refresh_from_db()
    assert image.description == typed
    assert response.status_code == (302 if typed else 200)
    if not typed:
        again = modal(response)["html"]
        assert "field-alt_text errors" in again
        # What the editor cleared is not put back.
        assert "value=" not in alt_input(again) or 'value=""' in alt_input(again)
        assert note_state(again) == ("pending" if draft_state == PENDING else "")
    assert state(image.imagegen_output)[1] == (DRAFT if draft_state == READY else "")


def test_a_description_is_kept_over_a_draft(client, wagtail_editor, wagtail_imagegen):
    image = linked_image(make_job(wagtail_editor, prompt=PROMPT))
    get_image_model().objects.filter(pk=image.pk).update(description="Typed before")
    drafted(image, READY, DRAFT)
    client.force_login(wagtail_editor)
    html = modal(client.get(confirm_url(image)))["html"]
    assert 'value="Typed before"' in alt_input(html) and "is-draft" not in alt_input(html)
    assert note_state(html) == ""


@pytest.mark.parametrize("draft_state", [PENDING, READY, FAILED, OFF])
def test_status_json_has_the_draft_only_when_ready(client, wagtail_editor, draft_state):
    image = linked_image(make_job(wagtail_editor, prompt=PROMPT))
    link = drafted(image, draft_state, DRAFT)
    client.force_login(wagtail_editor)
    data = client.get(reverse("imagegen_wagtail:status", args=[link.job_id])).json()
    [entry] = data["images"]
    assert entry["alt_text_draft_state"] == draft_state
    assert entry["alt_text_draft"] == (DRAFT if draft_state == READY else "")


# End to end ------------------------------------------------------------------------------


@pytest.mark.pipeline
@pytest.mark.django_db(transaction=True)
def test_job_through_a_worker_ends_with_a_draft(
    wagtail_imagegen, celery_worker, sandbox, wagtail_editor
):
    job = services.create_job(prompt="a lighthouse at dawn", user=wagtail_editor)

    def done() -> bool:
        services.sweep()
        job.refresh_from_db()
        links = list(GeneratedWagtailImage.objects.filter(job=job))
        return (
            job.is_terminal
            and links
            and all(link.alt_text_draft_state in (READY, FAILED) for link in links)
        )

    wait_until(done, timeout=60, interval=0.2, what=f"the draft of job {job.pk}")
    assert job.status == Status.SUCCEEDED, job.error_message
    link = GeneratedWagtailImage.objects.select_related("image").get(job=job)
    assert (link.alt_text_draft_state, link.alt_text_draft) == (
        READY,
        "Generated image (1024×1024): a lighthouse at dawn.",
    )
    assert link.image.description == ""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("ending", ["ready", "ready-after-typing", "failed"])
def test_confirm_step_shows_the_draft_when_it_comes(
    page, live_server, wagtail_imagegen, wagtail_editor, ending
):
    image = linked_image(make_job(wagtail_editor, prompt=PROMPT))
    link = drafted(image, PENDING)
    client = Client()
    client.force_login(wagtail_editor)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page.goto(f"{live_server.url}/admin/")
    # The step as Wagtail's chooser loads it: in a modal, by its modal workflow.
    page.evaluate("url => window.ModalWorkflow({url, onload: {choose() {}}})", confirm_url(image))
    modal = page.locator(".modal-body")
    note = modal.locator("[data-role=draft-note]")
    field = modal.get_by_label("Alt text")
    page.wait_for_function(
        "() => document.querySelector('[data-role=draft-note]')?.dataset.state === 'pending'"
    )
    note.get_by_text("Drafting alt text…").wait_for(state="visible")
    assert field.input_value() == ""
    if ending == "ready-after-typing":
        field.fill("Typed by the editor")

    if ending == "failed":
        GeneratedWagtailImage.objects.filter(pk=link.pk).update(alt_text_draft_state=FAILED)
    else:
        GeneratedWagtailImage.objects.filter(pk=link.pk).update(
            alt_text_draft_state=READY, alt_text_draft=DRAFT
        )
    expected_state = {"ready": "ready", "ready-after-typing": "", "failed": "failed"}[ending]
    page.wait_for_function(
        "state => document.querySelector('[data-role=draft-note]').dataset.state === state",
        arg=expected_state,
        timeout=20_000,
    )
    expected_value = {"ready": DRAFT, "ready-after-typing": "Typed by the editor", "failed": ""}
    assert field.input_value() == expected_value[ending]
    assert ("is-draft" in (field.get_attribute("class") or "")) == (ending == "ready")
    if ending == "ready":
        note.get_by_text("Drafted — check it").wait_for(state="visible")
    elif ending == "failed":
        note.get_by_text("No draft could be made").wait_for(state="visible")
    image.refresh_from_db()
    assert image.description == ""

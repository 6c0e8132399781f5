"""Alt text drafts for django-filer results (kept on GeneratedFilerImage, the
link of each filer image to its job), against the sandbox's describer, by family:

- requesting, after finalize with the filer adapter (a real job through the
  sandbox): the job's links become pending and one task each, naming the
  link model, is sent once the transaction commits; none with drafting off;
  a draft already made is left alone;
- drafting: the describer reads filer's copy of the file (its size is in the
  sandbox's answer) in the job's language or the site's; a describer that
  refuses ends failed; filer's ``default_alt_text`` is never touched;
- resending: every draft holder model is covered, the filer link included;
  pending links past RESEND_AFTER are sent again by the sweep, past
  GIVE_UP_AFTER they end failed;
- the admin page "Generated filer images", for each draft state (none,
  pending, ready, failed, confirmed: the image has alt text) x how the
  editor saves (the input as shown, edited, cleared): the input holds the
  draft only when ready and the image has no alt text, marked, with the
  note of the Django admin's image page; ``default_alt_text`` is the text
  saved, only when saved; an empty input is refused with nothing saved;
- end to end: a job through a real worker ends with its link's draft ready
  and the filer image's ``default_alt_text`` empty;
- who may: another editor's link is not listed nor opened; an editor
  without filer's change permission sees the page read-only and cannot save;
  a link is never added or deleted from the page.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from imagegen import services
from imagegen.adapters import StoredOutput
from imagegen.choices import AltTextDraftState, Status
from imagegen.contrib.filer.adapters import FilerImageAdapter
from imagegen.contrib.filer.models import GeneratedFilerImage
from imagegen.services import alt_text
from imagegen.storage import get_storage
from imagegen.tasks import draft_alt_text
from tests.conftest import wait_until
from tests.factories import make_job, make_user, png_bytes
from tests.test_services import create, run_to_end

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("drafting")]

LABEL = "imagegen_filer.generatedfilerimage"
PENDING, READY, FAILED, OFF = (
    AltTextDraftState.PENDING,
    AltTextDraftState.READY,
    AltTextDraftState.FAILED,
    AltTextDraftState.NONE,
)
CONFIRMED = "confirmed"
DRAFT = "A red kite flying above pale sand dunes."
TYPED = "A kite, dunes behind"
#: The sandbox describer's answers for a 64 by 48 image of "a red bicycle".
FR_DRAFT = "Image générée (64×48) : a red bicycle."
EN_DRAFT = "Generated image (64×48): a red bicycle."
#: What the admin page's editor needs: imagegen's editor permissions, the
#: link's change permission and filer's.
FILER_EDITOR = ("imagegen_filer.change_generatedfilerimage", "filer.change_file")


def linked(job: Any, index: int = 0) -> GeneratedFilerImage:
    """A filer image of ``job`` made by the filer adapter from a stored 64 by 48 PNG."""
    data = png_bytes()
    name = get_storage().save(f"imagegen/test/{job.pk}-{index}.png", ContentFile(data))
    output = StoredOutput(
        index=index,
        name=name,
        width=64,
        height=48,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        content_type="image/png",
    )
    FilerImageAdapter().create_asset(job, output)
    return GeneratedFilerImage.objects.select_related("image", "job").get(job=job, index=index)


def drafted(link: GeneratedFilerImage, state: str, text: str = "") -> GeneratedFilerImage:
    """``link`` in draft ``state`` (CONFIRMED: a ready draft and alt text on the image)."""
    GeneratedFilerImage.objects.filter(pk=link.pk).update(
        alt_text_draft_state=READY if state == CONFIRMED else state,
        alt_text_draft=text,
        alt_text_draft_language="en" if text else "",
    )
    if state == CONFIRMED:
        type(link.image).objects.filter(pk=link.image_id).update(default_alt_text="Set before")
    link.refresh_from_db()
    link.image.refresh_from_db()
    return link


def draft_of(link: GeneratedFilerImage) -> tuple[str, str, str]:
    link.refresh_from_db()
    return link.alt_text_draft_state, link.alt_text_draft, link.alt_text_draft_language


def alt_text_of(link: GeneratedFilerImage) -> str:
    link.image.refresh_from_db()
    return link.image.default_alt_text or ""


@pytest.fixture
def sent(monkeypatch) -> list[tuple]:
    sent: list[tuple] = []
    monkeypatch.setattr(
        draft_alt_text, "apply_async", lambda args, **kwargs: sent.append(tuple(args))
    )
    return sent


@pytest.fixture
def filer_editor(django_user_model) -> Any:
    from tests.factories import EDITOR

    return make_user(django_user_model, *EDITOR, *FILER_EDITOR, username="filer-editor")


# Requesting and resending ----------------------------------------------------------------


@pytest.mark.parametrize("describer", ["on", "off"])
def test_a_finished_job_requests_drafts(
    settings, filer_imagegen, editor, sent, django_capture_on_commit_callbacks, describer
):
    """A real job through the sandbox and finalize, drafting on and off."""
    if describer == "off":
        settings.IMAGEGEN = {**filer_imagegen, "DESCRIBER": None}
    with django_capture_on_commit_callbacks(execute=True):
        job = run_to_end(create(prompt="A poster for a jazz night", user=editor))
    link = GeneratedFilerImage.objects.get(job=job)
    if describer == "off":
        assert sent == [] and draft_of(link)[0] == OFF
    else:
        assert sent == [(str(link.pk), LABEL)]
        assert draft_of(link)[0] == PENDING and link.alt_text_draft_requested_at is not None
    assert alt_text_of(link) == ""


def test_a_draft_already_made_is_left_alone(
    filer_imagegen, editor, sent, django_capture_on_commit_callbacks
):
    job = make_job(editor)
    fresh, done = linked(job, 0), drafted(linked(job, 1), READY, DRAFT)
    with django_capture_on_commit_callbacks(execute=True):
        assert alt_text.request_drafts(job) == 1
    assert sent == [(str(fresh.pk), LABEL)]
    assert draft_of(done) == (READY, DRAFT, "en")


def test_the_filer_link_is_a_draft_holder(filer_imagegen):
    assert GeneratedFilerImage in alt_text.holder_models()


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
    filer_imagegen, editor, sent, django_capture_on_commit_callbacks, age, resent, final
):
    now = timezone.now()
    link = drafted(linked(make_job(editor)), PENDING)
    GeneratedFilerImage.objects.filter(pk=link.pk).update(alt_text_draft_requested_at=now - age)
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
def test_draft_describes_the_filer_image(
    settings, filer_imagegen, editor, sandbox, prompt, language, result, expected
):
    """The file read is filer's copy (its size, 64 by 48, is in the sandbox's answer)."""
    settings.LANGUAGE_CODE = "en"
    link = drafted(linked(make_job(editor, prompt=prompt, language=language)), PENDING)
    assert link.content_type == "image/png"
    assert draft_alt_text.apply(args=(str(link.pk), LABEL)).get() == result
    assert draft_of(link) == expected
    assert sandbox.stats().get("chat_completions", 0) == int(result == alt_text.READY)
    assert alt_text_of(link) == ""


@pytest.mark.pipeline
@pytest.mark.django_db(transaction=True)
def test_job_through_a_worker_ends_with_a_draft(filer_imagegen, celery_worker, sandbox, editor):
    job = services.create_job(prompt="a lighthouse at dawn", user=editor)

    def done() -> bool:
        services.sweep()
        job.refresh_from_db()
        links = list(GeneratedFilerImage.objects.filter(job=job))
        return (
            job.is_terminal
            and bool(links)
            and all(link.alt_text_draft_state in (READY, FAILED) for link in links)
        )

    wait_until(done, timeout=60, interval=0.2, what=f"the draft of job {job.pk}")
    assert job.status == Status.SUCCEEDED, job.error_message
    link = GeneratedFilerImage.objects.select_related("image").get(job=job)
    assert draft_of(link)[:2] == (READY, "Generated image (1024×1024): a lighthouse at dawn.")
    assert alt_text_of(link) == ""


# The admin page --------------------------------------------------------------------------


def change_url(link: GeneratedFilerImage) -> str:
    return reverse("admin:imagegen_filer_generatedfilerimage_change", args=[link.pk])


def alt_input(html: str) -> str:
    """The alt text textarea: its opening tag and its text."""
    return html.split('name="alt_text"')[1].split("</textarea>")[0]


@pytest.mark.parametrize("saved", ["as-shown", "edited", "cleared"])
@pytest.mark.parametrize("draft_state", [OFF, PENDING, READY, FAILED, CONFIRMED])
def test_admin_page_with_a_draft(client, filer_imagegen, filer_editor, draft_state, saved):
    """Each draft state x each way of saving (see the module docstring)."""
    link = drafted(
        linked(make_job(filer_editor)),
        draft_state,
        DRAFT if draft_state in (READY, CONFIRMED) else "",
    )
    client.force_login(filer_editor)

    response = client.get(change_url(link))
    assert response.status_code == 200
    html = response.content.decode()
    field = alt_input(html)
    shown = {READY: DRAFT, CONFIRMED: "Set before"}.get(draft_state, "")
    assert field.split(">", 1)[1].strip() == shown
    assert ("is-draft" in field) == (draft_state == READY)
    notes = {
        READY: "Drafted — check it",
        PENDING: "Drafting alt text…",
        FAILED: "No draft could be made",
    }
    for state, note in notes.items():
        assert (note in html) == (state == draft_state)
    assert alt_text_of(link) == ("Set before" if draft_state == CONFIRMED else "")

    typed = {"as-shown": shown, "edited": TYPED, "cleared": ""}[saved]
    response = client.post(change_url(link), {"alt_text": typed, "_continue": "1"})
    if typed:
        assert response.status_code == 302
        assert alt_text_of(link) == typed
    else:
        assert response.status_code == 200
        assert "errorlist" in response.content.decode()
        assert alt_text_of(link) == ("Set before" if draft_state == CONFIRMED else "")
    # The draft is kept as it was, whatever was saved.
    assert draft_of(link)[1] == (DRAFT if draft_state in (READY, CONFIRMED) else "")


def test_admin_refuses_text_too_long(client, filer_imagegen, filer_editor):
    link = drafted(linked(make_job(filer_editor)), READY, DRAFT)
    client.force_login(filer_editor)
    response = client.post(change_url(link), {"alt_text": "x" * 256})
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    assert alt_text_of(link) == ""


def test_confirm_linked_refuses_empty_and_too_long(filer_imagegen, editor):
    from django.core.exceptions import ValidationError

    link = linked(make_job(editor))
    for text, code in (("  ", "no_alt_text"), ("x" * 256, "alt_text_too_long")):
        with pytest.raises(ValidationError) as caught:
            alt_text.confirm_linked(link, alt_text=text, attribute="default_alt_text")
        assert caught.value.error_dict["default_alt_text"][0].code == code
    assert alt_text_of(link) == ""
    image = alt_text.confirm_linked(link, alt_text="  A kite  ", attribute="default_alt_text")
    assert image.default_alt_text == "A kite" == alt_text_of(link)


@pytest.mark.parametrize("who", ["owner", "other-editor", "no-filer-permission", "superuser"])
def test_who_may_confirm(client, django_user_model, filer_imagegen, filer_editor, who):
    """The job's creator with the permissions (listed, saved); another editor
    (not listed, not opened: the admin sends them away); the job's creator
    without filer's change permission (read-only: the post is refused); a
    superuser (sees every job and may change any filer image)."""
    from tests.factories import EDITOR

    user = {
        "owner": filer_editor,
        "other-editor": make_user(django_user_model, *EDITOR, *FILER_EDITOR),
        "no-filer-permission": make_user(
            django_user_model, *EDITOR, "imagegen_filer.view_generatedfilerimage"
        ),
        "superuser": django_user_model.objects.create_superuser("root", "root@example.com", "x"),
    }[who]
    creator = user if who == "no-filer-permission" else filer_editor
    link = drafted(linked(make_job(creator)), READY, DRAFT)
    client.force_login(user)
    listing = client.get(reverse("admin:imagegen_filer_generatedfilerimage_changelist"))
    listed = listing.status_code == 200 and change_url(link) in listing.content.decode()
    page = client.get(change_url(link))
    posted = client.post(change_url(link), {"alt_text": TYPED})
    expected = {
        "owner": (True, 200, 302, TYPED),
        "other-editor": (False, 302, 302, ""),
        "no-filer-permission": (True, 200, 403, ""),
        "superuser": (True, 200, 302, TYPED),
    }[who]
    assert (listed, page.status_code, posted.status_code, alt_text_of(link)) == expected
    if page.status_code == 200:
        assert "deletelink" not in page.content.decode()
        assert "is-draft" in page.content.decode() or who == "no-filer-permission"
    add = client.get(reverse("admin:imagegen_filer_generatedfilerimage_add"))
    assert add.status_code == 403

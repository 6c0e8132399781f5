"""The chooser's confirm step (title and alt text before the image is
chosen), the short default title, and the job page's Retry and Cancel."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.urls import reverse
from wagtail.images import get_image_model

from imagegen.choices import Status
from imagegen.contrib.wagtail.review import SHORT_TITLE, short_title
from imagegen.models import GenerationJob

from ..factories import make_job
from .conftest import make_wagtail_user
from .test_views import linked_image as unowned_image

pytestmark = pytest.mark.django_db


def linked_image(job: GenerationJob) -> Any:
    """A Wagtail image of ``job`` as the adapter makes it: uploaded by the job's creator."""
    image = unowned_image(job)
    image.uploaded_by_user = job.created_by
    image.save(update_fields=["uploaded_by_user"])
    return image


def confirm_url(image: Any, query: str = "") -> str:
    return reverse("imagegen_wagtail:chooser_confirm", args=[image.pk]) + query


def post(**fields: str) -> dict[str, str]:
    """The confirm form's data (its fields are prefixed: the page editor has an id_title)."""
    return {f"imagegen-{name}": value for name, value in fields.items()}


def modal(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.status_code
    return json.loads(response.content)


# The short title ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "title"),
    [
        ("A red kite over the dunes", "A red kite over the dunes"),
        ("A red kite over the dunes. Flat illustration, pastel", "A red kite over the dunes"),
        ("  A red kite\n\nover   the dunes  ", "A red kite over the dunes"),
        ("Kites! Many of them", "Kites"),
        ("Header: a harbour at night", "Header"),
        ("v1.5 of the logo, on white", "v1.5 of the logo, on white"),
        ("word " * 30, "word " * 11 + "word…"),
        ("x" * 200, "x" * (SHORT_TITLE - 1) + "…"),
        (".", "."),
    ],
    ids=[
        "short",
        "first-sentence",
        "whitespace",
        "exclamation",
        "colon",
        "dot-inside-word",
        "long-words",
        "one-long-word",
        "punctuation-only",
    ],
)
def test_short_title(prompt, title):
    """The family: a short prompt, several sentences, runs of whitespace and
    newlines, sentence ends of every kind, a dot inside a word (not an end),
    a long sentence cut at a word, one long word cut, nothing but punctuation.
    Never longer than SHORT_TITLE."""
    made = short_title(prompt)
    assert made == title.strip()
    assert len(made) <= SHORT_TITLE


# The confirm step ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "chosen"),
    [
        ("", "/admin/images/chooser/chosen/{id}/"),
        ("?select_format=true", "/admin/images/chooser/{id}/select_format/?select_format=true"),
        ("?multiple=1", "/admin/images/chooser/chosen-multiple/?id={id}&multiple=1"),
    ],
    ids=["field", "rich-text", "multiple"],
)
def test_confirm_sets_title_and_alt_text_then_chooses(client, wagtail_editor, query, chosen):
    """For each way the chooser was opened (a field, rich text's format step,
    a multiple chooser) the confirm step saves the title and the typed alt
    text as Wagtail's description, then answers with Wagtail's own next step."""
    job = make_job(wagtail_editor, prompt="A red kite over the dunes. Flat, pastel")
    image = linked_image(job)
    get_image_model().objects.filter(pk=image.pk).update(title=short_title(job.prompt))
    client.force_login(wagtail_editor)

    step = modal(client.get(confirm_url(image, query)))
    assert step["step"] == "choose"
    html = step["html"]
    assert "data-chooser-modal-creation-form" in html
    assert 'value="A red kite over the dunes"' in html  # the title, editable
    assert 'name="imagegen-alt_text"' in html
    assert "A red kite over the dunes. Flat, pastel" in html  # the prompt, shown

    response = client.post(
        confirm_url(image, query), post(title="Red kite", alt_text="A red kite above sand dunes")
    )
    assert response.status_code == 302
    expected = chosen.format(id=image.pk)
    assert response["Location"] == expected
    image.refresh_from_db()
    assert (image.title, image.description) == ("Red kite", "A red kite above sand dunes")
    assert image.default_alt_text == "A red kite above sand dunes"
    # Wagtail's step answers as it would for a chosen image.
    assert modal(client.get(expected))["step"] in ("chosen", "select_format")


@pytest.mark.parametrize("require", [False, True])
@pytest.mark.parametrize("alt_text", ["", "A red kite above sand dunes"])
def test_the_prompt_is_never_the_alt_text_unseen(
    client, wagtail_editor, settings, wagtail_imagegen, require, alt_text
):
    """The family: REQUIRE_ALT_TEXT off and on x the alt text typed (none, some).
    The confirm step's alt text input starts empty, never filled from the
    prompt; the image's description (Wagtail's alt text) stays empty until the
    editor confirms typed text; an empty one is refused either way (the
    confirm step always asks for alt text) and nothing is saved."""
    settings.IMAGEGEN = {**wagtail_imagegen, "REQUIRE_ALT_TEXT": require}
    prompt = "A red kite over the dunes. Flat, pastel"
    image = linked_image(make_job(wagtail_editor, prompt=prompt))
    client.force_login(wagtail_editor)

    html = modal(client.get(confirm_url(image)))["html"]
    field = html.split('name="imagegen-alt_text"')[1].split(">")[0]
    assert "value=" not in field or 'value=""' in field
    image.refresh_from_db()
    assert image.description == ""

    response = client.post(confirm_url(image), post(title="Red kite", alt_text=alt_text))
    image.refresh_from_db()
    assert image.description == alt_text
    assert prompt not in image.description
    assert response.status_code == (302 if alt_text else 200)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"title": "Kite", "alt_text": ""}, "alt_text"),
        ({"title": "Kite", "alt_text": "   \n "}, "alt_text"),
        ({"title": "", "alt_text": "A kite"}, "title"),
        ({"title": "Kite", "alt_text": "a" * 256}, "alt_text"),
        ({"title": "k" * 256, "alt_text": "A kite"}, "title"),
        ({"alt_text": "A kite"}, "title"),
    ],
    ids=["no-alt", "blank-alt", "no-title", "long-alt", "long-title", "missing-title"],
)
def test_confirm_errors_keep_the_image_as_it_was(client, wagtail_editor, data, field):
    """The family of bad input: each is shown on its field, nothing is saved,
    the step stays (no image chosen)."""
    image = linked_image(make_job(wagtail_editor, prompt="A kite"))
    client.force_login(wagtail_editor)
    step = modal(client.post(confirm_url(image), post(**data)))
    assert step["step"] == "choose"
    assert f"field-{field} errors" in step["html"]
    image.refresh_from_db()
    assert (image.title, image.description) == ("A kite", "")


def test_confirm_is_refused_for_images_the_editor_may_not_have(
    client, wagtail_editor, django_user_model
):
    """The family: another user's generated image, an image imagegen did not
    make, an image that does not exist, an editor without Wagtail's choose
    permission. Each is the same 404 (or the chooser's refusal), nothing saved."""
    other = make_wagtail_user(django_user_model, "other")
    theirs = linked_image(make_job(other, prompt="Theirs"))
    uploaded = get_image_model()(title="Uploaded", file=theirs.file.name)
    uploaded.save()
    client.force_login(wagtail_editor)
    for image_id in (theirs.pk, uploaded.pk, 999_999):
        url = reverse("imagegen_wagtail:chooser_confirm", args=[image_id])
        assert client.get(url).status_code == 404
        assert client.post(url, post(title="x", alt_text="y")).status_code == 404
    theirs.refresh_from_db()
    assert theirs.title == "Theirs"

    no_choose = make_wagtail_user(django_user_model, "nochoose", images=("add",))
    mine = linked_image(make_job(no_choose, prompt="Mine"))
    client.force_login(no_choose)
    step = modal(client.post(confirm_url(mine), post(title="x", alt_text="y")))
    assert 'id="imagegen-refused"' in step["html"]
    mine.refresh_from_db()
    assert mine.title == "Mine"


# Job page: prompt, Retry and Cancel ---------------------------------------------------


def job_page(client: Any, job: GenerationJob) -> str:
    response = client.get(reverse("imagegen_wagtail:job", args=[job.pk]))
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(
    ("status", "cancel_shown", "retry_shown"),
    [
        (Status.QUEUED, True, False),
        (Status.SUBMITTED, True, False),
        (Status.RUNNING, True, False),
        (Status.FINALIZING, False, False),
        (Status.SUCCEEDED, False, False),
        (Status.FAILED, False, True),
        (Status.EXPIRED, False, True),
        (Status.CANCELED, False, False),
    ],
)
def test_job_page_shows_the_prompt_and_what_applies(
    client, wagtail_editor, status, cancel_shown, retry_shown
):
    """Every status: the prompt and settings are shown; Cancel only while the
    job has not finished, Retry only once it failed or expired (the
    progress script shows and hides them as the job moves on)."""
    job = make_job(wagtail_editor, status=status, prompt="A harbour <at> night")
    client.force_login(wagtail_editor)
    html = job_page(client, job)
    assert 'id="imagegen-prompt">A harbour &lt;at&gt; night<' in html
    cancel = html.split('action="' + reverse("imagegen_wagtail:cancel", args=[job.pk]))[1]
    retry = html.split('action="' + reverse("imagegen_wagtail:retry", args=[job.pk]))[1]
    assert (" hidden>" not in cancel.split(">")[0] + ">") == cancel_shown
    assert (" hidden>" not in retry.split(">")[0] + ">") == retry_shown


def test_retry_makes_one_retry_and_links_to_it(client, wagtail_editor):
    job = make_job(wagtail_editor, status=Status.FAILED, error_message="Provider error")
    client.force_login(wagtail_editor)
    url = reverse("imagegen_wagtail:retry", args=[job.pk])
    first = client.post(url)
    retry = GenerationJob.objects.get(retry_of=job)
    assert first["Location"] == reverse("imagegen_wagtail:job", args=[retry.pk])
    assert retry.prompt == job.prompt and retry.created_by == wagtail_editor
    # A second click returns the same retry, and the page links to it instead.
    second = client.post(url)
    assert second["Location"] == first["Location"]
    assert GenerationJob.objects.filter(retry_of=job).count() == 1
    html = job_page(client, job)
    assert f'href="{first["Location"]}"' in html and "See the retry" in html


@pytest.mark.parametrize("status", [Status.SUCCEEDED, Status.RUNNING, Status.CANCELED])
def test_retry_of_a_job_that_cannot_be_retried_says_why(client, wagtail_editor, status):
    job = make_job(wagtail_editor, status=status)
    client.force_login(wagtail_editor)
    response = client.post(reverse("imagegen_wagtail:retry", args=[job.pk]), follow=True)
    assert "Only failed or expired jobs can be retried" in response.content.decode()
    assert not GenerationJob.objects.filter(retry_of=job).exists()


def test_a_moderation_refusal_offers_editing_the_prompt(client, wagtail_editor):
    job = make_job(wagtail_editor, status=Status.FAILED, error_code="MODERATION")
    client.force_login(wagtail_editor)
    html = job_page(client, job)
    retry = html.split('action="' + reverse("imagegen_wagtail:retry", args=[job.pk]))[1]
    assert " hidden>" in retry.split(">")[0] + ">"
    edit = html.split('id="imagegen-edit-prompt"')[1].split(">")[0]
    assert "hidden" not in edit and f"from={job.pk}" in edit


@pytest.mark.parametrize(
    ("accepted", "message"),
    [(False, "before the provider took it: no cost"), (True, "it may still be charged")],
)
def test_cancel_says_whether_the_job_still_costs(client, wagtail_editor, accepted, message):
    job = make_job(
        wagtail_editor,
        status=Status.SUBMITTED if accepted else Status.QUEUED,
    )
    client.force_login(wagtail_editor)
    response = client.post(reverse("imagegen_wagtail:cancel", args=[job.pk]), follow=True)
    assert message in response.content.decode()
    job.refresh_from_db()
    assert job.status == Status.CANCELED
    again = client.post(reverse("imagegen_wagtail:cancel", args=[job.pk]), follow=True)
    assert "nothing to cancel" in again.content.decode()


@pytest.mark.parametrize(
    ("perms", "action", "owner", "expected"),
    [
        # Own jobs: Retry needs add; Cancel needs add or change.
        (("imagegen.add_generationjob",), "retry", True, 302),
        (("imagegen.view_generationjob",), "retry", True, 403),
        (("imagegen.add_generationjob",), "cancel", True, 302),
        (("imagegen.change_generationjob",), "cancel", True, 302),
        (("imagegen.view_generationjob",), "cancel", True, 403),
        # Others' jobs: seen only with view_all_jobs; canceled only with cancel_any_job.
        (("imagegen.add_generationjob", "imagegen.view_generationjob"), "retry", False, 404),
        (
            ("imagegen.add_generationjob", "imagegen.view_generationjob", "imagegen.view_all_jobs"),
            "retry",
            False,
            302,
        ),
        (
            ("imagegen.add_generationjob", "imagegen.view_generationjob", "imagegen.view_all_jobs"),
            "cancel",
            False,
            403,
        ),
        (
            (
                "imagegen.view_generationjob",
                "imagegen.view_all_jobs",
                "imagegen.cancel_any_job",
            ),
            "cancel",
            False,
            302,
        ),
    ],
)
def test_retry_and_cancel_permissions_are_the_django_admin_s(
    client, django_user_model, perms, action, owner, expected
):
    """The Django admin's rules (imagegen.permissions), by permission set,
    action and owner. A refusal changes nothing."""
    user = make_wagtail_user(django_user_model, "actor", imagegen=perms)
    creator = user if owner else make_wagtail_user(django_user_model, "creator")
    status = Status.FAILED if action == "retry" else Status.QUEUED
    job = make_job(creator, status=status)
    client.force_login(user)
    response = client.post(reverse(f"imagegen_wagtail:{action}", args=[job.pk]))
    assert response.status_code == expected
    job.refresh_from_db()
    if expected == 302:
        assert job.status == Status.CANCELED or job.retries.exists()
    else:
        assert job.status == status and not job.retries.exists()
    if expected == 403:
        assert 'id="imagegen-refused"' in response.content.decode()


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_job_actions_need_post(client, wagtail_editor, method):
    job = make_job(wagtail_editor, status=Status.QUEUED)
    client.force_login(wagtail_editor)
    for action in ("retry", "cancel"):
        response = getattr(client, method)(reverse(f"imagegen_wagtail:{action}", args=[job.pk]))
        assert response.status_code == 405
    job.refresh_from_db()
    assert job.status == Status.QUEUED

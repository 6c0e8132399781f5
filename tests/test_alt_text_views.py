"""The editor-facing side of drafting (IMAGEGEN["DESCRIBER"]), by family:

- the field dialog's "Draft a prompt from the content" endpoint
  (``<object id or add>/imagegen/<field>/draft-prompt/``):
  - methods: GET, PUT, DELETE, PATCH: 405, nothing drafted;
  - permissions: anonymous (the admin's login), imagegen's add permission
    without the model's change (and the reverse): 403; the documented
    writer and a superuser, on the add and the change form: the draft;
  - CSRF: a POST without the token is refused (403);
  - configuration: no describer (``None``): 404 with the reason, and the
    dialog offers no button; a describer: the dialog offers it;
  - the describer failing: 502 with its message, nothing made; no text to
    draft from (an empty add form): 400 with the reason;
  - not found: an object that does not exist, a field not declared: 404;
  - content: the form's current (unsaved) text is what is drafted from;
    nothing is generated or paid for (no job);
- the review endpoint's decorative mark and drafts: a draft in the status
  JSON only when ready, never as the alt text; approving with the input's
  (edited) text confirms it; discarding with the untouched draft posted
  leaves it a draft; the decorative mark set and cleared; with
  REQUIRE_ALT_TEXT, approving without alt text and not decorative is refused
  with the reason and nothing is saved (on the job page's endpoint and the
  run grid's), approving decorative or with alt text is not;
- the image page shows a ready draft in the alt text input, marked, and the
  decorative checkbox;
- attaching a chosen image from a model's admin form with REQUIRE_ALT_TEXT:
  the form's alt field as typed counts (typed: saved; empty: refused on the
  field, nothing saved; a decorative image: saved).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse

from imagegen.choices import AltTextDraftState, ReviewStatus
from imagegen.describers import Describer, DescriberError
from imagegen.models import GenerationJob
from imagegen.serializers import job_page_status
from tests.content_app.models import Article
from tests.factories import DOCUMENTED_EDITOR, make_image, make_job, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.field_admin")]

COVER = "imagegen_content_tests.Article.cover"
FAILURE = "The describer is unavailable; try again later."
TEXT = {"title": "Tandems on a mountain pass", "summary": "Two riders, one bike."}


class EchoDescriber(Describer):
    """Answers with what it was given, or fails (option ``FAIL``)."""

    name = "echo"
    option_names = frozenset({"FAIL"})

    def describe(self, image: bytes, content_type: str, *, language: str, context: str = "") -> str:
        if self.options.get("FAIL"):
            raise DescriberError(FAILURE)
        return f"An image ({language})"

    def draft_prompt(self, text: str, *, language: str, field_label: str = "") -> str:
        if self.options.get("FAIL"):
            raise DescriberError(FAILURE)
        return f"Drafted ({language}): {text}"


def describer(fail: bool = False) -> dict[str, Any]:
    return {"BACKEND": f"{__name__}.EchoDescriber", "OPTIONS": {"FAIL": fail}}


@pytest.fixture
def declared(settings: Any, imagegen_settings: dict[str, Any]) -> dict[str, Any]:
    settings.IMAGEGEN = {
        **imagegen_settings,
        "IMAGE_FIELDS": {COVER: {"prompt": "Editorial photo: {title}.", "alt_field": "cover_alt"}},
        "DESCRIBER": describer(),
    }
    return settings.IMAGEGEN


@pytest.fixture
def article(db: Any) -> Article:
    return Article.objects.create(title="Bikes", summary="Red bicycles in the rain.")


@pytest.fixture
def writer(django_user_model: Any) -> Any:
    """The documented permissions of docs/fields.md."""
    return make_user(
        django_user_model,
        "imagegen.add_generationjob",
        "imagegen_content_tests.add_article",
        "imagegen_content_tests.change_article",
        username="writer",
    )


def draft_url(object_id: Any, field: str = "cover") -> str:
    return reverse(
        "content_admin:imagegen_content_tests_article_imagegen_draft_prompt",
        args=[object_id, field],
    )


def dialog_url(object_id: Any) -> str:
    return reverse(
        "content_admin:imagegen_content_tests_article_imagegen_generate", args=[object_id, "cover"]
    )


class TestDraftPrompt:
    @pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
    def test_only_post(self, client, declared, article, writer, method):
        client.force_login(writer)
        response = getattr(client, method)(draft_url(article.pk))
        assert response.status_code == 405
        assert response["Allow"] == "POST"
        assert "error" in response.json()

    @pytest.mark.parametrize("form", ["add", "change"])
    @pytest.mark.parametrize(
        ("perms", "allowed"),
        [
            ((), False),
            (("imagegen.add_generationjob",), False),
            (
                ("imagegen_content_tests.add_article", "imagegen_content_tests.change_article"),
                False,
            ),
            (
                (
                    "imagegen.add_generationjob",
                    "imagegen_content_tests.add_article",
                    "imagegen_content_tests.change_article",
                ),
                True,
            ),
        ],
    )
    def test_permissions(self, client, declared, article, django_user_model, form, perms, allowed):
        client.force_login(make_user(django_user_model, *perms))
        response = client.post(draft_url("add" if form == "add" else article.pk), TEXT)
        assert response.status_code == (200 if allowed else 403)
        assert ("prompt" in response.json()) is allowed

    @pytest.mark.parametrize("form", ["add", "change"])
    def test_superuser(self, client, declared, article, admin_user, form):
        client.force_login(admin_user)
        response = client.post(draft_url("add" if form == "add" else article.pk), TEXT)
        assert response.status_code == 200
        assert response.json()["prompt"].startswith("Drafted (en")

    def test_anonymous_is_sent_to_log_in(self, client, declared, article):
        response = client.post(draft_url(article.pk))
        assert response.status_code == 302
        assert "/login/" in response["Location"]

    def test_csrf_is_checked(self, declared, article, writer):
        client = Client(enforce_csrf_checks=True)
        client.force_login(writer)
        assert client.post(draft_url(article.pk)).status_code == 403
        page = client.get(dialog_url(article.pk))
        token = page.cookies["csrftoken"].value
        answered = client.post(draft_url(article.pk), HTTP_X_CSRFTOKEN=token)
        assert answered.status_code == 200

    @pytest.mark.parametrize("configured", [True, False])
    def test_describer_configured_or_not(
        self, client, declared, settings, article, writer, configured
    ):
        settings.IMAGEGEN = {**declared, "DESCRIBER": describer() if configured else None}
        client.force_login(writer)
        response = client.post(draft_url(article.pk))
        dialog = client.get(dialog_url(article.pk)).content.decode()
        assert response.status_code == (200 if configured else 404)
        assert ("data-draft-prompt" in dialog) is configured
        assert ("Draft a prompt from the content" in dialog) is configured
        if not configured:
            assert "no describer is configured" in response.json()["error"]

    def test_describer_failing(self, client, declared, settings, article, writer):
        settings.IMAGEGEN = {**declared, "DESCRIBER": describer(fail=True)}
        client.force_login(writer)
        response = client.post(draft_url(article.pk))
        assert response.status_code == 502
        assert response.json() == {"error": FAILURE}
        assert not GenerationJob.objects.exists()

    def test_no_text_yet(self, client, declared, writer):
        client.force_login(writer)
        response = client.post(draft_url("add"), {"title": "", "summary": "  "})
        assert response.status_code == 400
        assert "no text" in response.json()["error"]

    @pytest.mark.parametrize(("object_id", "field"), [(999999, "cover"), ("OBJ", "attachment")])
    def test_not_found(self, client, declared, article, writer, object_id, field):
        client.force_login(writer)
        response = client.post(draft_url(article.pk if object_id == "OBJ" else object_id, field))
        assert response.status_code == 404
        assert response.json()["error"]

    @pytest.mark.parametrize("form", ["add", "change"])
    def test_drafts_from_the_form_as_typed_and_makes_nothing(
        self, client, declared, article, writer, form
    ):
        client.force_login(writer)
        response = client.post(draft_url("add" if form == "add" else article.pk), TEXT)
        prompt = response.json()["prompt"]
        assert "Tandems on a mountain pass" in prompt
        assert "Bikes" not in prompt.replace("bike", "")
        assert not GenerationJob.objects.exists()
        article.refresh_from_db()
        assert article.title == "Bikes"


# Review: drafts and the decorative mark -------------------------------------


@pytest.fixture
def editor(django_user_model: Any) -> Any:
    return make_user(django_user_model, *DOCUMENTED_EDITOR, username="editor")


def review(client: Client, image: Any, **data: Any) -> Any:
    return client.post(
        reverse("admin:imagegen_generatedimage_review", args=[image.pk]),
        data,
        HTTP_ACCEPT="application/json",
    )


def drafted(job: GenerationJob, state: str = AltTextDraftState.READY, **fields: Any) -> Any:
    draft = "Boats in a harbour at dawn" if state == AltTextDraftState.READY else ""
    return make_image(job, alt_text_draft=draft, alt_text_draft_state=state, **fields)


@pytest.mark.urls("project.urls")
class TestReview:
    @pytest.mark.parametrize("state", list(AltTextDraftState))
    def test_status_json_shows_the_draft_only_when_ready(self, editor, imagegen_settings, state):
        image = drafted(make_job(editor), state)
        data = job_page_status(image.job, editor)["review"]
        shown = data["images"][0]
        assert shown["alt_text"] == ""
        assert shown["alt_text_draft_state"] == state
        assert bool(shown["alt_text_draft"]) is (state == AltTextDraftState.READY)
        assert data["drafting"] is (state == AltTextDraftState.PENDING)

    @pytest.mark.parametrize("typed", ["Boats in a harbour at dawn", "Three fishing boats at dawn"])
    def test_approve_confirms_the_inputs_text(self, client, editor, imagegen_settings, typed):
        image = drafted(make_job(editor))
        client.force_login(editor)
        response = review(client, image, action="approve", alt_text=typed, decorative_shown="1")
        assert response.status_code == 200
        image.refresh_from_db()
        assert (image.alt_text, image.review_status) == (typed, ReviewStatus.APPROVED)
        assert response.json()["image"]["alt_text"] == typed

    @pytest.mark.parametrize("action", ["discard", "restore"])
    def test_an_untouched_draft_stays_a_draft(self, client, editor, imagegen_settings, action):
        image = drafted(make_job(editor))
        client.force_login(editor)
        response = review(client, image, action=action, alt_text=image.alt_text_draft)
        assert response.status_code == 200
        image.refresh_from_db()
        assert image.alt_text == ""
        assert image.alt_text_draft == "Boats in a harbour at dawn"

    @pytest.mark.parametrize("mark", [True, False])
    def test_decorative_mark(self, client, editor, imagegen_settings, mark):
        image = make_image(make_job(editor), decorative=not mark)
        client.force_login(editor)
        data = {"action": "save", "alt_text": "", "decorative_shown": "1"}
        if mark:
            data["decorative"] = "1"
        response = review(client, image, **data)
        assert response.status_code == 200
        image.refresh_from_db()
        assert image.decorative is mark
        assert response.json()["image"]["decorative"] is mark

    def test_decorative_left_alone_when_not_shown(self, client, editor, imagegen_settings):
        image = make_image(make_job(editor), decorative=True)
        client.force_login(editor)
        assert review(client, image, action="approve").status_code == 200
        image.refresh_from_db()
        assert image.decorative is True

    @pytest.mark.parametrize(
        ("data", "refused"),
        [
            ({"alt_text": ""}, True),
            ({"alt_text": "   "}, True),
            ({"alt_text": "", "decorative": "1"}, False),
            ({"alt_text": "Boats at dawn"}, False),
        ],
    )
    def test_require_alt_text_on_the_job_page(
        self, client, editor, settings, imagegen_settings, data, refused
    ):
        settings.IMAGEGEN = {**imagegen_settings, "REQUIRE_ALT_TEXT": True}
        image = drafted(make_job(editor))
        client.force_login(editor)
        response = review(
            client, image, action="approve", title="Harbour", decorative_shown="1", **data
        )
        image.refresh_from_db()
        if refused:
            assert response.status_code == 400
            assert "alt text" in response.json()["error"].lower()
            assert (image.title, image.alt_text, image.review_status) == ("", "", ReviewStatus.NEW)
        else:
            assert response.status_code == 200
            assert image.review_status == ReviewStatus.APPROVED

    @pytest.mark.parametrize("action", ["approve", "pick"])
    @pytest.mark.parametrize(("alt_text", "refused"), [("", True), ("Boats at dawn", False)])
    def test_require_alt_text_on_the_run_grid(
        self, client, editor, settings, imagegen_settings, action, alt_text, refused
    ):
        from imagegen.models import GenerationRun

        settings.IMAGEGEN = {**imagegen_settings, "REQUIRE_ALT_TEXT": True}
        run = GenerationRun.objects.create(created_by=editor, kind="candidates", settings={})
        image = drafted(make_job(editor, run=run))
        client.force_login(editor)
        response = client.post(
            reverse("admin:imagegen_generationrun_image", args=[run.pk, image.pk, action]),
            {"alt_text": alt_text, "decorative_shown": "1"},
            HTTP_ACCEPT="application/json",
        )
        image.refresh_from_db()
        if refused:
            assert response.status_code == 400
            assert "alt text" in response.json()["error"].lower()
            assert image.review_status == ReviewStatus.NEW and image.alt_text == ""
        else:
            assert response.status_code == 200
            assert (image.review_status, image.alt_text) == (ReviewStatus.APPROVED, alt_text)

    def test_image_page_shows_the_draft_marked(self, client, editor, imagegen_settings):
        image = drafted(make_job(editor))
        client.force_login(editor)
        page = client.get(reverse("admin:imagegen_generatedimage_change", args=[image.pk]))
        html = page.content.decode()
        assert 'name="alt_text" value="Boats in a harbour at dawn"' in html
        assert "is-draft" in html and "Drafted — check it" in html
        assert "Decorative image (no alt text)" in html
        image.refresh_from_db()
        assert image.alt_text == ""


class TestAttachRequiresAltText:
    """REQUIRE_ALT_TEXT on the admin form that attaches a chosen image: the
    alt field as typed on the form (or the hidden input when the alt field
    is not on it) counts; empty, the save is refused with the reason on the
    field and the object is unchanged; a decorative image needs none."""

    @pytest.mark.parametrize(
        ("typed", "decorative", "saved"),
        [("Two red bikes", False, True), ("", False, False), ("", True, True)],
    )
    def test_the_form_alt_field(
        self, client, declared, settings, writer, article, typed, decorative, saved
    ):
        settings.IMAGEGEN = {**declared, "REQUIRE_ALT_TEXT": True}
        job = make_job(
            writer,
            target_content_type=ContentType.objects.get_for_model(Article),
            target_object_id=str(article.pk),
            target_field="cover",
        )
        make_image(job, decorative=decorative)
        client.force_login(writer)
        response = client.post(
            reverse("content_admin:imagegen_content_tests_article_change", args=[article.pk]),
            {
                "title": article.title,
                "summary": article.summary,
                "cover_alt": typed,
                "_imagegen-cover-job": str(job.pk),
                "_imagegen-cover-index": "0",
            },
        )
        article.refresh_from_db()
        assert bool(article.cover) is saved
        if saved:
            assert response.status_code == 302
            assert article.cover_alt == typed
        else:
            assert response.status_code == 200
            errors = response.context["adminform"].form.errors
            assert "alt text" in " ".join(errors["cover"]).lower()

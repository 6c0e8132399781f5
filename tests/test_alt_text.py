"""Alt text drafts and the alt text requirement (imagegen.services.alt_text,
prompt_drafts, the task imagegen.draft_alt_text), against the sandbox over
real HTTP, by family:

- requesting drafts after finalize: the job's stored images without a draft
  become pending and one task each is sent once the transaction commits
  (none before, none on rollback); none with drafting off, none for a
  discarded image, a ready draft left alone, none when the describer setting
  is broken (the job is not failed by it);
- drafting: in the job's language (en, fr, de, "" -> LANGUAGE_CODE, an
  unknown language -> the English sentence, recorded as asked), from the
  stored file with the prompt as context; the job and the image's alt text
  untouched;
- failures: a temporary one before the last attempt is raised for the task
  to retry (still pending), at the last attempt and any permanent one end
  failed; a describer raising anything else ends failed; drafting turned off
  meanwhile, a discarded image and a duplicate message do nothing;
- the job's language recorded at creation: the active language (fr, de),
  else LANGUAGE_CODE;
- confirming: the draft as it is, the editor's edit, the decorative mark;
  refused without text, with text too long, for a user who may not change
  images or see the image; the draft is kept;
- REQUIRE_ALT_TEXT x {alt text, decorative, neither (a ready draft does not
  count)} x {approve, attach to a field}; with it off, neither is allowed;
  approving through review() with the text typed passes; the alt text of
  imagegen's, django-filer's and Wagtail's images counts;
- prompt drafts for a declared field: in the requested language, from the
  object's text and a form's values over it; refused with a readable
  message for an undeclared field, drafting off, no text, a describer
  raising; the text sent bounded (a megabyte field), the prompt cut to the
  provider's limit;
- end to end: jobs generated through a real worker end with drafts ready
  on their images; a failing describer is retried (503 once: ready) or
  ends failed (400), the job succeeded either way.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone, translation

from imagegen import services
from imagegen.choices import AltTextDraftState, ReviewStatus, Status
from imagegen.describers import Describer, DescriberError
from imagegen.models import GeneratedImage, GenerationJob
from imagegen.services import alt_text, field_jobs, prompt_drafts, reviews
from imagegen.tasks import draft_alt_text
from tests.content_app.models import Article
from tests.factories import DOCUMENTED_EDITOR, make_image, make_job, make_user

from .conftest import wait_until

pytestmark = [pytest.mark.services, pytest.mark.django_db, pytest.mark.usefixtures("drafting")]

COVER = "imagegen_content_tests.Article.cover"
PENDING, READY, FAILED = (
    AltTextDraftState.PENDING,
    AltTextDraftState.READY,
    AltTextDraftState.FAILED,
)


class Broken(Describer):
    """A describer with a bug."""

    def describe(self, image: bytes, content_type: str, *, language: str, context: str = "") -> str:
        raise RuntimeError("a bug")

    def draft_prompt(self, text: str, *, language: str, field_label: str = "") -> str:
        raise RuntimeError("a bug")


class Recording(Describer):
    """Remembers what it was asked; answers a very long prompt."""

    asked: list[str] = []

    def describe(self, image: bytes, content_type: str, *, language: str, context: str = "") -> str:
        return "unused"

    def draft_prompt(self, text: str, *, language: str, field_label: str = "") -> str:
        Recording.asked.append(text)
        return "p " * 30000


def describer(settings, imagegen_settings, backend):
    settings.IMAGEGEN = {**imagegen_settings, "DESCRIBER": {"BACKEND": backend}}


@pytest.fixture
def editor(django_user_model):
    return make_user(django_user_model, *DOCUMENTED_EDITOR)


def pending_image(**job_fields: Any) -> GeneratedImage:
    job = make_job(**job_fields)
    return make_image(job, alt_text_draft_state=PENDING)


def state(image: GeneratedImage) -> tuple[str, str, str]:
    image.refresh_from_db()
    return image.alt_text_draft_state, image.alt_text_draft, image.alt_text_draft_language


class TestRequest:
    @pytest.fixture
    def sent(self, monkeypatch):
        sent: list[tuple] = []
        monkeypatch.setattr(
            draft_alt_text, "apply_async", lambda args, **kwargs: sent.append(tuple(args))
        )
        return sent

    def test_pending_and_sent_on_commit(
        self, imagegen_settings, sent, django_capture_on_commit_callbacks
    ):
        job = make_job(images=3)
        discarded, ready = job.images.get(index=1), job.images.get(index=2)
        GeneratedImage.objects.filter(pk=discarded.pk).update(file="")
        GeneratedImage.objects.filter(pk=ready.pk).update(alt_text_draft_state=READY)
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            assert alt_text.request_drafts(job) == 1
            assert sent == []  # nothing before the commit
        first = job.images.get(index=0)
        assert sent == [(str(first.pk),)] and len(callbacks) == 1
        assert [state(i)[0] for i in (first, discarded, ready)] == [PENDING, "", READY]

    def test_rollback_sends_nothing(
        self, imagegen_settings, sent, django_capture_on_commit_callbacks
    ):
        job = make_job(images=1)
        with django_capture_on_commit_callbacks(execute=True):
            with pytest.raises(RuntimeError), transaction.atomic():
                alt_text.request_drafts(job)
                raise RuntimeError
        assert sent == [] and state(job.images.get())[0] == ""

    @pytest.mark.parametrize("setting", [None, {"BACKEND": "imagegen.nowhere.Describer"}])
    def test_off_or_broken(
        self, settings, imagegen_settings, sent, setting, django_capture_on_commit_callbacks
    ):
        settings.IMAGEGEN = {**imagegen_settings, "DESCRIBER": setting}
        job = make_job(images=1)
        with django_capture_on_commit_callbacks(execute=True):
            assert alt_text.request_drafts(job) == 0
        assert sent == [] and state(job.images.get())[0] == ""


class TestResendLost:
    """The family of pending drafts by when their task was last sent: never
    recorded (a row from before 0012: left alone), just now, within
    RESEND_AFTER, past it, past GIVE_UP_AFTER; and drafts in every other
    state, which are never sent again."""

    @pytest.fixture
    def sent(self, monkeypatch):
        sent: list[str] = []
        monkeypatch.setattr(draft_alt_text, "apply_async", lambda args, **kwargs: sent.extend(args))
        return sent

    @pytest.mark.parametrize(
        ("age", "resent", "final"),
        [
            (None, False, PENDING),
            (timedelta(0), False, PENDING),
            (alt_text.RESEND_AFTER - timedelta(seconds=1), False, PENDING),
            (alt_text.RESEND_AFTER, True, PENDING),
            (alt_text.GIVE_UP_AFTER - timedelta(seconds=1), True, PENDING),
            (alt_text.GIVE_UP_AFTER, False, "failed"),
        ],
        ids=["never", "now", "within", "past", "last-chance", "given-up"],
    )
    def test_pending_by_age(
        self, imagegen_settings, sent, django_capture_on_commit_callbacks, age, resent, final
    ):
        now = timezone.now()
        image = pending_image()
        requested = None if age is None else now - age
        GeneratedImage.objects.filter(pk=image.pk).update(alt_text_draft_requested_at=requested)
        with django_capture_on_commit_callbacks(execute=True):
            assert alt_text.resend_lost(now) == int(resent)
        assert sent == ([str(image.pk)] if resent else [])
        image.refresh_from_db()
        assert image.alt_text_draft_state == final
        assert image.alt_text_draft_requested_at == (now if resent else requested)

    @pytest.mark.parametrize("draft_state", ["", READY, "failed"])
    def test_other_states_never(self, imagegen_settings, sent, draft_state):
        image = make_image(make_job(), alt_text_draft_state=draft_state)
        long_ago = timezone.now() - alt_text.GIVE_UP_AFTER * 2
        GeneratedImage.objects.filter(pk=image.pk).update(alt_text_draft_requested_at=long_ago)
        assert alt_text.resend_lost() == 0 and sent == []
        image.refresh_from_db()
        assert image.alt_text_draft_state == draft_state

    def test_by_the_sweep_and_sent_once_a_period(
        self, imagegen_settings, sent, django_capture_on_commit_callbacks
    ):
        now = timezone.now()
        image = pending_image()
        GeneratedImage.objects.filter(pk=image.pk).update(
            alt_text_draft_requested_at=now - alt_text.RESEND_AFTER
        )
        with django_capture_on_commit_callbacks(execute=True):
            assert services.sweep(now)["drafts"] == 1
            assert services.sweep(now + timedelta(minutes=1))["drafts"] == 0
        assert sent == [str(image.pk)]

    def test_requested_at_recorded(self, imagegen_settings, sent):
        job = make_job(images=1)
        before = timezone.now()
        alt_text.request_drafts(job)
        assert job.images.get().alt_text_draft_requested_at >= before


class TestDraft:
    @pytest.mark.parametrize(
        ("language", "expected", "recorded"),
        [
            ("en", "Generated image (64×48): a red bicycle.", "en"),
            ("fr", "Image générée (64×48) : a red bicycle.", "fr"),
            ("de", "Generiertes Bild (64×48): a red bicycle.", "de"),
            ("", "Generated image (64×48): a red bicycle.", django_settings.LANGUAGE_CODE),
            ("ja", "Generated image (64×48): a red bicycle.", "ja"),
        ],
    )
    def test_languages(self, imagegen_settings, sandbox, language, expected, recorded):
        image = pending_image(language=language)
        assert alt_text.draft(image.pk) == alt_text.READY
        assert state(image) == (READY, expected, recorded)
        assert image.alt_text == "" and image.job.status == Status.SUCCEEDED
        assert sandbox.stats()["chat_completions"] == 1

    @pytest.mark.parametrize(
        ("marker", "attempt", "outcome"),
        [
            ("describe-http=503", 1, "raised"),
            ("describe-http=429", 3, "raised"),
            ("describe-hangup", 1, "raised"),
            ("describe-http=503", alt_text.MAX_ATTEMPTS, FAILED),
            ("describe-http=400", 1, FAILED),
            ("describe=refusal", 1, FAILED),
            ("describe=empty", 1, FAILED),
        ],
    )
    def test_failures(self, imagegen_settings, sandbox, marker, attempt, outcome):
        image = pending_image(prompt=f"a red bicycle [sandbox:{marker}]")
        if outcome == "raised":
            with pytest.raises(DescriberError) as info:
                alt_text.draft(image.pk, attempt=attempt)
            assert info.value.temporary
            assert state(image) == (PENDING, "", "")
        else:
            assert alt_text.draft(image.pk, attempt=attempt) == alt_text.FAILED
            assert state(image) == (FAILED, "", "")
        image.job.refresh_from_db()
        assert image.job.status == Status.SUCCEEDED and image.review_status == ReviewStatus.NEW

    def test_describer_raising(self, settings, imagegen_settings):
        describer(settings, imagegen_settings, "tests.test_alt_text.Broken")
        image = pending_image()
        assert alt_text.draft(image.pk) == alt_text.FAILED
        assert state(image)[0] == FAILED

    @pytest.mark.parametrize("case", ["off", "discarded", "not pending", "no such image"])
    def test_nothing_to_do(self, settings, imagegen_settings, sandbox, case):
        image = pending_image()
        image_id, expected = image.pk, ""
        if case == "off":
            settings.IMAGEGEN = {**imagegen_settings, "DESCRIBER": None}
        elif case == "discarded":
            GeneratedImage.objects.filter(pk=image.pk).update(file="")
        elif case == "not pending":
            GeneratedImage.objects.filter(pk=image.pk).update(alt_text_draft_state=FAILED)
            expected = FAILED
        else:
            image_id, expected = 10**9, PENDING
        assert alt_text.draft(image_id) == alt_text.SKIPPED
        assert state(image)[0] == expected
        assert sandbox.stats().get("chat_completions", 0) == 0


@pytest.mark.parametrize(
    ("active", "recorded"),
    [("fr", "fr"), ("de", "de"), ("en-us", "en-us"), (None, "")],
    ids=["fr", "de", "site", "none"],
)
def test_job_language_at_creation(imagegen_settings, active, recorded):
    """The family of languages active when a job is made: another language, the
    site's, and none at all (translations deactivated: "" stands for
    LANGUAGE_CODE). An earlier test's language left active never counts: each
    case sets its own."""
    with translation.override(active):
        job = services.create_job(prompt="a kite")
    assert job.language == recorded


class TestConfirm:
    @pytest.fixture
    def drafted(self, editor):
        job = make_job(editor)
        return make_image(job, alt_text_draft="A red bicycle.", alt_text_draft_state=READY)

    @pytest.mark.parametrize(
        ("kwargs", "alt", "decorative"),
        [
            ({}, "A red bicycle.", False),
            ({"alt_text": "  A red bicycle by a wall. "}, "A red bicycle by a wall.", False),
            ({"decorative": True}, "", True),
        ],
    )
    def test_confirmed(self, drafted, editor, kwargs, alt, decorative):
        image = alt_text.confirm(drafted, user=editor, **kwargs)
        assert (image.alt_text, image.decorative) == (alt, decorative)
        assert image.alt_text_draft == "A red bicycle." and image.alt_text_draft_state == READY

    @pytest.mark.parametrize(
        ("case", "error"),
        [
            ("empty", ValidationError),
            ("too long", ValidationError),
            ("no permission", PermissionDenied),
            ("another user's", PermissionDenied),
        ],
    )
    def test_refused(self, drafted, editor, django_user_model, case, error):
        user, kwargs = editor, {}
        if case == "empty":
            kwargs = {"alt_text": "   "}
        elif case == "too long":
            kwargs = {"alt_text": "x" * 501}
        elif case == "no permission":
            user = make_user(django_user_model, "imagegen.view_generatedimage")
            GenerationJob.objects.filter(pk=drafted.job_id).update(created_by=user)
        else:
            user = make_user(django_user_model, *DOCUMENTED_EDITOR)
        with pytest.raises(error):
            alt_text.confirm(drafted, user=user, **kwargs)
        drafted.refresh_from_db()
        assert (drafted.alt_text, drafted.decorative) == ("", False)


class TestRequired:
    @pytest.fixture
    def declared(self, settings, imagegen_settings):
        settings.IMAGEGEN = {
            **imagegen_settings,
            "IMAGE_FIELDS": {COVER: {"prompt": "{title}", "alt_field": "cover_alt"}},
        }
        return settings.IMAGEGEN

    def image(self, editor, article, case):
        job = make_job(
            editor,
            target_content_type=ContentType.objects.get_for_model(Article),
            target_object_id=str(article.pk),
            target_field="cover",
        )
        fields = {"alt_text_draft": "A drafted text.", "alt_text_draft_state": READY}
        if case == "alt text":
            fields["alt_text"] = "A red bicycle."
        elif case == "decorative":
            fields["decorative"] = True
        return make_image(job, **fields)

    @pytest.mark.parametrize("required", [True, False])
    @pytest.mark.parametrize("case", ["alt text", "decorative", "neither"])
    @pytest.mark.parametrize("way", ["approve", "attach"])
    def test_family(self, settings, declared, editor, required, case, way):
        settings.IMAGEGEN = {**declared, "REQUIRE_ALT_TEXT": required}
        article = Article.objects.create(title="Bikes")
        image = self.image(editor, article, case)
        allowed = not required or case != "neither"
        if way == "approve":
            attempt = lambda: reviews.approve(image, user=editor)  # noqa: E731
        else:
            attempt = lambda: field_jobs.fill_from_job(  # noqa: E731
                article, "cover", image.job, 0, user=editor
            )
        if allowed:
            assert attempt()
        else:
            with pytest.raises(ValidationError) as info:
                attempt()
            errors = info.value.error_dict["cover"] if way == "attach" else [info.value]
            assert [error.code for error in errors] == ["alt_text_required"]
            assert "needs alt text" in str(info.value)
        image.refresh_from_db()
        if way == "approve":
            assert image.review_status == (ReviewStatus.APPROVED if allowed else ReviewStatus.NEW)
        else:
            assert bool(article.cover) == allowed

    def test_alt_text_given_when_attaching(self, settings, declared, editor):
        settings.IMAGEGEN = {**declared, "REQUIRE_ALT_TEXT": True}
        article = Article.objects.create(title="Bikes")
        image = self.image(editor, article, "neither")
        field_jobs.fill_from_job(article, "cover", image.job, 0, alt_text="Bikes.", user=editor)
        assert article.cover_alt == "Bikes." and article.cover

    def test_review_with_typed_text(self, settings, declared, editor):
        settings.IMAGEGEN = {**declared, "REQUIRE_ALT_TEXT": True}
        image = self.image(editor, Article.objects.create(title="Bikes"), "neither")
        with pytest.raises(ValidationError):
            reviews.review(image, user=editor, action="approve")
        result = reviews.review(image, user=editor, action="approve", alt_text="Two bikes.")
        assert result.changed and result.image.review_status == ReviewStatus.APPROVED
        result = reviews.review(image, user=editor, action="save", decorative=True)
        assert result.image.decorative and result.image.alt_text == "Two bikes."


@pytest.mark.parametrize(
    ("attributes", "given", "missing"),
    [
        ({"alt_text": "Bikes."}, None, False),
        ({"default_alt_text": "Bikes."}, None, False),  # a django-filer image
        ({"description": "Bikes."}, None, False),  # a Wagtail image
        ({"description": "   "}, None, True),
        ({}, None, True),
        ({}, "Given now.", False),
        ({}, "  ", True),
        ({"decorative": True}, None, False),
    ],
)
def test_alt_text_missing_on_any_asset(attributes, given, missing):
    """Family: where each kind of asset keeps its alt text, the text about to
    be given, the decorative mark."""
    asset = type("Asset", (), attributes)()
    assert alt_text.alt_text_missing(asset, given) is missing


class TestPromptDrafts:
    @pytest.fixture
    def declared(self, settings, imagegen_settings):
        settings.IMAGEGEN = {
            **imagegen_settings,
            "IMAGE_FIELDS": {COVER: {"prompt": "{summary}", "alt_field": "cover_alt"}},
        }
        return settings.IMAGEGEN

    @pytest.mark.parametrize(
        ("language", "values", "expected"),
        [
            (
                "en",
                None,
                "An editorial illustration for “Cover”: Summary: Red bicycles. Title: Bikes",
            ),
            (
                "fr",
                None,
                "Une illustration éditoriale pour « Cover » : Summary: Red bicycles. Title: Bikes",
            ),
            (
                "de",
                {"summary": "Blue ones."},
                "Eine redaktionelle Illustration für „Cover“: Summary: Blue ones. Title: Bikes",
            ),
        ],
    )
    def test_drafted(self, declared, sandbox, language, values, expected):
        article = Article(title="Bikes", summary="Red bicycles.", cover_alt="not sent")
        drafted = prompt_drafts.draft_prompt(article, "cover", language=language, values=values)
        assert drafted == expected
        assert GenerationJob.objects.count() == 0  # nothing generated, nothing paid

    def test_add_form(self, declared, sandbox):
        drafted = prompt_drafts.draft_prompt(
            Article, "cover", language="en", values={"title": "New"}
        )
        assert drafted == "An editorial illustration for “Cover”: Title: New"

    @pytest.mark.parametrize(
        ("case", "message"),
        [
            ("undeclared", "is not a field imagegen generates"),
            ("off", "not set up"),
            ("no text", "no text"),
            ("raising", "could not be drafted"),
            ("failing", "HTTP 400"),
        ],
    )
    def test_refused(self, settings, declared, sandbox, case, message):
        field, article = "cover", Article(title="Bikes")
        if case == "undeclared":
            field = "banner"
        elif case == "off":
            settings.IMAGEGEN = {**declared, "DESCRIBER": None}
        elif case == "no text":
            article = Article()
        elif case == "raising":
            describer(settings, declared, "tests.test_alt_text.Broken")
        else:
            article = Article(title="[sandbox:describe-http=400]")
        with pytest.raises(DescriberError) as info:
            prompt_drafts.draft_prompt(article, field, language="en")
        assert message in str(info.value)

    def test_bounded(self, settings, declared, imagegen_settings):
        describer(settings, declared, "tests.test_alt_text.Recording")
        Recording.asked.clear()
        article = Article(title="t" * 10**6, summary="s " * 10**6)
        drafted = prompt_drafts.draft_prompt(article, "cover", language="en")
        [sent] = Recording.asked
        assert len(sent) <= prompt_drafts.MAX_TEXT
        assert sent.startswith("Summary: s s") and "\nTitle: ttt" in sent
        assert 0 < len(drafted) <= 20000  # the sandbox provider's prompt limit


@pytest.mark.pipeline
@pytest.mark.django_db(transaction=True)
class TestEndToEnd:
    def run(self, prompt: str, language: str = "") -> GenerationJob:
        with translation.override(language or None):
            job = services.create_job(prompt=prompt)

        def drafted():
            services.sweep()
            job.refresh_from_db()
            images = list(job.images.all())
            return (
                job.is_terminal
                and images
                and all(i.alt_text_draft_state in (READY, FAILED) for i in images)
            )

        wait_until(drafted, timeout=60, interval=0.2, what=f"drafts of job {job.pk}")
        assert job.status == Status.SUCCEEDED, job.error_message
        return job

    def test_drafts_ready(self, imagegen_settings, celery_worker, sandbox):
        job = self.run("two lighthouses [sandbox:count=2]", "fr")
        drafts = sorted(job.images.values_list("alt_text_draft", "alt_text_draft_language"))
        assert drafts == [("Image générée (1024×1024) : two lighthouses.", "fr")] * 2
        assert list(job.images.values_list("alt_text", flat=True)) == ["", ""]

    @pytest.mark.parametrize(
        ("marker", "expected"), [("describe-http=503x1", READY), ("describe-http=400", FAILED)]
    )
    def test_failing_describer(self, imagegen_settings, celery_worker, sandbox, marker, expected):
        job = self.run(f"a lighthouse [sandbox:{marker}]")
        image = job.images.get()
        assert image.alt_text_draft_state == expected
        assert bool(image.alt_text_draft) == (expected == READY)

"""The Generate control of declared fields in a model's admin
(imagegen.admin.image_fields), by family:

- permissions: imagegen's add permission (with, without) x the model's
  permissions (none, add, change, add and change) x the form (add, change),
  and a superuser: the control is shown and its dialog answers (GET, and POST
  making jobs) exactly when both permissions are there (add on the add form,
  change on the change form);
- dialog pre-fill (GET) from the form's current values, hostile ones
  included: another placeholder's name, format-spec and attribute tricks,
  markup, control characters, a value of megabytes, parameters the template
  does not read, on the add form and over a saved object's values;
- dialog POST refused with form errors and no job: prompt empty or over the
  limit, candidates 0, 5 or not a number, an unknown resolution or ratio, a
  missing request key, a budget the request would exceed; accepted: one job
  per candidate, source "field", the same dialog posted twice makes them once;
- job partials: a job of another object, another field, another user's
  unsaved (add form) job: 404;
- save with a chosen candidate, for each target kind of tests.content_app
  (ImageField with its alt field, FK to GeneratedImage) on the add and the
  change form: the field is filled (the file copied through upload_to), the
  alt text set, a LogEntry written, an add form's jobs linked; save without
  choosing: the object unchanged; a choice the service refuses (another
  object's job, a job not succeeded, an output it did not make, a malformed
  id): a form error, nothing saved;
- history: a job still running shows "generating…" under the field (on an
  add form: the editor's own unsaved jobs, linked when the form saves); once
  it finished (nobody watching) it shows its status, thumbnail and link.
"""

from __future__ import annotations

import re
import uuid
from html import unescape
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from imagegen.choices import Status
from imagegen.models import GenerationJob
from tests.content_app.models import Article, Profile
from tests.factories import make_image, make_job, make_user, set_budgets

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.field_admin")]

COVER = "imagegen_content_tests.Article.cover"
PORTRAIT = "imagegen_content_tests.Profile.portrait"
TEMPLATE = "Editorial photo: {title}. {summary}"
CONTROL = 'class="imagegen-field"'
POST_DATA = {
    "prompt": "A red bicycle",
    "resolution": "1k",
    "aspect_ratio": "16:9",
    "candidates": "1",
    "idempotency_key": "field:matrix",
}


@pytest.fixture
def declared(settings: Any, imagegen_settings: dict[str, Any]) -> dict[str, Any]:
    settings.IMAGEGEN = {
        **imagegen_settings,
        "IMAGE_FIELDS": {
            COVER: {
                "prompt": TEMPLATE,
                "shape": (1200, 630),
                "candidates": 2,
                "alt_field": "cover_alt",
            },
            PORTRAIT: {"prompt": "Portrait of {name}"},
        },
    }
    return settings.IMAGEGEN


@pytest.fixture
def article(db: Any) -> Article:
    return Article.objects.create(title="Bikes", summary="Red bicycles in the rain.")


@pytest.fixture
def writer(django_user_model: Any) -> Any:
    """Exactly the documented permissions: imagegen's add, and the model's add and change."""
    return make_user(
        django_user_model,
        "imagegen.add_generationjob",
        "imagegen_content_tests.add_article",
        "imagegen_content_tests.change_article",
        "imagegen_content_tests.add_profile",
        "imagegen_content_tests.change_profile",
        username="writer",
    )


def url(model: str, object_id: Any, view: str = "", *args: Any) -> str:
    if not view:
        name = "add" if object_id == "add" else "change"
        return reverse(
            f"content_admin:imagegen_content_tests_{model}_{name}",
            args=[] if object_id == "add" else [object_id],
        )
    return reverse(
        f"content_admin:imagegen_content_tests_{model}_imagegen_{view}", args=[object_id, *args]
    )


def field_job(
    obj: Any,
    user: Any,
    field: str = "cover",
    *,
    status: str = Status.SUCCEEDED,
    images: int = 2,
    **extra: Any,
) -> GenerationJob:
    """A job made for ``obj``'s field (``obj`` a model: an add form's, unlinked)."""
    model = obj if isinstance(obj, type) else type(obj)
    return make_job(
        user,
        status=status,
        images=images,
        target_content_type=ContentType.objects.get_for_model(model),
        target_object_id="" if isinstance(obj, type) else str(obj.pk),
        target_field=field,
        **extra,
    )


def prompt_of(response: Any) -> str:
    found = re.search(
        r'<textarea name="prompt"[^>]*>(.*?)</textarea>', response.content.decode(), re.S
    )
    assert found, response.content.decode()[:2000]
    # Django puts a newline after the opening tag.
    return unescape(found.group(1)).removeprefix("\n")


def change_data(article: Article, **extra: Any) -> dict[str, Any]:
    return {
        "title": article.title,
        "summary": article.summary,
        "cover_alt": article.cover_alt,
        **extra,
    }


class TestPermissions:
    @pytest.mark.parametrize("form", ["add", "change"])
    @pytest.mark.parametrize("model_perms", [(), ("add",), ("change",), ("add", "change")])
    @pytest.mark.parametrize("imagegen_add", [True, False])
    def test_matrix(
        self, client, declared, article, django_user_model, form, model_perms, imagegen_add
    ):
        perms = [f"imagegen_content_tests.{p}_article" for p in model_perms]
        if imagegen_add:
            perms.append("imagegen.add_generationjob")
        client.force_login(make_user(django_user_model, *perms))
        object_id = "add" if form == "add" else article.pk
        allowed = imagegen_add and ("add" if form == "add" else "change") in model_perms

        page = client.get(url("article", object_id))
        dialog = client.get(url("article", object_id, "generate", "cover"))
        posted = client.post(url("article", object_id, "generate", "cover"), POST_DATA)

        assert dialog.status_code == (200 if allowed else 403)
        assert posted.status_code == (200 if allowed else 403)
        assert GenerationJob.objects.exists() is allowed
        if page.status_code == 200:
            assert (CONTROL in page.content.decode()) is allowed
        else:
            assert not allowed and page.status_code in (302, 403)

    @pytest.mark.parametrize("form", ["add", "change"])
    @pytest.mark.parametrize(("model", "field"), [("article", "cover"), ("profile", "portrait")])
    def test_superuser(self, client, declared, article, admin_user, form, model, field):
        client.force_login(admin_user)
        subject = article if model == "article" else Profile.objects.create(name="Ada")
        object_id = "add" if form == "add" else subject.pk
        page = client.get(url(model, object_id)).content.decode()
        # The field's own widget first (a file input, the admin's related select), then the control.
        own = 'type="file" name="cover"' if model == "article" else 'name="portrait"'
        assert page.index(own) < page.index(CONTROL)
        assert f'data-imagegen-field="{field}"' in page
        assert client.get(url(model, object_id, "generate", field)).status_code == 200

    def test_undeclared_field_and_missing_object(self, client, declared, article, writer):
        client.force_login(writer)
        assert client.get(url("article", article.pk, "generate", "attachment")).status_code == 404
        assert client.get(url("article", 999999, "generate", "cover")).status_code == 404


class TestPrefill:
    LIMIT = 20_000

    @pytest.mark.parametrize(
        ("values", "expected"),
        [
            ({"title": "Tulips", "summary": "In spring."}, "Editorial photo: Tulips. In spring."),
            # Another placeholder's name, attribute, index and format tricks stay text.
            ({"title": "{summary}", "summary": "x"}, "Editorial photo: {summary}. x"),
            ({"title": "{title.__class__}{0}"}, "Editorial photo: {title.__class__}{0}."),
            (
                {"title": "{title:>99999}", "summary": "%(x)s %s"},
                "Editorial photo: {title:>99999}. %(x)s %s",
            ),
            ({"title": "<script>alert(1)</script>"}, "Editorial photo: <script>alert(1)</script>."),
            ({"title": "a\nb\tc\x07d\u202ee"}, "Editorial photo: a b c d e."),
            # Parameters the template does not read are not read.
            (
                {"title": "T", "cover_alt": "ALT", "author": "1", "prompt": "mine"},
                "Editorial photo: T.",
            ),
            ({}, "Editorial photo: ."),
        ],
    )
    def test_add_form_values(self, client, declared, writer, values, expected):
        client.force_login(writer)
        response = client.get(url("article", "add", "generate", "cover"), values)
        assert response.status_code == 200
        assert prompt_of(response) == expected
        assert "<script>alert" not in response.content.decode()

    def test_huge_value_is_cut_to_the_limit(self, client, declared, writer):
        client.force_login(writer)
        response = client.get(
            url("article", "add", "generate", "cover"), {"summary": "word " * 1_000_000}
        )
        prompt = prompt_of(response)
        assert len(prompt) <= self.LIMIT and prompt.startswith("Editorial photo: . word word")

    @pytest.mark.parametrize(
        ("values", "expected"),
        [
            ({}, "Editorial photo: Bikes. Red bicycles in the rain."),
            ({"summary": "Blue ones."}, "Editorial photo: Bikes. Blue ones."),
            ({"title": ""}, "Editorial photo: . Red bicycles in the rain."),
        ],
    )
    def test_change_form_values_over_the_object(
        self, client, declared, article, writer, values, expected
    ):
        client.force_login(writer)
        response = client.get(url("article", article.pk, "generate", "cover"), values)
        assert prompt_of(response) == expected
        # The declaration's settings, editable; the price for every candidate.
        form = response.context["form"]
        assert (
            form["resolution"].value(),
            form["aspect_ratio"].value(),
            form["candidates"].value(),
        ) == ("1k", "16:9", 2)
        assert 'id="imagegen-price"' in response.content.decode()
        assert "prices" in response.context["pricing"]


class TestPost:
    def post(self, client: Any, object_id: Any = "add", **fields: Any) -> Any:
        data = {
            "prompt": "A red bicycle",
            "resolution": "1k",
            "aspect_ratio": "16:9",
            "candidates": "2",
            "idempotency_key": f"field:{uuid.uuid4().hex}",
            **fields,
        }
        return client.post(url("article", object_id, "generate", "cover"), data)

    @pytest.mark.parametrize(
        ("fields", "error_field"),
        [
            ({"prompt": ""}, "prompt"),
            ({"prompt": "x" * 20_001}, "prompt"),
            ({"candidates": "0"}, "candidates"),
            ({"candidates": "5"}, "candidates"),
            ({"candidates": "two"}, "candidates"),
            ({"resolution": "8k"}, "resolution"),
            ({"aspect_ratio": "2:1"}, "aspect_ratio"),
            ({"idempotency_key": ""}, "idempotency_key"),
        ],
    )
    def test_refused_with_form_errors(self, client, declared, writer, fields, error_field):
        client.force_login(writer)
        response = self.post(client, **fields)
        assert response.status_code == 400
        assert error_field in response.context["form"].errors
        assert GenerationJob.objects.count() == 0

    def test_budget_is_a_form_error(self, client, declared, writer, settings):
        set_budgets(settings, USER_DAILY="0.03")
        client.force_login(writer)
        response = self.post(client)  # two jobs of 0.02
        assert response.status_code == 400
        assert "budget" in " ".join(response.context["form"].non_field_errors())
        assert GenerationJob.objects.count() == 0

    @pytest.mark.parametrize("form", ["add", "change"])
    def test_makes_one_job_per_candidate_once(self, client, declared, writer, article, form):
        client.force_login(writer)
        object_id = "add" if form == "add" else article.pk
        key = f"field:{uuid.uuid4().hex}"
        first = self.post(client, object_id, idempotency_key=key, candidates="3")
        again = self.post(client, object_id, idempotency_key=key, candidates="3")
        assert first.status_code == again.status_code == 200
        jobs = GenerationJob.objects.all()
        assert jobs.count() == 3
        assert {job.target_field for job in jobs} == {"cover"}
        assert {job.target_object_id for job in jobs} == {"" if form == "add" else str(article.pk)}
        assert {job.idempotency_scope for job in jobs} == {f"field:{writer.pk}"}
        # The dialog lists them, and comes back with a new key.
        assert len(again.context["jobs"]) == 3
        assert again.context["form"]["idempotency_key"].value() != key


class TestJobPartial:
    def test_a_field_s_own_jobs_only(self, client, declared, writer, article, django_user_model):
        client.force_login(writer)
        other_article = Article.objects.create(title="Other")
        other_user = make_user(django_user_model, "imagegen.add_generationjob")
        own = field_job(article, writer)
        unlinked = field_job(Article, writer)
        strangers = [
            field_job(other_article, writer),
            field_job(article, writer, field="banner"),
            field_job(Article, other_user),
        ]
        response = client.get(url("article", article.pk, "job", "cover", own.pk))
        assert response.status_code == 200 and 'data-terminal="true"' in response.content.decode()
        assert response.content.decode().count('imagegen-field-candidate"') == 2
        assert client.get(url("article", "add", "job", "cover", unlinked.pk)).status_code == 200
        for job in strangers:
            for object_id in (article.pk, "add"):
                assert (
                    client.get(url("article", object_id, "job", "cover", job.pk)).status_code == 404
                )


class TestSave:
    @pytest.mark.parametrize("form", ["add", "change"])
    def test_image_field_with_alt_text(self, client, declared, writer, article, form):
        client.force_login(writer)
        subject = Article if form == "add" else article
        job = field_job(subject, writer)
        extra = field_job(subject, writer, status=Status.RUNNING, images=0)
        data = change_data(
            Article(title="Tulips") if form == "add" else article, cover_alt="Two red bikes"
        )
        data.update(
            {
                "_imagegen-cover-job": str(job.pk),
                "_imagegen-cover-index": "1",
                "_imagegen-cover-jobs": f"{job.pk},{extra.pk}",
            }
        )
        object_id = "add" if form == "add" else article.pk
        response = client.post(url("article", object_id), data)
        assert response.status_code == 302, response.context["adminform"].form.errors
        saved = Article.objects.get(title=data["title"])
        assert saved.cover.name.startswith(f"covers/{saved.cover.name.split('/')[1]}/generated-")
        assert saved.cover.read() == job.images.get(index=1).file.open("rb").read()
        assert saved.cover_alt == "Two red bikes"
        # The jobs are the object's now: its history.
        assert {j.pk for j in GenerationJob.objects.filter(target_object_id=str(saved.pk))} == {
            job.pk,
            extra.pk,
        }
        entry = LogEntry.objects.get(object_id=str(saved.pk))
        assert entry.user == writer
        if form == "change":
            assert "Cover" in entry.get_change_message()

    @pytest.mark.parametrize("form", ["add", "change"])
    def test_foreign_key_to_generated_image(self, client, declared, writer, form):
        client.force_login(writer)
        profile = None if form == "add" else Profile.objects.create(name="Ada")
        job = field_job(Profile if profile is None else profile, writer, field="portrait")
        data = {
            "name": "Ada",
            "_imagegen-portrait-job": str(job.pk),
            "_imagegen-portrait-index": "0",
        }
        response = client.post(url("profile", "add" if profile is None else profile.pk), data)
        assert response.status_code == 302
        saved = Profile.objects.get(name="Ada")
        assert saved.portrait == job.images.get(index=0)
        assert GenerationJob.objects.get(pk=job.pk).target_object_id == str(saved.pk)
        assert LogEntry.objects.filter(object_id=str(saved.pk)).exists()

    def test_alt_text_through_hidden_input_when_the_alt_field_is_not_on_the_form(
        self, client, declared, writer, article, monkeypatch
    ):
        from tests.field_admin import ArticleAdmin

        monkeypatch.setattr(ArticleAdmin, "fields", ("title", "summary", "cover"))
        client.force_login(writer)
        job = field_job(article, writer)
        data = {
            "title": "Bikes",
            "summary": article.summary,
            "_imagegen-cover-job": str(job.pk),
            "_imagegen-cover-index": "0",
            "_imagegen-cover-alt": "From the dialog",
        }
        assert client.post(url("article", article.pk), data).status_code == 302
        article.refresh_from_db()
        assert article.cover_alt == "From the dialog" and article.cover

    def test_without_choosing_nothing_changes(self, client, declared, writer, article):
        client.force_login(writer)
        field_job(article, writer)
        response = client.post(url("article", article.pk), change_data(article))
        assert response.status_code == 302
        article.refresh_from_db()
        assert not article.cover and article.cover_alt == ""

    @pytest.mark.parametrize(
        "choice", ["other_object", "running", "no_output", "malformed", "unknown"]
    )
    def test_refused_choice_is_a_form_error(self, client, declared, writer, article, choice):
        client.force_login(writer)
        jobs = {
            "other_object": lambda: str(field_job(Article.objects.create(title="X"), writer).pk),
            "running": lambda: str(field_job(article, writer, status=Status.RUNNING, images=0).pk),
            "no_output": lambda: str(field_job(article, writer, images=1).pk),
            "malformed": lambda: "not-a-uuid",
            "unknown": lambda: str(uuid.uuid4()),
        }
        data = change_data(article, title="Changed")
        data.update({"_imagegen-cover-job": jobs[choice](), "_imagegen-cover-index": "1"})
        response = client.post(url("article", article.pk), data)
        assert response.status_code == 200
        errors = response.context["adminform"].form.errors
        assert errors and set(errors) <= {"cover", "__all__"}
        article.refresh_from_db()
        assert article.title == "Bikes" and not article.cover


class TestHistory:
    def test_job_finishing_after_the_editor_left(self, client, declared, writer, article):
        client.force_login(writer)
        job = field_job(article, writer, status=Status.RUNNING, images=0)
        page = client.get(url("article", article.pk)).content.decode()
        assert f'data-job-id="{job.pk}" data-status="running"' in page
        assert "generating…" in page

        # The job ends with nobody watching.
        GenerationJob.objects.filter(pk=job.pk).update(status=Status.SUCCEEDED)
        image = make_image(job, index=0)
        page = client.get(url("article", article.pk)).content.decode()
        assert f'data-job-id="{job.pk}" data-status="succeeded"' in page
        assert "generating…" not in page
        # The documented writer may not open imagegen's preview view: the stored file.
        assert image.thumbnail_url in page and image.preview_url not in page
        assert reverse("admin:imagegen_generationjob_change", args=[job.pk]) in page
        article.refresh_from_db()
        assert not article.cover

    @pytest.mark.parametrize(
        ("extra", "on_view"),
        [
            ((), False),
            (("imagegen.view_generatedimage",), True),
            (("imagegen.change_generatedimage",), True),
        ],
        ids=["writer", "writer+view", "writer+change"],
    )
    def test_candidates_shown_by_a_url_the_reader_may_open(
        self, client, declared, django_user_model, article, extra, on_view
    ):
        """The family of readers of a field's history: the documented writer
        (no permission on imagegen's images: the stored file's URL), and a
        writer who may also view or change generated images (the preview
        made on first view, which answers them). Each URL shown answers 200."""
        user = make_user(
            django_user_model,
            "imagegen.add_generationjob",
            "imagegen_content_tests.change_article",
            *extra,
            username="reader",
        )
        client.force_login(user)
        job = field_job(article, user, images=1)
        image = job.images.get()
        page = client.get(url("article", article.pk)).content.decode()
        shown = image.preview_url if on_view else image.thumbnail_url
        hidden = image.thumbnail_url if on_view else image.preview_url
        assert shown in page and hidden not in page
        if on_view:
            assert client.get(shown).status_code == 200

    def test_add_form_shows_the_editor_s_own_unsaved_jobs_and_links_them_on_save(
        self, client, declared, writer, django_user_model
    ):
        client.force_login(writer)
        mine = field_job(Article, writer, status=Status.RUNNING, images=0)
        theirs = field_job(Article, make_user(django_user_model, "imagegen.add_generationjob"))
        page = client.get(url("article", "add")).content.decode()
        assert f'data-job-id="{mine.pk}"' in page and "generating…" in page
        assert str(theirs.pk) not in page
        # Saved without opening the dialog: the jobs listed become the object's.
        jobs = re.search(r'name="_imagegen-cover-jobs" value="([^"]*)"', page).group(1)
        response = client.post(
            url("article", "add"), {"title": "New", "_imagegen-cover-jobs": jobs}
        )
        assert response.status_code == 302
        saved = Article.objects.get(title="New")
        assert GenerationJob.objects.get(pk=mine.pk).target_object_id == str(saved.pk)
        assert GenerationJob.objects.get(pk=theirs.pk).target_object_id == ""

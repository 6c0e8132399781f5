"""Jobs made for a model's field (imagegen.services.field_jobs) against the
sandbox over real HTTP, by family:

- plan: the prompt from the object, from a form's values over it, from
  the editor's own text; resolution, ratio (from the shape), candidates and
  price from the declaration and from overrides; undeclared fields, bad
  candidates, an unknown provider and unknown overrides refused;
- create: one job per candidate, in one run, on a change form (saved
  object) and an add form (the model, or an unsaved object); all or none
  (jobs and run) when a budget refuses one; the same idempotency key returns
  the same jobs and makes no second run, a too-long key is refused;
- history: a field's jobs are its own (not another field's, another
  object's), including one that finished with nobody watching;
- retries: a retried field job (change form, add form) keeps its target
  and field;
- add-form links: a user links their own unlinked jobs, never another
  user's, never a job already linked; unsaved objects cannot be linked;
- fill_from_job refuses: another object's job, another field's, another
  model's, another user's add-form job, a job not succeeded, an output it
  did not make; the object is unchanged then.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from imagegen.choices import Status
from imagegen.models import GenerationJob, GenerationRun
from imagegen.services import field_jobs
from tests.content_app.models import Article, Profile
from tests.test_services import run_to_end

pytestmark = [pytest.mark.services, pytest.mark.django_db]

COVER = "imagegen_content_tests.Article.cover"
PORTRAIT = "imagegen_content_tests.Profile.portrait"
TEMPLATE = "Editorial photo: {title}. {summary}"


@pytest.fixture
def declared(settings, imagegen_settings):
    settings.IMAGEGEN = {
        **imagegen_settings,
        "IMAGE_FIELDS": {
            COVER: {
                "prompt": TEMPLATE,
                "shape": (1200, 630),
                "candidates": 2,
                "alt_field": "cover_alt",
            },
            PORTRAIT: {"prompt": "Portrait of {name}", "resolution": "2k"},
        },
    }
    return settings.IMAGEGEN


@pytest.fixture
def article(db):
    return Article.objects.create(title="Bikes", summary="Red bicycles in the rain.")


class TestPlan:
    @pytest.mark.parametrize(
        ("subject", "values", "prompt"),
        [
            ("saved", None, "Editorial photo: Bikes. Red bicycles in the rain."),
            ("saved", {"summary": "Blue ones."}, "Editorial photo: Bikes. Blue ones."),
            ("saved", {"title": None}, "Editorial photo: . Red bicycles in the rain."),
            ("model", None, "Editorial photo: ."),
            ("model", {"title": "New", "summary": "Draft"}, "Editorial photo: New. Draft"),
            ("unsaved", None, "Editorial photo: Unsaved."),
            ("unsaved", {"summary": "from the form"}, "Editorial photo: Unsaved. from the form"),
        ],
    )
    def test_prompt_from_object_and_form_values(self, declared, article, subject, values, prompt):
        target = {"saved": article, "model": Article, "unsaved": Article(title="Unsaved")}[subject]
        plan = field_jobs.plan(target, "cover", values=values)
        assert plan.prompt == prompt
        assert (plan.resolution, plan.aspect_ratio, plan.candidates) == ("1k", "16:9", 2)
        assert plan.unit_price == Decimal("0.02")
        assert plan.price == Decimal("0.04")

    def test_overrides(self, declared, article):
        plan = field_jobs.plan(
            article,
            "cover",
            prompt="My own {title} text",
            resolution="4k",
            aspect_ratio="1:1",
            candidates=4,
        )
        # The editor's text is used as written, never rendered.
        assert plan.prompt == "My own {title} text"
        assert (plan.resolution, plan.aspect_ratio, plan.candidates) == ("4k", "1:1", 4)
        assert plan.price == Decimal("0.08") * 4

    def test_declared_resolution(self, declared):
        plan = field_jobs.plan(Profile(name="Ada"), "portrait")
        assert (plan.prompt, plan.resolution, plan.aspect_ratio, plan.candidates) == (
            "Portrait of Ada",
            "2k",
            "auto",
            1,
        )

    @pytest.mark.parametrize(
        ("field", "overrides", "error"),
        [
            ("summary", {}, ValidationError),
            ("attachment", {}, ValidationError),
            ("cover", {"candidates": 5}, ValidationError),
            ("cover", {"candidates": -1}, ValidationError),
            ("cover", {"candidates": 0}, ValidationError),
            ("cover", {"candidates": True}, ValidationError),
            ("cover", {"candidates": "2"}, ValidationError),
            ("cover", {"provider": "nope"}, ValidationError),
            ("cover", {"quality": "high"}, TypeError),
        ],
    )
    def test_refused(self, declared, article, field, overrides, error):
        with pytest.raises(error):
            field_jobs.plan(article, field, **overrides)

    def test_long_values_are_cut_to_the_provider_limit(self, declared, article, editor):
        from imagegen.providers import get_provider

        limit = get_provider().capabilities.max_prompt_length
        # "Editorial photo: Bikes. x" is 25 characters, then pairs of a letter
        # and its combining accent: the limit falls inside a pair.
        values = {"summary": "x" + "e\u0301" * limit}
        plan = field_jobs.plan(article, "cover", values=values)
        assert len(plan.prompt) == limit - 1
        assert plan.prompt.endswith("e\u0301e\u0301")
        # The provider takes it as it is.
        [job] = field_jobs.create_field_jobs(
            article, "cover", user=editor, values=values, candidates=1
        )
        assert job.prompt == plan.prompt


class TestCreate:
    def test_change_form_jobs_remember_object_and_field(self, declared, article, editor):
        jobs = field_jobs.create_field_jobs(article, "cover", user=editor)
        assert len(jobs) == 2
        run = jobs[0].run
        assert (run.kind, run.created_by, run.target_field) == ("candidates", editor, "cover")
        assert run.target_content_type.model_class() is Article
        assert run.settings["candidates"] == 2
        assert set(run.jobs.all()) == set(jobs)
        for job in jobs:
            assert job.target == article
            assert job.target_field == "cover"
            assert job.created_by == editor
            assert job.prompt == "Editorial photo: Bikes. Red bicycles in the rain."
            assert job.aspect_ratio == "16:9"
        assert list(field_jobs.jobs_for_field(article, "cover")) == sorted(
            jobs, key=lambda job: job.created_at, reverse=True
        )

    @pytest.mark.parametrize("subject", ["model", "unsaved object"])
    def test_add_form_jobs_keep_model_and_field(self, declared, editor, subject):
        target = Article if subject == "model" else Article(title="Draft")
        jobs = field_jobs.create_field_jobs(target, "cover", user=editor, values={"title": "Draft"})
        for job in jobs:
            job.refresh_from_db()
            assert job.target_content_type.model_class() is Article
            assert (job.target_object_id, job.target_field) == ("", "cover")
        assert set(field_jobs.unlinked_jobs(Article, "cover", user=editor)) == set(jobs)

    def test_all_or_none_when_a_budget_refuses_one(self, declared, settings, editor, article):
        # Room for one 0.02 image, not two.
        settings.IMAGEGEN = {**declared, "BUDGETS": {"SITE_MONTHLY": "0.03"}}
        with pytest.raises(ValidationError):
            field_jobs.create_field_jobs(article, "cover", user=editor)
        assert GenerationJob.objects.count() == 0
        assert GenerationRun.objects.count() == 0

    def test_same_key_same_jobs(self, declared, article, editor):
        first = field_jobs.create_field_jobs(article, "cover", user=editor, idempotency_key="k1")
        again = field_jobs.create_field_jobs(article, "cover", user=editor, idempotency_key="k1")
        assert [job.pk for job in again] == [job.pk for job in first]
        assert GenerationJob.objects.count() == 2
        assert GenerationRun.objects.count() == 1

    def test_too_long_key_is_refused(self, declared, article, editor):
        with pytest.raises(ValidationError):
            field_jobs.create_field_jobs(article, "cover", user=editor, idempotency_key="k" * 98)
        assert GenerationJob.objects.count() == 0


class TestHistory:
    def test_a_job_finished_with_nobody_watching_is_in_its_field_history(
        self, declared, article, editor
    ):
        other_article = Article.objects.create(title="Other")
        [portrait_job] = field_jobs.create_field_jobs(
            Profile.objects.create(name="A"), "portrait", user=editor
        )
        mine = field_jobs.create_field_jobs(article, "cover", user=editor, candidates=1)
        field_jobs.create_field_jobs(other_article, "cover", user=editor, candidates=1)
        # The editor left: the job runs to its end on its own.
        run_to_end(mine[0])
        history = list(field_jobs.jobs_for_field(article, "cover"))
        assert history == mine
        assert history[0].status == Status.SUCCEEDED
        assert field_jobs.candidates(history[0])
        assert list(field_jobs.jobs_for_field(article, "attachment")) == []
        assert portrait_job not in field_jobs.jobs_for_field(article, "cover")
        assert list(field_jobs.jobs_for_field(Article(title="unsaved"), "cover")) == []


@pytest.mark.parametrize("subject", ["change form", "add form", "no field"])
def test_a_retry_takes_the_jobs_place_in_the_field_history(declared, article, editor, subject):
    """Family: a failed job of a change form (object and field), of an add
    form (model and field, no object yet) and one made for no field: its
    retry keeps exactly the job's target and field, so the field's history
    (or the add form's unlinked jobs) lists the retry."""
    from imagegen import services

    if subject == "no field":
        job = services.create_job(prompt="A kite", user=editor)
    else:
        target = article if subject == "change form" else Article
        [job] = field_jobs.create_field_jobs(target, "cover", user=editor, candidates=1)
    GenerationJob.objects.filter(pk=job.pk).update(status=Status.FAILED)
    job.refresh_from_db()

    retry, created = services.retry(job, user=editor)

    assert created
    retry.refresh_from_db()
    assert (retry.target_content_type_id, retry.target_object_id, retry.target_field) == (
        job.target_content_type_id,
        job.target_object_id,
        job.target_field,
    )
    if subject == "change form":
        assert retry in field_jobs.jobs_for_field(article, "cover")
    elif subject == "add form":
        assert retry in field_jobs.unlinked_jobs(Article, "cover", user=editor)


class TestLink:
    def test_own_unlinked_jobs_only(self, declared, editor, other):
        mine = field_jobs.create_field_jobs(Article, "cover", user=editor, candidates=1)
        theirs = field_jobs.create_field_jobs(Article, "cover", user=other, candidates=1)
        article = Article.objects.create(title="Saved")
        linked_elsewhere = field_jobs.create_field_jobs(
            Article.objects.create(title="Elsewhere"), "cover", user=editor, candidates=1
        )
        count = field_jobs.link_jobs(
            article, "cover", [*mine, theirs[0].pk, linked_elsewhere[0]], user=editor
        )
        assert count == 1
        assert list(field_jobs.jobs_for_field(article, "cover")) == mine
        assert list(field_jobs.unlinked_jobs(Article, "cover", user=other)) == theirs
        linked_elsewhere[0].refresh_from_db()
        assert linked_elsewhere[0].target_object_id != str(article.pk)
        # Linked once: linking again finds nothing.
        assert field_jobs.link_jobs(article, "cover", mine, user=editor) == 0

    def test_unsaved_object_cannot_be_linked(self, declared, editor):
        with pytest.raises(ValueError, match="saved"):
            field_jobs.link_jobs(Article(title="x"), "cover", [], user=editor)


class TestFillRefused:
    @pytest.fixture
    def done(self, declared, article, editor):
        [job] = field_jobs.create_field_jobs(article, "cover", user=editor, candidates=1)
        return run_to_end(job)

    @pytest.mark.parametrize(
        "case",
        [
            "other object",
            "other field",
            "other model",
            "other user's add form job",
            "add form job on a saved object",
            "not succeeded",
            "no such output",
            "negative output",
        ],
    )
    def test_refused_and_object_unchanged(self, declared, article, editor, other, done, case):
        obj, field, job, index, user = article, "cover", done, 0, editor
        if case == "other object":
            obj = Article.objects.create(title="Other")
        elif case == "other field":
            GenerationJob.objects.filter(pk=job.pk).update(target_field="attachment")
            job.refresh_from_db()
        elif case == "other model":
            obj = Profile.objects.create(name="P")
            field = "portrait"
        elif case in ("other user's add form job", "add form job on a saved object"):
            GenerationJob.objects.filter(pk=job.pk).update(target_object_id="")
            job.refresh_from_db()
            if case == "other user's add form job":
                obj, user = Article(title="new"), other
        elif case == "not succeeded":
            [job] = field_jobs.create_field_jobs(article, "cover", user=editor, candidates=1)
        elif case == "no such output":
            index = 1
        elif case == "negative output":
            index = -1
        before = (
            getattr(obj, field).name if field == "cover" else obj.portrait_id,
            getattr(obj, "cover_alt", None),
        )
        with pytest.raises(ValidationError) as info:
            field_jobs.fill_from_job(obj, field, job, index, alt_text="alt", user=user)
        assert field in info.value.message_dict
        after = (
            getattr(obj, field).name if field == "cover" else obj.portrait_id,
            getattr(obj, "cover_alt", None),
        )
        assert after == before


@pytest.mark.parametrize(
    ("perms", "adding", "allowed"),
    [
        ((), False, False),
        (("imagegen.add_generationjob",), False, False),
        (("imagegen_content_tests.change_article",), False, False),
        (("imagegen.add_generationjob", "imagegen_content_tests.change_article"), False, True),
        (("imagegen.add_generationjob", "imagegen_content_tests.add_article"), False, False),
        (("imagegen.add_generationjob", "imagegen_content_tests.add_article"), True, True),
        (("imagegen.add_generationjob", "imagegen_content_tests.change_article"), True, False),
        (("imagegen.view_generationjob", "imagegen_content_tests.change_article"), False, False),
    ],
)
def test_may_generate(django_user_model, perms, adding, allowed):
    """imagegen's add permission and the model's change permission (add, on an add form)."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("someone", password="pw")
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    user = django_user_model.objects.get(pk=user.pk)
    assert field_jobs.may_generate(user, Article, adding=adding) is allowed
    user.is_active = False
    assert field_jobs.may_generate(user, Article, adding=adding) is False


def test_may_generate_superuser_and_anonymous(django_user_model):
    from django.contrib.auth.models import AnonymousUser

    admin_user = django_user_model.objects.create_superuser("root", password="pw")
    assert field_jobs.may_generate(admin_user, Article)
    assert not field_jobs.may_generate(AnonymousUser(), Article)
    assert not field_jobs.may_generate(None, Article)

"""Bulk fill (services.fill, ``manage.py imagegen fill``, ``POST /api/v1/fills/``).

Families:

- the budget: 50 objects with a budget that covers 30 (the site's monthly
  budget, the user's daily one), through each interface (service, command,
  API): exactly 30 jobs made, the other 20 reported (plan, command output,
  API answer); all-or-none: no job, the 20 reported all the same;
- which objects: ``missing`` (empty fields only) or all, ``limit``, and a
  prompt that renders empty, each reported with its reason;
- the same request key returns the first run and makes nothing more;
- results through a real worker and the sandbox: attached (field filled,
  object saved, a LogEntry naming the field) or, for a field declared
  ``review``, waiting until an editor attaches or discards each one; an
  object that got an image meanwhile keeps it;
- a failed job retried in its run: the run shows the retry;
- refusals: an undeclared field, an unknown model, bad API bodies, a user
  without the model's change permission;
- the admin (the example site's Article admin with BulkFillAdminMixin): the
  action offered only to who may fill (imagegen's add permission and the
  change permission on the model); its confirmation, with and without a
  budget that leaves an object out, makes nothing; confirming twice makes
  one fill; the batch page and its JSON; another user's fill is not found.
"""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from imagegen import services
from imagegen.choices import Status
from imagegen.models import GeneratedImage, GenerationJob, GenerationRun
from imagegen.services import fill
from tests.content_app.models import Article

from .conftest import wait_until
from .factories import make_user, png_bytes

# On every database: the SQLite pass runs them too.
pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

FIELD = "imagegen_content_tests.Article.cover"
EDITOR = (
    "imagegen.add_generationjob",
    "imagegen.view_generationjob",
    "imagegen_content_tests.change_article",
)


@pytest.fixture
def declared(imagegen_settings, settings):
    settings.IMAGEGEN = {
        **settings.IMAGEGEN,
        "IMAGE_FIELDS": {FIELD: {"prompt": "Editorial photo: {title}. {summary}"}},
    }
    return settings


@pytest.fixture
def user(django_user_model):
    return make_user(django_user_model, *EDITOR, username="filler")


def articles(n, **fields):
    return Article.objects.bulk_create(Article(title=f"Article {i}", **fields) for i in range(n))


def run_interface(interface, client, user, **options):
    """Start a fill of every article's cover through ``interface``; return
    (jobs made, ids reported as not covered by the budgets, what was shown)."""
    before = set(GenerationJob.objects.values_list("pk", flat=True))
    if interface == "service":
        try:
            started = fill.start(Article.objects.all(), "cover", user=user, **options)
            shown = {"plan": started.plan.as_dict()}
        except Exception as exc:  # the refusal is the answer here
            shown = {"error": str(exc)}
    elif interface == "command":
        out = io.StringIO()
        argv = ["imagegen", "fill", FIELD, "--user", user.username]
        if options.get("trim") is False:
            argv.append("--all-or-none")
        try:
            call_command(*argv, stdout=out)
            shown = {"output": out.getvalue()}
        except CommandError as exc:
            shown = {"output": out.getvalue(), "error": str(exc)}
    else:
        client.force_login(user)
        body = {"field": FIELD, "all_or_none": options.get("trim") is False}
        response = client.post(reverse("imagegen:api-fills"), body, content_type="application/json")
        shown = {"status": response.status_code, **response.json()}
    made = GenerationJob.objects.exclude(pk__in=before)
    return made, shown


@pytest.mark.parametrize("interface", ["service", "command", "api"])
@pytest.mark.parametrize("budget", ["SITE_MONTHLY", "USER_DAILY"])
def test_a_budget_for_30_of_50_makes_exactly_30_and_reports_20(
    declared, settings, client, user, interface, budget
):
    settings.IMAGEGEN = {**settings.IMAGEGEN, "BUDGETS": {budget: "0.60"}}  # 30 x 0.02
    made = articles(50)

    jobs, shown = run_interface(interface, client, user)

    assert jobs.count() == 30
    assert {job.target_field for job in jobs} == {"cover"}
    covered = sorted(int(job.target_object_id) for job in jobs)
    assert covered == [a.pk for a in made[:30]]
    run = GenerationRun.objects.get()
    assert run.kind == GenerationRun.Kind.FILL and run.jobs.count() == 30
    left_out = [str(a.pk) for a in made[30:]]
    assert run.settings["trimmed"] == left_out
    if interface == "command":
        assert "Bulk fill imagegen_content_tests.Article.cover: 30 jobs" in shown["output"]
        assert "0.60 USD" in shown["output"]
        assert f"Not covered by the budgets: 20 objects ({', '.join(left_out)})" in shown["output"]
        assert "Started run" in shown["output"]
    else:
        plan = shown["plan"]
        assert (plan["jobs"], plan["requested"], plan["price"]) == (30, 50, "0.6000")
        assert plan["trimmed"] == left_out
        assert [b["key"] for b in plan["budgets"]] == [budget]
        assert plan["budgets"][0]["left"] == "0.6000"  # before the fill
    if interface == "api":
        assert shown["status"] == 201 and len(shown["jobs"]) == 30


@pytest.mark.parametrize("interface", ["service", "command", "api"])
def test_all_or_none_makes_nothing_when_the_budget_covers_30_of_50(
    declared, settings, client, user, interface
):
    settings.IMAGEGEN = {**settings.IMAGEGEN, "BUDGETS": {"SITE_MONTHLY": "0.60"}}
    articles(50)

    jobs, shown = run_interface(interface, client, user, trim=False)

    assert jobs.count() == 0 and GenerationRun.objects.count() == 0
    if interface == "api":
        assert shown["status"] == 402
        assert shown["error"]["code"] == "budget_exceeded"
        assert len(shown["error"]["plan"]["trimmed"]) == 20
    else:
        assert "cover 30 of 50 images: 20 objects get none" in shown["error"]


@pytest.mark.parametrize(
    ("missing", "limit", "expected", "reasons"),
    [
        (True, None, ["plain 0", "plain 1", "plain 2"], {"has an image": 2}),
        (False, None, ["plain 0", "plain 1", "plain 2", "with 0", "with 1"], {}),
        (True, 2, ["plain 0", "plain 1"], {"has an image": 2, "past the limit": 1}),
        (False, 4, ["plain 0", "plain 1", "plain 2", "with 0"], {"past the limit": 1}),
    ],
    ids=["missing", "all", "missing-limit", "all-limit"],
)
def test_which_objects_get_a_job(declared, user, missing, limit, expected, reasons):
    for i in range(3):
        Article.objects.create(title=f"plain {i}")
    for i in range(2):
        article = Article(title=f"with {i}")
        article.cover.save(f"c{i}.png", ContentFile(png_bytes()), save=True)

    plan = fill.plan(Article.objects.all(), "cover", user=user, missing=missing, limit=limit)

    assert [a.title for a in plan.objects] == expected
    found: dict[str, int] = {}
    for skipped in plan.skipped:
        found[skipped.reason] = found.get(skipped.reason, 0) + 1
    assert found == reasons
    assert plan.trimmed == [] and plan.price == Decimal("0.02") * len(expected)


def test_an_empty_prompt_is_reported_not_made(imagegen_settings, settings, user):
    settings.IMAGEGEN = {**settings.IMAGEGEN, "IMAGE_FIELDS": {FIELD: {"prompt": "{summary}"}}}
    Article.objects.create(title="no summary")
    Article.objects.create(title="with", summary="A harbour at dawn")

    plan = fill.plan(Article.objects.all(), "cover", user=user)

    assert [a.title for a in plan.objects] == ["with"]
    assert [s.reason for s in plan.skipped] == ["the prompt template renders empty"]


def test_the_same_key_returns_the_first_run(declared, user):
    articles(3)
    first = fill.start(Article.objects.all(), "cover", user=user, key="k-1")
    Article.objects.create(title="later")

    again = fill.start(Article.objects.all(), "cover", user=user, key="k-1")

    assert (again.run.pk, again.created) == (first.run.pk, False)
    assert GenerationJob.objects.count() == 3


def wait_run(run, timeout=60.0):
    def done():
        services.sweep()
        summary = fill.summary(run)
        return summary["total"] and summary["finished"] == summary["total"]

    wait_until(done, timeout=timeout, interval=0.1, what="the fill to finish")


@pytest.mark.pipeline
def test_results_are_attached_with_a_log_entry(declared, celery_worker, sandbox, user):
    made = articles(3)
    started = fill.start(Article.objects.all(), "cover", user=user)

    wait_run(started.run)

    run = GenerationRun.objects.get(pk=started.run.pk)
    wait_until(lambda: len(GenerationRun.objects.get(pk=run.pk).settings["outcomes"]) == 3)
    run.refresh_from_db()
    assert set(run.settings["outcomes"].values()) == {fill.ATTACHED}
    for article in Article.objects.filter(pk__in=[a.pk for a in made]):
        assert article.cover.name.startswith("covers/")  # the field's own upload_to
        assert article.cover.storage.exists(article.cover.name)
        entry = LogEntry.objects.get(object_id=str(article.pk))
        assert (entry.user, entry.get_change_message()) == (user, "Changed cover.")
    assert fill.summary(run)["outcomes"] == {fill.ATTACHED: 3}


@pytest.mark.pipeline
def test_a_reviewed_field_waits_for_the_editor(
    imagegen_settings, settings, celery_worker, sandbox, user
):
    settings.IMAGEGEN = {
        **settings.IMAGEGEN,
        "IMAGE_FIELDS": {FIELD: {"prompt": "Photo: {title}", "review": True}},
    }
    first, second, third = articles(3)
    started = fill.start(Article.objects.all(), "cover", user=user)
    wait_run(started.run)
    run = GenerationRun.objects.get(pk=started.run.pk)
    pending = fill.pending_review(run)
    assert len(pending) == 3
    assert not any(a.cover for a in Article.objects.all())
    by_object = {job.target_object_id: job for job in pending}

    assert fill.attach(by_object[str(first.pk)], user=user) == fill.ATTACHED
    assert fill.discard(by_object[str(second.pk)], user=user) == fill.DISCARDED
    third.cover.save("own.png", ContentFile(png_bytes()), save=True)  # an editor's own
    assert fill.attach(by_object[str(third.pk)], user=user) == fill.KEPT

    first.refresh_from_db(), second.refresh_from_db(), third.refresh_from_db()
    assert first.cover and not second.cover and third.cover.name.endswith("own.png")
    images = GeneratedImage.objects.filter(job__run=run)
    assert images.get(job=by_object[str(second.pk)]).is_discarded
    assert images.get(job=by_object[str(first.pk)]).review_status == "approved"
    run.refresh_from_db()
    assert fill.pending_review(run) == []
    # Deciding twice changes nothing.
    assert fill.discard(by_object[str(first.pk)], user=user) == fill.ATTACHED


@pytest.mark.pipeline
def test_a_failed_job_is_retried_in_its_run(declared, celery_worker, sandbox, user):
    Article.objects.create(title="fine")
    Article.objects.create(title="broken [sandbox:fail=GENERATION_FAILED]")
    started = fill.start(Article.objects.all(), "cover", user=user)
    wait_run(started.run)
    failed = started.run.jobs.get(status=Status.FAILED)

    retried = fill.retry(failed, user=user)

    assert retried.run_id == started.run.pk and retried.retry_of_id == failed.pk
    assert (retried.target_field, retried.target_object_id) == ("cover", failed.target_object_id)
    rows = {row.object_id: row.job.pk for row in fill.rows(started.run)}
    assert rows[failed.target_object_id] == retried.pk


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 400, "field"),
        ({"field": "imagegen_content_tests.Article.title"}, 400, "field"),
        ({"field": "nope.Model.cover"}, 400, "field"),
        ({"field": FIELD, "limit": 0}, 400, "limit"),
        ({"field": FIELD, "ids": []}, 400, "ids"),
        ({"field": FIELD, "missing": "yes"}, 400, "missing"),
        ({"field": FIELD, "extra": 1}, 400, "extra"),
    ],
)
def test_api_refuses_bad_bodies(declared, client, user, body, status, field):
    articles(2)
    client.force_login(user)

    response = client.post(reverse("imagegen:api-fills"), body, content_type="application/json")

    assert response.status_code == status
    assert field in response.json()["error"]["fields"]
    assert GenerationJob.objects.count() == 0


def test_api_needs_the_models_change_permission(declared, client, django_user_model):
    articles(2)
    client.force_login(make_user(django_user_model, "imagegen.add_generationjob"))

    response = client.post(
        reverse("imagegen:api-fills"), {"field": FIELD}, content_type="application/json"
    )

    assert response.status_code == 403 and GenerationJob.objects.count() == 0


def test_api_dry_run_and_progress(declared, client, user):
    articles(4)
    client.force_login(user)
    url = reverse("imagegen:api-fills")

    dry = client.post(url, {"field": FIELD, "dry_run": True}, content_type="application/json")
    assert dry.status_code == 200 and dry.json()["plan"]["jobs"] == 4
    assert GenerationJob.objects.count() == 0

    started = client.post(url, {"field": FIELD, "limit": 3}, content_type="application/json").json()
    progress = client.get(started["url"]).json()
    assert progress["summary"]["total"] == 3 and len(progress["jobs"]) == 3
    assert {job["status"] for job in progress["jobs"]} == {Status.QUEUED}


@pytest.mark.parametrize(
    "field", ["imagegen_content_tests.Article.title", "nope.Article.cover", "x"]
)
def test_the_command_refuses_an_undeclared_field(declared, field):
    with pytest.raises(CommandError):
        call_command("imagegen", "fill", field, stdout=io.StringIO())
    assert GenerationJob.objects.count() == 0


def test_the_command_dry_run_prints_the_plan_only(declared):
    articles(2)
    out = io.StringIO()

    call_command("imagegen", "fill", FIELD, "--dry-run", stdout=out)

    assert (
        "Bulk fill imagegen_content_tests.Article.cover: 2 jobs (sandbox, 1k), 0.04 USD"
        in out.getvalue()
    )
    assert GenerationJob.objects.count() == 0
    assert json.dumps  # the plan's JSON shape is the API's (test_api_dry_run_and_progress)


# The admin action and pages (tests.fill_admin: the example site's Article admin
# with BulkFillAdminMixin) ------------------------------------------------------

ADMIN_PERMISSIONS = (
    "imagegen.add_generationjob",
    "imagegen.view_generationjob",
    "articles.view_article",
    "articles.change_article",
)
CHANGELIST = "/fill-admin/articles/article/"


@pytest.fixture
def site_declared(imagegen_settings, settings):
    settings.IMAGEGEN = {
        **settings.IMAGEGEN,
        "IMAGE_FIELDS": {"articles.Article.cover": {"prompt": "Photo: {title}"}},
    }


def site_articles(n):
    from project.articles.models import Article as SiteArticle

    return [SiteArticle.objects.create(title=f"Site {i}") for i in range(n)]


def action(client, objects, **extra):
    data = {"action": "imagegen_fill", "_selected_action": [str(o.pk) for o in objects], **extra}
    return client.post(CHANGELIST, data)


@pytest.mark.urls("tests.fill_admin")
@pytest.mark.parametrize(
    ("permissions", "offered"),
    [
        (ADMIN_PERMISSIONS, True),
        (tuple(p for p in ADMIN_PERMISSIONS if p != "imagegen.add_generationjob"), False),
        (tuple(p for p in ADMIN_PERMISSIONS if p != "articles.change_article"), False),
    ],
    ids=["editor", "no imagegen add", "no article change"],
)
def test_the_action_is_offered_to_who_may_fill(
    site_declared, client, django_user_model, permissions, offered
):
    site_articles(1)  # the action menu shows with objects only
    client.force_login(make_user(django_user_model, *permissions))

    response = client.get(CHANGELIST)

    assert ("imagegen_fill" in response.content.decode()) is offered


@pytest.mark.urls("tests.fill_admin")
@pytest.mark.parametrize("budget", [None, "0.04"], ids=["no budget", "budget for 2 of 3"])
def test_the_confirmation_then_the_batch_page(
    site_declared, settings, client, django_user_model, budget
):
    if budget:
        settings.IMAGEGEN = {**settings.IMAGEGEN, "BUDGETS": {"SITE_MONTHLY": budget}}
    articles_ = site_articles(3)
    client.force_login(make_user(django_user_model, *ADMIN_PERMISSIONS))
    covered = 2 if budget else 3

    page = action(client, articles_)

    assert page.status_code == 200 and GenerationJob.objects.count() == 0
    assert page.context["plan"].objects == articles_[:covered]
    assert ('id="imagegen-fill-trimmed"' in page.content.decode()) is bool(budget)
    key = page.context["key"]
    started = action(client, articles_, imagegen_confirm="yes", imagegen_key=key)
    assert started.status_code == 302
    run = GenerationRun.objects.get()
    assert run.jobs.count() == covered
    # Posted twice (a double click): the same fill.
    again = action(client, articles_, imagegen_confirm="yes", imagegen_key=key)
    assert again["Location"] == started["Location"] and GenerationJob.objects.count() == covered
    batch = client.get(started["Location"])
    assert batch.status_code == 200
    assert len(batch.context["data"]["rows"]) == covered
    status = client.get(started["Location"] + "status/").json()
    assert status["summary"]["total"] == covered and status["done"] is False


@pytest.mark.urls("tests.fill_admin")
def test_another_users_fill_is_not_found(site_declared, client, django_user_model):
    owner = make_user(django_user_model, *ADMIN_PERMISSIONS)
    articles_ = site_articles(1)
    from project.articles.models import Article as SiteArticle

    run = fill.start(SiteArticle.objects.all(), "cover", user=owner).run
    client.force_login(make_user(django_user_model, *ADMIN_PERMISSIONS))

    for suffix in ("", "status/"):
        response = client.get(f"{CHANGELIST}imagegen-fill/{run.pk}/{suffix}")
        assert response.status_code == 404
    job = run.jobs.get()
    response = client.post(f"{CHANGELIST}imagegen-fill/{run.pk}/jobs/{job.pk}/retry/")
    assert response.status_code == 404 and job.retries.count() == 0
    assert articles_

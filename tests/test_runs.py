"""Runs: candidates, comparisons, their price and budgets, "more like this",
lineage, and the run admin (generate form, grid page, review actions).

Families:

- candidates: every count 1-4 makes that many jobs with the same settings
  (one job: no run); 0, 5, -1 and a non-number are refused with nothing made;
- compare: each setting (resolutions, aspect ratios, prompt wordings) makes
  one job per value; too few, too many, repeated values, an unknown setting
  and a comparison with several candidates are refused with nothing made;
- budget: a run's total exactly at what is left is made; one ten-thousandth
  over makes nothing and names the run's price; two runs started at once
  from two threads on PostgreSQL never spend past the limit; two calls
  with one idempotency key at once make one job or run, both return it;
- more like this: copies every setting, sets source_job on each new job,
  as many candidates as the source's run (or one);
- lineage: every link both ways (made from / made from this: source job,
  retry, references), and jobs the reader may not see left out;
- the admin: the form's outcomes (one job, a run of candidates, a
  comparison, a repeated post, a refusal), the run page, each review action
  with and without its permission, and runs of other users.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import reverse

from imagegen import services
from imagegen.choices import Mode, ReviewStatus, Status
from imagegen.models import GeneratedImage, GenerationJob, GenerationRun
from imagegen.services import runs
from imagegen.services.runs import Comparison

from .conftest import require_postgres
from .factories import EDITOR, make_editor, make_image, make_job, make_user, set_budgets
from .test_races import run_together

# On every database: the SQLite pass runs them too.
pytestmark = [pytest.mark.services, pytest.mark.django_db]

SETTINGS = {
    "prompt": "a lighthouse on a cliff at dusk",
    "mode": Mode.TEXT_TO_IMAGE,
    "resolution": "1k",
    "aspect_ratio": "auto",
    "provider": "sandbox",
}
GENERATE = "admin:imagegen_generationrun_generate"
SHARED = ("prompt", "mode", "resolution", "aspect_ratio", "provider", "model", "reference_urls")


def run_url(run: GenerationRun) -> str:
    return reverse("admin:imagegen_generationrun_change", args=[run.pk])


def job_url(job: GenerationJob) -> str:
    return reverse("admin:imagegen_generationjob_change", args=[job.pk])


def form_data(**overrides: Any) -> dict[str, Any]:
    data = {
        **SETTINGS,
        "reference_urls": "",
        "candidates": "1",
        "compare": "",
        "idempotency_key": f"admin:{uuid.uuid4().hex}",
    }
    data.update(overrides)
    return data


# Candidates ---------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_candidates_make_that_many_jobs_with_the_same_settings(editor, count):
    started = runs.start(dict(SETTINGS), candidates=count, user=editor)
    assert len(started.jobs) == count == GenerationJob.objects.count()
    values = [[getattr(job, name) for name in SHARED] for job in started.jobs]
    assert all(value == values[0] for value in values)
    if count == 1:
        assert started.run is None and started.jobs[0].run_id is None
    else:
        assert started.run.kind == GenerationRun.Kind.CANDIDATES
        assert started.run.created_by == editor
        assert started.run.settings["candidates"] == count
        assert set(started.run.jobs.all()) == set(started.jobs)
    assert all(job.created_by == editor and job.status == Status.QUEUED for job in started.jobs)


@pytest.mark.parametrize("count", [0, 5, -1, "2", True])
def test_candidates_out_of_range_are_refused_and_nothing_is_made(editor, count):
    with pytest.raises(ValidationError) as raised:
        runs.start(dict(SETTINGS), candidates=count, user=editor)
    assert "candidates" in raised.value.error_dict
    assert not GenerationJob.objects.exists() and not GenerationRun.objects.exists()


# Comparisons -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "setting,values,prices",
    [
        ("resolution", ("1k", "2k"), ("0.02", "0.04")),
        ("resolution", ("1k", "2k", "4k"), ("0.02", "0.04", "0.08")),
        ("aspect_ratio", ("1:1", "16:9"), ("0.02", "0.02")),
        ("aspect_ratio", ("1:1", "4:3", "3:4", "16:9"), ("0.02",) * 4),
        ("prompt", ("a lighthouse", "a lighthouse, oil painting"), ("0.02", "0.02")),
        ("prompt", ("a", "b", "c"), ("0.02",) * 3),
    ],
)
def test_compare_makes_one_job_per_value_each_at_its_price(editor, setting, values, prices):
    plan = runs.variations(dict(SETTINGS), compare=Comparison(setting, values))
    assert runs.price(plan) == sum(Decimal(p) for p in prices)
    started = runs.start(dict(SETTINGS), compare=Comparison(setting, values), user=editor)
    assert started.run.kind == GenerationRun.Kind.COMPARE
    assert started.run.settings["compare"] == {"setting": setting, "values": list(values)}
    jobs = sorted(started.jobs, key=lambda job: job.created_at)
    assert [getattr(job, setting) for job in jobs] == list(values)
    assert [job.estimated_cost for job in jobs] == [Decimal(p) for p in prices]
    others = [name for name in ("prompt", "resolution", "aspect_ratio") if name != setting]
    assert all(getattr(job, name) == SETTINGS[name] for job in jobs for name in others)


@pytest.mark.parametrize(
    "comparison,candidates",
    [
        (Comparison("resolution", ("1k",)), 1),  # too few
        (Comparison("resolution", ("1k", "1k")), 1),  # repeated
        (Comparison("aspect_ratio", ("1:1", "4:3", "3:4", "16:9", "9:16")), 1),  # too many
        (Comparison("prompt", ("a", "b", "c", "d")), 1),  # too many
        (Comparison("prompt", ("a", "  ")), 1),  # a blank wording is no wording
        (Comparison("mode", ("text-to-image", "image-to-image")), 1),  # not comparable
        (Comparison("resolution", ("1k", "2k")), 2),  # with candidates
    ],
)
def test_invalid_comparisons_are_refused_and_nothing_is_made(editor, comparison, candidates):
    with pytest.raises(ValidationError) as raised:
        runs.start(dict(SETTINGS), candidates=candidates, compare=comparison, user=editor)
    assert "compare" in raised.value.error_dict
    assert not GenerationJob.objects.exists() and not GenerationRun.objects.exists()


def test_a_value_the_provider_refuses_fails_the_whole_run(editor):
    with pytest.raises(ValidationError) as raised:
        runs.start(dict(SETTINGS), compare=Comparison("resolution", ("1k", "8k")), user=editor)
    assert "resolution" in raised.value.error_dict
    assert not GenerationJob.objects.exists() and not GenerationRun.objects.exists()


# Budgets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "candidates,compare",
    [(3, None), (4, None), (1, Comparison("resolution", ("1k", "2k", "4k")))],
)
@pytest.mark.parametrize("margin,made", [(Decimal(0), True), (Decimal("-0.0001"), False)])
def test_run_exactly_at_the_budget_is_made_just_over_is_not(
    editor, settings, candidates, compare, margin, made
):
    make_job(editor, resolution="2k")  # 0.04 already spent today
    total = runs.price(runs.variations(dict(SETTINGS), candidates=candidates, compare=compare))
    set_budgets(settings, USER_DAILY=str(Decimal("0.04") + total + margin))
    if made:
        started = runs.start(dict(SETTINGS), candidates=candidates, compare=compare, user=editor)
        assert len(started.jobs) == max(candidates, len(compare.values) if compare else 0)
        return
    with pytest.raises(ValidationError) as raised:
        runs.start(dict(SETTINGS), candidates=candidates, compare=compare, user=editor)
    (message,) = raised.value.messages
    assert f"costs {services.budgets.money(total)} USD" in message
    assert "your daily budget" in message and "Nothing was started" in message
    assert GenerationJob.objects.count() == 1 and not GenerationRun.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_never_spend_past_the_budget(django_user_model, settings):
    """Two editors' runs of 3 candidates (0.06 each) against a site budget
    of 0.10: the advisory lock lets exactly one through."""
    require_postgres("advisory locks")
    set_budgets(settings, SITE_MONTHLY="0.10")
    editors = [make_editor(django_user_model) for _ in range(2)]

    def start(user: Any) -> Any:
        try:
            return runs.start(dict(SETTINGS), candidates=3, user=user)
        except ValidationError as exc:
            return exc

    results = run_together([lambda user=user: start(user) for user in editors])
    made = [r for r in results if isinstance(r, runs.Started)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(made) == 1 and len(refused) == 1
    assert GenerationJob.objects.count() == 3 and GenerationRun.objects.count() == 1
    spent = sum(job.estimated_cost for job in GenerationJob.objects.all())
    assert spent <= Decimal("0.10")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("candidates", [1, 3])
def test_one_key_at_once_makes_one_run(django_user_model, monkeypatch, candidates):
    """Two calls with one idempotency key at the same instant (one job, a
    run of 3): one makes it, the other gets that one (created False), and
    nothing else is made."""
    require_postgres("concurrent transactions on one unique key")
    # Only the saving races here: nothing should reach a broker.
    monkeypatch.setattr("imagegen.services.jobs.enqueue", lambda *args, **kwargs: None)
    editor = make_editor(django_user_model)

    def start() -> runs.Started:
        return runs.start(
            dict(SETTINGS),
            candidates=candidates,
            user=editor,
            idempotency_key="same",
            idempotency_source="api",
        )

    results = run_together([start, start])
    assert sorted(started.created for started in results) == [False, True]
    first, second = ({job.pk for job in started.jobs} for started in results)
    assert first == second and len(first) == candidates
    assert len({started.run.pk if started.run else None for started in results}) == 1
    assert GenerationJob.objects.count() == candidates
    assert GenerationRun.objects.count() == int(candidates > 1)


# More like this ---------------------------------------------------------------------------


@pytest.mark.parametrize("run_size,expected", [(None, 1), (2, 2), (4, 4)])
def test_more_like_this_copies_the_settings_and_links_the_source(editor, run_size, expected):
    source_settings = {**SETTINGS, "resolution": "2k", "aspect_ratio": "16:9"}
    if run_size:
        source = runs.start(dict(source_settings), candidates=run_size, user=editor).jobs[0]
    else:
        source = runs.start(dict(source_settings), user=editor).jobs[0]
    started = runs.more_like_this(source, user=editor)
    assert len(started.jobs) == expected
    for job in started.jobs:
        assert job.source_job_id == source.pk
        assert tuple(getattr(job, n) for n in SHARED) == tuple(getattr(source, n) for n in SHARED)
        job.refresh_from_db()
        assert job.source_job_id == source.pk
    assert set(source.derived_jobs.all()) == set(started.jobs)
    if expected > 1:
        assert started.run.settings["source_job"] == str(source.pk)


def test_more_like_this_keeps_the_reference_images(editor):
    reference = make_image(make_job(editor), index=0)
    source = runs.start(
        {**SETTINGS, "mode": Mode.IMAGE_TO_IMAGE, "reference_images": [reference]}, user=editor
    ).jobs[0]
    (job,) = runs.more_like_this(source, user=editor).jobs
    assert list(job.reference_images.all()) == [reference]


# Lineage ---------------------------------------------------------------------------------------


def test_lineage_both_ways(editor):
    failed = make_job(editor, status=Status.FAILED, images=0)
    retry, _made = services.retry(failed, user=editor)
    parent = make_job(editor, images=1)
    (child,) = runs.more_like_this(parent, user=editor).jobs
    reference = parent.images.get()
    user_of_reference = runs.start(
        {**SETTINGS, "mode": Mode.IMAGE_TO_IMAGE, "reference_images": [reference]}, user=editor
    ).jobs[0]

    assert runs.lineage(retry).retry_of == failed
    assert runs.lineage(failed).retries == [retry]
    assert runs.lineage(child).source_job == parent
    assert runs.lineage(parent).derived_jobs == [child]
    assert runs.lineage(user_of_reference).reference_images == [reference]
    assert runs.lineage(parent).used_as_reference_by == [user_of_reference]
    assert runs.lineage(parent).made_from_this and not runs.lineage(parent).made_from
    assert runs.lineage(child).made_from and not runs.lineage(child).made_from_this


def test_lineage_leaves_out_jobs_the_reader_may_not_see(editor, other):
    parent = make_job(other, images=1)
    child = make_job(editor, source_job=parent)
    grandchild = make_job(other, source_job=child)
    seen = runs.lineage(child, services.jobs.GenerationJob.objects.filter(created_by=editor))
    assert seen.source_job is None and seen.derived_jobs == []
    assert not seen.made_from and not seen.made_from_this
    everything = runs.lineage(child)
    assert everything.source_job == parent and everything.derived_jobs == [grandchild]


def test_lineage_tag_links_both_ways(editor):
    parent = make_job(editor, images=1)
    child = make_job(editor, source_job=parent, retry_of=parent)
    request = RequestFactory().get("/")
    request.user = editor
    template = Template("{% load imagegen_lineage %}{% job_lineage job %}")
    down = template.render(Context({"request": request, "job": child}))
    assert "Made from" in down and job_url(parent) in down and "Retry of" in down
    up = template.render(Context({"request": request, "job": parent}))
    assert "Made from this" in up and job_url(child) in up
    alone = template.render(Context({"request": request, "job": make_job(editor)}))
    assert "imagegen-lineage" not in alone


# The admin ---------------------------------------------------------------------------------------


def test_job_page_shows_the_lineage_both_ways(logged_in, editor):
    parent = make_job(editor, images=1)
    (child,) = runs.more_like_this(parent, user=editor).jobs
    down = logged_in.get(job_url(child)).content.decode()
    assert "Made from" in down and job_url(parent) in down
    up = logged_in.get(job_url(parent)).content.decode()
    assert "Made from this" in up and job_url(child) in up


class TestGenerateForm:
    def test_one_candidate_opens_the_job_page(self, logged_in, editor):
        response = logged_in.post(reverse(GENERATE), form_data())
        job = GenerationJob.objects.get()
        assert response.status_code == 302 and response["Location"] == job_url(job)
        assert job.run_id is None and job.created_by == editor

    @pytest.mark.parametrize(
        "overrides,count,kind",
        [
            ({"candidates": "3"}, 3, "candidates"),
            ({"compare": "resolution", "compare_resolutions": ["1k", "4k"]}, 2, "compare"),
            ({"compare": "aspect_ratio", "compare_aspect_ratios": ["1:1", "3:4"]}, 2, "compare"),
            ({"compare": "prompt", "other_prompt_1": "b", "other_prompt_2": "c"}, 3, "compare"),
        ],
    )
    def test_a_run_opens_the_run_page(self, logged_in, editor, overrides, count, kind):
        data = form_data(**overrides)
        response = logged_in.post(reverse(GENERATE), data)
        run = GenerationRun.objects.get()
        assert response.status_code == 302 and response["Location"] == run_url(run)
        assert (run.kind, run.jobs.count()) == (kind, count)
        # The same form posted again finds the run.
        again = logged_in.post(reverse(GENERATE), data)
        assert again["Location"] == run_url(run) and GenerationJob.objects.count() == count

    @pytest.mark.parametrize(
        "overrides,field",
        [
            ({"candidates": "0"}, "candidates"),
            ({"candidates": "5"}, "candidates"),
            ({"compare": "resolution", "compare_resolutions": ["1k"]}, "compare"),
            ({"compare": "prompt"}, "compare"),
            (
                {"compare": "resolution", "compare_resolutions": ["1k", "2k"], "candidates": "2"},
                "compare",
            ),
        ],
    )
    def test_refusals_are_field_errors_and_nothing_is_made(self, logged_in, overrides, field):
        response = logged_in.post(reverse(GENERATE), form_data(**overrides))
        assert response.status_code == 200
        assert response.context["form"].errors[field]
        assert not GenerationJob.objects.exists() and not GenerationRun.objects.exists()

    @pytest.mark.parametrize("candidates", ["1", "2"])
    def test_generate_again_records_the_source_job(self, logged_in, editor, candidates):
        source = make_job(editor)
        logged_in.post(reverse(GENERATE), form_data(source_job=source.pk, candidates=candidates))
        made = GenerationJob.objects.exclude(pk=source.pk)
        assert made.count() == int(candidates)
        assert {job.source_job_id for job in made} == {source.pk}

    def test_another_users_job_is_no_source(self, logged_in, other):
        source = make_job(other)
        response = logged_in.post(reverse(GENERATE), form_data(source_job=source.pk))
        assert response.context["form"].errors["source_job"]
        assert GenerationJob.objects.count() == 1

    def test_over_budget_run_is_a_form_error_with_its_price(self, logged_in, settings):
        set_budgets(settings, USER_DAILY="0.05")
        response = logged_in.post(reverse(GENERATE), form_data(candidates="3"))
        (error,) = response.context["form"].non_field_errors()
        assert "This run of 3 images costs 0.06 USD" in error
        assert not GenerationJob.objects.exists()

    def test_the_form_posts_to_the_run_admin_and_offers_runs(self, logged_in):
        html = logged_in.get(reverse("admin:imagegen_generationjob_add")).content.decode()
        assert f'action="{reverse(GENERATE)}"' in html
        assert 'name="candidates"' in html and 'name="compare"' in html
        assert 'id="imagegen-price-detail"' in html

    def test_without_add_permission_403(self, client, django_user_model):
        client.force_login(make_user(django_user_model, "imagegen.view_generationjob"))
        assert client.post(reverse(GENERATE), form_data()).status_code == 403
        assert not GenerationJob.objects.exists()


def image_url(run: GenerationRun, image: GeneratedImage, action: str) -> str:
    return reverse("admin:imagegen_generationrun_image", args=[run.pk, image.pk, action])


@pytest.fixture
def run_with_images(editor) -> tuple[GenerationRun, list[GeneratedImage]]:
    started = runs.start(dict(SETTINGS), candidates=3, user=editor)
    images = []
    for job in started.jobs:
        GenerationJob.objects.filter(pk=job.pk).update(status=Status.SUCCEEDED)
        images.append(make_image(job))
    return started.run, images


class TestRunPage:
    def test_grid_shows_each_job_with_its_status_url_and_price(self, logged_in, run_with_images):
        run, images = run_with_images
        response = logged_in.get(run_url(run))
        html = response.content.decode()
        assert response.status_code == 200
        for job in run.jobs.all():
            assert reverse("imagegen:job-status", args=[job.pk]) in html
            assert reverse("admin:imagegen_generationrun_more", args=[job.pk]) in html
        assert html.count('data-image-id="') == len(images) + 1  # and the template's
        assert "Price: 0.06 USD" in html and "?run=" in html
        assert "Generate 3 more like this (0.06 USD)" in html

    def test_job_list_filters_by_run(self, logged_in, editor, run_with_images):
        run, _images = run_with_images
        make_job(editor)  # not in the run
        response = logged_in.get(
            reverse("admin:imagegen_generationjob_changelist"), {"run": run.pk}
        )
        assert response.status_code == 200
        assert set(response.context["cl"].result_list) == set(run.jobs.all())

    @pytest.mark.parametrize(
        "action,expected",
        [
            ("approve", [ReviewStatus.APPROVED, ReviewStatus.NEW, ReviewStatus.NEW]),
            ("discard", [ReviewStatus.DISCARDED, ReviewStatus.NEW, ReviewStatus.NEW]),
            ("pick", [ReviewStatus.APPROVED, ReviewStatus.DISCARDED, ReviewStatus.DISCARDED]),
        ],
    )
    def test_review_actions(self, logged_in, run_with_images, action, expected):
        run, images = run_with_images
        response = logged_in.post(image_url(run, images[0], action))
        assert response.status_code == 200
        answered = {item["id"]: item["review_status"] for item in response.json()["images"]}
        for image, status in zip(images, expected, strict=True):
            image.refresh_from_db()
            assert image.review_status == status
            if status != ReviewStatus.NEW:
                assert answered[image.pk] == status
        # Discard (confirmed first) deletes at once; the images Pick discards
        # keep their files for DISCARD_UNDO_SECONDS, like any discard with undo.
        assert all(
            bool(image.file) == (s != ReviewStatus.DISCARDED or action == "pick")
            for image, s in zip(images, expected, strict=True)
        )

    @pytest.mark.parametrize(
        "action,missing",
        [
            ("approve", "imagegen.change_generatedimage"),
            ("discard", "imagegen.delete_generatedimage"),
            ("pick", "imagegen.delete_generatedimage"),
        ],
    )
    def test_review_actions_need_their_permission(
        self, client, django_user_model, editor, run_with_images, action, missing
    ):
        run, images = run_with_images
        # The run's author, without the one permission.
        editor.user_permissions.remove(
            *editor.user_permissions.filter(codename=missing.split(".")[1])
        )
        client.force_login(editor)
        response = client.post(image_url(run, images[0], action))
        assert response.status_code == 403 and missing in response.json()["error"]
        images[0].refresh_from_db()
        assert images[0].review_status == ReviewStatus.NEW

    def test_get_is_refused_and_unknown_action_is_404(self, logged_in, run_with_images):
        run, images = run_with_images
        assert logged_in.get(image_url(run, images[0], "approve")).status_code == 405
        assert logged_in.post(image_url(run, images[0], "delete")).status_code == 404

    def test_another_users_run_is_not_shown(self, client, django_user_model, run_with_images):
        run, images = run_with_images
        client.force_login(make_editor(django_user_model))
        assert client.get(run_url(run)).status_code == 302
        assert client.post(image_url(run, images[0], "approve")).status_code == 404
        listed = client.get(reverse("admin:imagegen_generationrun_changelist"))
        assert run not in listed.context["cl"].result_list
        images[0].refresh_from_db()
        assert images[0].review_status == ReviewStatus.NEW

    def test_more_like_this_opens_the_new_run(self, logged_in, editor, run_with_images):
        run, _images = run_with_images
        source = run.jobs.order_by("created_at").first()
        response = logged_in.post(reverse("admin:imagegen_generationrun_more", args=[source.pk]))
        new = GenerationRun.objects.exclude(pk=run.pk).get()
        assert response["Location"] == run_url(new)
        assert {job.source_job_id for job in new.jobs.all()} == {source.pk}
        assert new.jobs.count() == 3

    def test_run_list_shows_statuses_and_price_in_constant_queries(
        self, logged_in, editor, run_with_images, django_assert_max_num_queries
    ):
        run, _images = run_with_images
        GenerationJob.objects.filter(pk=run.jobs.first().pk).update(status=Status.RUNNING)
        runs.start(dict(SETTINGS), candidates=2, user=editor)
        with django_assert_max_num_queries(12):
            response = logged_in.get(reverse("admin:imagegen_generationrun_changelist"))
        html = response.content.decode()
        assert "2 Succeeded, 1 Running" in html and "2 Queued" in html
        assert "0.06" in html and "0.04" in html

    def test_more_like_this_run_page_links_its_source(self, logged_in, editor, run_with_images):
        run, _images = run_with_images
        source = run.jobs.first()
        new = runs.more_like_this(source, user=editor).run
        html = logged_in.get(run_url(new)).content.decode()
        assert "Made from" in html and job_url(source) in html

    def test_documented_editor_sees_runs(self, client, django_user_model):
        client.force_login(make_user(django_user_model, *EDITOR))
        response = client.get(reverse("admin:index"))
        assert reverse("admin:imagegen_generationrun_changelist") in response.content.decode()

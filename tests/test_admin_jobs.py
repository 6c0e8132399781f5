"""The generation job admin through the test client: the generate form, lists,
the live change page, the status JSON, every action (as a list action and as a
change-page button) and every refusal."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from imagegen import services, tokens
from imagegen.choices import Mode, ReviewStatus, Status
from imagegen.models import GenerationJob
from imagegen.providers import get_provider

from .factories import (
    EDITOR,
    make_editor,
    make_image,
    make_job,
    make_user,
    messages_of,
    run_admin_action,
    set_budgets,
)

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:imagegen_generationjob_changelist"
ADD = "admin:imagegen_generationjob_add"
OTHERS_PERMISSION = "Can see other users' generation jobs"
CANCEL_PERMISSION = "Can cancel other users' generation jobs"


def change_url(job: GenerationJob) -> str:
    return reverse("admin:imagegen_generationjob_change", args=[job.pk])


def action_url(job: Any, action: str) -> str:
    return reverse("admin:imagegen_generationjob_action", args=[job.pk, action])


def form_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "prompt": "a red bicycle against a blue wall",
        "mode": Mode.TEXT_TO_IMAGE,
        "resolution": "1k",
        "aspect_ratio": "auto",
        "reference_urls": "",
        "provider": "sandbox",
        "idempotency_key": f"admin:{uuid.uuid4().hex}",
    }
    data.update(overrides)
    return data


@pytest.fixture(params=["list", "button"])
def act(request: Any, client: Any) -> Any:
    """Run a job action as a list action or as the change page's button."""

    def run(action: str, *jobs: GenerationJob, follow: bool = True) -> Any:
        return run_admin_action(
            client, request.param, reverse(CHANGELIST), action_url, action, jobs, follow=follow
        )

    run.kind = request.param
    return run


# The generate form ----------------------------------------------------------------


class TestGenerateForm:
    def test_get_renders_prices_prompt_limit_and_a_fresh_idempotency_key(self, logged_in):
        response = logged_in.get(reverse(ADD))
        assert response.status_code == 200
        html = response.content.decode()
        script = re.search(
            r'<script id="imagegen-pricing" type="application/json">(.*?)</script>', html, re.S
        )
        assert script, "the price table is not on the page"
        pricing = json.loads(script.group(1))
        assert pricing["currency"] == "USD"
        assert pricing["prices"] == {"sandbox": {"1k": "0.02", "2k": "0.04", "4k": "0.08"}}
        assert pricing["budgets"] == []
        assert 'maxlength="20000"' in html
        key = re.search(r'<input type="hidden" name="idempotency_key" value="([^"]+)"', html)
        assert key and re.fullmatch(r"admin:[0-9a-f]{32}", key.group(1))
        again = logged_in.get(reverse(ADD)).context["form"]["idempotency_key"].value()
        assert again != key.group(1)

    def test_get_shows_the_budgets_left(self, logged_in, editor, settings):
        set_budgets(settings, USER_DAILY="1.00", SITE_MONTHLY=50)
        make_job(editor, resolution="4k")
        pricing = logged_in.get(reverse(ADD)).context["pricing"]
        assert pricing["budgets"] == [
            {
                "label": "your daily budget",
                "left": "0.9200",
                "limit_display": "1.00",
                "left_display": "0.92",
            },
            {
                "label": "the site's monthly budget",
                "left": "49.9200",
                "limit_display": "50.00",
                "left_display": "49.92",
            },
        ]

    def test_valid_post_creates_one_priced_job_and_opens_it(self, logged_in, editor):
        data = form_data(resolution="2k", aspect_ratio="16:9")
        response = logged_in.post(reverse(ADD), data)
        job = GenerationJob.objects.get()
        assert response.status_code == 302
        assert response["Location"] == change_url(job)
        assert job.created_by == editor
        assert job.status == Status.QUEUED
        assert (job.resolution, job.aspect_ratio, job.mode) == ("2k", "16:9", Mode.TEXT_TO_IMAGE)
        assert job.estimated_cost == Decimal("0.04")
        assert job.idempotency_key == data["idempotency_key"]

    def test_same_post_twice_makes_one_job(self, logged_in):
        data = form_data()
        first = logged_in.post(reverse(ADD), data)
        second = logged_in.post(reverse(ADD), data)
        assert GenerationJob.objects.count() == 1
        assert first["Location"] == second["Location"] == change_url(GenerationJob.objects.get())

    @pytest.mark.parametrize(
        ("overrides", "field", "error"),
        [
            ({"mode": Mode.IMAGE_TO_IMAGE}, "reference_urls", "needs at least one reference"),
            ({"prompt": ""}, "prompt", "This field is required."),
            ({"prompt": "x" * 20001}, "prompt", "the limit is 20000"),
            (
                {
                    "mode": Mode.IMAGE_TO_IMAGE,
                    "reference_urls": "\n".join(f"https://example.com/{i}.png" for i in range(17)),
                },
                "reference_urls",
                "At most 16 reference images; 17 given.",
            ),
            (
                {"mode": Mode.IMAGE_TO_IMAGE, "reference_urls": "http://127.0.0.1/x.png"},
                "reference_urls",
                "private or local address",
            ),
            (
                {"mode": Mode.IMAGE_TO_IMAGE, "reference_urls": "http://[::1]:8000/x.png"},
                "reference_urls",
                "private or local address",
            ),
            (
                {"mode": Mode.IMAGE_TO_IMAGE, "reference_urls": "http://localhost/x.png"},
                "reference_urls",
                "private or local address",
            ),
            (
                {"mode": Mode.IMAGE_TO_IMAGE, "reference_urls": "file:///etc/passwd"},
                "reference_urls",
                "Only http and https URLs are allowed",
            ),
            (
                {"reference_urls": "https://example.com/a.png"},
                "reference_urls",
                "Text-to-image takes no reference images.",
            ),
        ],
    )
    def test_invalid_input_rerenders_with_the_field_error(self, logged_in, overrides, field, error):
        response = logged_in.post(reverse(ADD), form_data(**overrides))
        assert response.status_code == 200
        errors = response.context["form"].errors
        assert any(error in message for message in errors[field]), errors
        assert error in response.content.decode().replace("&#x27;", "'")
        assert GenerationJob.objects.count() == 0

    def test_public_reference_url_is_accepted(self, logged_in):
        data = form_data(mode=Mode.IMAGE_TO_IMAGE, reference_urls="https://example.com/hat.png\n")
        assert logged_in.post(reverse(ADD), data).status_code == 302
        assert GenerationJob.objects.get().reference_urls == ["https://example.com/hat.png"]

    def test_another_users_image_is_not_a_valid_reference(self, logged_in, other):
        image = make_image(make_job(other))
        data = form_data(mode=Mode.IMAGE_TO_IMAGE, reference_images=[image.pk])
        response = logged_in.post(reverse(ADD), data)
        assert response.status_code == 200
        assert "reference_images" in response.context["form"].errors
        assert GenerationJob.objects.count() == 1

    @pytest.mark.parametrize("value", ["abc", "1 OR 1=1", "-1"])
    def test_malformed_reference_id_is_a_field_error(self, logged_in, value):
        data = form_data(mode=Mode.IMAGE_TO_IMAGE, reference_images=[value])
        response = logged_in.post(reverse(ADD), data)
        assert response.status_code == 200
        assert "reference_images" in response.context["form"].errors
        assert GenerationJob.objects.count() == 0

    def test_without_add_permission_403(self, client, django_user_model):
        viewer = make_user(django_user_model, "imagegen.view_generationjob")
        client.force_login(viewer)
        assert client.get(reverse(ADD)).status_code == 403
        assert client.post(reverse(ADD), form_data()).status_code == 403
        assert GenerationJob.objects.count() == 0

    def test_anonymous_is_sent_to_login(self, client):
        response = client.get(reverse(ADD))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


# Budgets on the generate form --------------------------------------------------------


class TestBudgetRefusals:
    def test_job_over_the_daily_budget_is_refused_and_nothing_is_created(
        self, logged_in, editor, settings
    ):
        set_budgets(settings, USER_DAILY="0.05")
        make_job(editor, resolution="2k")  # 0.04 spent today
        response = logged_in.post(reverse(ADD), form_data(resolution="2k"))
        assert response.status_code == 200
        errors = response.context["form"].non_field_errors()
        assert len(errors) == 1
        assert "your daily budget" in errors[0]
        assert "0.01" in errors[0]  # what is left
        assert "your daily budget" in response.content.decode()
        assert GenerationJob.objects.count() == 1

    def test_failed_and_never_accepted_jobs_do_not_count(self, logged_in, editor, settings):
        set_budgets(settings, USER_DAILY="0.05")
        make_job(editor, resolution="1k")  # 0.02 counts
        make_job(editor, status=Status.FAILED, resolution="4k")
        make_job(editor, status=Status.FAILED, resolution="4k", provider_task_id="t-failed")
        make_job(editor, status=Status.CANCELED, resolution="4k")
        make_job(editor, status=Status.EXPIRED, resolution="4k")
        response = logged_in.post(reverse(ADD), form_data(resolution="1k"))
        assert response.status_code == 302, response.context["form"].errors
        assert GenerationJob.objects.filter(status=Status.QUEUED).count() == 1

    def test_a_canceled_job_the_provider_had_accepted_counts(self, logged_in, editor, settings):
        set_budgets(settings, USER_DAILY="0.05")
        make_job(editor, status=Status.CANCELED, resolution="2k", provider_task_id="t-1")
        response = logged_in.post(reverse(ADD), form_data(resolution="2k"))
        assert response.status_code == 200
        assert "your daily budget" in response.context["form"].non_field_errors()[0]

    def test_other_users_spend_does_not_count_against_my_budget(self, logged_in, other, settings):
        set_budgets(settings, USER_DAILY="0.05")
        make_job(other, resolution="4k")
        assert logged_in.post(reverse(ADD), form_data(resolution="2k")).status_code == 302

    def test_exceed_budget_passes_user_limits_but_not_the_site_limit(
        self, client, django_user_model, other, settings
    ):
        set_budgets(settings, USER_DAILY="0.01", USER_MONTHLY="0.01", SITE_MONTHLY="0.10")
        boss = make_editor(django_user_model, "imagegen.exceed_budget")
        client.force_login(boss)
        assert client.post(reverse(ADD), form_data(resolution="2k")).status_code == 302
        make_job(other, resolution="4k")  # the site has spent 0.04 + 0.08
        response = client.post(reverse(ADD), form_data(resolution="1k"))
        assert response.status_code == 200
        assert "the site's monthly budget" in response.context["form"].non_field_errors()[0]
        assert GenerationJob.objects.filter(created_by=boss).count() == 1


# Lists ---------------------------------------------------------------------------------


class TestChangelist:
    def test_editor_sees_only_their_own_jobs(self, logged_in, editor, other):
        mine = make_job(editor)
        make_job(other)
        response = logged_in.get(reverse(CHANGELIST))
        assert response.status_code == 200
        assert list(response.context["cl"].result_list) == [mine]

    def test_view_all_jobs_sees_everyones(self, client, django_user_model, editor, other):
        jobs = {make_job(editor), make_job(other)}
        chief = make_editor(django_user_model, "imagegen.view_all_jobs")
        client.force_login(chief)
        assert set(client.get(reverse(CHANGELIST)).context["cl"].result_list) == jobs

    @pytest.mark.parametrize(
        ("fields", "shown"),
        [
            ({"status": Status.SUCCEEDED, "charged_cost": Decimal("0.03")}, "0.03"),
            ({"status": Status.RUNNING}, "0.02"),
            ({"status": Status.FAILED}, "0.00"),
            ({"status": Status.FAILED, "error_code": "CONTENT_VIOLATION"}, "0.00"),
            ({"status": Status.CANCELED}, "0.00"),
            ({"status": Status.CANCELED, "provider_task_id": "task-x"}, "0.02"),
            (
                {
                    "status": Status.FAILED,
                    "error_code": "STORE_FAILED",
                    "provider_completed_at": timezone.now(),
                    "charged_cost": Decimal("0.02"),
                },
                "0.02",
            ),
        ],
    )
    def test_cost_column_shows_what_was_charged(self, logged_in, editor, fields, shown):
        """Family: succeeded (charged), running (its estimate), failed,
        refused by moderation, canceled before and after the provider took
        it, failed after the provider reported success. The column shows
        what budgets count: nothing for a job the provider did not charge."""
        make_job(editor, **fields)
        response = logged_in.get(reverse(CHANGELIST))
        assert len(response.context["cl"].result_list) == 1
        html = response.content.decode()
        cell = html.split('class="field-cost"', 1)[1].split("</td>", 1)[0]
        assert cell.endswith(shown), cell

    def test_cost_report_link_only_with_its_permission(self, client, django_user_model):
        plain = make_editor(django_user_model)
        client.force_login(plain)
        costs = reverse("admin:imagegen_generationjob_costs")
        assert costs not in client.get(reverse(CHANGELIST)).content.decode()
        client.force_login(make_editor(django_user_model, "imagegen.view_cost_report"))
        assert costs in client.get(reverse(CHANGELIST)).content.decode()

    def test_query_count_does_not_grow_with_the_number_of_jobs(
        self, client, django_user_model, editor, other
    ):
        chief = make_editor(django_user_model, "imagegen.view_all_jobs")
        client.force_login(chief)

        def count_queries() -> int:
            with CaptureQueriesContext(connection) as queries:
                response = client.get(reverse(CHANGELIST))
            assert response.status_code == 200
            return len(queries)

        def add_jobs(n: int) -> None:
            for i in range(n):
                make_job(editor if i % 2 else other, images=1 + i % 2, prompt=f"job {i}")

        add_jobs(3)
        few = count_queries()
        add_jobs(27)
        many = count_queries()
        assert GenerationJob.objects.count() == 30
        assert many == few

    def test_list_shows_the_first_kept_image_as_thumbnail(self, logged_in, editor):
        job = make_job(editor)
        discarded = make_image(job, index=0, review_status=ReviewStatus.DISCARDED, file="")
        kept = make_image(job, index=1)
        from imagegen.admin.display import thumbnail

        html = logged_in.get(reverse(CHANGELIST)).content.decode()
        assert thumbnail(kept, size=64) in html
        assert discarded.thumbnail_url == ""

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ({"status__exact": "failed"}, {"a failed attempt"}),
            ({"provider__exact": "apixo"}, {"on apixo"}),
            ({"resolution__exact": "4k"}, {"a big one"}),
            ({"q": "lighthouse"}, {"a lighthouse at dusk"}),
            ({"q": "lighthouse", "status__exact": "failed"}, set()),
        ],
    )
    def test_filters_and_search(self, logged_in, editor, query, expected):
        make_job(editor, prompt="a red bicycle")
        make_job(editor, status=Status.FAILED, prompt="a failed attempt")
        make_job(editor, provider="apixo", prompt="on apixo")
        make_job(editor, resolution="4k", prompt="a big one")
        make_job(editor, prompt="a lighthouse at dusk")
        response = logged_in.get(reverse(CHANGELIST), query)
        assert response.status_code == 200
        assert {job.prompt for job in response.context["cl"].result_list} == expected

    def test_creator_filter_names_only_visible_authors(self, logged_in, editor, other):
        make_job(editor)
        make_job(other)
        response = logged_in.get(reverse(CHANGELIST))
        (creator_filter,) = [
            spec for spec in response.context["cl"].filter_specs if spec.title == "created by"
        ]
        assert [label for _pk, label in creator_filter.lookup_choices] == ["editor"]
        assert "other" not in response.content.decode()

    def test_filter_by_creator(self, client, django_user_model, editor, other):
        chief = make_editor(django_user_model, "imagegen.view_all_jobs")
        client.force_login(chief)
        mine = make_job(editor)
        make_job(other)
        response = client.get(reverse(CHANGELIST), {"created_by__id__exact": editor.pk})
        assert list(response.context["cl"].result_list) == [mine]

    def test_filter_by_creation_date(self, logged_in, editor):
        recent = make_job(editor)
        make_job(editor, created_at=timezone.now() - timedelta(days=40))
        midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
        today = midnight.date()
        # What the "Past 7 days" link of the date filter sends.
        query = {
            "created_at__gte": str(midnight - timedelta(days=7)),
            "created_at__lt": str(midnight + timedelta(days=1)),
        }
        response = logged_in.get(reverse(CHANGELIST), query)
        assert list(response.context["cl"].result_list) == [recent]
        hierarchy = logged_in.get(
            reverse(CHANGELIST),
            {"created_at__year": today.year, "created_at__month": today.month},
        )
        assert recent in hierarchy.context["cl"].result_list


# The change page ---------------------------------------------------------------------


class TestChangePage:
    def test_own_job_shows_progress_and_its_buttons(self, logged_in, editor):
        job = make_job(editor, status=Status.RUNNING, images=0)
        response = logged_in.get(change_url(job))
        assert response.status_code == 200
        html = response.content.decode()
        assert 'id="imagegen-progress"' in html
        assert reverse("admin:imagegen_generationjob_status", args=[job.pk]) in html
        buttons = {b["name"]: b for b in response.context["job_actions"]}
        assert set(buttons) == {
            "cancel_jobs",
            "poll_jobs",
            "retry_jobs",
            "generate_again",
            "use_as_reference",
            "edit_prompt",
        }
        shown = {name for name, b in buttons.items() if b["shown"]}
        assert shown == {"cancel_jobs", "poll_jobs", "generate_again"}
        assert action_url(job, "cancel_jobs") in html

    def test_finished_job_shows_its_images_and_reuse_buttons(self, logged_in, editor):
        job = make_job(editor, images=2)
        response = logged_in.get(change_url(job))
        shown = {b["name"] for b in response.context["job_actions"] if b["shown"]}
        assert shown == {"generate_again", "use_as_reference"}
        html = response.content.decode()
        for image in job.images.all():
            assert image.preview_url in html

    def test_buttons_follow_permissions(self, client, django_user_model):
        adder = make_user(
            django_user_model, "imagegen.add_generationjob", "imagegen.view_generationjob"
        )
        job = make_job(adder, status=Status.RUNNING)
        client.force_login(adder)
        names = {b["name"] for b in client.get(change_url(job)).context["job_actions"]}
        assert "poll_jobs" not in names  # needs change permission
        assert {"cancel_jobs", "retry_jobs", "generate_again"} <= names

        viewer = make_user(
            django_user_model, "imagegen.view_generationjob", "imagegen.view_all_jobs"
        )
        client.force_login(viewer)
        response = client.get(change_url(job))
        assert response.status_code == 200
        assert response.context["job_actions"] == []

    def test_no_cancel_button_on_another_users_job_without_cancel_any(
        self, client, django_user_model, other
    ):
        job = make_job(other, status=Status.QUEUED)
        client.force_login(make_editor(django_user_model, "imagegen.view_all_jobs"))
        names = {b["name"] for b in client.get(change_url(job)).context["job_actions"]}
        assert "cancel_jobs" not in names
        client.force_login(
            make_editor(django_user_model, "imagegen.view_all_jobs", "imagegen.cancel_any_job")
        )
        names = {b["name"] for b in client.get(change_url(job)).context["job_actions"]}
        assert "cancel_jobs" in names

    def test_a_post_to_the_page_never_writes_the_job_back(self, logged_in, editor, monkeypatch):
        from imagegen.admin import GenerationJobAdmin

        job = make_job(editor, status=Status.RUNNING)
        read = GenerationJobAdmin.get_object

        def read_then_a_worker_finishes_the_job(self, request, object_id, from_field=None):
            obj = read(self, request, object_id, from_field)
            if request.method == "POST" and obj is not None:
                services.fail(obj.pk, "X", "the worker got there first", from_statuses=["running"])
            return obj

        monkeypatch.setattr(GenerationJobAdmin, "get_object", read_then_a_worker_finishes_the_job)
        logged_in.post(change_url(job), {"_continue": "Save"})
        job.refresh_from_db()
        assert job.status == Status.FAILED
        assert job.error_message == "the worker got there first"

    @pytest.mark.parametrize("images", [0, 1])
    @pytest.mark.parametrize("who", ["editor", "superuser"])
    def test_no_save_and_no_delete_buttons(self, client, django_user_model, editor, who, images):
        """Family: a job with and without images, seen by its editor and by
        a superuser: every job field is read-only and images are reviewed in
        place, so the page has neither Save buttons nor Delete (a job with
        images cannot be deleted at all)."""
        job = make_job(editor, images=images)
        user = editor
        if who == "superuser":
            user = django_user_model.objects.create_superuser("root", password="x")
        client.force_login(user)
        html = client.get(change_url(job)).content.decode()
        assert 'name="_save"' not in html and 'name="_continue"' not in html
        assert "deletelink" not in html
        delete = reverse("admin:imagegen_generationjob_delete", args=[job.pk])
        if images:
            assert client.post(delete, {"post": "yes"}).status_code == 403
            assert GenerationJob.objects.filter(pk=job.pk).exists()

    def test_another_users_job_redirects_with_a_message(self, logged_in, other):
        job = make_job(other)
        response = logged_in.get(change_url(job), follow=True)
        assert response.redirect_chain == [(reverse(CHANGELIST), 302)]
        assert job not in response.context["cl"].result_list
        (message,) = messages_of(response)
        assert "belongs to another user" in message
        assert OTHERS_PERMISSION in message

    def test_view_all_jobs_opens_another_users_job(self, client, django_user_model, other):
        job = make_job(other)
        client.force_login(make_editor(django_user_model, "imagegen.view_all_jobs"))
        assert client.get(change_url(job)).status_code == 200

    def test_unknown_job(self, logged_in):
        url = reverse("admin:imagegen_generationjob_change", args=[uuid.uuid4()])
        response = logged_in.get(url, follow=True)
        assert response.status_code == 200
        assert any("doesn’t exist" in m for m in messages_of(response))


# Status JSON --------------------------------------------------------------------------


@pytest.fixture(params=["public", "admin"])
def status_url(request: Any) -> Any:
    def url(job_id: Any) -> str:
        if request.param == "public":
            return reverse("imagegen:job-status", args=[job_id])
        return reverse("admin:imagegen_generationjob_status", args=[job_id])

    url.kind = request.param
    return url


class TestStatusJSON:
    def test_own_job(self, logged_in, editor, status_url):
        job = make_job(editor, status=Status.SUCCEEDED, images=2)
        response = logged_in.get(status_url(job.pk))
        assert response.status_code == 200
        assert response["Content-Type"] == "application/json"
        assert "no-cache" in response["Cache-Control"]
        data = response.json()
        assert data["id"] == str(job.pk)
        assert data["status"] == "succeeded"
        assert data["progress"] == 1.0
        low, high = get_provider(job.provider).latency(job.resolution)
        assert data["expected_seconds"] == [low, high]
        assert [image["index"] for image in data["images"]] == [0, 1]
        assert data["images"][0]["url"] == job.images.get(index=0).file.url
        body = response.content.decode()
        job.refresh_from_db()
        assert job.callback_token_hash
        assert job.callback_token_hash not in body
        assert tokens.callback_token(job.pk) not in body
        assert "token" not in body and "hash" not in body

    def test_discarded_images_are_left_out(self, logged_in, editor, status_url):
        job = make_job(editor, images=1)
        make_image(job, index=1, review_status=ReviewStatus.DISCARDED, file="")
        data = logged_in.get(status_url(job.pk)).json()
        assert [image["index"] for image in data["images"]] == [0]

    def test_running_job_progress_is_below_one(self, logged_in, editor, status_url):
        job = make_job(editor, status=Status.RUNNING)
        data = logged_in.get(status_url(job.pk)).json()
        assert data["status"] == "running"
        assert 0 <= data["progress"] < 1

    def test_another_users_job_403(self, logged_in, other, status_url):
        response = logged_in.get(status_url(make_job(other).pk))
        assert response.status_code == 403
        assert "another user" in response.json()["error"]

    def test_view_all_jobs_sees_another_users_job(
        self, client, django_user_model, other, status_url
    ):
        client.force_login(make_editor(django_user_model, "imagegen.view_all_jobs"))
        assert client.get(status_url(make_job(other).pk)).status_code == 200

    def test_without_view_permission_403(self, client, django_user_model, status_url):
        user = make_user(django_user_model, "imagegen.add_generationjob")
        job = make_job(user)
        client.force_login(user)
        response = client.get(status_url(job.pk))
        assert response.status_code == 403
        assert "Can view generation job" in response.json()["error"]

    def test_change_permission_includes_viewing(self, client, django_user_model, status_url):
        # The admin opens the live page with the change permission alone; its
        # status requests must then work too.
        user = make_user(django_user_model, "imagegen.change_generationjob")
        job = make_job(user, status=Status.RUNNING)
        client.force_login(user)
        assert client.get(change_url(job)).status_code == 200
        response = client.get(status_url(job.pk))
        assert response.status_code == 200
        assert response.json()["status"] == "running"

    def test_unknown_job_404(self, logged_in, status_url):
        assert logged_in.get(status_url(uuid.uuid4())).status_code == 404

    def test_post_is_refused(self, logged_in, editor, status_url):
        assert logged_in.post(status_url(make_job(editor).pk)).status_code == 405

    def test_anonymous(self, client, status_url):
        job = make_job(None)
        response = client.get(status_url(job.pk))
        if status_url.kind == "public":
            assert response.status_code == 401
            assert "error" in response.json()
        else:
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("admin:login"))


# Actions: cancel ----------------------------------------------------------------------


class TestCancel:
    def test_own_job_is_canceled(self, logged_in, editor, act):
        job = make_job(editor, status=Status.RUNNING)
        response = act("cancel_jobs", job)
        job.refresh_from_db()
        assert job.status == Status.CANCELED
        assert job.completed_at is not None
        assert "1 job canceled." in messages_of(response)

    def test_twice_is_idempotent(self, logged_in, editor, act):
        job = make_job(editor, status=Status.QUEUED)
        act("cancel_jobs", job)
        job.refresh_from_db()
        completed = job.completed_at
        response = act("cancel_jobs", job)
        job.refresh_from_db()
        assert job.status == Status.CANCELED
        assert job.completed_at == completed
        assert messages_of(response) == ["1 job had already finished; nothing to cancel."]

    @pytest.mark.parametrize("status", [Status.SUCCEEDED, Status.FAILED, Status.EXPIRED])
    def test_finished_job_says_so(self, logged_in, editor, act, status):
        job = make_job(editor, status=status)
        response = act("cancel_jobs", job)
        job.refresh_from_db()
        assert job.status == status
        assert messages_of(response) == ["1 job had already finished; nothing to cancel."]

    def test_another_users_job_is_refused_with_the_permission_name(
        self, client, django_user_model, other, act
    ):
        job = make_job(other, status=Status.RUNNING)
        client.force_login(make_editor(django_user_model, "imagegen.view_all_jobs"))
        response = act("cancel_jobs", job)
        job.refresh_from_db()
        assert job.status == Status.RUNNING
        (message,) = messages_of(response)
        assert CANCEL_PERMISSION in message
        assert message.startswith("1 job belongs to another user")

    def test_cancel_any_job_cancels_another_users_job(self, client, django_user_model, other, act):
        job = make_job(other, status=Status.SUBMITTED)
        client.force_login(
            make_editor(django_user_model, "imagegen.view_all_jobs", "imagegen.cancel_any_job")
        )
        act("cancel_jobs", job)
        job.refresh_from_db()
        assert job.status == Status.CANCELED

    def test_mixed_selection_reports_each_outcome(self, client, django_user_model, other):
        me = make_editor(django_user_model, "imagegen.view_all_jobs")
        mine = make_job(me, status=Status.QUEUED)
        done = make_job(me, status=Status.SUCCEEDED)
        theirs = make_job(other, status=Status.QUEUED)
        client.force_login(me)
        data = {"action": "cancel_jobs", "_selected_action": [mine.pk, done.pk, theirs.pk]}
        response = client.post(reverse(CHANGELIST), data, follow=True)
        shown = messages_of(response)
        assert "1 job canceled." in shown
        assert "1 job had already finished; nothing to cancel." in shown
        assert any(CANCEL_PERMISSION in m for m in shown)
        statuses = dict(GenerationJob.objects.values_list("pk", "status"))
        assert statuses == {mine.pk: "canceled", done.pk: "succeeded", theirs.pk: "queued"}

    def test_a_job_the_user_cannot_see_is_404_on_the_button(self, logged_in, other):
        job = make_job(other, status=Status.QUEUED)
        assert logged_in.post(action_url(job, "cancel_jobs")).status_code == 404
        job.refresh_from_db()
        assert job.status == Status.QUEUED

    def test_without_any_cancel_permission(self, client, django_user_model):
        viewer = make_user(django_user_model, "imagegen.view_generationjob")
        job = make_job(viewer, status=Status.QUEUED)
        client.force_login(viewer)
        assert client.post(action_url(job, "cancel_jobs")).status_code == 403
        response = client.get(reverse(CHANGELIST))
        assert response.status_code == 200
        assert response.context["action_form"] is None  # no action is offered at all
        data = {"action": "cancel_jobs", "_selected_action": [job.pk]}
        client.post(reverse(CHANGELIST), data)
        job.refresh_from_db()
        assert job.status == Status.QUEUED


# Actions: retry -----------------------------------------------------------------------


class TestRetry:
    @pytest.mark.parametrize("status", [Status.FAILED, Status.EXPIRED])
    def test_failed_or_expired_job_gets_a_retry(self, logged_in, editor, act, status):
        job = make_job(editor, status=status, resolution="2k", prompt="try again")
        response = act("retry_jobs", job, follow=False)
        new = GenerationJob.objects.get(retry_of=job)
        assert response.status_code == 302
        assert response["Location"] == change_url(new)
        assert new.status == Status.QUEUED
        assert new.created_by == editor
        assert (new.prompt, new.resolution) == ("try again", "2k")
        assert new.estimated_cost == Decimal("0.04")

    def test_second_retry_returns_the_first(self, logged_in, editor, act):
        job = make_job(editor, status=Status.FAILED)
        act("retry_jobs", job)
        response = act("retry_jobs", job)
        assert GenerationJob.objects.filter(retry_of=job).count() == 1
        retry = GenerationJob.objects.get(retry_of=job)
        (message,) = messages_of(response)
        assert "was already retried" in message
        assert change_url(retry) in message

    def test_queued_job_is_not_retried(self, logged_in, editor, act):
        job = make_job(editor, status=Status.QUEUED)
        response = act("retry_jobs", job)
        assert GenerationJob.objects.count() == 1
        (message,) = messages_of(response)
        assert "Only failed or expired jobs can be retried" in message
        assert [m.level_tag for m in response.context["messages"]] == ["error"]

    def test_retry_over_budget_is_refused(self, logged_in, editor, act, settings):
        set_budgets(settings, USER_DAILY="0.05")
        make_job(editor, resolution="2k")
        job = make_job(editor, status=Status.FAILED, resolution="2k")
        response = act("retry_jobs", job)
        assert not GenerationJob.objects.filter(retry_of=job).exists()
        (message,) = messages_of(response)
        assert "your daily budget" in message

    def test_retry_needs_add_permission(self, client, django_user_model):
        user = make_user(
            django_user_model, "imagegen.view_generationjob", "imagegen.change_generationjob"
        )
        job = make_job(user, status=Status.FAILED)
        client.force_login(user)
        assert client.post(action_url(job, "retry_jobs")).status_code == 403
        client.post(reverse(CHANGELIST), {"action": "retry_jobs", "_selected_action": [job.pk]})
        assert GenerationJob.objects.count() == 1

    def test_several_retries_stay_on_the_list(self, logged_in, editor):
        jobs = [make_job(editor, status=Status.FAILED) for _ in range(2)]
        data = {"action": "retry_jobs", "_selected_action": [job.pk for job in jobs]}
        response = logged_in.post(reverse(CHANGELIST), data, follow=True)
        assert response.redirect_chain[-1][0] == reverse(CHANGELIST)
        assert "2 retries started." in messages_of(response)
        assert GenerationJob.objects.filter(retry_of__in=jobs).count() == 2


# Actions: poll now --------------------------------------------------------------------


class TestPoll:
    def test_submitted_job_is_polled(self, logged_in, editor, act, imagegen_settings, sandbox):
        job = services.create_job(user=editor, prompt="a slow lighthouse [sandbox:latency=30]")
        assert services.submit(job.pk) == "submitted"
        job.refresh_from_db()
        assert job.poll_count == 0
        before = sandbox.stats()
        response = act("poll_jobs", job)
        job.refresh_from_db()
        assert job.poll_count == 1
        assert job.status in (Status.SUBMITTED, Status.RUNNING)
        shown = messages_of(response)
        assert shown in (
            ["1 job has news from the provider."],
            ["1 job is still being generated."],
        )
        assert sandbox.stats() != before

    @pytest.mark.parametrize("status", [Status.SUCCEEDED, Status.CANCELED, Status.QUEUED])
    def test_job_not_waiting_on_the_provider(self, logged_in, editor, act, status):
        job = make_job(editor, status=status)
        response = act("poll_jobs", job)
        job.refresh_from_db()
        assert job.poll_count == 0
        assert messages_of(response) == ["1 job is not waiting on the provider; nothing to ask."]

    def test_provider_down_is_a_warning(self, logged_in, editor, act):
        # The test settings point the sandbox provider at a closed port.
        job = make_job(editor, status=Status.SUBMITTED)
        response = act("poll_jobs", job)
        (message,) = messages_of(response)
        assert "did not answer" in message
        job.refresh_from_db()
        assert job.status == Status.SUBMITTED

    def test_poll_needs_change_permission(self, client, django_user_model):
        user = make_user(
            django_user_model, "imagegen.view_generationjob", "imagegen.add_generationjob"
        )
        job = make_job(user, status=Status.SUBMITTED)
        client.force_login(user)
        assert client.post(action_url(job, "poll_jobs")).status_code == 403
        response = client.get(reverse(CHANGELIST))
        choices = [name for name, _ in response.context["action_form"].fields["action"].choices]
        assert "poll_jobs" not in choices
        assert "cancel_jobs" in choices


# Actions: generate again, use as reference --------------------------------------------


class TestReuse:
    def test_generate_again_opens_a_prefilled_form(self, logged_in, editor, act):
        job = make_job(
            editor,
            status=Status.FAILED,
            prompt="a green kite",
            resolution="4k",
            aspect_ratio="3:4",
            mode=Mode.IMAGE_TO_IMAGE,
            reference_urls=["https://example.com/kite.png"],
        )
        response = act("generate_again", job, follow=False)
        assert response.status_code == 302
        assert response["Location"] == f"{reverse(ADD)}?from={job.pk}"
        form = logged_in.get(response["Location"]).context["form"]
        assert form["prompt"].value() == "a green kite"
        assert form["resolution"].value() == "4k"
        assert form["aspect_ratio"].value() == "3:4"
        assert form["mode"].value() == Mode.IMAGE_TO_IMAGE
        assert form["reference_urls"].value() == "https://example.com/kite.png"
        # The job the form makes records what it was made from (lineage).
        assert str(form["source_job"].value()) == str(job.pk)
        assert GenerationJob.objects.count() == 1

    def test_generate_again_keeps_the_stored_references_that_remain(self, logged_in, editor):
        source = make_job(editor)
        kept = make_image(source, index=0)
        gone = make_image(source, index=1, review_status=ReviewStatus.DISCARDED, file="")
        job = make_job(editor, mode=Mode.IMAGE_TO_IMAGE, prompt="the same, at night")
        job.reference_images.set([kept, gone])
        page = logged_in.get(reverse(ADD), {"from": job.pk})
        form = page.context["form"]
        assert form["mode"].value() == Mode.IMAGE_TO_IMAGE
        assert form["reference_images"].value() == [kept.pk]
        assert re.search(rf'value="{kept.pk}"\s+checked', page.content.decode())

    def test_generate_again_from_another_users_job_is_not_prefilled(self, logged_in, other):
        job = make_job(other, prompt="someone else's secret")
        response = logged_in.get(reverse(ADD), {"from": job.pk})
        assert response.status_code == 200
        assert "someone else" not in response.content.decode()

    def test_generate_again_needs_one_job(self, logged_in, editor):
        jobs = [make_job(editor), make_job(editor)]
        data = {"action": "generate_again", "_selected_action": [j.pk for j in jobs]}
        response = logged_in.post(reverse(CHANGELIST), data, follow=True)
        assert messages_of(response) == ["Select exactly one job to generate again."]

    def test_use_as_reference_opens_image_to_image_with_the_images(self, logged_in, editor, act):
        job = make_job(editor)
        first, second = make_image(job, index=0), make_image(job, index=1)
        make_image(job, index=2, review_status=ReviewStatus.DISCARDED, file="")
        response = act("use_as_reference", job, follow=False)
        assert response.status_code == 302
        assert response["Location"] == (
            f"{reverse(ADD)}?references={first.pk}%2C{second.pk}&from={job.pk}"
        )
        page = logged_in.get(response["Location"])
        form = page.context["form"]
        assert form["mode"].value() == Mode.IMAGE_TO_IMAGE
        # The prompt and aspect ratio are kept.
        assert form["prompt"].value() == job.prompt
        assert form["aspect_ratio"].value() == job.aspect_ratio
        assert sorted(form["reference_images"].value()) == [first.pk, second.pk]
        html = page.content.decode()
        for image in (first, second):
            assert re.search(rf'value="{image.pk}"\s+checked', html)
        data = form_data(
            mode=Mode.IMAGE_TO_IMAGE,
            reference_images=[first.pk, second.pk],
            prompt="the same bicycle, at night",
        )
        assert logged_in.post(reverse(ADD), data).status_code == 302
        new = GenerationJob.objects.exclude(pk=job.pk).get()
        assert set(new.reference_images.all()) == {first, second}

    def test_use_as_reference_without_images_warns(self, logged_in, editor, act):
        job = make_job(editor, status=Status.FAILED)
        response = act("use_as_reference", job)
        assert messages_of(response) == ["The selected jobs have no kept images."]

    def test_reuse_needs_add_permission(self, client, django_user_model):
        user = make_user(
            django_user_model, "imagegen.view_generationjob", "imagegen.change_generationjob"
        )
        job = make_job(user, images=1)
        client.force_login(user)
        for action in ("generate_again", "use_as_reference"):
            assert client.post(action_url(job, action)).status_code == 403


# Action URLs -------------------------------------------------------------------------


class TestActionURLs:
    @pytest.mark.parametrize("action", ["cancel_jobs", "retry_jobs", "poll_jobs"])
    def test_get_is_405(self, logged_in, editor, action):
        job = make_job(editor, status=Status.QUEUED)
        assert logged_in.get(action_url(job, action)).status_code == 405
        job.refresh_from_db()
        assert job.status == Status.QUEUED

    def test_unknown_action_404(self, logged_in, editor):
        job = make_job(editor, status=Status.QUEUED)
        assert logged_in.post(action_url(job, "delete_selected")).status_code == 404
        assert logged_in.post(action_url(job, "nonsense")).status_code == 404

    def test_unknown_job_404(self, logged_in):
        url = reverse("admin:imagegen_generationjob_action", args=[uuid.uuid4(), "cancel_jobs"])
        assert logged_in.post(url).status_code == 404

    def test_anonymous_is_sent_to_login(self, client):
        job = make_job(None, status=Status.QUEUED)
        response = client.post(action_url(job, "cancel_jobs"))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
        job.refresh_from_db()
        assert job.status == Status.QUEUED

    def test_not_staff_is_sent_to_login(self, client, django_user_model):
        user = make_user(django_user_model, *EDITOR, is_staff=False)
        job = make_job(user, status=Status.QUEUED)
        client.force_login(user)
        assert client.post(action_url(job, "cancel_jobs")).status_code == 302
        job.refresh_from_db()
        assert job.status == Status.QUEUED


# Cost report ----------------------------------------------------------------------------


class TestCostReportPage:
    def test_403_without_permission_says_why(self, logged_in):
        response = logged_in.get(reverse("admin:imagegen_generationjob_costs"))
        assert response.status_code == 403
        html = response.content.decode()
        assert "Can see the cost report" in html and "imagegen.view_cost_report" in html
        assert 'id="report-user"' not in html

    @pytest.mark.parametrize(
        ("since", "until", "error"),
        [
            ("2026-03-31", "2026-03-01", "until"),
            ("2026-03-02", "2026-03-01", "until"),
            ("soon", "2026-03-01", "since"),
            ("2026-03-01", "later", "until"),
        ],
    )
    def test_unusable_ranges_are_form_errors(
        self, client, django_user_model, editor, since, until, error
    ):
        """Family: an end before the start (by a month, by a day) and dates
        that are not dates: each is an error on its field, said above the
        form, and the report says it shows all dates instead."""
        make_job(editor)
        client.force_login(make_editor(django_user_model, "imagegen.view_cost_report"))
        response = client.get(
            reverse("admin:imagegen_generationjob_costs"), {"since": since, "until": until}
        )
        assert response.status_code == 200
        assert list(response.context["form"].errors) == [error]
        html = response.content.decode()
        assert "Please correct the dates below." in html
        assert 'id="imagegen-all-dates"' in html

    @pytest.mark.parametrize(("since", "until"), [("2026-03-01", "2026-03-01"), ("", "")])
    def test_a_one_day_or_open_range_is_accepted(self, client, django_user_model, since, until):
        client.force_login(make_editor(django_user_model, "imagegen.view_cost_report"))
        response = client.get(
            reverse("admin:imagegen_generationjob_costs"), {"since": since, "until": until}
        )
        assert not response.context["form"].errors
        assert 'id="imagegen-all-dates"' not in response.content.decode()

    def test_report_with_permission(self, client, django_user_model, editor, other):
        when = timezone.now().replace(year=2026, month=3, day=10, hour=12)
        make_job(editor, resolution="1k", created_at=when)
        make_job(editor, resolution="2k", created_at=when, charged_cost=Decimal("0.05"))
        make_job(other, resolution="4k", created_at=when.replace(month=4))
        make_job(other, status=Status.FAILED, resolution="4k", created_at=when)
        client.force_login(make_editor(django_user_model, "imagegen.view_cost_report"))
        url = reverse("admin:imagegen_generationjob_costs")
        response = client.get(url)
        assert response.status_code == 200
        sections = {s["key"]: s for s in response.context["sections"]}
        users = {row.key: (row.jobs, row.amount) for row in sections["user"]["rows"]}
        assert users == {"editor": (2, Decimal("0.07")), "other": (1, Decimal("0.08"))}
        assert sections["user"]["total"].amount == Decimal("0.15")
        html = response.content.decode()
        assert "0.15" in html and "editor" in html

        march = client.get(url, {"since": "2026-03-01", "until": "2026-03-31"})
        sections = {s["key"]: s for s in march.context["sections"]}
        assert sections["provider"]["total"].amount == Decimal("0.07")
        assert [row.key for row in sections["user"]["rows"]] == ["editor"]

    def test_bad_dates_show_everything_with_the_form_errors(
        self, client, django_user_model, editor
    ):
        make_job(editor)
        client.force_login(make_editor(django_user_model, "imagegen.view_cost_report"))
        response = client.get(reverse("admin:imagegen_generationjob_costs"), {"since": "soon"})
        assert response.status_code == 200
        assert response.context["form"].errors["since"]
        sections = {s["key"]: s for s in response.context["sections"]}
        assert sections["user"]["total"].jobs == 1

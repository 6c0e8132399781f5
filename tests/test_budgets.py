"""The budgets, reports and thumbnails services."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from imagegen import services
from imagegen.choices import Status
from imagegen.exceptions import FetchError
from imagegen.models import GenerationJob
from imagegen.services import budgets, reports

from .factories import (
    make_editor,
    make_job,
    make_user,
    png_bytes,
    set_budgets,
)

# On every database: the SQLite pass runs them too.
pytestmark = [pytest.mark.services, pytest.mark.django_db]

#: A fixed "now" for the period arithmetic: mid-month, mid-day, site time zone UTC.
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def frozen(monkeypatch: Any) -> datetime:
    """``timezone.now()`` is NOW for this test (periods and auto_now_add alike)."""
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return NOW


class TestLimits:
    def test_no_budgets_no_states_and_no_refusal(self, editor):
        assert budgets.limits() == {}
        assert budgets.states(editor) == []
        budgets.check(editor, Decimal("1000"))

    def test_limits_are_exact_decimals(self, settings):
        set_budgets(settings, USER_DAILY=0.1, USER_MONTHLY="2.50", SITE_MONTHLY=None)
        limits = budgets.limits()
        assert limits == {"USER_DAILY": Decimal("0.1"), "USER_MONTHLY": Decimal("2.50")}
        assert all(type(v) is Decimal for v in limits.values())

    def test_period_start(self):
        when = datetime(2026, 3, 15, 12, 34, 56, 789, tzinfo=UTC)
        assert budgets.period_start("USER_DAILY", when) == datetime(2026, 3, 15, tzinfo=UTC)
        assert budgets.period_start("USER_MONTHLY", when) == datetime(2026, 3, 1, tzinfo=UTC)
        assert budgets.period_start("SITE_MONTHLY", when) == datetime(2026, 3, 1, tzinfo=UTC)

    def test_period_start_follows_the_site_time_zone(self, settings):
        settings.TIME_ZONE = "America/New_York"
        when = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)  # still Feb 28 in New York
        start = budgets.period_start("USER_MONTHLY", when)
        assert (start.year, start.month, start.day, start.hour) == (2026, 2, 1, 0)
        assert start.utcoffset() == timedelta(hours=-5)

    def test_money(self):
        assert budgets.money(Decimal("0.02")) == "0.02"
        assert budgets.money(Decimal("0.0200")) == "0.02"
        assert budgets.money(Decimal("0.025")) == "0.0250"
        assert budgets.money(Decimal("12")) == "12.00"


class TestStates:
    def test_figures_per_period(self, settings, frozen, editor, other):
        set_budgets(settings, USER_DAILY="1", USER_MONTHLY="5", SITE_MONTHLY="20")
        make_job(editor, resolution="4k", created_at=NOW - timedelta(hours=2))  # today 0.08
        make_job(editor, resolution="2k", created_at=NOW - timedelta(days=3))  # month 0.04
        make_job(editor, resolution="4k", created_at=NOW - timedelta(days=20))  # February
        make_job(other, resolution="1k", created_at=NOW - timedelta(hours=1))  # site 0.02
        make_job(
            editor, resolution="4k", charged_cost=Decimal("0.5"), created_at=NOW
        )  # charged wins over the estimate
        states = {s.key: s for s in budgets.states(editor)}
        assert list(states) == ["USER_DAILY", "USER_MONTHLY", "SITE_MONTHLY"]
        assert states["USER_DAILY"].spent == Decimal("0.58")
        assert states["USER_DAILY"].left == Decimal("0.42")
        assert states["USER_MONTHLY"].spent == Decimal("0.62")
        assert states["SITE_MONTHLY"].spent == Decimal("0.64")
        assert states["SITE_MONTHLY"].left == Decimal("19.36")
        assert states["USER_DAILY"].label == "your daily budget"
        assert states["SITE_MONTHLY"].label == "the site's monthly budget"
        assert all(type(s.spent) is Decimal and type(s.left) is Decimal for s in states.values())
        # Shown in the form as they are: the costs' four places on every database.
        assert [str(s.left) for s in states.values()] == ["0.4200", "4.3800", "19.3600"]

    def test_left_is_never_negative(self, settings, frozen, editor):
        set_budgets(settings, USER_DAILY="0.01")
        make_job(editor, resolution="4k", created_at=NOW)
        (state,) = budgets.states(editor)
        assert state.spent == Decimal("0.08")
        assert state.left == Decimal("0")

    def test_what_does_not_count(self, settings, frozen, editor):
        set_budgets(settings, USER_DAILY="10")
        make_job(editor, status=Status.FAILED, resolution="4k")
        make_job(editor, status=Status.FAILED, resolution="4k", provider_task_id="t-f")
        make_job(editor, status=Status.CANCELED, resolution="4k")
        make_job(editor, status=Status.EXPIRED, resolution="4k")
        make_job(editor, status=Status.CANCELED, resolution="1k", provider_task_id="t-c")
        make_job(editor, status=Status.EXPIRED, resolution="1k", provider_task_id="t-e")
        make_job(editor, status=Status.QUEUED, resolution="1k")
        make_job(editor, status=Status.RUNNING, resolution="1k")
        (state,) = budgets.states(editor)
        # Canceled and expired after acceptance, queued and running: 4 x 0.02.
        assert state.spent == Decimal("0.08")

    def test_job_without_price_counts_nothing(self, settings, frozen, editor):
        set_budgets(settings, USER_DAILY="1")
        make_job(editor, estimated_cost=None)
        (state,) = budgets.states(editor)
        assert state.spent == Decimal("0")

    def test_exceed_budget_has_only_the_site_limit(self, settings, django_user_model, frozen):
        set_budgets(settings, USER_DAILY="1", USER_MONTHLY="5", SITE_MONTHLY="20")
        boss = make_editor(django_user_model, "imagegen.exceed_budget")
        assert [s.key for s in budgets.states(boss)] == ["SITE_MONTHLY"]
        superuser = django_user_model.objects.create_superuser("root", password="x")
        assert [s.key for s in budgets.states(superuser)] == ["SITE_MONTHLY"]

    def test_anonymous_and_no_user_have_only_the_site_limit(self, settings):
        from django.contrib.auth.models import AnonymousUser

        set_budgets(settings, USER_DAILY="1", SITE_MONTHLY="20")
        assert [s.key for s in budgets.states(None)] == ["SITE_MONTHLY"]
        assert [s.key for s in budgets.states(AnonymousUser())] == ["SITE_MONTHLY"]


class TestCheck:
    def test_exactly_the_limit_is_allowed_one_cent_more_is_not(self, settings, frozen, editor):
        # 0.06 as a float is not 0.02 * 3 in binary; as a Decimal it is.
        set_budgets(settings, USER_DAILY=0.06)
        make_job(editor, resolution="1k", created_at=NOW)
        make_job(editor, resolution="1k", created_at=NOW)
        budgets.check(editor, Decimal("0.02"))
        with pytest.raises(ValidationError) as info:
            budgets.check(editor, Decimal("0.03"))
        (message,) = info.value.messages
        assert info.value.code == "budget_exceeded"
        assert "your daily budget" in message
        assert "0.03 USD" in message and "0.06 USD" in message and "0.02 USD left" in message

    def test_free_job_is_never_refused(self, settings, frozen, editor):
        set_budgets(settings, USER_DAILY="0")
        budgets.check(editor, Decimal("0"))
        budgets.check(editor, None)
        with pytest.raises(ValidationError):
            budgets.check(editor, Decimal("0.01"))

    def test_site_limit_applies_to_exempt_users(self, settings, django_user_model, frozen, other):
        set_budgets(settings, USER_DAILY="0.01", SITE_MONTHLY="0.10")
        boss = make_editor(django_user_model, "imagegen.exceed_budget")
        budgets.check(boss, Decimal("0.08"))  # over the user limit: fine
        make_job(other, resolution="4k", created_at=NOW)
        with pytest.raises(ValidationError) as info:
            budgets.check(boss, Decimal("0.04"))
        assert "the site's monthly budget" in info.value.messages[0]

    def test_create_job_refuses_and_saves_nothing(self, settings, frozen, editor):
        set_budgets(settings, USER_MONTHLY="0.06")
        make_job(editor, resolution="2k", created_at=NOW - timedelta(days=5))
        with pytest.raises(ValidationError) as info:
            services.create_job(prompt="one more", resolution="2k", user=editor)
        assert "your monthly budget" in info.value.messages[0]
        assert GenerationJob.objects.count() == 1
        job = services.create_job(prompt="a small one", resolution="1k", user=editor)
        assert job.estimated_cost == Decimal("0.02")

    def test_budgets_reset_with_the_period(self, settings, frozen, editor):
        set_budgets(settings, USER_DAILY="0.05")
        make_job(editor, resolution="4k", created_at=NOW - timedelta(days=1))
        budgets.check(editor, Decimal("0.05"))


class TestReports:
    @pytest.fixture
    def jobs(self, editor, other, django_user_model):
        march = datetime(2026, 3, 10, 12, tzinfo=UTC)
        april = datetime(2026, 4, 2, 12, tzinfo=UTC)
        make_job(editor, resolution="1k", created_at=march)  # 0.02
        make_job(editor, resolution="2k", created_at=april, charged_cost=Decimal("0.05"))
        make_job(other, resolution="4k", created_at=march)  # 0.08
        make_job(other, resolution="1k", created_at=april)  # 0.02
        make_job(None, resolution="1k", created_at=april)  # an automation: 0.02
        make_job(other, provider="apixo", resolution="2k", created_at=april)  # 0.04
        # Not counted:
        make_job(editor, status=Status.FAILED, resolution="4k", created_at=march)
        make_job(editor, status=Status.CANCELED, resolution="4k", created_at=april)
        make_job(
            other,
            status=Status.CANCELED,
            resolution="4k",
            created_at=april,
            provider_task_id="t-accepted",
        )  # counted: 0.08

    @staticmethod
    def table(rows):
        return {row.key: (row.jobs, row.amount) for row in rows}

    def test_spend_per_group(self, jobs):
        report = reports.spend()
        assert list(report) == ["user", "provider", "resolution", "month"]
        assert self.table(report["user"]) == {
            "other": (4, Decimal("0.22")),
            "editor": (2, Decimal("0.07")),
            None: (1, Decimal("0.02")),
        }
        assert [row.key for row in report["user"]] == ["other", "editor", None]
        assert self.table(report["provider"]) == {
            "sandbox": (6, Decimal("0.27")),
            "apixo": (1, Decimal("0.04")),
        }
        assert self.table(report["resolution"]) == {
            "4k": (2, Decimal("0.16")),
            "2k": (2, Decimal("0.09")),
            "1k": (3, Decimal("0.06")),
        }
        months = [(row.key.year, row.key.month) for row in report["month"]]
        assert months == [(2026, 4), (2026, 3)]
        assert [(r.jobs, r.amount) for r in report["month"]] == [
            (5, Decimal("0.21")),
            (2, Decimal("0.10")),
        ]
        for rows in report.values():
            total = reports.total(rows)
            assert (total.jobs, total.amount) == (7, Decimal("0.31"))

    def test_period(self, jobs):
        march = reports.spend(
            since=datetime(2026, 3, 1, tzinfo=UTC), until=datetime(2026, 4, 1, tzinfo=UTC)
        )
        assert self.table(march["user"]) == {
            "other": (1, Decimal("0.08")),
            "editor": (1, Decimal("0.02")),
        }
        assert len(march["month"]) == 1
        since_april = reports.spend(since=datetime(2026, 4, 1, tzinfo=UTC))
        assert reports.total(since_april["provider"]).amount == Decimal("0.21")

    def test_empty(self):
        report = reports.spend()
        assert all(rows == [] for rows in report.values())
        assert reports.total([]) == reports.Row(None, 0, Decimal(0))

    def test_report_page_dates_are_inclusive(self, client, django_user_model, jobs):
        client.force_login(make_user(django_user_model, "imagegen.view_cost_report"))
        from django.urls import reverse

        url = reverse("admin:imagegen_generationjob_costs")
        response = client.get(url, {"since": "2026-04-02", "until": "2026-04-02"})
        sections = {s["key"]: s for s in response.context["sections"]}
        assert sections["user"]["total"].amount == Decimal("0.21")
        response = client.get(url, {"until": "2026-04-01"})
        sections = {s["key"]: s for s in response.context["sections"]}
        assert sections["user"]["total"].amount == Decimal("0.10")

    def test_charged_not_delivered_is_counted_apart_per_period(
        self, client, django_user_model, jobs, other
    ):
        march, april = datetime(2026, 3, 10, 12, tzinfo=UTC), datetime(2026, 4, 2, 12, tzinfo=UTC)
        for when, resolution, code in ((march, "4k", "BAD_RESULT"), (april, "2k", "STORE_FAILED")):
            make_job(
                other,
                status=Status.FAILED,
                resolution=resolution,
                created_at=when,
                provider_task_id=f"t-{code}",
                provider_completed_at=when,
                error_code=code,
            )
        lost = reports.charged_not_delivered()
        assert (lost.jobs, lost.amount) == (2, Decimal("0.12"))
        assert reports.total(reports.spend()["user"]) == reports.Row(None, 9, Decimal("0.43"))
        april_only = reports.charged_not_delivered(since=datetime(2026, 4, 1, tzinfo=UTC))
        assert (april_only.jobs, april_only.amount) == (1, Decimal("0.04"))
        client.force_login(make_user(django_user_model, "imagegen.view_cost_report"))
        from django.urls import reverse

        url = reverse("admin:imagegen_generationjob_costs")
        response = client.get(url, {"since": "2026-04-01"})
        assert response.context["undelivered"] == april_only
        html = response.content.decode()
        section = html[html.index('id="report-undelivered"') :]
        section = section[: section.index("</table>")]
        assert "Charged, not delivered" in section
        assert '<td class="numeric">1</td><td class="numeric">0.04</td>' in section

    def test_job_list_cost_column_shows_what_was_charged(self, admin_client, editor):
        """Sorted by cost: the provider's failure costs nothing, a job whose
        images were lost after the provider's success costs its charge."""
        import re

        from django.urls import reverse

        make_job(editor, status=Status.FAILED, resolution="4k", error_code="CONTENT_VIOLATION")
        make_job(editor, resolution="1k")
        make_job(
            editor,
            status=Status.FAILED,
            resolution="2k",
            provider_task_id="t-lost",
            provider_completed_at=timezone.now(),
            error_code="BAD_RESULT",
        )
        changelist = reverse("admin:imagegen_generationjob_changelist")
        cost_column = 1 + 4  # list_display position of "cost", counted from 1
        for order, expected in (("", ["0.00", "0.02", "0.04"]), ("-", ["0.04", "0.02", "0.00"])):
            response = admin_client.get(changelist, {"o": f"{order}{cost_column}"})
            html = response.content.decode()
            assert re.findall(r'<td class="field-cost">([^<]*)</td>', html) == expected

    def test_report_page_needs_its_permission(self, client, django_user_model):
        client.force_login(make_user(django_user_model, "imagegen.view_generationjob"))
        from django.urls import reverse

        assert client.get(reverse("admin:imagegen_generationjob_costs")).status_code == 403


# --- What each outcome costs ------------------------------------------------------


def _submitted(prompt: str) -> GenerationJob:
    job = services.create_job(prompt=prompt)
    assert services.submit(job.pk) == "submitted"
    job.refresh_from_db()
    return job


def _provider_finished(job: GenerationJob) -> Any:
    """The provider's final state of the job's task, waited for without telling the job."""
    from imagegen.providers import get_provider

    from .conftest import wait_until

    provider = get_provider(job.provider)
    return wait_until(
        lambda: (state := provider.fetch(job.provider_task_id)).is_terminal and state,
        timeout=15,
        what="the sandbox task to finish",
    )


def _polled(job: GenerationJob) -> GenerationJob:
    from .conftest import wait_until

    def settled() -> bool:
        services.poll(job.pk)
        job.refresh_from_db()
        return job.status not in (Status.SUBMITTED, Status.RUNNING)

    wait_until(settled, timeout=15, what="the provider to finish")
    return job


def _finalized(job: GenerationJob) -> GenerationJob:
    """Run finalize as its task's retries would until the job leaves ``finalizing``."""
    from .conftest import wait_until

    def stored() -> bool:
        # A retryable failure (a download, the storage) ends the attempt; the task would retry.
        with contextlib.suppress(FetchError, OSError):
            services.finalize(job.pk)
        job.refresh_from_db()
        return job.status != Status.FINALIZING

    wait_until(stored, timeout=30, what="finalize to end")
    return job


def _past_deadline(job: GenerationJob) -> GenerationJob:
    GenerationJob.objects.filter(pk=job.pk).update(
        deadline_at=timezone.now() - timedelta(seconds=1)
    )
    assert services.expire(job.pk)
    job.refresh_from_db()
    return job


def _late_result(job: GenerationJob, state: Any) -> GenerationJob:
    """The provider's success callback after the job expired (ACCEPT_LATE_RESULTS)."""
    assert services.apply_update(job.pk, state, source="callback") == "advanced"
    return _finalized(job)


def _sandbox_task(sandbox: Any) -> str:
    (task_id,) = sandbox.stats()["tasks"]
    return task_id


def _answer_lost_then(sandbox: Any, prompt: str, settings: Any) -> GenerationJob:
    """A submission whose answer was lost, then its task's own report (a callback)."""
    from imagegen.providers import get_provider

    from .conftest import wait_until

    settings.IMAGEGEN = {**settings.IMAGEGEN, "SUBMIT_MAX_ATTEMPTS": 2}
    job = services.create_job(prompt=f"{prompt} [sandbox:submit-hangup]")
    assert services.submit(job.pk) == "uncertain"
    provider = get_provider(job.provider)
    task_id = _sandbox_task(sandbox)
    state = wait_until(
        lambda: (s := provider.fetch(task_id)).is_terminal and s, timeout=15, what="the task"
    )
    assert services.apply_update(job.pk, state, source="callback") == "advanced"
    job.refresh_from_db()
    return _finalized(job) if job.status == Status.FINALIZING else job


def _storage_fails(monkeypatch: Any) -> None:
    import importlib

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    # The module: the package's ``finalize`` is the function of that name.
    module = importlib.import_module("imagegen.services.finalize")
    monkeypatch.setattr(module, "save_file", refuse)


#: name: (how the job gets there, status, error code, paid tasks counted,
#: charged but not delivered). Every terminal status, and every origin of
#: a failure: the provider's (refusals, moderation, a forgotten task) or
#: ours after the provider's success (download, verification, storage,
#: images lost), expiry and cancelation before and after the provider took
#: the job or finished it, submissions whose answers were lost.
OUTCOMES: dict[str, tuple[Any, str, str, int, bool]] = {
    "succeeded": (lambda t: _finalized(_polled(_submitted("ok"))), "succeeded", "", 1, False),
    "provider-failure": (
        lambda t: _polled(_submitted("x [sandbox:fail=INTERNAL_ERROR]")),
        "failed",
        "INTERNAL_ERROR",
        0,
        False,
    ),
    "moderation": (
        lambda t: _polled(_submitted("x [sandbox:fail=CONTENT_VIOLATION]")),
        "failed",
        "CONTENT_VIOLATION",
        0,
        False,
    ),
    "provider-forgot-task": (
        lambda t: _polled(_submitted("x [sandbox:forget]")),
        "failed",
        "",
        0,
        False,
    ),
    "download-refused-404": (
        lambda t: _finalized(_polled(_submitted("x [sandbox:download=404]"))),
        "failed",
        "BAD_RESULT",
        1,
        True,
    ),
    "download-timed-out": (
        lambda t: _finalized(_polled(_submitted("x [sandbox:download=slow]"))),
        "failed",
        "STORE_FAILED",
        1,
        True,
    ),
    "verification-failed": (
        lambda t: _finalized(_polled(_submitted("x [sandbox:download=html]"))),
        "failed",
        "BAD_RESULT",
        1,
        True,
    ),
    "storage-failed": (
        lambda t: (_storage_fails(t.monkeypatch), _finalized(_polled(_submitted("x"))))[1],
        "failed",
        "STORE_FAILED",
        1,
        True,
    ),
    "images-lost": (
        lambda t: _images_lost(_submitted("x")),
        "failed",
        "RESULTS_LOST",
        1,
        True,
    ),
    "expired-before-accepted": (
        lambda t: _past_deadline(services.create_job(prompt="x")),
        "expired",
        "EXPIRED",
        0,
        False,
    ),
    "expired-while-running": (
        lambda t: _past_deadline(_submitted("x [sandbox:latency=30]")),
        "expired",
        "EXPIRED",
        1,
        False,
    ),
    "expired-after-provider-finished": (
        lambda t: _past_deadline((job := _submitted("x"), _provider_finished(job))[0]),
        "expired",
        "EXPIRED",
        1,
        False,
    ),
    "expired-late-result-stored": (
        lambda t: _late_result(_past_deadline(job := _submitted("x")), _provider_finished(job)),
        "succeeded",
        "",
        1,
        False,
    ),
    "expired-late-result-unusable": (
        lambda t: _late_result(
            _past_deadline(job := _submitted("x [sandbox:download=html]")),
            _provider_finished(job),
        ),
        "failed",
        "BAD_RESULT",
        1,
        True,
    ),
    "canceled-before-submit": (
        lambda t: (job := services.create_job(prompt="x"), services.cancel(job.pk))[0],
        "canceled",
        "",
        0,
        False,
    ),
    "canceled-after-submit": (
        lambda t: (job := _submitted("x [sandbox:latency=30]"), services.cancel(job.pk))[0],
        "canceled",
        "",
        1,
        False,
    ),
    "answers-lost": (
        lambda t: _answers_lost(t.settings),
        "failed",
        "SUBMIT_ANSWERS_LOST",
        1,
        False,
    ),
    "answer-lost-task-failed": (
        lambda t: _answer_lost_then(t.sandbox, "x [sandbox:fail=INTERNAL_ERROR]", t.settings),
        "failed",
        "INTERNAL_ERROR",
        0,
        False,
    ),
    "answer-lost-task-succeeded": (
        lambda t: _answer_lost_then(t.sandbox, "x", t.settings),
        "succeeded",
        "",
        1,
        False,
    ),
}


def _images_lost(job: GenerationJob) -> GenerationJob:
    """A synchronous answer's images, held only by the worker that died before storing them."""
    from imagegen.providers import Output, TaskState

    state = TaskState(
        task_id=job.provider_task_id,
        status="success",
        outputs=(Output(data=png_bytes()),),
    )
    assert services.apply_update(job.pk, state, source="submit") == "advanced"
    return _finalized(job)


def _answers_lost(settings: Any) -> GenerationJob:
    settings.IMAGEGEN = {**settings.IMAGEGEN, "SUBMIT_MAX_ATTEMPTS": 1}
    job = services.create_job(prompt="x [sandbox:submit-hangup]")
    assert services.submit(job.pk) == "failed"
    job.refresh_from_db()
    return job


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_what_each_outcome_costs(
    outcome, imagegen_settings, settings, sandbox, monkeypatch, rf, django_user_model
):
    """Every outcome in OUTCOMES, reached through the real services against
    the sandbox: budgets count what the provider charged (a success it
    reported, whatever became of the images; a task it may have run), never
    what it reported failed; the cost report shows the same total and the
    jobs charged but not delivered apart; the job list's cost column says
    what the job cost."""
    from django.contrib import admin

    from imagegen.admin.jobs import GenerationJobAdmin

    settings.IMAGEGEN = {
        **imagegen_settings,
        "DOWNLOAD_TIMEOUT": 1,
        "FINALIZE_MAX_ATTEMPTS": 1,
        "ACCEPT_LATE_RESULTS": True,
        "BUDGETS": {"SITE_MONTHLY": "100"},
    }
    drive, status, code, tasks, undelivered = OUTCOMES[outcome]
    job = drive(SimpleNamespace(settings=settings, sandbox=sandbox, monkeypatch=monkeypatch))
    job.refresh_from_db()
    assert (job.status, job.error_code if code else "") == (status, code), job.error_message
    spent = job.estimated_cost * tasks
    (site,) = budgets.states(None)
    assert site.spent == spent
    assert reports.total(reports.spend()["provider"]).amount == spent
    lost = reports.charged_not_delivered()
    assert (lost.jobs, lost.amount) == ((1, spent) if undelivered else (0, Decimal(0)))
    request = rf.get("/")
    request.user = django_user_model.objects.create_superuser("root", password="x")
    model_admin = GenerationJobAdmin(GenerationJob, admin.site)
    assert model_admin.cost(model_admin.get_queryset(request).get(pk=job.pk)) == budgets.money(
        spent
    )

"""The polling schedule: polls spread over the latency range without callbacks,
none before the range ends with them, and the switch between the two read
from how recent jobs ended."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from imagegen import scheduling, services
from imagegen.choices import Source, Status, TaskStatus
from imagegen.providers import Output, TaskState
from imagegen.services.callback_health import SAMPLE, callbacks_arriving

from .conftest import TEST_LATENCY
from .factories import make_job

DEFAULTS = {"POLL_BUDGET": 6, "POLL_GROWTH": 0.2, "POLL_MIN_INTERVAL": 2.0}


@pytest.fixture
def schedule_settings(settings):
    settings.IMAGEGEN = {**DEFAULTS, "POLL_MAX_INTERVAL": 30.0}
    return settings.IMAGEGEN


class TestWindow:
    def test_wide_range_spends_the_budget_at_its_top(self, schedule_settings):
        polls = scheduling.window_polls((30.0, 120.0))
        assert len(polls) == 6
        assert polls[-1] == pytest.approx(120.0)
        ratios = [later / earlier for earlier, later in itertools.pairwise(polls)]
        assert ratios == pytest.approx([1.2] * 5)
        assert polls[0] > 30.0

    def test_narrow_range_is_covered_whole_and_more_densely(self, schedule_settings):
        polls = scheduling.window_polls((120.0, 240.0))
        assert polls[0] == pytest.approx(120.0)
        assert polls[-1] == pytest.approx(240.0)
        assert all(later / earlier < 1.2 for earlier, later in itertools.pairwise(polls))

    def test_budget_zero_means_no_window_polls(self, settings):
        settings.IMAGEGEN = {**DEFAULTS, "POLL_BUDGET": 0}
        assert scheduling.window_polls((30.0, 120.0)) == []
        assert scheduling.first_poll_delay((30.0, 120.0), callbacks=False) == 2.0

    def test_every_job_in_the_range_costs_at_most_the_budget(self, schedule_settings):
        latency = (30.0, 120.0)
        for finish in range(30, 121, 3):
            waited, polls = scheduling.first_poll_delay(latency, callbacks=False), 1
            while waited < finish:
                waited += scheduling.next_poll_delay(latency, waited)
                polls += 1
            assert polls <= 6, finish

    def test_with_callbacks_the_first_poll_waits_past_the_range(self, schedule_settings):
        assert scheduling.first_poll_delay((30.0, 120.0), callbacks=True) == pytest.approx(150.0)

    def test_past_the_range_intervals_grow_with_the_wait_within_bounds(self, schedule_settings):
        latency = (30.0, 120.0)
        assert scheduling.next_poll_delay(latency, 125.0) == pytest.approx(25.0)
        assert scheduling.next_poll_delay(latency, 500.0) == 30.0

    def test_a_window_poll_closer_than_the_floor_is_skipped(self, schedule_settings):
        polls = scheduling.window_polls((30.0, 120.0))
        waited = polls[2] - 1.0
        assert scheduling.next_poll_delay((30.0, 120.0), waited) == pytest.approx(polls[3] - waited)


def _finished(provider: str, via: str, minutes_ago: float = 1.0) -> None:
    job = make_job(status=Status.SUCCEEDED)
    type(job).objects.filter(pk=job.pk).update(
        provider=provider,
        completed_via=via,
        provider_completed_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


@pytest.mark.django_db
class TestCallbackHealth:
    def test_no_history_is_no_proof_that_callbacks_work(self):
        assert not callbacks_arriving("sandbox")

    def test_recent_callbacks_are(self):
        _finished("sandbox", Source.CALLBACK)
        assert callbacks_arriving("sandbox")

    def test_mostly_polled_recent_jobs_mean_callbacks_are_missing(self):
        for _ in range(SAMPLE):
            _finished("sandbox", Source.POLL)
        assert not callbacks_arriving("sandbox")
        _finished("other", Source.CALLBACK)
        assert callbacks_arriving("other")

    def test_callbacks_coming_back_win_over_older_polls(self):
        for _ in range(SAMPLE):
            _finished("sandbox", Source.POLL, minutes_ago=5)
        for _ in range(SAMPLE // 2 + 1):
            _finished("sandbox", Source.CALLBACK, minutes_ago=1)
        assert callbacks_arriving("sandbox")

    def test_old_outcomes_do_not_count(self):
        for _ in range(SAMPLE):
            _finished("sandbox", Source.POLL, minutes_ago=7 * 60)
        _finished("sandbox", Source.CALLBACK)
        assert callbacks_arriving("sandbox")

    def test_outcome_source_is_recorded(self, imagegen_settings):
        polled, called = make_job(), make_job()
        for job, source in ((polled, "poll"), (called, "callback")):
            type(job).objects.filter(pk=job.pk).update(
                status=Status.SUBMITTED, provider_task_id=f"t-{source}"
            )
            state = TaskState(
                f"t-{source}", TaskStatus.SUCCESS, outputs=(Output(url="http://x.test/1.png"),)
            )
            assert services.apply_update(job.pk, state, source=source) == "advanced"
        polled.refresh_from_db()
        called.refresh_from_db()
        assert (polled.completed_via, called.completed_via) == (Source.POLL, Source.CALLBACK)


@pytest.mark.django_db
class TestSubmissionSchedule:
    """With callbacks configured, the first check follows the callbacks' health."""

    @pytest.fixture
    def with_callbacks(self, imagegen_settings, settings):
        settings.IMAGEGEN = {
            **imagegen_settings,
            "CALLBACK_BASE_URL": "https://site.example",
            "MAX_COUNTDOWN": 0.5,
        }

    def _first_wait(self) -> float:
        job = services.create_job(prompt="a lighthouse")
        assert services.submit(job.pk) == "submitted"
        job.refresh_from_db()
        return (job.next_poll_at - job.submitted_at).total_seconds()

    def test_healthy_callbacks_wait_past_the_range(self, with_callbacks):
        _finished("sandbox", Source.CALLBACK)
        # The tests' latency range is 0.3-0.8 s: 0.8 x 1.25 = 1 s, beyond
        # the countdown limit, so the sweeper polls.
        assert self._first_wait() == pytest.approx(1.0, abs=0.05)

    def test_missing_callbacks_poll_inside_the_range(self, with_callbacks):
        for _ in range(SAMPLE):
            _finished("sandbox", Source.POLL)
        # A countdown poll goes out now; the sweeper's check is its fallback, as long again later.
        first = scheduling.window_polls(TEST_LATENCY["1k"])[0]
        wait = self._first_wait()
        assert wait == pytest.approx(2 * first, abs=0.05)


@pytest.mark.django_db
def test_short_waits_are_sent_as_countdowns(imagegen_settings, sandbox, monkeypatch):
    sent = []
    monkeypatch.setattr(services.jobs, "_send_poll", lambda *args: sent.append(args))
    job = services.create_job(prompt="a kite")
    services.submit(job.pk)
    job.refresh_from_db()
    assert sent == [(job.pk, 0, pytest.approx(scheduling.window_polls(TEST_LATENCY["1k"])[0]))]
    assert services.poll(job.pk, 0) in ("advanced", "stale")
    assert sent[1][:2] == (job.pk, 1)

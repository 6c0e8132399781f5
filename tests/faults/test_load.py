"""Hundreds of jobs in flight at once through one worker host: with callbacks,
then with every callback dropped. All finish, none twice, polls within the
schedule. 400 jobs by default, so that the suite stays within CI's time;
``IMAGEGEN_LOAD_JOBS=1000`` for a larger run."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.db.models import Count, Max

from imagegen import services
from imagegen.choices import TERMINAL, Status
from imagegen.models import GeneratedImage, GenerationJob

from ..conftest import wait_until
from ..factories import prove_callbacks

pytestmark = [pytest.mark.faults, pytest.mark.load, pytest.mark.django_db(transaction=True)]

JOBS = int(os.environ.get("IMAGEGEN_LOAD_JOBS", "400"))
LATENCY = (1.0, 3.0)
#: About 0.1 s a job on 2 cores; four times that before the test gives up.
DEADLINE = 60 + JOBS * 0.4


@pytest.mark.parametrize("callbacks", ["send", "drop"])
@pytest.mark.timeout(DEADLINE + 60)
def test_jobs_in_flight(
    fault_settings: dict[str, Any],
    settings: Any,
    sandbox: Any,
    workers: Any,
    monkeypatch: pytest.MonkeyPatch,
    callbacks: str,
) -> None:
    monkeypatch.setattr(sandbox.config, "latency", LATENCY)
    monkeypatch.setattr(sandbox.config, "callback_mode", callbacks)
    settings.IMAGEGEN = {
        **fault_settings,
        "PROVIDERS": {
            "sandbox": {
                **fault_settings["PROVIDERS"]["sandbox"],
                "LATENCY": {"1k": LATENCY},
            }
        },
        # Generous leases: under this load a task may wait in the queue a while.
        "SUBMIT_LEASE": 60,
        "FINALIZE_LEASE": 60,
        "SUBMIT_GRACE": 60,
        "JOB_TIMEOUT": 600,
    }
    if callbacks == "send":
        prove_callbacks()
    workers(pool="prefork", concurrency=4)
    ids = [services.create_job(prompt=f"load test image {n}").pk for n in range(JOBS)]

    def all_done() -> bool:
        services.sweep()
        return not GenerationJob.objects.exclude(status__in=TERMINAL).exists()

    wait_until(all_done, timeout=DEADLINE, interval=0.5, what=f"{JOBS} jobs to finish")

    jobs = GenerationJob.objects.filter(pk__in=ids)
    assert jobs.filter(status=Status.SUCCEEDED).count() == JOBS
    per_job = GeneratedImage.objects.values("job").annotate(n=Count("pk"))
    assert len(per_job) == JOBS and {row["n"] for row in per_job} == {1}
    stats = sandbox.stats()
    assert stats["submits"] == JOBS  # no task paid for twice
    polls = jobs.aggregate(total=Count("pk"), most=Max("poll_count"))
    total_polls = sum(jobs.values_list("poll_count", flat=True))
    if callbacks == "send":
        # Callbacks do the work; polls only where a callback was slower than
        # the expected latency plus the grace period.
        assert total_polls <= JOBS * 0.1, total_polls
    else:
        # At most the budget of polls inside the latency range, then growing
        # intervals: a handful per job, never a poll every second.
        assert polls["most"] <= 6, polls
        assert total_polls <= JOBS * 3, total_polls
    print(f"{callbacks}: {total_polls} polls for {JOBS} jobs, at most {polls['most']} per job")

"""The concurrency cap (``MAX_IN_FLIGHT``) across worker processes: two
Celery worker hosts (prefork, 4 processes each) race for one provider's
slots. Family: caps 1 and 3, callbacks sent or dropped (jobs end by polls).
For each: never more than the cap generating at the sandbox at once (its own
``max_concurrent_tasks``), the cap used, every job succeeded with one
submission attempt and one paid task."""

from __future__ import annotations

from typing import Any

import pytest

from imagegen import services
from imagegen.choices import TERMINAL, Status
from imagegen.models import GenerationJob

from ..conftest import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

LATENCY = (0.5, 1.0)


@pytest.mark.parametrize("cap", [1, 3])
@pytest.mark.parametrize("callbacks", ["send", "drop"])
@pytest.mark.timeout(240)
def test_worker_hosts_share_the_cap(
    fault_settings: dict[str, Any],
    settings: Any,
    sandbox: Any,
    workers: Any,
    monkeypatch: pytest.MonkeyPatch,
    cap: int,
    callbacks: str,
) -> None:
    monkeypatch.setattr(sandbox.config, "latency", LATENCY)
    monkeypatch.setattr(sandbox.config, "callback_mode", callbacks)
    settings.IMAGEGEN = {
        **fault_settings,
        "PROVIDERS": {
            "sandbox": {**fault_settings["PROVIDERS"]["sandbox"], "LATENCY": {"1k": LATENCY}}
        },
        "MAX_IN_FLIGHT": {"sandbox": cap},
        "JOB_TIMEOUT": 600,
    }
    workers(pool="prefork", concurrency=4)
    workers(pool="prefork", concurrency=4)
    ids = [services.create_job(prompt=f"capped {n}").pk for n in range(5 * cap + 3)]

    def all_done() -> bool:
        services.sweep()
        return not GenerationJob.objects.filter(pk__in=ids).exclude(status__in=TERMINAL).exists()

    wait_until(all_done, timeout=180, interval=0.25, what="every capped job to finish")

    jobs = GenerationJob.objects.filter(pk__in=ids)
    assert set(jobs.values_list("status", flat=True)) == {Status.SUCCEEDED}
    assert set(jobs.values_list("submit_attempts", flat=True)) == {1}
    stats = sandbox.stats()
    assert stats["submits"] == len(ids)
    assert stats["max_concurrent_tasks"] == cap

"""The submit task's Celery time limits follow the slowest configured provider."""

from __future__ import annotations

from typing import Any

import pytest
from celery.signals import before_task_publish

from imagegen import services
from imagegen.services.jobs import SUBMIT_MARGIN, enqueue_submit, longest_submit_seconds
from imagegen.tasks import SUBMIT_TIME_LIMIT

from .conftest import require_service


@pytest.fixture
def published(settings: Any) -> list[dict]:
    """Headers of the messages this test publishes to the test broker."""
    require_service("broker", settings.CELERY_BROKER_URL)
    seen: list[dict] = []

    def record(headers: dict | None = None, **kwargs: Any) -> None:
        if headers and headers.get("task") == "imagegen.submit_job":
            seen.append(headers)

    before_task_publish.connect(record, weak=False)
    yield seen
    before_task_publish.disconnect(record)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("providers", "expected"),
    [
        ({}, SUBMIT_TIME_LIMIT),
        ({"openai": {"API_KEY": "k"}}, 300 + 16 * 60 + SUBMIT_MARGIN),
        ({"openai": {"API_KEY": "k", "TIMEOUT": 30, "REFERENCE_TIMEOUT": 1}}, SUBMIT_TIME_LIMIT),
        ({"openai": {"API_KEY": ""}}, SUBMIT_TIME_LIMIT),
        ({"apixo": {"API_KEY": "k", "TIMEOUT": 500}}, 500 + SUBMIT_MARGIN),
    ],
    ids=["sandbox-only", "openai", "openai-fast", "openai-unusable", "slow-apixo"],
)
def test_submit_messages_carry_the_slowest_providers_limits(
    settings: Any,
    published: list[dict],
    django_capture_on_commit_callbacks: Any,
    providers: dict,
    expected: float,
) -> None:
    """Family: the sandbox alone (its call fits the task's own limits); OpenAI
    at its defaults (300 s plus 60 s for each of 16 references); OpenAI made
    fast; OpenAI configured without a key (not usable, not counted); a slow
    APIXO. Each message, from job creation and from the sweeper's resend,
    carries a soft limit of at least that and a hard one 20 s later."""
    settings.IMAGEGEN = {**settings.IMAGEGEN, "PROVIDERS": providers}
    assert max(SUBMIT_TIME_LIMIT, longest_submit_seconds()) == expected
    with django_capture_on_commit_callbacks(execute=True):
        job = services.create_job(prompt="a lighthouse", resolution="1k")
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_submit(job.pk)
    assert len(published) == 2
    for headers in published:
        assert list(headers["timelimit"]) == [expected + 20, expected]

"""Secrets (the provider's API key, callback tokens) never show up in logs,
error messages, stored rows, admin pages or the status JSON, through a real
run with successes, failures and hostile callbacks."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.urls import reverse

from imagegen import services, tokens
from imagegen.choices import Status
from imagegen.models import GeneratedImage, GenerationJob, WebhookDelivery

from .conftest import TEST_LATENCY, wait_until

pytestmark = [pytest.mark.pipeline, pytest.mark.django_db(transaction=True)]

API_KEY = "sk-live-imagegen-DO-NOT-LEAK-4242"


def finished(job_id: Any) -> GenerationJob:
    def done() -> GenerationJob | None:
        services.sweep()
        job = GenerationJob.objects.get(pk=job_id)
        return job if job.is_terminal else None

    return wait_until(done, timeout=30, interval=0.1, what=f"job {job_id}")


def test_no_secret_anywhere(
    callbacks_on: str,
    celery_worker: Any,
    sandbox: Any,
    settings: Any,
    admin_client: Any,
    client: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(sandbox.config, "api_key", API_KEY)
    settings.IMAGEGEN = {
        **settings.IMAGEGEN,
        "PROVIDERS": {
            "sandbox": {"BASE_URL": sandbox.api_url, "LATENCY": TEST_LATENCY, "API_KEY": API_KEY}
        },
    }
    jobs = [
        services.create_job(prompt="a quiet harbour"),
        services.create_job(prompt="a storm [sandbox:submit-http=503x1]"),
        services.create_job(prompt="refused [sandbox:fail=CONTENT_POLICY_VIOLATION]"),
        services.create_job(prompt="never heard of [sandbox:forget]"),
    ]
    # Hostile and broken callbacks, with the right token and with wrong ones.
    token = tokens.callback_token(jobs[0].pk)
    path = reverse(
        "imagegen:callback",
        kwargs={"provider": "sandbox", "job_id": jobs[0].pk, "token": token},
    )
    assert client.post(path, b"not json", content_type="application/json").status_code == 400
    assert client.post(path, b"{}", content_type="application/json").status_code == 400
    assert client.get(path).status_code == 405
    wrong = path.replace(token, "x" * 20)
    assert client.post(wrong, b"{}", content_type="application/json").status_code == 403
    ends = [finished(job.pk) for job in jobs]
    assert [job.status for job in ends] == [
        Status.SUCCEEDED,
        Status.SUCCEEDED,
        Status.FAILED,
        Status.FAILED,
    ]
    # A wrong key is refused, and its error is stored and logged too.
    settings.IMAGEGEN["PROVIDERS"]["sandbox"]["API_KEY"] = API_KEY + "-wrong"
    bad_key = finished(services.create_job(prompt="with a wrong key").pk)
    assert bad_key.status == Status.FAILED
    jobs.append(bad_key)

    secrets = [API_KEY, *(tokens.callback_token(job.pk) for job in jobs)]

    stored = json.dumps(
        [
            list(model.objects.values())
            for model in (GenerationJob, GeneratedImage, WebhookDelivery)
        ],
        cls=DjangoJSONEncoder,
    )
    pages = [
        admin_client.get(reverse("admin:imagegen_generationjob_changelist")),
        admin_client.get(reverse("admin:imagegen_webhookdelivery_changelist")),
        *(
            admin_client.get(reverse("admin:imagegen_generationjob_change", args=[job.pk]))
            for job in jobs
        ),
        *(
            admin_client.get(reverse("admin:imagegen_webhookdelivery_change", args=[d.pk]))
            for d in WebhookDelivery.objects.all()
        ),
        *(
            admin_client.get(reverse("admin:imagegen_generationjob_status", args=[job.pk]))
            for job in jobs
        ),
    ]
    assert all(page.status_code == 200 for page in pages)
    html = "\n".join(page.content.decode() for page in pages)
    logs = caplog.text
    assert "CONTENT_POLICY" in stored and "job" in logs.lower()  # the places were looked at
    for secret in secrets:
        assert secret not in logs, "a secret is in the logs"
        assert secret not in stored, "a secret is stored in clear"
        assert secret not in html, "a secret is shown in the admin"
    # What is stored of the token is its hash, and only that.
    for job in jobs:
        assert job.callback_token_hash == tokens.hash_token(tokens.callback_token(job.pk))

"""The callback receiver view (RELIABILITY.md W1-W11)."""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from imagegen import services, tokens
from imagegen.choices import Status
from imagegen.models import GenerationJob, WebhookDelivery

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def job(imagegen_settings):
    job = services.create_job(prompt="a red bicycle")
    GenerationJob.objects.filter(pk=job.pk).update(
        status=Status.SUBMITTED, provider_task_id="task-1"
    )
    job.refresh_from_db()
    return job


def url(job_id, token, provider="sandbox"):
    return reverse(
        "imagegen:callback", kwargs={"provider": provider, "job_id": job_id, "token": token}
    )


def body(task_id="task-1", state="success", **data):
    payload = {"taskId": task_id, "state": state, "failCode": "", "failMsg": ""}
    if state == "success":
        payload["resultJson"] = json.dumps({"resultUrls": ["http://127.0.0.1:9/0.png"]})
    payload.update(data)
    return json.dumps({"code": 200, "message": "success", "data": payload}).encode()


def post(client, job, content, token=None, **kwargs):
    token = tokens.callback_token(job.pk) if token is None else token
    return client.post(url(job.pk, token), content, content_type="application/json", **kwargs)


def test_valid_callback_advances_job_once(client, job):
    response = post(client, job, body())
    assert response.status_code == 200
    job.refresh_from_db()
    assert job.status == Status.FINALIZING
    assert job.result_urls == ["http://127.0.0.1:9/0.png"]
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.ACCEPTED
    assert delivery.job_id == job.pk
    assert json.loads(delivery.body)["data"]["taskId"] == "task-1"
    # The token is in the URL only; nothing stored carries it.
    assert tokens.callback_token(job.pk) not in json.dumps(delivery.headers) + delivery.body


def test_duplicate_callback_answers_200_and_changes_nothing(client, job):
    assert post(client, job, body()).status_code == 200
    job.refresh_from_db()
    updated = job.updated_at
    assert post(client, job, body()).status_code == 200
    job.refresh_from_db()
    assert job.updated_at == updated
    outcomes = list(WebhookDelivery.objects.values_list("outcome", flat=True).order_by("id"))
    assert outcomes == ["accepted", "duplicate"]


@pytest.mark.parametrize("token", ["wrong", "x" * 64])
def test_wrong_token_is_403(client, job, token):
    response = post(client, job, body(), token=token)
    assert response.status_code == 403
    job.refresh_from_db()
    assert job.status == Status.SUBMITTED
    assert WebhookDelivery.objects.get().outcome == WebhookDelivery.Outcome.FORBIDDEN


def test_token_of_another_job_is_403(client, job, imagegen_settings):
    other = services.create_job(prompt="another")
    response = client.post(
        url(job.pk, tokens.callback_token(other.pk)), body(), content_type="application/json"
    )
    assert response.status_code == 403


def test_missing_token_is_not_routed(client, job):
    response = client.post(
        f"/imagegen/callbacks/sandbox/{job.pk}/", body(), content_type="application/json"
    )
    assert response.status_code == 404


def test_unknown_job_is_404_and_logged(client, imagegen_settings):
    job_id = uuid.uuid4()
    response = client.post(url(job_id, "t"), body(), content_type="application/json")
    assert response.status_code == 404
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.UNKNOWN_JOB
    assert delivery.job_ref == str(job_id)
    assert GenerationJob.objects.count() == 0


def test_provider_mismatch_is_404(client, job):
    response = client.post(
        url(job.pk, tokens.callback_token(job.pk), provider="apixo"),
        body(),
        content_type="application/json",
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"",
        b"\xff\xfe\xfa",
        b"[]",
        b'{"code": 200, "data": "x"}',
        json.dumps({"data": {"state": "success"}}).encode(),
        body(resultJson="{broken"),
        body(task_id="not-this-jobs-task"),
        body(state="exploded"),
    ],
)
def test_malformed_is_400_and_changes_nothing(client, job, content):
    response = post(client, job, content)
    assert response.status_code == 400
    job.refresh_from_db()
    assert job.status == Status.SUBMITTED
    assert WebhookDelivery.objects.get().outcome == WebhookDelivery.Outcome.MALFORMED


def test_oversized_body_is_413_before_parsing(client, job, settings, imagegen_settings):
    settings.IMAGEGEN = {**imagegen_settings, "MAX_CALLBACK_BYTES": 1000}
    response = post(client, job, b"{" + b" " * 5000 + b"}")
    assert response.status_code == 413
    job.refresh_from_db()
    assert job.status == Status.SUBMITTED
    assert WebhookDelivery.objects.get().outcome == WebhookDelivery.Outcome.TOO_LARGE


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_other_methods_are_405(client, job, method):
    response = getattr(client, method)(url(job.pk, tokens.callback_token(job.pk)))
    assert response.status_code == 405


def test_reachable_with_csrf_checks_and_login_required(job, settings):
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE,
        "django.contrib.auth.middleware.LoginRequiredMiddleware",
    ]
    client = Client(enforce_csrf_checks=True)
    assert post(client, job, body()).status_code == 200


def test_processing_callback_only_moves_forward(client, job):
    assert post(client, job, body(state="processing")).status_code == 200
    job.refresh_from_db()
    assert job.status == Status.RUNNING
    assert post(client, job, body()).status_code == 200
    assert post(client, job, body(state="processing")).status_code == 200
    job.refresh_from_db()
    assert job.status == Status.FINALIZING


def test_failure_callback_fails_job(client, job):
    response = post(client, job, body(state="failed", failCode="NSFW_DETECTED", failMsg="no"))
    assert response.status_code == 200
    job.refresh_from_db()
    assert job.status == Status.FAILED
    assert job.error_code == "NSFW_DETECTED"


def test_atomic_requests_processing_error_keeps_delivery(client, job, monkeypatch):
    connection.settings_dict["ATOMIC_REQUESTS"] = True

    def explode(*args, **kwargs):
        GenerationJob.objects.filter(pk=job.pk).update(status=Status.RUNNING)
        from django.db import DatabaseError

        raise DatabaseError("simulated")

    monkeypatch.setattr("imagegen.services.callbacks.apply_update", explode)
    try:
        response = post(client, job, body())
    finally:
        connection.settings_dict["ATOMIC_REQUESTS"] = False
    assert response.status_code == 503
    job.refresh_from_db()
    assert job.status == Status.SUBMITTED  # the business write rolled back
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.ERROR
    assert "simulated" in delivery.error


def test_forwarded_for_is_not_recorded_as_the_sender(client, job):
    post(client, job, body(), HTTP_X_FORWARDED_FOR="10.9.9.9")
    delivery = WebhookDelivery.objects.get()
    assert delivery.remote_addr == "127.0.0.1"
    assert "X-Forwarded-For" not in delivery.headers


def test_late_callback_after_expiry_is_recorded_but_does_not_resurrect(client, job):
    GenerationJob.objects.filter(pk=job.pk).update(status=Status.EXPIRED)
    assert post(client, job, body()).status_code == 200
    job.refresh_from_db()
    assert job.status == Status.EXPIRED
    assert WebhookDelivery.objects.get().outcome == WebhookDelivery.Outcome.DUPLICATE


def test_status_endpoint_requires_permission(client, job, django_user_model):
    status_url = reverse("imagegen:job-status", kwargs={"job_id": job.pk})
    assert client.get(status_url).status_code == 401
    user = django_user_model.objects.create_user("ed", password="pw")
    client.force_login(user)
    assert client.get(status_url).status_code == 403
    admin = django_user_model.objects.create_superuser("boss", password="pw")
    client.force_login(admin)
    data = client.get(status_url).json()
    assert data["status"] == "submitted"
    assert "callback_token_hash" not in data


def test_late_result_is_kept_when_configured(client, job, settings, imagegen_settings):
    settings.IMAGEGEN = {**imagegen_settings, "ACCEPT_LATE_RESULTS": True}
    GenerationJob.objects.filter(pk=job.pk).update(status=Status.EXPIRED)
    # Another task's result never lands on this job, late or not.
    assert post(client, job, body(task_id="task-2")).status_code == 400
    assert GenerationJob.objects.get(pk=job.pk).status == Status.EXPIRED
    assert post(client, job, body()).status_code == 200
    job.refresh_from_db()
    assert job.status == Status.FINALIZING
    assert job.completed_at is None and job.result_urls == ["http://127.0.0.1:9/0.png"]


@pytest.mark.parametrize("accept_late", [False, True])
def test_callback_for_a_canceled_job_is_recorded_only(
    client, job, settings, imagegen_settings, accept_late
):
    settings.IMAGEGEN = {**imagegen_settings, "ACCEPT_LATE_RESULTS": accept_late}
    services.cancel(job.pk)
    assert post(client, job, body()).status_code == 200
    job.refresh_from_db()
    assert job.status == Status.CANCELED
    assert WebhookDelivery.objects.get().outcome == WebhookDelivery.Outcome.DUPLICATE

"""The JSON API through the test client: every endpoint, both ways to
authenticate, every refusal, the error shape, idempotency, pagination,
cancel rules, secrets, query counts; API tokens in the admin and the command."""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import string
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from imagegen import tokens
from imagegen.api import auth
from imagegen.api.openapi import document, dumps
from imagegen.api.views import MAX_BODY_BYTES
from imagegen.checks import check_settings
from imagegen.choices import ReviewStatus, Status
from imagegen.models import ApiToken, GenerationJob

from .factories import (
    EDITOR,
    make_editor,
    make_image,
    make_job,
    make_user,
    messages_of,
    set_budgets,
)

pytestmark = pytest.mark.django_db

JOBS = reverse("imagegen:api-jobs")
OPENAPI = reverse("imagegen:api-openapi")
ROOT = Path(__file__).resolve().parent.parent
TOKEN_PERMS = tuple(f"imagegen.{a}_apitoken" for a in ("add", "view", "change", "delete"))


def job_url(job: Any) -> str:
    return reverse("imagegen:api-job", kwargs={"job_id": job.pk})


def cancel_url(job: Any) -> str:
    return reverse("imagegen:api-job-cancel", kwargs={"job_id": job.pk})


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


@pytest.fixture
def raw_token(editor: Any) -> str:
    return auth.create_token(editor, "tests")[1]


@pytest.fixture
def headers(raw_token: str) -> dict[str, str]:
    return bearer(raw_token)


def post_job(client: Any, headers: dict[str, str] | None = None, **body: Any) -> Any:
    body.setdefault("prompt", "a red bicycle against a blue wall")
    return client.post(JOBS, body, content_type="application/json", headers=headers or {})


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    """The error object of ``response``, after checking the documented shape."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert set(error) <= {"code", "message", "fields", "permission", "scope", "status"}
    return error


# Authentication -------------------------------------------------------------------


class TestAuthentication:
    def test_no_credentials_401_with_challenge(self, client):
        response = client.get(JOBS)
        error_of(response, 401, "not_authenticated")
        assert response["WWW-Authenticate"] == 'Bearer realm="imagegen"'

    def test_token_works(self, client, headers, editor):
        make_job(editor)
        response = client.get(JOBS, headers=headers)
        assert response.status_code == 200
        assert len(response.json()["results"]) == 1

    @pytest.mark.parametrize(
        "value",
        [
            "Bearer ig_" + "x" * 43,
            "Bearer not-ours",
            "Bearer ",
            "Bearer ig_" + "x" * 200,
            "bearer ig_" + "y" * 43,
        ],
    )
    def test_wrong_token_401(self, client, raw_token, value):
        response = client.get(JOBS, headers={"Authorization": value})
        error_of(response, 401, "invalid_token")
        assert 'error="invalid_token"' in response["WWW-Authenticate"]

    def test_revoked_token_401(self, client, raw_token):
        ApiToken.objects.update(revoked=True)
        error = error_of(client.get(JOBS, headers=bearer(raw_token)), 401, "invalid_token")
        assert "revoked" in error["message"]

    def test_expired_token_401(self, client, raw_token):
        ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
        error = error_of(client.get(JOBS, headers=bearer(raw_token)), 401, "invalid_token")
        assert "expired" in error["message"]

    def test_token_of_inactive_user_401(self, client, raw_token, editor):
        editor.is_active = False
        editor.save()
        error_of(client.get(JOBS, headers=bearer(raw_token)), 401, "invalid_token")

    def test_token_not_yet_expired_works(self, client, editor):
        _token, raw = auth.create_token(editor, "t", timezone.now() + timedelta(hours=1))
        assert client.get(JOBS, headers=bearer(raw)).status_code == 200

    def test_other_schemes_fall_back_to_the_session(self, logged_in):
        response = logged_in.get(JOBS, headers={"Authorization": "Basic dXNlcjpwYXNz"})
        assert response.status_code == 200

    def test_session_get(self, logged_in):
        assert logged_in.get(JOBS).status_code == 200

    def test_session_post_needs_the_csrf_token(self, editor, settings):
        client = Client(enforce_csrf_checks=True)
        client.force_login(editor)
        error = error_of(post_job(client), 403, "csrf_failed")
        assert "CSRF" in error["message"]
        assert GenerationJob.objects.count() == 0
        secret = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
        client.cookies[settings.CSRF_COOKIE_NAME] = secret
        response = post_job(client, {"X-CSRFToken": secret})
        assert response.status_code == 201, response.content

    def test_session_cancel_needs_the_csrf_token(self, editor):
        job = make_job(editor, status=Status.QUEUED)
        client = Client(enforce_csrf_checks=True)
        client.force_login(editor)
        error_of(client.post(cancel_url(job)), 403, "csrf_failed")
        job.refresh_from_db()
        assert job.status == Status.QUEUED

    def test_token_requests_are_exempt_from_csrf(self, editor, headers):
        client = Client(enforce_csrf_checks=True)
        client.force_login(editor)  # a session cookie too: the token still decides
        assert post_job(client, headers).status_code == 201

    def test_token_wins_over_the_session(self, client, django_user_model, headers, editor):
        client.force_login(make_editor(django_user_model, username="someone"))
        response = post_job(client, headers)
        assert response.json()["created_by"] == editor.username

    def test_login_required_middleware_does_not_block_tokens(self, client, headers, settings):
        settings.MIDDLEWARE = [
            *settings.MIDDLEWARE,
            "django.contrib.auth.middleware.LoginRequiredMiddleware",
        ]
        assert client.get(JOBS, headers=headers).status_code == 200
        assert client.get(OPENAPI).status_code == 200
        assert client.get(JOBS).status_code == 401


class TestTokens:
    def test_only_the_hash_is_stored(self, editor):
        token, raw = auth.create_token(editor, "ci")
        assert raw.startswith("ig_") and len(raw) == 3 + 43
        assert token.prefix == raw[:12]
        assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest()
        stored = ApiToken.objects.filter(pk=token.pk).values().get()
        assert raw not in json.dumps(stored, default=str)

    def test_two_tokens_differ(self, editor):
        assert auth.create_token(editor, "a")[1] != auth.create_token(editor, "b")[1]

    def test_last_used_is_written_at_most_once_a_minute(self, client, raw_token):
        def token_updates() -> int:
            with CaptureQueriesContext(connection) as queries:
                assert client.get(JOBS, headers=bearer(raw_token)).status_code == 200
            return sum(
                q["sql"].startswith("UPDATE") and "imagegen_apitoken" in q["sql"] for q in queries
            )

        assert token_updates() == 1
        first = ApiToken.objects.get().last_used_at
        assert first is not None
        assert token_updates() == 0
        ApiToken.objects.update(last_used_at=timezone.now() - timedelta(seconds=61))
        assert token_updates() == 1
        assert ApiToken.objects.get().last_used_at > first - timedelta(seconds=1)


# Permissions -----------------------------------------------------------------------


class TestPermissions:
    def test_create_needs_the_add_permission(self, client, django_user_model):
        user = make_user(django_user_model, "imagegen.view_generationjob")
        raw = auth.create_token(user, "t")[1]
        error = error_of(post_job(client, bearer(raw)), 403, "permission_denied")
        assert error["permission"] == "imagegen.add_generationjob"
        assert GenerationJob.objects.count() == 0

    def test_reading_needs_the_view_permission(self, client, django_user_model):
        user = make_user(django_user_model, "imagegen.add_generationjob")
        job = make_job(user)
        raw = auth.create_token(user, "t")[1]
        for url in (JOBS, job_url(job)):
            error = error_of(client.get(url, headers=bearer(raw)), 403, "permission_denied")
            assert error["permission"] == "imagegen.view_generationjob"

    def test_change_permission_includes_viewing(self, client, django_user_model):
        user = make_user(django_user_model, "imagegen.change_generationjob")
        raw = auth.create_token(user, "t")[1]
        assert client.get(JOBS, headers=bearer(raw)).status_code == 200

    def test_other_users_jobs_are_404_and_not_listed(self, client, headers, other, editor):
        mine, theirs = make_job(editor), make_job(other)
        error_of(client.get(job_url(theirs), headers=headers), 404, "not_found")
        ids = [j["id"] for j in client.get(JOBS, headers=headers).json()["results"]]
        assert ids == [str(mine.pk)]

    def test_view_all_jobs_sees_everyone(self, client, django_user_model, other, editor):
        boss = make_editor(django_user_model, "imagegen.view_all_jobs", username="boss")
        raw = auth.create_token(boss, "t")[1]
        jobs = [make_job(editor), make_job(other)]
        assert client.get(job_url(jobs[1]), headers=bearer(raw)).status_code == 200
        listed = {j["id"] for j in client.get(JOBS, headers=bearer(raw)).json()["results"]}
        assert listed == {str(j.pk) for j in jobs}


# Creating jobs ---------------------------------------------------------------------


class TestCreate:
    def test_created(self, client, headers, editor):
        response = post_job(client, headers, resolution="2k", aspect_ratio="16:9")
        assert response.status_code == 201, response.content
        data = response.json()
        job = GenerationJob.objects.get()
        assert data["id"] == str(job.pk)
        assert response["Location"] == data["url"] == f"http://testserver{job_url(job)}"
        assert (job.created_by, job.status, job.resolution, job.aspect_ratio, job.mode) == (
            editor,
            Status.QUEUED,
            "2k",
            "16:9",
            "text-to-image",
        )
        assert data["status"] == "queued"
        assert data["estimated_cost"] == "0.0400"
        assert data["images"] == []
        assert "no-store" in response["Cache-Control"]

    def test_defaults(self, client, headers):
        data = post_job(client, headers).json()
        assert (data["mode"], data["resolution"], data["aspect_ratio"]) == (
            "text-to-image",
            "1k",
            "auto",
        )
        assert data["provider"] == "sandbox"

    def test_references_default_to_image_to_image(self, client, headers):
        urls = ["https://example.com/a.png", " https://example.com/b.png "]
        data = post_job(client, headers, reference_urls=urls).json()
        assert data["mode"] == "image-to-image"
        assert data["reference_urls"] == ["https://example.com/a.png", "https://example.com/b.png"]

    def test_submission_is_enqueued_after_commit(
        self, client, headers, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks() as callbacks:
            post_job(client, headers)
        assert len(callbacks) == 1

    def test_no_secrets_or_internals_in_the_answer(self, client, headers):
        response = post_job(client, headers, prompt="a harbour at dawn")
        job = GenerationJob.objects.get()
        GenerationJob.objects.filter(pk=job.pk).update(
            provider_task_id="task-secret-1", result_urls=["https://cdn.example/x?sig=abc"]
        )
        text = post_job(client, headers).content.decode() + response.content.decode()
        text += client.get(job_url(job), headers=headers).content.decode()
        text += client.get(JOBS, headers=headers).content.decode()
        for secret in (
            job.callback_token_hash,
            tokens.callback_token(job.pk),
            "task-secret-1",
            "sig=abc",
            ApiToken.objects.get().key_hash,
        ):
            assert secret not in text
        for name in ("callback_token_hash", "idempotency_key", "provider_task_id", "result_urls"):
            assert f'"{name}"' not in text

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"prompt": None}, "prompt"),
            ({"prompt": ""}, "prompt"),
            ({"prompt": "   "}, "prompt"),
            ({"prompt": 42}, "prompt"),
            ({"prompt": "x" * 20001}, "prompt"),
            ({"prompt": "a\x00b"}, "prompt"),
            ({"mode": "sketch"}, "mode"),
            ({"mode": ""}, "mode"),
            ({"resolution": ""}, "resolution"),
            ({"mode": 1}, "mode"),
            ({"resolution": "8k"}, "resolution"),
            ({"aspect_ratio": "2:1"}, "aspect_ratio"),
            ({"reference_urls": "https://example.com/a.png"}, "reference_urls"),
            ({"reference_urls": [1]}, "reference_urls"),
            ({"reference_urls": ["ftp://example.com/a.png"]}, "reference_urls"),
            ({"reference_urls": ["http://127.0.0.1/a.png"]}, "reference_urls"),
            ({"reference_urls": ["https://example.com/\x00.png"]}, "reference_urls"),
            (
                {"reference_urls": [f"https://example.com/{i}.png" for i in range(17)]},
                "reference_urls",
            ),
            (
                {"mode": "text-to-image", "reference_urls": ["https://example.com/a.png"]},
                "reference_urls",
            ),
            ({"mode": "image-to-image"}, "reference_urls"),
            ({"provider": "nope"}, "provider"),
            ({"provider": 3}, "provider"),
            ({"colour": "red"}, "colour"),
        ],
    )
    def test_validation_error_shape(self, client, headers, body, field):
        body = {"prompt": "a boat", **body}
        if body["prompt"] is None:
            del body["prompt"]
        response = client.post(JOBS, body, content_type="application/json", headers=headers)
        error = error_of(response, 400, "validation_error")
        assert list(error["fields"]) == [field]
        assert all(isinstance(m, str) and m for m in error["fields"][field])
        assert GenerationJob.objects.count() == 0

    def test_every_bad_field_at_once(self, client, headers):
        body = {"prompt": 1, "mode": 2, "extra": 3, "reference_urls": {}}
        response = client.post(JOBS, body, content_type="application/json", headers=headers)
        fields = error_of(response, 400, "validation_error")["fields"]
        assert set(fields) == {"prompt", "mode", "extra", "reference_urls"}

    def test_lone_surrogate_is_refused_not_a_crash(self, client, headers):
        body = '{"prompt": "a \\ud800 boat"}'
        response = client.post(JOBS, body, content_type="application/json", headers=headers)
        assert error_of(response, 400, "validation_error")["fields"].keys() == {"prompt"}

    @pytest.mark.parametrize(
        ("body", "content_type", "status", "code"),
        [
            ("{not json", "application/json", 400, "malformed_request"),
            (b"\xff\xfe", "application/json", 400, "malformed_request"),
            ("[1, 2]", "application/json", 400, "malformed_request"),
            ('"a string"', "application/json", 400, "malformed_request"),
            ("[" * 100_000 + "]" * 100_000, "application/json", 400, "malformed_request"),
            ("prompt=a+boat", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
            ('{"prompt": "a boat"}', "text/plain", 415, "unsupported_media_type"),
            (
                '{"prompt": "' + "x" * MAX_BODY_BYTES + '"}',
                "application/json",
                413,
                "payload_too_large",
            ),
        ],
    )
    def test_bad_bodies(self, client, headers, body, content_type, status, code):
        response = client.post(JOBS, body, content_type=content_type, headers=headers)
        error_of(response, status, code)
        assert GenerationJob.objects.count() == 0

    def test_empty_body(self, client, headers):
        # The test client leaves out the Content-Type of an empty body: set it.
        response = client.generic(
            "POST", JOBS, b"", headers=headers, CONTENT_TYPE="application/json"
        )
        error_of(response, 400, "malformed_request")

    def test_json_with_charset_is_fine(self, client, headers):
        body = json.dumps({"prompt": "a boat"})
        response = client.post(
            JOBS, body, content_type="application/json; charset=utf-8", headers=headers
        )
        assert response.status_code == 201

    def test_budget_exceeded_402(self, client, headers, settings):
        set_budgets(settings, USER_DAILY="0.01")
        error = error_of(post_job(client, headers), 402, "budget_exceeded")
        assert "budget" in error["message"]
        assert GenerationJob.objects.count() == 0


class TestIdempotency:
    def test_same_key_same_body_returns_the_same_job(self, client, headers):
        key = {**headers, "Idempotency-Key": "order-17"}
        first = post_job(client, key, prompt="a kite")
        second = post_job(client, key, prompt="a kite")
        assert (first.status_code, second.status_code) == (201, 200)
        assert first.json()["id"] == second.json()["id"]
        assert GenerationJob.objects.count() == 1

    def test_same_key_other_body_409(self, client, headers):
        key = {**headers, "Idempotency-Key": "order-18"}
        assert post_job(client, key, prompt="a kite").status_code == 201
        error_of(post_job(client, key, prompt="a kite at night"), 409, "idempotency_conflict")
        error_of(
            post_job(client, key, prompt="a kite", resolution="2k"), 409, "idempotency_conflict"
        )
        assert GenerationJob.objects.count() == 1

    @pytest.mark.parametrize("key", ["", "with space", "x" * 65, "é"])
    def test_bad_keys_400(self, client, headers, key):
        response = post_job(client, {**headers, "Idempotency-Key": key})
        error = error_of(response, 400, "validation_error")
        assert list(error["fields"]) == ["Idempotency-Key"]


# Reading ---------------------------------------------------------------------------


class TestDetail:
    def test_job_with_its_images(self, client, headers, editor):
        job = make_job(editor, images=2)
        first = job.images.get(index=0)
        first.title, first.alt_text = "Bicycle", "A red bicycle"
        first.save()
        make_image(job, index=2, review_status=ReviewStatus.DISCARDED, file="")
        data = client.get(job_url(job), headers=headers).json()
        assert data["status"] == "succeeded" and data["is_terminal"] is True
        assert data["progress"] == 1.0
        assert [i["index"] for i in data["images"]] == [0, 1]
        image = data["images"][0]
        assert image["url"] == f"http://testserver{first.file.url}"
        assert (image["width"], image["height"], image["size"]) == (64, 48, first.size)
        assert image["sha256"] == first.sha256
        assert (image["title"], image["alt_text"]) == ("Bicycle", "A red bicycle")
        assert image["review_status"] == "new"
        assert image["content_type"] == "image/png"

    def test_unknown_job_404(self, client, headers):
        url = reverse("imagegen:api-job", kwargs={"job_id": uuid.uuid4()})
        error_of(client.get(url, headers=headers), 404, "not_found")

    @pytest.mark.parametrize("path", ["jobs/not-a-uuid/", "nothing/", "jobs", ""])
    def test_unknown_paths_answer_in_the_api_shape(self, client, headers, path):
        response = client.get(reverse("imagegen:api-not-found") + path, headers=headers)
        error_of(response, 404, "not_found")
        assert "no-store" in response["Cache-Control"]

    def test_other_methods_405(self, client, headers, editor):
        job = make_job(editor, status=Status.QUEUED)
        response = client.delete(JOBS, headers=headers)
        error_of(response, 405, "method_not_allowed")
        assert response["Allow"] == "POST, GET"
        response = client.get(cancel_url(job), headers=headers)
        error_of(response, 405, "method_not_allowed")
        assert response["Allow"] == "POST"
        response = client.put(job_url(job), headers=headers)
        assert response["Allow"] == "GET"


class TestList:
    def test_newest_first(self, client, headers, editor):
        now = timezone.now()
        jobs = [make_job(editor, created_at=now - timedelta(minutes=i)) for i in range(3)]
        data = client.get(JOBS, headers=headers).json()
        assert [j["id"] for j in data["results"]] == [str(j.pk) for j in jobs]
        assert data["next"] is None and data["previous"] is None

    def test_default_page_size_and_cap(self, client, headers, editor, settings):
        for _ in range(25):
            make_job(editor)
        data = client.get(JOBS, headers=headers).json()
        assert len(data["results"]) == 20 and data["next"]
        assert len(client.get(JOBS, {"page_size": 100}, headers=headers).json()["results"]) == 25
        for bad in ("101", "0", "-1", "ten", "1.5"):
            response = client.get(JOBS, {"page_size": bad}, headers=headers)
            assert list(error_of(response, 400, "validation_error")["fields"]) == ["page_size"]
        settings.IMAGEGEN = {**settings.IMAGEGEN, "API_PAGE_SIZE": 5, "API_MAX_PAGE_SIZE": 10}
        assert len(client.get(JOBS, headers=headers).json()["results"]) == 5
        error_of(client.get(JOBS, {"page_size": 11}, headers=headers), 400, "validation_error")

    def test_next_and_previous_walk_every_job_once(self, client, headers, editor):
        # Equal creation times: the id breaks ties, so no job is skipped or repeated.
        now = timezone.now()
        jobs = [make_job(editor, created_at=now - timedelta(minutes=i // 3)) for i in range(7)]
        expected = [
            str(j.pk) for j in sorted(jobs, key=lambda j: (j.created_at, j.pk.hex), reverse=True)
        ]
        pages, url = [], f"{JOBS}?page_size=3"
        while url:
            data = client.get(url, headers=headers).json()
            pages.append([j["id"] for j in data["results"]])
            url = data["next"]
        assert [len(p) for p in pages] == [3, 3, 1]
        assert [job for page in pages for job in page] == expected
        # And back again from the last page.
        last = client.get(JOBS, {"page_size": 3}, headers=headers).json()
        last = client.get(last["next"], headers=headers).json()
        last = client.get(last["next"], headers=headers).json()
        assert last["next"] is None
        back = client.get(last["previous"], headers=headers).json()
        assert [j["id"] for j in back["results"]] == pages[1]
        first = client.get(back["previous"], headers=headers).json()
        assert [j["id"] for j in first["results"]] == pages[0]
        assert first["previous"] is None and first["next"]

    def test_pages_do_not_shift_when_jobs_are_created(self, client, headers, editor):
        now = timezone.now()
        jobs = [make_job(editor, created_at=now - timedelta(minutes=i)) for i in range(4)]
        first = client.get(JOBS, {"page_size": 2}, headers=headers).json()
        make_job(editor)  # newer than all: would shift an offset-based second page
        second = client.get(first["next"], headers=headers).json()
        assert [j["id"] for j in second["results"]] == [str(j.pk) for j in jobs[2:]]

    def test_links_keep_the_filters(self, client, headers, editor):
        for _ in range(3):
            make_job(editor, status=Status.FAILED)
        make_job(editor, status=Status.SUCCEEDED)
        data = client.get(JOBS, {"status": "failed", "page_size": 2}, headers=headers).json()
        assert "status=failed" in data["next"] and "page_size=2" in data["next"]
        rest = client.get(data["next"], headers=headers).json()
        assert len(rest["results"]) == 1
        assert {j["status"] for j in data["results"] + rest["results"]} == {"failed"}

    def test_status_filter(self, client, headers, editor):
        for status in (Status.QUEUED, Status.RUNNING, Status.FAILED):
            make_job(editor, status=status)

        def statuses(query: str) -> set[str]:
            data = client.get(f"{JOBS}?{query}", headers=headers).json()
            return {j["status"] for j in data["results"]}

        assert statuses("status=queued") == {"queued"}
        assert statuses("status=queued&status=failed") == {"queued", "failed"}
        assert statuses("status=running,failed") == {"running", "failed"}
        response = client.get(JOBS, {"status": "done"}, headers=headers)
        assert list(error_of(response, 400, "validation_error")["fields"]) == ["status"]

    def test_created_filters(self, client, headers, editor):
        now = timezone.now()
        old = make_job(editor, created_at=now - timedelta(days=3))
        new = make_job(editor, created_at=now - timedelta(hours=1))

        def ids(**query: str) -> list[str]:
            return [j["id"] for j in client.get(JOBS, query, headers=headers).json()["results"]]

        cut = (now - timedelta(days=1)).isoformat()
        assert ids(created_after=cut) == [str(new.pk)]
        assert ids(created_before=cut) == [str(old.pk)]
        assert ids(created_after=old.created_at.isoformat()) == [str(new.pk), str(old.pk)]
        assert ids(created_before=old.created_at.isoformat()) == []
        day = timezone.localdate(now - timedelta(days=1)).isoformat()
        assert ids(created_after=day) == [str(new.pk)]

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("created_after", "yesterday"),
            ("created_before", "2026-13-01T00:00:00Z"),
            ("created_after", "0001-01-01T00:00:00+05:00"),
            ("created_before", "9999-12-31T23:59:59-05:00"),
            ("cursor", "garbage"),
            ("cursor", "W10"),
            ("cursor", "WyJhIiwgIjIwMjYiLCAiMSJd"),
        ],
    )
    def test_bad_parameters_400(self, client, headers, name, value):
        response = client.get(JOBS, {name: value}, headers=headers)
        assert list(error_of(response, 400, "validation_error")["fields"]) == [name]

    def test_query_count_does_not_grow_with_the_page(self, logged_in, editor):
        def count(jobs: int) -> int:
            for _ in range(jobs):
                make_job(editor, images=1)
            with CaptureQueriesContext(connection) as queries:
                response = logged_in.get(JOBS, {"page_size": 100})
            assert response.status_code == 200
            assert len(response.json()["results"]) >= jobs
            return len(queries)

        assert count(3) == count(27)


# Canceling -------------------------------------------------------------------------


class TestCancel:
    @pytest.mark.parametrize("status", [Status.QUEUED, Status.SUBMITTED, Status.RUNNING])
    def test_own_unfinished_job(self, client, headers, editor, status):
        job = make_job(editor, status=status)
        response = client.post(cancel_url(job), headers=headers)
        assert response.status_code == 200
        assert response.json()["status"] == "canceled"
        job.refresh_from_db()
        assert job.status == Status.CANCELED
        # Again: still 200, nothing changes.
        assert client.post(cancel_url(job), headers=headers).json()["status"] == "canceled"

    @pytest.mark.parametrize(
        "status", [Status.SUCCEEDED, Status.FAILED, Status.EXPIRED, Status.FINALIZING]
    )
    def test_finished_or_finalizing_409(self, client, headers, editor, status):
        job = make_job(editor, status=status)
        error = error_of(client.post(cancel_url(job), headers=headers), 409, "not_cancelable")
        assert error["status"] == status
        job.refresh_from_db()
        assert job.status == status

    def test_other_users_job_is_404_without_seeing_it(self, client, headers, other):
        job = make_job(other, status=Status.QUEUED)
        error_of(client.post(cancel_url(job), headers=headers), 404, "not_found")
        job.refresh_from_db()
        assert job.status == Status.QUEUED

    def test_seeing_is_not_canceling(self, client, django_user_model, other):
        viewer = make_editor(django_user_model, "imagegen.view_all_jobs", username="viewer")
        job = make_job(other, status=Status.QUEUED)
        raw = auth.create_token(viewer, "t")[1]
        error = error_of(
            client.post(cancel_url(job), headers=bearer(raw)), 403, "permission_denied"
        )
        assert error["permission"] == "imagegen.cancel_any_job"
        job.refresh_from_db()
        assert job.status == Status.QUEUED

    def test_cancel_any_job(self, client, django_user_model, other):
        boss = make_editor(
            django_user_model,
            "imagegen.view_all_jobs",
            "imagegen.cancel_any_job",
            username="boss",
        )
        job = make_job(other, status=Status.RUNNING)
        raw = auth.create_token(boss, "t")[1]
        assert client.post(cancel_url(job), headers=bearer(raw)).status_code == 200

    def test_own_job_needs_add_or_change(self, client, django_user_model):
        user = make_user(django_user_model, "imagegen.view_generationjob")
        job = make_job(user, status=Status.QUEUED)
        raw = auth.create_token(user, "t")[1]
        error = error_of(
            client.post(cancel_url(job), headers=bearer(raw)), 403, "permission_denied"
        )
        assert error["permission"] == "imagegen.add_generationjob"


# OpenAPI ---------------------------------------------------------------------------


class TestOpenApi:
    def test_served_publicly(self, client):
        response = client.get(OPENAPI)
        assert response.status_code == 200
        assert response.json() == document()
        assert "no-store" in response["Cache-Control"]

    def test_committed_copy_is_current(self):
        committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
        assert committed == document(), (
            "docs/openapi.json is stale: python manage.py imagegen openapi > docs/openapi.json"
        )

    def test_command_prints_it(self):
        out = io.StringIO()
        call_command("imagegen", "openapi", stdout=out)
        assert out.getvalue() == dumps()

    def test_paths_are_the_urlconf(self, client, headers, editor):
        """Every documented path and method is served; other methods are 405."""
        job = make_job(editor, status=Status.SUCCEEDED)
        for path, item in document()["paths"].items():
            url = path.replace("{job_id}", str(job.pk))
            for method in ("get", "post", "put", "patch", "delete"):
                response = getattr(client, method)(url, headers=headers)
                if method in item:
                    assert response.status_code != 405, (method, path)
                else:
                    assert response.status_code == 405, (method, path)

    def test_limits_follow_the_settings(self, settings):
        settings.IMAGEGEN = {**settings.IMAGEGEN, "API_MAX_PAGE_SIZE": 42}
        params = document()["paths"][JOBS]["get"]["parameters"]
        page_size = next(p for p in params if p["name"] == "page_size")
        assert page_size["schema"]["maximum"] == 42
        body = document()["components"]["schemas"]["JobCreate"]["properties"]
        assert body["prompt"]["maxLength"] == 20000
        assert body["reference_urls"]["maxItems"] == 16


# Settings checks -------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {"API_PAGE_SIZE": 0},
        {"API_PAGE_SIZE": 2.5},
        {"API_MAX_PAGE_SIZE": "100"},
        {"API_PAGE_SIZE": 50, "API_MAX_PAGE_SIZE": 10},
        {"API_MAX_PAGE_SIZE": True},
    ],
)
def test_page_size_settings_are_checked(settings, values):
    settings.IMAGEGEN = {**settings.IMAGEGEN, **values}
    assert "imagegen.E013" in {m.id for m in check_settings()}


def test_default_page_sizes_pass_the_checks(settings):
    assert "imagegen.E013" not in {m.id for m in check_settings()}


# Tokens: command and admin ----------------------------------------------------------


class TestTokenCommand:
    def test_create_prints_the_token_once_and_it_works(self, client, editor):
        out, err = io.StringIO(), io.StringIO()
        call_command(
            "imagegen",
            "token",
            "create",
            "--user",
            "editor",
            "--name",
            "ci",
            stdout=out,
            stderr=err,
        )
        raw = out.getvalue().strip()
        assert raw.startswith("ig_") and raw not in err.getvalue()
        token = ApiToken.objects.get()
        assert (token.user, token.name, token.expires_at) == (editor, "ci", None)
        assert client.get(JOBS, headers=bearer(raw)).status_code == 200

    def test_create_with_expiry(self, editor):
        call_command(
            "imagegen",
            "token",
            "create",
            "--user",
            "editor",
            "--name",
            "ci",
            "--expires-days",
            "30",
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
        left = ApiToken.objects.get().expires_at - timezone.now()
        assert timedelta(days=29) < left <= timedelta(days=30)

    @pytest.mark.parametrize(
        "scopes",
        [(), *[(scope,) for scope in auth.SCOPES], tuple(auth.SCOPES)],
        ids=lambda scopes: "+".join(scopes) or "none-given",
    )
    def test_create_with_scopes(self, editor, scopes):
        """Family: no ``--scope`` (every scope), each scope alone, all of them
        repeated: the token holds exactly those; an unknown scope is a usage
        error and makes no token."""
        argv = [arg for scope in scopes for arg in ("--scope", scope)]
        call_command(
            "imagegen", "token", "create", "--user", "editor", "--name", "ci", *argv,
            stdout=io.StringIO(), stderr=io.StringIO(),
        )  # fmt: skip
        assert ApiToken.objects.get().scopes == auth.sorted_scopes(scopes or auth.SCOPES)
        with pytest.raises(CommandError, match="invalid choice"):
            call_command(
                "imagegen", "token", "create", "--user", "editor", "--name", "x",
                "--scope", "admin", stdout=io.StringIO(), stderr=io.StringIO(),
            )  # fmt: skip
        assert ApiToken.objects.count() == 1

    def test_create_for_unknown_user(self, db):
        with pytest.raises(CommandError, match="No user"):
            call_command("imagegen", "token", "create", "--user", "nobody", "--name", "x")

    def test_revoke_by_prefix(self, client, editor):
        token, raw = auth.create_token(editor, "ci")
        out = io.StringIO()
        call_command("imagegen", "token", "revoke", token.prefix, stdout=out)
        assert "Revoked" in out.getvalue()
        error_of(client.get(JOBS, headers=bearer(raw)), 401, "invalid_token")
        out = io.StringIO()
        call_command("imagegen", "token", "revoke", raw, stdout=out)
        assert "already" in out.getvalue()
        with pytest.raises(CommandError):
            call_command("imagegen", "token", "revoke", "ig_unknown00")


class TestTokenAdmin:
    @pytest.fixture
    def owner(self, django_user_model):
        return make_user(django_user_model, *EDITOR, *TOKEN_PERMS, username="owner")

    def test_create_shows_the_token_once(self, client, owner, other):
        client.force_login(owner)
        url = reverse("admin:imagegen_apitoken_add")
        # A non-superuser's form has no user field: a posted one is ignored.
        response = client.post(
            url,
            {
                "name": "deploy",
                "user": other.pk,
                "scopes": ["read"],
                "expires_at_0": "",
                "expires_at_1": "",
            },
        )
        assert response.status_code == 302, response.content
        token = ApiToken.objects.get()
        assert token.user == owner
        shown = " ".join(messages_of(client.get(response["Location"])))
        raw = re.search(r"<code>(ig_[A-Za-z0-9_-]{43})</code>", shown).group(1)
        assert raw.startswith(token.prefix)
        assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest()
        # Once: the next page does not show it again.
        assert raw not in client.get(reverse("admin:imagegen_apitoken_changelist")).content.decode()
        assert client.get(JOBS, headers=bearer(raw)).status_code == 200

    def test_lists_only_own_tokens(self, client, owner, other):
        auth.create_token(owner, "mine")
        theirs, _ = auth.create_token(other, "theirs")
        client.force_login(owner)
        html = client.get(reverse("admin:imagegen_apitoken_changelist")).content.decode()
        assert "mine" in html and "theirs" not in html
        change = reverse("admin:imagegen_apitoken_change", args=[theirs.pk])
        assert client.get(change).status_code == 302  # "doesn't exist", back to the index

    def test_superuser_sees_all_and_makes_tokens_for_others(self, client, django_user_model, other):
        root = django_user_model.objects.create_superuser("root", password="password")
        auth.create_token(other, "theirs")
        client.force_login(root)
        html = client.get(reverse("admin:imagegen_apitoken_changelist")).content.decode()
        assert "theirs" in html
        response = client.post(
            reverse("admin:imagegen_apitoken_add"),
            {
                "name": "for other",
                "user": other.pk,
                "scopes": ["read"],
                "expires_at_0": "",
                "expires_at_1": "",
            },
        )
        assert response.status_code == 302
        assert ApiToken.objects.get(name="for other").user == other

    def test_revoke_action(self, client, owner, other):
        mine, raw = auth.create_token(owner, "mine")
        theirs, _ = auth.create_token(other, "theirs")
        client.force_login(owner)
        response = client.post(
            reverse("admin:imagegen_apitoken_changelist"),
            {"action": "revoke_tokens", "_selected_action": [mine.pk, theirs.pk]},
            follow=True,
        )
        assert "1 token revoked." in messages_of(response)
        assert ApiToken.objects.get(pk=mine.pk).revoked
        assert not ApiToken.objects.get(pk=theirs.pk).revoked
        error_of(client.get(JOBS, headers=bearer(raw)), 401, "invalid_token")

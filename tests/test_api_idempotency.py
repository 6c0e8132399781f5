"""``Idempotency-Key`` in the API: bound to its user and to the API.

Families:

- an earlier job holding key ``k`` with the same settings, made by (the
  caller, another user, no user) x through (the API, the admin's form,
  Wagtail, a retry, the service's default) -> the caller's repeat with ``k``
  answers 200 with that job iff the caller made it through the API; in every
  other case 201 with a new job of the caller's, the earlier job untouched;
- two users sending the same key (same body, different bodies; either one
  first), each twice -> each gets a job of their own (201), and their repeat
  returns it (200): the other user's never;
- one user repeating a key through the same token, another token of theirs,
  or their session -> the same job (keys are per user, not per token); with
  another body -> 409 ``idempotency_conflict``;
- one user's two requests with one key at the same instant (PostgreSQL,
  threads) -> one job, both answers name it: 201 for the request that made
  it, 200 for the other, as a repeat after it would get (runs of several
  candidates: tests/test_api_candidates.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from imagegen.api import auth
from imagegen.models import GenerationJob
from imagegen.services.jobs import idempotency_scope

from .conftest import require_postgres
from .factories import make_editor, make_job
from .test_races import run_together

# On every database: the SQLite pass runs them too.
pytestmark = pytest.mark.services

JOBS = reverse("imagegen:api-jobs")
PROMPT = "a kite over the sea"


def bearer(user: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.create_token(user, 'tests')[1]}"}


def post(client: Any, headers: dict[str, str], key: str = "k", prompt: str = PROMPT) -> Any:
    return client.post(
        JOBS,
        {"prompt": prompt},
        content_type="application/json",
        headers={**headers, "Idempotency-Key": key},
    )


@pytest.fixture
def alice(django_user_model: Any) -> Any:
    return make_editor(django_user_model, username="alice")


@pytest.fixture
def bob(django_user_model: Any) -> Any:
    return make_editor(django_user_model, username="bob")


@pytest.mark.django_db
@pytest.mark.parametrize("source", ["api", "admin", "wagtail", "retry", "service"])
@pytest.mark.parametrize("owner", ["caller", "other", "nobody"])
def test_a_key_finds_only_the_callers_own_api_job(client, alice, bob, owner, source):
    maker = {"caller": alice, "other": bob, "nobody": None}[owner]
    earlier = make_job(
        maker,
        prompt=PROMPT,
        idempotency_key="k",
        idempotency_scope=idempotency_scope(maker, source),
    )
    response = post(client, bearer(alice))
    if owner == "caller" and source == "api":
        assert response.status_code == 200, response.content
        assert response.json()["id"] == str(earlier.pk)
        assert GenerationJob.objects.count() == 1
        return
    assert response.status_code == 201, response.content
    assert response.json()["id"] != str(earlier.pk)
    assert response.json()["created_by"] == "alice"
    made = GenerationJob.objects.get(pk=response.json()["id"])
    assert (made.idempotency_scope, made.idempotency_key) == (f"api:{alice.pk}", "k")
    earlier_now = GenerationJob.objects.get(pk=earlier.pk)
    assert (earlier_now.created_by, earlier_now.idempotency_scope) == (
        maker,
        idempotency_scope(maker, source),
    )


@pytest.mark.django_db
@pytest.mark.parametrize("same_body", [True, False], ids=["same-body", "other-body"])
@pytest.mark.parametrize("first", ["alice", "bob"])
def test_two_users_with_one_key_each_get_their_own_job(client, alice, bob, first, same_body):
    users = {"alice": alice, "bob": bob}
    order = [first, "bob" if first == "alice" else "alice"]
    prompts = {"alice": PROMPT, "bob": PROMPT if same_body else "a kite at night"}
    headers = {name: bearer(user) for name, user in users.items()}
    made = {}
    for name in order:
        response = post(client, headers[name], prompt=prompts[name])
        assert response.status_code == 201, response.content
        assert response.json()["created_by"] == name
        made[name] = response.json()["id"]
    assert made["alice"] != made["bob"]
    for name in order:
        again = post(client, headers[name], prompt=prompts[name])
        assert (again.status_code, again.json()["id"]) == (200, made[name])
    assert GenerationJob.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("via", ["same-token", "another-token", "session"])
def test_one_user_one_key_one_job(client, alice, via):
    first_headers = bearer(alice)
    first = post(client, first_headers)
    assert first.status_code == 201
    if via == "session":
        client.force_login(alice)
        headers: dict[str, str] = {}
    else:
        headers = first_headers if via == "same-token" else bearer(alice)
    again = post(client, headers)
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
    conflict = post(client, headers, prompt="something else")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_conflict"
    assert GenerationJob.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_repeats_make_one_job(alice, monkeypatch):
    require_postgres("concurrent transactions on one unique key")
    # Only the saving races here: nothing should reach a broker.
    monkeypatch.setattr("imagegen.services.jobs.enqueue", lambda *args, **kwargs: None)
    headers = bearer(alice)
    answers = run_together([lambda: post(Client(), headers) for _ in range(2)])
    assert sorted(answer.status_code for answer in answers) == [200, 201]
    first, second = (answer.json() for answer in answers)
    assert first["id"] == second["id"]
    assert GenerationJob.objects.count() == 1

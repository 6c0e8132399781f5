"""Candidates in the JSON API: ``POST /jobs/`` with ``candidates`` and ``GET /runs/<id>/``.

Families:

- every invalid ``candidates`` (0, 5, -1, "two", "2", true, false, null, 2.0,
  1.5, a list, an object) -> 400 ``validation_error`` naming ``candidates``,
  and no job or run is made;
- candidates 1..4 x a daily budget exactly at the whole run's price or one
  ten-thousandth under it -> at the price: 201, one the job exactly as
  without ``candidates`` (no run), more a run of that many jobs with one
  set of settings and its total price, its ``Location`` read back by
  ``GET /runs/<id>/`` as the same run; under it: 402 ``budget_exceeded``
  and nothing made;
- a repeat with the same ``Idempotency-Key`` (candidates 1..4): the same
  body -> 200 with the same job or run, nothing new; another count or
  another prompt -> 409 ``idempotency_conflict``, nothing new;
- two requests with one key at the same instant (PostgreSQL, threads;
  candidates 1 and 3) -> one 201 and one 200 naming the same job or run,
  and one run's jobs only;
- reading a run as (its maker, another editor, another with
  ``view_all_jobs``, a user without the view permission, a token without
  the read scope) and ids that name nothing here (unknown, malformed, a
  bulk fill) -> 200 for the maker and ``view_all_jobs``, 404 for the other
  editor and for those ids, 403 for the rest; a comparison made in the
  admin reads as kind ``compare``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from imagegen.api import auth
from imagegen.models import GenerationJob, GenerationRun
from imagegen.services import runs
from imagegen.services.runs import Comparison

from .conftest import require_postgres
from .factories import make_editor, make_job, make_user, set_budgets
from .test_races import run_together

# On every database: the SQLite pass runs them too.
pytestmark = pytest.mark.services

JOBS = reverse("imagegen:api-jobs")
PROMPT = "a lighthouse at dusk, watercolour"
#: The sandbox's 1k price in the test settings.
UNIT = Decimal("0.02")
SHARED = ("prompt", "mode", "resolution", "aspect_ratio", "provider", "model", "reference_urls")
RUN_FIELDS = {
    "id",
    "url",
    "kind",
    "created_by",
    "created_at",
    "estimated_cost",
    "currency",
    "jobs",
}


def bearer(user: Any, scopes: tuple[str, ...] = tuple(auth.SCOPES)) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.create_token(user, 'tests', scopes=scopes)[1]}"}


def post(client: Any, headers: dict[str, str], key: str | None = None, **body: Any) -> Any:
    body.setdefault("prompt", PROMPT)
    if key is not None:
        headers = {**headers, "Idempotency-Key": key}
    return client.post(JOBS, body, content_type="application/json", headers=headers)


def run_url(run_id: Any) -> str:
    return reverse("imagegen:api-run", kwargs={"run_id": run_id})


def settled(body: dict[str, Any]) -> dict[str, Any]:
    """An answer without ``progress``, which follows the clock between two reads."""
    if "jobs" in body:
        return {**body, "jobs": [settled(job) for job in body["jobs"]]}
    return {name: value for name, value in body.items() if name != "progress"}


def nothing_made() -> bool:
    return not GenerationJob.objects.exists() and not GenerationRun.objects.exists()


@pytest.fixture
def alice(django_user_model: Any) -> Any:
    return make_editor(django_user_model, username="alice")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value", [0, 5, -1, "two", "2", True, False, None, 2.0, 1.5, [2], {"n": 2}]
)
def test_invalid_candidates_are_refused_and_nothing_is_made(client, alice, value):
    response = post(client, bearer(alice), candidates=value)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    (reason,) = error["fields"]["candidates"]
    assert "candidates" in reason
    assert nothing_made()


@pytest.mark.django_db
@pytest.mark.parametrize("margin,made", [(Decimal(0), True), (Decimal("-0.0001"), False)])
@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_candidates_against_the_budget(client, alice, settings, count, margin, made):
    set_budgets(settings, USER_DAILY=str(UNIT * count + margin))
    headers = bearer(alice)
    response = post(client, headers, candidates=count)
    if not made:
        assert response.status_code == 402, response.content
        assert response.json()["error"]["code"] == "budget_exceeded"
        assert nothing_made()
        return
    assert response.status_code == 201, response.content
    body = response.json()
    assert response["Location"] == body["url"]
    if count == 1:
        # Exactly today's answer: the job, as without "candidates".
        job = GenerationJob.objects.get()
        assert body["id"] == str(job.pk) and job.run_id is None
        assert body["url"].endswith(reverse("imagegen:api-job", kwargs={"job_id": job.pk}))
        set_budgets(settings)
        plain = post(client, headers).json()
        assert set(plain) == set(body)
        assert {k: v for k, v in plain.items() if k in SHARED} == {
            k: v for k, v in body.items() if k in SHARED
        }
        assert not GenerationRun.objects.exists()
        return
    run = GenerationRun.objects.get()
    assert set(body) == RUN_FIELDS
    assert (body["id"], body["kind"], body["created_by"]) == (str(run.pk), "candidates", "alice")
    assert body["url"].endswith(run_url(run.pk))
    assert Decimal(body["estimated_cost"]) == UNIT * count
    assert len(body["jobs"]) == count == run.jobs.count() == GenerationJob.objects.count()
    assert {job["id"] for job in body["jobs"]} == {
        str(pk) for pk in run.jobs.values_list("pk", flat=True)
    }
    shared = [{name: job[name] for name in SHARED} for job in body["jobs"]]
    assert all(values == shared[0] for values in shared) and shared[0]["prompt"] == PROMPT
    assert settled(client.get(body["url"], headers=headers).json()) == settled(body)


@pytest.mark.django_db
@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_a_repeated_key_returns_the_same_job_or_run(client, alice, count):
    headers = bearer(alice)
    first = post(client, headers, key="k", candidates=count)
    assert first.status_code == 201, first.content
    made = GenerationJob.objects.count(), GenerationRun.objects.count()
    again = post(client, headers, key="k", candidates=count)
    assert again.status_code == 200, again.content
    assert settled(again.json()) == settled(first.json())
    other_count = 2 if count == 1 else 1
    for changed in ({"candidates": other_count}, {"candidates": count, "prompt": "a kite"}):
        conflict = post(client, headers, key="k", **changed)
        assert conflict.status_code == 409, conflict.content
        assert conflict.json()["error"]["code"] == "idempotency_conflict"
    assert (
        (GenerationJob.objects.count(), GenerationRun.objects.count())
        == made
        == (count, int(count > 1))
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("count", [1, 3])
def test_concurrent_repeats_make_one_job_or_run(alice, monkeypatch, count):
    require_postgres("concurrent transactions on one unique key")
    # Only the saving races here: nothing should reach a broker.
    monkeypatch.setattr("imagegen.services.jobs.enqueue", lambda *args, **kwargs: None)
    headers = bearer(alice)
    answers = run_together(
        [lambda: post(Client(), headers, key="same", candidates=count) for _ in range(2)]
    )
    assert sorted(answer.status_code for answer in answers) == [200, 201], [
        answer.content for answer in answers
    ]
    bodies = [answer.json() for answer in answers]
    assert bodies[0]["id"] == bodies[1]["id"]
    assert GenerationJob.objects.count() == count
    assert GenerationRun.objects.count() == int(count > 1)
    if count > 1:
        assert {job["id"] for job in bodies[0]["jobs"]} == {job["id"] for job in bodies[1]["jobs"]}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "reader,status",
    [
        ("maker", 200),
        ("other", 404),
        ("sees-all", 200),
        ("no-view", 403),
        ("no-read-scope", 403),
    ],
)
def test_who_reads_a_run(client, alice, django_user_model, reader, status):
    started = runs.start({"prompt": PROMPT}, candidates=2, user=alice)
    headers = {
        "maker": lambda: bearer(alice),
        "other": lambda: bearer(make_editor(django_user_model)),
        "sees-all": lambda: bearer(make_editor(django_user_model, "imagegen.view_all_jobs")),
        "no-view": lambda: bearer(make_user(django_user_model, "imagegen.add_generationjob")),
        "no-read-scope": lambda: bearer(alice, scopes=("generate", "cancel")),
    }[reader]()
    response = client.get(run_url(started.run.pk), headers=headers)
    assert response.status_code == status, response.content
    if status == 200:
        assert {job["id"] for job in response.json()["jobs"]} == {str(j.pk) for j in started.jobs}


@pytest.mark.django_db
@pytest.mark.parametrize("which", ["unknown", "malformed", "fill"])
def test_ids_that_name_no_run_here_are_404(client, alice, which):
    if which == "fill":
        fill = GenerationRun.objects.create(kind=GenerationRun.Kind.FILL, created_by=alice)
        GenerationJob.objects.filter(pk=make_job(alice).pk).update(run=fill)
        run_id: Any = fill.pk
    else:
        run_id = "6f1c2d7e-0000-4000-8000-000000000000" if which == "unknown" else "not-a-uuid"
    response = client.get(run_url(run_id), headers=bearer(alice))
    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_a_comparison_reads_as_one(client, alice):
    started = runs.start(
        {"prompt": PROMPT}, compare=Comparison("resolution", ("1k", "2k")), user=alice
    )
    body = client.get(run_url(started.run.pk), headers=bearer(alice)).json()
    assert body["kind"] == "compare"
    assert sorted(job["resolution"] for job in body["jobs"]) == ["1k", "2k"]
    assert Decimal(body["estimated_cost"]) == Decimal("0.06")

"""API token scopes: every operation of the route table needs its scope.

The operations are read from the route table itself (``imagegen.api.views.api``),
so an operation added later is covered without touching this file (and cannot
be declared without a scope at all). Families:

- every authenticated operation x the token's scopes: none, each single scope,
  all of them -> allowed (2xx) iff the operation's scope is among them, else
  403 ``insufficient_scope`` naming the scope, with RFC 6750's challenge, and
  nothing changed;
- every authenticated operation through a session -> scopes play no part
  (Django's permissions decide);
- declaring an operation: no scope, an empty or unknown one, a wrong-case one
  -> refused at declaration; a public operation with a scope -> refused;
- the OpenAPI document: every authenticated operation requires its scope of
  ``bearerAuth`` (the public one requires nothing), and the scheme lists
  every scope;
- ``auth.create_token``: every subset of the scopes is stored in one order;
  an unknown scope is refused.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from imagegen.api import auth
from imagegen.api.openapi import document
from imagegen.api.routing import Api, Operation
from imagegen.api.views import api
from imagegen.choices import Status
from imagegen.models import ApiToken, GenerationJob, GenerationRun
from project.articles.models import Article

from .factories import make_editor, make_job

# On every database: the SQLite pass runs them too.
pytestmark = [pytest.mark.services, pytest.mark.django_db]

AUTHENTICATED = [op for op in api.operations if op.authenticated]
#: The token scope sets of the family: none, each one alone, all.
SUBSETS = [(), *((scope,) for scope in auth.SCOPES), tuple(auth.SCOPES)]


def _op_id(op: Operation) -> str:
    return op.operation_id


@pytest.fixture
def robot(django_user_model: Any) -> Any:
    """A user whose permissions allow every operation on every job."""
    return make_editor(
        django_user_model,
        "imagegen.view_all_jobs",
        "imagegen.cancel_any_job",
        "articles.change_article",
        username="robot",
    )


@pytest.fixture(autouse=True)
def declared(settings: Any) -> None:
    """A declared field, for the bulk fill operations."""
    settings.IMAGEGEN = {
        **settings.IMAGEGEN,
        "IMAGE_FIELDS": {"articles.Article.cover": {"prompt": "Photo: {title}"}},
    }


def call(client: Any, op: Operation, job: GenerationJob, headers: dict[str, str]) -> Any:
    """Request ``op`` as documented: path parameters filled in, the body
    schema's example as the body."""
    kwargs = {}
    for param in op.parameters:
        if param.location != "path":
            continue
        if param.name == "run_id":
            # A bulk fill for getFill, a run of candidates for getRun.
            fill = op.operation_id == "getFill"
            kwargs[param.name] = GenerationRun.objects.create(
                kind=GenerationRun.Kind.FILL if fill else GenerationRun.Kind.CANDIDATES,
                created_by=job.created_by,
                target_content_type=ContentType.objects.get_for_model(Article),
                target_field="cover",
            ).pk
            continue
        if param.name != "job_id":
            pytest.fail(f"Teach this test to fill the path parameter {param.name!r} of {op}.")
        kwargs[param.name] = job.pk
    url = reverse(f"imagegen:{op.name}", kwargs=kwargs)
    if op.operation_id == "createFill":
        # The example names a field of a site's model; this one is declared here.
        # A dry run: the operation changes nothing, what the family checks.
        body = {"field": "articles.Article.cover", "dry_run": True}
        return client.generic(op.method, url, json.dumps(body), "application/json", headers=headers)
    if op.body:
        body = document()["components"]["schemas"][op.body]["examples"][0]
        return client.generic(op.method, url, json.dumps(body), "application/json", headers=headers)
    return client.generic(op.method, url, headers=headers)


def state() -> list[tuple[Any, str]]:
    """Every job and its status: what an operation could change."""
    return list(GenerationJob.objects.order_by("pk").values_list("pk", "status"))


@pytest.mark.parametrize("scopes", SUBSETS, ids=lambda s: "+".join(s) or "none")
@pytest.mark.parametrize("op", AUTHENTICATED, ids=_op_id)
def test_every_operation_needs_its_scope(client, robot, op, scopes):
    _token, raw = auth.create_token(robot, "scoped", scopes=scopes)
    job = make_job(robot, status=Status.QUEUED)
    before = state()
    response = call(client, op, job, {"Authorization": f"Bearer {raw}"})
    if op.scope in scopes:
        assert 200 <= response.status_code < 300, response.content
        return
    assert response.status_code == 403, response.content
    error = response.json()["error"]
    assert error["code"] == "insufficient_scope"
    assert error["scope"] == op.scope
    assert f"“{op.scope}”" in error["message"]
    assert response["WWW-Authenticate"] == (
        f'Bearer realm="imagegen", error="insufficient_scope", scope="{op.scope}"'
    )
    assert state() == before


@pytest.mark.parametrize("op", AUTHENTICATED, ids=_op_id)
def test_sessions_have_no_scopes(client, robot, op):
    """The site's own login: Django's permissions decide, as before scopes."""
    client.force_login(robot)
    response = call(client, op, make_job(robot, status=Status.QUEUED), {})
    assert 200 <= response.status_code < 300, response.content


def test_every_operation_of_the_table_has_a_known_scope():
    assert AUTHENTICATED
    for op in api.operations:
        if op.authenticated:
            assert op.scope in auth.SCOPES, op
        else:
            assert op.scope is None, op
    # Each scope guards something: none is dead.
    assert {op.scope for op in AUTHENTICATED} == set(auth.SCOPES)


def _handler(request: Any) -> Any:
    raise AssertionError("never called")


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"scope": None},
        {"scope": ""},
        {"scope": "admin"},
        {"scope": "READ"},
        {"authenticated": False, "scope": "read"},
    ],
    ids=["missing", "none", "empty", "unknown", "wrong-case", "public-with-scope"],
)
def test_an_operation_cannot_be_declared_without_a_valid_scope(options):
    table = Api()
    register = table.operation("GET", "x/", name="x", operation_id="x", summary="x", **options)
    with pytest.raises(ValueError, match="scope"):
        register(_handler)
    assert table.operations == []


def test_the_openapi_document_declares_the_scopes():
    doc = document()
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert list(scheme["x-scopes"]) == list(auth.SCOPES)
    for name in auth.SCOPES:
        assert name in scheme["description"]
    declared = {
        item[method]["operationId"]: item[method]["security"]
        for item in doc["paths"].values()
        for method in item
    }
    for op in api.operations:
        expected = [{"bearerAuth": [op.scope]}, {"sessionAuth": []}] if op.authenticated else []
        assert declared[op.operation_id] == expected, op.operation_id
    error = doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]
    assert "insufficient_scope" in error["code"]["enum"]
    assert error["scope"]["enum"] == list(auth.SCOPES)


@pytest.mark.parametrize(
    "scopes",
    [
        combination
        for size in range(len(auth.SCOPES) + 1)
        for combination in itertools.permutations(auth.SCOPES, size)
    ],
    ids=lambda s: "+".join(s) or "none",
)
def test_create_token_stores_any_subset_in_one_order(robot, scopes):
    token, _raw = auth.create_token(robot, "t", scopes=[*scopes, *scopes])
    stored = ApiToken.objects.get(pk=token.pk).scopes
    assert stored == [scope for scope in auth.SCOPES if scope in scopes]


@pytest.mark.parametrize("scopes", [["admin"], ["read", "write"], ["Read"], [""]])
def test_create_token_refuses_unknown_scopes(robot, scopes):
    with pytest.raises(ValueError, match="Unknown scopes"):
        auth.create_token(robot, "t", scopes=scopes)
    assert not ApiToken.objects.exists()


def test_create_token_defaults_to_every_scope(robot):
    """The command line's tokens (and tokens made before scopes) may do everything."""
    token, _raw = auth.create_token(robot, "t")
    assert token.scopes == list(auth.SCOPES)

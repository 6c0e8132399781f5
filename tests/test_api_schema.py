"""The OpenAPI document against the live endpoints, with schemathesis.

Requests generated from the served document (valid ones, then invalid
ones) go over HTTP to the live test server with a token of a user who may
do everything; every answer must be a documented status with a documented
content type, body and headers, and never a 5xx. Creating a job only saves
it: the submission that would be enqueued after commit is dropped here, so
no broker or worker is involved.

schemathesis is in the ``dev`` extra; without it these tests are skipped,
except under CI=true, where they fail.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest
from django.urls import reverse

from imagegen.api import auth
from imagegen.choices import Status
from imagegen.services import runs

from .conftest import unavailable
from .factories import make_editor, make_job

OPENAPI = reverse("imagegen:api-openapi")
#: Generated requests per operation and mode: enough to reach every field and
#: status at least once, while the whole module stays well under a minute.
EXAMPLES = 25


def _schemathesis() -> Any:
    try:
        return importlib.import_module("schemathesis")
    except ImportError:
        unavailable("schemathesis is not installed (pip install -e .[dev])")


@pytest.fixture
def api(live_server: Any, transactional_db: Any, django_user_model: Any, monkeypatch: Any) -> Any:
    """The document as served, a token that may do everything, and two jobs."""
    schemathesis = _schemathesis()
    # Job creation saves the job and enqueues its submission after commit:
    # nothing here should reach a broker.
    monkeypatch.setattr("imagegen.services.jobs.enqueue", lambda *args, **kwargs: None)
    robot = make_editor(
        django_user_model, "imagegen.view_all_jobs", "imagegen.cancel_any_job", username="robot"
    )
    raw = auth.create_token(robot, "schemathesis")[1]
    schema = schemathesis.openapi.from_url(live_server.url + OPENAPI)
    return {
        "schema": schema,
        "headers": {"Authorization": f"Bearer {raw}"},
        "queued": make_job(robot, status=Status.QUEUED),
        "done": make_job(robot, status=Status.SUCCEEDED, images=2),
        "run": runs.start({"prompt": "a kite"}, candidates=2, user=robot).run,
    }


def checks() -> list[Callable[..., Any]]:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    return [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        response_headers_conformance,
    ]


def run(operation: Any, mode: Any, headers: dict[str, str], **fixed: Any) -> None:
    """Send EXAMPLES generated requests for ``operation`` and check each answer."""
    from hypothesis import HealthCheck, Phase, given, settings

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    def test(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=checks())

    test()


def operations(schema: Any) -> dict[str, Any]:
    found = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        found[operation.definition.raw["operationId"]] = operation
    return found


OPERATIONS = ["createJob", "listJobs", "getJob", "cancelJob", "getRun", "createFill", "getFill"]


def test_every_operation_is_tested(api):
    # schemathesis leaves out the operation that serves the document it was
    # loaded from (getOpenApiDocument); tests/test_api.py checks that one.
    assert sorted(operations(api["schema"])) == sorted(OPERATIONS)


@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize("operation_id", OPERATIONS)
def test_operation_conforms(api, operation_id, mode):
    from schemathesis import GenerationMode

    run(operations(api["schema"])[operation_id], GenerationMode(mode), api["headers"])


def test_an_existing_run_conforms(api):
    """Random ids find no run (404); this reads a real one (200 checked too)."""
    from schemathesis import GenerationMode

    operation = operations(api["schema"])["getRun"]
    run(
        operation,
        GenerationMode.POSITIVE,
        api["headers"],
        path_parameters={"run_id": str(api["run"].pk)},
    )


@pytest.mark.parametrize("job", ["queued", "done"])
@pytest.mark.parametrize("operation_id", ["getJob", "cancelJob"])
def test_existing_jobs_conform(api, operation_id, job):
    """Random ids find nothing (404); these read and cancel real jobs, the
    finished one with images (200 and 409 bodies are checked too)."""
    from schemathesis import GenerationMode

    operation = operations(api["schema"])[operation_id]
    run(
        operation,
        GenerationMode.POSITIVE,
        api["headers"],
        path_parameters={"job_id": str(api[job].pk)},
    )

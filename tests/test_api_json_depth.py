"""Deeply nested JSON sent to the API: always a 400 in the API's error shape.

Python's ``json`` recurses once per level, so a few kilobytes of ``[`` used
to be one ``RecursionError`` away from a 500. Families:

- the body of ``createJob``: nesting made of arrays, of objects, of both
  alternating, each bare and inside an otherwise valid job (as the value of
  ``reference_urls``) x 10, 100, 10,000 and 100,000 levels, and the
  ``MAX_JSON_DEPTH`` bound itself and one past it -> 400 (past the bound:
  ``malformed_request`` saying it is nested too deep; within it: the body's
  own fault, ``malformed_request`` or ``validation_error``), no job made;
- the same bound under another ``MAX_JSON_DEPTH`` (4): the setting decides;
- the list's ``cursor`` (base64 of JSON) nested in each shape x the same
  depths -> 400 ``validation_error`` on ``cursor``.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.urls import reverse

from imagegen import conf
from imagegen.api import auth
from imagegen.models import GenerationJob

# On every database: the SQLite pass runs them too.
pytestmark = [pytest.mark.services, pytest.mark.django_db]

JOBS = reverse("imagegen:api-jobs")
MAX = conf.DEFAULTS["MAX_JSON_DEPTH"]
DEPTHS = [10, 100, 10_000, 100_000, MAX, MAX + 1]
SHAPES = ["arrays", "objects", "mixed"]


def nested(shape: str, depth: int) -> str:
    """A JSON document of ``depth`` arrays and/or objects nested in one another."""
    if shape == "arrays":
        return "[" * depth + "]" * depth
    if shape == "objects":
        return '{"a":' * depth + "1" + "}" * depth
    opens = ['{"a":' if level % 2 else "[" for level in range(depth)]
    closes = ["}" if level % 2 else "]" for level in reversed(range(depth))]
    return "".join(opens) + "1" + "".join(closes)


def body(shape: str, depth: int, wrapped: bool) -> str:
    """The nested document alone, or as a field of a job (one level more)."""
    if not wrapped:
        return nested(shape, depth)
    return '{"prompt": "a red bicycle", "reference_urls": ' + nested(shape, depth - 1) + "}"


@pytest.fixture
def headers(editor: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.create_token(editor, 'tests')[1]}"}


def api_error(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.content[:500]
    assert response["Content-Type"] == "application/json"
    payload = response.json()
    assert set(payload) == {"error"}
    return payload["error"]


@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "in-a-job"])
@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("shape", SHAPES)
def test_nested_bodies_are_400(client, headers, shape, depth, wrapped):
    response = client.post(
        JOBS, body(shape, depth, wrapped), content_type="application/json", headers=headers
    )
    error = api_error(response)
    if depth > MAX:
        assert error["code"] == "malformed_request"
        assert f"nested more than {MAX} levels deep" in error["message"]
    else:
        # Parsed: refused for what it says, not for how deep it is.
        assert error["code"] in ("malformed_request", "validation_error")
        assert "nested" not in error["message"]
    assert not GenerationJob.objects.exists()


@pytest.mark.parametrize("depth", [3, 4, 5])
@pytest.mark.parametrize("shape", SHAPES)
def test_the_bound_is_the_setting(client, headers, settings, shape, depth):
    settings.IMAGEGEN = {**settings.IMAGEGEN, "MAX_JSON_DEPTH": 4}
    response = client.post(
        JOBS, nested(shape, depth), content_type="application/json", headers=headers
    )
    error = api_error(response)
    assert ("nested more than 4 levels deep" in error["message"]) == (depth > 4)


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("shape", SHAPES)
def test_nested_cursors_are_400(client, headers, shape, depth):
    cursor = base64.urlsafe_b64encode(nested(shape, depth).encode()).decode().rstrip("=")
    error = api_error(client.get(JOBS, {"cursor": cursor}, headers=headers))
    assert error["code"] == "validation_error"
    assert list(error["fields"]) == ["cursor"]

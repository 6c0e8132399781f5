"""The JSON API and the job status JSON while the database is unavailable:
a JSON 503 with ``Retry-After``, in each one's error shape, never Django's
HTML error page; and answers as usual once it is back.

The database is cut for real: the live server's request threads reach
PostgreSQL through a TCP proxy (``tests/faults/proxy.py``) that drops every
connection and refuses new ones, as in ``tests/faults/test_servers_down.py``;
this test's own thread keeps its direct connection.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse

from imagegen.api import auth
from imagegen.api.outage import RETRY_AFTER
from imagegen.api.routing import Operation
from imagegen.api.views import api
from imagegen.choices import Status

from .conftest import require_postgres
from .factories import make_job
from .faults.proxy import TCPProxy

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

OPERATIONS = {op.operation_id: op for op in api.operations}


@pytest.fixture(params=[False, True], ids=["autocommit", "ATOMIC_REQUESTS"])
def database_proxy(request: pytest.FixtureRequest, live_server: Any) -> Iterator[TCPProxy]:
    """The live server's requests reach the database through a proxy, with
    ``ATOMIC_REQUESTS`` off or on (where Django opens a transaction before
    the view runs)."""
    require_postgres("a database connection over TCP to cut")
    original = connections.settings["default"]
    proxy = TCPProxy(original["HOST"] or "127.0.0.1", int(original["PORT"] or 5432))
    # A new dict: this thread's open connection keeps its settings; the live
    # server's request threads open theirs through the proxy.
    connections.settings["default"] = {
        **original,
        "HOST": "127.0.0.1",
        "PORT": str(proxy.port),
        "ATOMIC_REQUESTS": request.param,
    }
    try:
        yield proxy
    finally:
        connections.settings["default"] = original
        proxy.close()


@pytest.fixture(params=["token", "session"])
def caller(request: pytest.FixtureRequest, editor: Any, live_server: Any) -> Iterator[httpx.Client]:
    """An HTTP client to the live server acting as the editor, by a bearer
    token or by a session cookie (with a CSRF token for unsafe methods)."""
    headers: dict[str, str] = {}
    cookies: dict[str, str] = {}
    if request.param == "token":
        headers["Authorization"] = f"Bearer {auth.create_token(editor, 'outage')[1]}"
    else:
        client = Client()
        client.force_login(editor)
        csrf = secrets.token_hex(16)  # an unmasked 32-character secret, as the cookie holds
        cookies = {"sessionid": client.cookies["sessionid"].value, "csrftoken": csrf}
        headers["X-CSRFToken"] = csrf
    with httpx.Client(
        base_url=live_server.url, headers=headers, cookies=cookies, timeout=20
    ) as client:
        yield client


#: A declared field of the test app (tests/content_app) the fill operations fill.
FIELD = "imagegen_content_tests.Article.cover"
#: Each operation's body (the others: none, or a job's).
BODIES = {"createFill": {"field": FIELD}}


@pytest.fixture
def fillable(settings: Any, imagegen_settings: dict[str, Any], editor: Any) -> Any:
    """The editor may fill the test app's Article covers (declared, the
    model's change permission, one article), and has a fill run of their own."""
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    from imagegen.models import GenerationRun
    from tests.content_app.models import Article

    settings.IMAGEGEN = {**imagegen_settings, "IMAGE_FIELDS": {FIELD: {"prompt": "{title}"}}}
    editor.user_permissions.add(
        Permission.objects.get(
            content_type__app_label="imagegen_content_tests", codename="change_article"
        )
    )
    Article.objects.create(title="A heron")
    return GenerationRun.objects.create(
        kind=GenerationRun.Kind.FILL,
        created_by=editor,
        target_content_type=ContentType.objects.get_for_model(Article),
        target_field="cover",
    )


def _call(client: httpx.Client, op: Operation, job: Any, run: Any) -> httpx.Response:
    kwargs: dict[str, Any] = {}
    if "<uuid:job_id>" in op.route:
        kwargs["job_id"] = job.pk
    if "<str:run_id>" in op.route:
        # getRun reads runs of candidates; the fill operations, the fill.
        kwargs["run_id"] = run.pk if "fill" in op.name else job.run_id
    body = BODIES.get(op.operation_id, {"prompt": "A heron in the reeds"}) if op.body else None
    return client.request(op.method, reverse(f"imagegen:{op.name}", kwargs=kwargs), json=body)


def _assert_unavailable(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Retry-After"] == str(RETRY_AFTER)
    return response.json()


@pytest.mark.parametrize("operation_id", list(OPERATIONS))
def test_every_operation_answers_json_503_while_the_database_is_down(
    operation_id: str, database_proxy: TCPProxy, caller: httpx.Client, editor: Any, fillable: Any
) -> None:
    """Family: every operation of the route table, authenticated by a token
    (its lookup needs the database) or by a session (the session and the
    user need it), with ATOMIC_REQUESTS off and on. The OpenAPI document
    needs no database and holds no data: it is served throughout. Once the
    database is back each operation gives its documented success."""
    from imagegen.models import GenerationRun

    op = OPERATIONS[operation_id]
    run = GenerationRun.objects.create(kind=GenerationRun.Kind.CANDIDATES, created_by=editor)
    job = make_job(editor, status=Status.QUEUED, run=run)

    database_proxy.cut()
    response = _call(caller, op, job, fillable)

    if op.authenticated:
        body = _assert_unavailable(response)
        assert body == {
            "error": {"code": "service_unavailable", "message": body["error"]["message"]}
        }
        assert body["error"]["message"]
        assert "no-store" in response.headers["Cache-Control"]
        assert 503 in {answer.status for answer in op.answers}  # documented in OpenAPI
    else:
        assert response.status_code == 200, response.text

    database_proxy.restore()
    response = _call(caller, op, job, fillable)

    assert response.status_code == op.answers[0].status, response.text
    assert response.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("route", ["imagegen:job-status", "admin:imagegen_generationjob_status"])
def test_job_status_json_answers_503_while_the_database_is_down(
    route: str, database_proxy: TCPProxy, live_server: Any, editor: Any
) -> None:
    """Family: the job status JSON at its own URL and at the admin's (which
    the live progress page reads, behind the admin's login check), with
    ATOMIC_REQUESTS off and on. With the database down it stays JSON
    (``{"error": ...}``, 503, Retry-After), the page keeps asking, and gets
    the status again once the database is back."""
    job = make_job(editor, status=Status.RUNNING)
    client = Client()
    client.force_login(editor)
    url = live_server.url + reverse(route, args=[job.pk])
    cookies = {"sessionid": client.cookies["sessionid"].value}

    database_proxy.cut()
    response = httpx.get(url, cookies=cookies, timeout=20)

    assert set(_assert_unavailable(response)) == {"error"}

    database_proxy.restore()
    response = httpx.get(url, cookies=cookies, timeout=20)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == Status.RUNNING

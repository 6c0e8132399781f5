"""No log record carries a callback token, whatever the answer (issue 13, Callbacks).

The token is the last segment of the callback URL; Django logs request
paths on 4xx and 5xx (``django.request``, with the request attached and the
traceback), on suspicious requests (``django.security.*``) and for every
request under runserver (``django.server``). Every record made during a
request is captured where it is made (any logger, any level, propagating
or not) and searched: message, arguments, traceback, stack, the request
attached and every other attribute, and the output of a formatter.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.servers.basehttp import WSGIRequestHandler
from django.db import OperationalError, connection
from django.test import Client
from django.urls import reverse

from imagegen import log_redaction, tokens
from imagegen.choices import Status
from imagegen.providers import get_provider
from imagegen.services import callbacks

from .factories import make_job

pytestmark = [pytest.mark.services, pytest.mark.django_db]


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    """Every record made while the test runs, at DEBUG, from any logger
    (collected as it is made: django.server does not propagate to the root)."""
    for name in (None, "django", "django.server", "imagegen"):
        caplog.set_level(logging.DEBUG, logger=name)
    made: list[logging.LogRecord] = []
    factory = logging.getLogRecordFactory()

    def collect(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        made.append(record)
        return record

    logging.setLogRecordFactory(collect)
    try:
        yield made
    finally:
        logging.setLogRecordFactory(factory)


def assert_token_in_no_record(made: list[logging.LogRecord], token: str) -> None:
    """The token (checked after the loggers' filters ran) is in no part of any record."""
    assert made, "nothing was logged: the test would prove nothing"
    for record in made:
        formatted = logging.Formatter("%(name)s %(levelname)s %(message)s").format(record)
        parts = [formatted, record.getMessage(), repr(record.args), repr(record.exc_text)]
        parts += [repr(value) for value in vars(record).values()]
        request = getattr(record, "request", None)
        if request is not None and hasattr(request, "META"):
            parts += [request.get_full_path(), *map(str, request.META.values())]
        for part in parts:
            assert token not in part, f"{record.name}: {formatted}"


@pytest.fixture
def job(imagegen_settings: Any) -> Any:
    make_job(status=Status.SUBMITTED, provider_task_id="task-other")
    return make_job(status=Status.SUBMITTED, provider_task_id="task-own")


def callback_path(job_id: Any, token: str) -> str:
    return reverse(
        "imagegen:callback", kwargs={"provider": "sandbox", "job_id": job_id, "token": token}
    )


def body(task_id: str = "task-own") -> bytes:
    data = {"taskId": task_id, "state": "processing"}
    return json.dumps({"code": 200, "data": data}).encode()


class FailingBeforeTheView:
    """A project middleware that fails on callback requests before the view runs."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        if "/callbacks/" in request.path:
            raise RuntimeError(f"middleware failed on {request.path}")
        return self.get_response(request)


class FailingAfterTheView(FailingBeforeTheView):
    """A project middleware that fails on the callback view's answer."""

    def __call__(self, request: Any) -> Any:
        response = self.get_response(request)
        if "/callbacks/" in request.path:
            raise RuntimeError(f"middleware failed on {request.path}")
        return response


def failing_parse(monkeypatch: pytest.MonkeyPatch, token: str, path: str) -> None:
    def parse(*args: Any) -> Any:
        raise ValueError(f"cannot parse the callback to {path} ({token})")

    monkeypatch.setattr(type(get_provider("sandbox")), "parse_callback", parse)


def failing_apply(monkeypatch: pytest.MonkeyPatch, token: str, path: str) -> None:
    def apply(*args: Any, **kwargs: Any) -> Any:
        raise KeyError(token)

    monkeypatch.setattr(callbacks, "apply_update", apply)


def failing_record(monkeypatch: pytest.MonkeyPatch, token: str, path: str) -> None:
    def record(*args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"cannot record {path}")

    monkeypatch.setattr(callbacks, "record_delivery", record)


def middleware(cls: type) -> Callable[..., None]:
    def install(monkeypatch: pytest.MonkeyPatch, token: str, path: str, settings: Any) -> None:
        settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.{cls.__name__}"]

    return install


def database_down(only: str = "") -> Callable[..., Any]:
    """The database refuses every statement (or those starting with ``only``)."""

    def wrapper(token: str, path: str) -> Callable[..., Any]:
        def execute(run: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            if sql.lstrip().upper().startswith(only):
                raise OperationalError(f"server closed the connection during {path}")
            return run(sql, params, many, context)

        return execute

    return wrapper


#: Every stage of the callback request made to fail, and the answer: the
#: provider's parser, applying the report, recording the delivery, the
#: database down from the start or failing the update, a project
#: middleware before and after the view (Django's handler answers those).
FAILURES = {
    "parse": (failing_parse, None, 500),
    "apply": (failing_apply, None, 500),
    "record": (failing_record, None, 500),
    "database-down": (None, database_down(), 503),
    "database-fails-the-update": (None, database_down("UPDATE"), 503),
    "middleware-before-view": (middleware(FailingBeforeTheView), None, 500),
    "middleware-after-view": (middleware(FailingAfterTheView), None, 500),
}


@pytest.mark.parametrize("stage", FAILURES)
def test_no_5xx_logs_the_token(
    job: Any,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
    records: list[logging.LogRecord],
    stage: str,
) -> None:
    """Family: FAILURES, each failure's message carrying the token or the
    path. The answer is the 5xx, and no record carries the token."""
    patch, wrapper, status = FAILURES[stage]
    token = tokens.callback_token(job.pk)
    path = callback_path(job.pk, token)
    if patch is failing_parse or patch is failing_apply or patch is failing_record:
        patch(monkeypatch, token, path)
    elif patch is not None:
        patch(monkeypatch, token, path, settings)
    client = Client(raise_request_exception=False)

    if wrapper is not None:
        with connection.execute_wrapper(wrapper(token, path)):
            response = client.post(path, body(), content_type="application/json")
    else:
        response = client.post(path, body(), content_type="application/json")

    assert response.status_code == status
    assert_token_in_no_record(records, token)
    assert any(r.levelno >= logging.ERROR for r in records)


#: Refusals anyone can provoke, and their 4xx.
REFUSALS = {
    "wrong-token": (lambda job: (job.pk, "f" * 64, body()), 403),
    "unknown-job": (lambda job: (uuid.uuid4(), tokens.callback_token(job.pk), body()), 404),
    "malformed": (lambda job: (job.pk, tokens.callback_token(job.pk), b"\x00{"), 400),
    "another-jobs-task": (
        lambda job: (job.pk, tokens.callback_token(job.pk), body("task-other")),
        409,
    ),
    "too-large": (lambda job: (job.pk, tokens.callback_token(job.pk), b"x" * 300_000), 413),
}


@pytest.mark.parametrize("refusal", REFUSALS)
def test_no_4xx_logs_the_token(job: Any, records: list[logging.LogRecord], refusal: str) -> None:
    """Family: REFUSALS, and a GET (405). Neither the token sent nor the job's is logged."""
    make, status = REFUSALS[refusal]
    job_id, token, content = make(job)
    client = Client(raise_request_exception=False)

    response = client.post(callback_path(job_id, token), content, content_type="application/json")
    assert response.status_code == status
    assert client.get(callback_path(job_id, token)).status_code == 405

    assert_token_in_no_record(records, token)
    assert_token_in_no_record(records, tokens.callback_token(job.pk))


def test_a_disallowed_host_on_a_callback_path_logs_no_token(
    job: Any, settings: Any, records: list[logging.LogRecord]
) -> None:
    """django.security.DisallowedHost attaches the request (its path) to its record."""
    settings.ALLOWED_HOSTS = ["testserver"]
    token = tokens.callback_token(job.pk)
    client = Client(raise_request_exception=False)

    response = client.post(
        callback_path(job.pk, token),
        body(),
        content_type="application/json",
        HTTP_HOST="evil.example",
    )

    assert response.status_code == 400
    assert any(r.name == "django.security.DisallowedHost" for r in records)
    assert_token_in_no_record(records, token)


@pytest.mark.parametrize("status", [200, 403, 404, 500])
def test_runserver_request_lines_log_no_token(
    job: Any, records: list[logging.LogRecord], status: int
) -> None:
    """Family: runserver's request line (django.server) for a success, 4xx
    and 5xx answer to a callback path, as its request handler logs it."""
    token = tokens.callback_token(job.pk)
    handler = WSGIRequestHandler.__new__(WSGIRequestHandler)
    handler.request = io.BytesIO()
    handler.requestline = f"POST {callback_path(job.pk, token)} HTTP/1.1"

    handler.log_request(status, 42)

    (line,) = [r for r in records if r.name == "django.server"]
    assert log_redaction.REDACTED in line.getMessage()
    assert_token_in_no_record(records, token)

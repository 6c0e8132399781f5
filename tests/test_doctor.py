"""``manage.py imagegen doctor``: each check's OK and problem lines against real
parts (the sandbox server, a Celery worker on the test broker and on kombu's
SQLAlchemy transport, the live test server, file storage and moto's S3), and
the command end to end as a shell runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from celery import Celery
from celery.schedules import crontab, schedule
from django.core import checks
from django.core.files.storage import FileSystemStorage, storages
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.urls import reverse
from django.utils import timezone

from imagegen.exceptions import PermanentError, TransientError
from imagegen.health import celery_app
from imagegen.health.callbacks import check_callbacks
from imagegen.health.doctor import check_system, run_doctor
from imagegen.health.files import check_storage
from imagegen.health.findings import FAIL, INFO, OK, WARN, Finding
from imagegen.health.probe import ANSWER
from imagegen.health.processes import check_broker, check_database, check_sweeper, check_worker
from imagegen.health.providers import check_provider
from imagegen.models import Heartbeat
from imagegen.providers.base import Provider
from imagegen.sandbox import SandboxConfig, SandboxServer
from imagegen.services import health

from .conftest import S3_BUCKET, require_service

ROOT = Path(__file__).resolve().parent.parent
#: A port nothing listens on (the discard port, closed on test machines).
CLOSED = "127.0.0.1:9"

#: The urlconf of a site that forgot imagegen's URLs (ROOT_URLCONF = __name__).
urlpatterns: list = []


def project() -> Celery:
    from project.celery import app

    return app


# --- the report ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "failed"), [(OK, False), (INFO, False), (WARN, False), (FAIL, True)]
)
def test_only_fail_lines_fail(level: str, failed: bool) -> None:
    finding = Finding("broker", level, "text.")
    assert finding.failed is failed
    assert finding.line().split() == [level, "broker:", "text."]


# --- Django's system checks ---------------------------------------------------------------


def test_system_checks_map_to_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Family: no imagegen message (one OK line), an error (FAIL), a warning
    (WARN), a message of another app and an info (left out)."""
    found: list[checks.CheckMessage] = []
    monkeypatch.setattr(checks, "run_checks", lambda: found)
    assert [f.level for f in check_system()] == [OK]
    found[:] = [
        checks.Error("broken", hint="fix it", id="imagegen.E099"),
        checks.Warning("odd", id="imagegen.W099"),
        checks.Error("not ours", id="admin.E001"),
        checks.Info("fine", id="imagegen.I001"),
    ]
    lines = [(f.level, f.text) for f in check_system()]
    assert lines == [(FAIL, "imagegen.E099 broken (fix it)"), (WARN, "imagegen.W099 odd")]


@pytest.mark.django_db
def test_a_real_settings_error_is_a_fail_line(settings: Any) -> None:
    settings.IMAGEGEN = {**settings.IMAGEGEN, "NOT_A_SETTING": 1}
    failed = [f for f in check_system() if f.failed]
    assert any("NOT_A_SETTING" in f.text for f in failed), failed


# --- database ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_database_ok_then_an_unapplied_migration_fails() -> None:
    assert check_database().level == OK
    # The latest one: a plan towards applied leaves never looks at their ancestors.
    latest = MigrationLoader(connection).graph.leaf_nodes("imagegen")[0]
    MigrationRecorder(connection).record_unapplied(*latest)
    finding = check_database()
    assert finding.failed
    assert "1 migration(s) not applied: run `manage.py migrate`" in finding.text


# --- broker --------------------------------------------------------------------------------


def test_broker_reachable(settings: Any) -> None:
    require_service("broker", settings.CELERY_BROKER_URL)
    finding = check_broker(project(), timeout=5)
    assert finding.level == OK
    assert finding.text.startswith(f"connected to {settings.TEST_BROKER}")


@pytest.mark.parametrize(
    "url",
    [f"redis://{CLOSED}/0", f"amqp://guest:secret@{CLOSED}//"],
    ids=["redis", "amqp-with-password"],
)
def test_broker_unreachable_is_a_fail_line_without_the_password(url: str) -> None:
    finding = check_broker(Celery("elsewhere", broker=url, set_as_current=False), timeout=2)
    assert finding.failed
    assert "cannot connect to" in finding.text
    assert "start the broker or fix CELERY_BROKER_URL" in finding.text
    assert "secret" not in finding.text


def test_no_broker_url_and_no_app_are_fail_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    unconfigured = check_broker(Celery("bare", set_as_current=False), timeout=2)
    assert unconfigured.failed and "set CELERY_BROKER_URL" in unconfigured.text
    no_app = check_broker(None, timeout=2)
    assert no_app.failed and "add celery.py" in no_app.text


def test_the_site_app_is_found_and_celerys_fallback_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    import celery._state

    assert celery_app.project_app() is project()
    fallback = Celery("default", fixups=[], set_as_current=False)
    monkeypatch.setattr(celery._state, "default_app", fallback)
    monkeypatch.setattr(celery._state._tls, "current_app", None)
    assert celery_app.project_app() is None
    assert celery_app.app_name() == "yourproject"


# --- worker --------------------------------------------------------------------------------


@pytest.fixture
def sqla_worker(transactional_db: Any, tmp_path: Path) -> Iterator[Celery]:
    """A worker on kombu's SQLAlchemy transport (a virtual transport without
    remote control: ``celery inspect ping`` gets no answer there)."""
    pytest.importorskip("sqlalchemy", reason="kombu's SQLAlchemy transport needs SQLAlchemy")
    from celery.contrib.testing.worker import start_worker
    from sqlalchemy.pool import NullPool

    app = Celery(
        "doctor-sqla",
        broker=f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}",
        broker_transport_options={"poolclass": NullPool},
        task_default_queue="imagegen-doctor",
        set_as_current=False,
    )
    try:
        with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False):
            yield app
    finally:
        # start_worker made the test app current and default: give them back.
        project().set_current()
        project().set_default()


def test_worker_round_trip_on_the_test_broker(celery_worker: Any) -> None:
    finding = check_worker(project(), timeout=20, reachable=True)
    assert finding.level == OK, finding.text
    assert f"from queue {project().conf.task_default_queue!r}" in finding.text
    # The doctor cleans up after itself.
    assert not Heartbeat.objects.filter(name__startswith=health.PING_PREFIX).exists()


def test_worker_round_trip_without_remote_control(sqla_worker: Celery) -> None:
    finding = check_worker(sqla_worker, timeout=20, reachable=True)
    assert finding.level == OK, finding.text
    assert "'imagegen-doctor'" in finding.text


@pytest.mark.django_db(transaction=True)
def test_no_worker_is_a_fail_line_naming_queue_and_command(settings: Any) -> None:
    require_service("broker", settings.CELERY_BROKER_URL)
    project().control.purge()
    finding = check_worker(project(), timeout=1, reachable=True)
    project().control.purge()  # the unanswered ping
    assert finding.failed
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    assert f"no worker ran a task sent to queue {queue!r} within 1 s" in finding.text
    assert "`celery -A project worker`" in finding.text


def test_worker_is_not_checked_without_a_broker() -> None:
    finding = check_worker(project(), timeout=1, reachable=False)
    assert finding.level == INFO and "not checked" in finding.text


@pytest.mark.django_db
def test_the_ping_task_records_only_well_formed_nonces() -> None:
    """Family: a 32-hex nonce (recorded), empty, too long, not hex, upper case."""
    from imagegen.tasks import ping

    good = "0123456789abcdef" * 2
    assert ping(good) is True and health.ping_seen(good)
    for bad in ("", good + "0", "g" * 32, good.upper()):
        assert ping(bad) is False
    assert Heartbeat.objects.count() == 1


# --- sweeper -------------------------------------------------------------------------------


def app_with(schedule_entry: Any) -> Celery:
    app = Celery("scheduled", broker="memory://", set_as_current=False)
    app.conf.beat_schedule = {} if schedule_entry is None else {"sweep": schedule_entry}
    return app


@pytest.mark.parametrize(
    ("entry", "silence"),
    [
        ({"task": "imagegen.sweep", "schedule": 5.0}, timedelta(minutes=1)),
        ({"task": "imagegen.sweep", "schedule": 5}, timedelta(minutes=1)),
        ({"task": "imagegen.sweep", "schedule": 60.0}, timedelta(minutes=3)),
        ({"task": "imagegen.sweep", "schedule": timedelta(minutes=2)}, timedelta(minutes=6)),
        ({"task": "imagegen.sweep", "schedule": schedule(30)}, timedelta(minutes=1, seconds=30)),
        ({"task": "imagegen.sweep", "schedule": crontab()}, celery_app.DEFAULT_SWEEP_SILENCE),
        ({"task": "other.task", "schedule": 5.0}, celery_app.DEFAULT_SWEEP_SILENCE),
        (None, celery_app.DEFAULT_SWEEP_SILENCE),
    ],
    ids=["float", "int", "minute", "timedelta", "schedule", "crontab", "other-task", "empty"],
)
def test_sweep_silence_follows_beats_schedule(entry: Any, silence: timedelta) -> None:
    """Three intervals, at least a minute; the default when no fixed interval is found."""
    assert celery_app.sweep_silence(app_with(entry)) == silence


def test_sweep_silence_without_an_app_is_the_default() -> None:
    assert celery_app.sweep_silence(None) == celery_app.DEFAULT_SWEEP_SILENCE


@pytest.mark.django_db
def test_sweeper_ok_after_a_sweep(imagegen_settings: Any) -> None:
    from imagegen import services

    services.sweep()
    finding = check_sweeper(project(), worker_ok=True)
    assert finding.level == OK
    assert "beat's schedule runs it every 5 s" in finding.text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("last", "entry", "worker_ok", "expected"),
    [
        (None, 5.0, True, ["never ran", "start Celery beat (`celery -A scheduled beat`)"]),
        (timedelta(minutes=10), 5.0, True, ["last ran 10 min ago", "allowed: 60 s"]),
        (
            None,
            None,
            True,
            ["never ran", "add an entry for imagegen.sweep", "CELERY_BEAT_SCHEDULE"],
        ),
        (None, 5.0, False, ["never ran", "a worker must run too"]),
    ],
    ids=["never", "stale", "no-schedule-entry", "no-worker"],
)
def test_sweeper_problems(last: Any, entry: Any, worker_ok: bool, expected: list[str]) -> None:
    if last is not None:
        health.record(health.SWEEP, timezone.now() - last)
    app = app_with(None if entry is None else {"task": "imagegen.sweep", "schedule": entry})
    finding = check_sweeper(app, worker_ok=worker_ok)
    assert finding.failed
    for words in expected:
        assert words in finding.text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("first_run_after", "worker_ok", "level"),
    [(3, True, OK), (None, True, FAIL), (3, False, FAIL)],
    ids=["runs-while-waiting", "never-runs", "no-worker-no-wait"],
)
def test_a_sweeper_that_never_ran_gets_one_interval_to_run(
    monkeypatch: pytest.MonkeyPatch, first_run_after: Any, worker_ok: bool, level: str
) -> None:
    """Family: beat just started and its first sweep comes while the doctor
    waits (OK); it never comes within the wait (FAIL, "never ran"); no worker
    runs sweeps, so there is nothing to wait for (FAIL at once). The heartbeat
    appears on the Nth read, so the test does not depend on timing."""
    reads = []
    real = health.last_seen

    def last_seen(*names: str) -> dict:
        reads.append(names)
        if first_run_after is not None and len(reads) >= first_run_after:
            health.record(health.SWEEP, timezone.now())
        return real(*names)

    monkeypatch.setattr(health, "last_seen", last_seen)
    app = app_with({"task": "imagegen.sweep", "schedule": 0.3})
    finding = check_sweeper(app, worker_ok=worker_ok, timeout=10)
    assert finding.level == level
    if level == FAIL:
        assert "never ran" in finding.text
    if not worker_ok:
        assert len(reads) == 1


# --- callbacks -----------------------------------------------------------------------------


class Answering:
    """A web server that is not imagegen: every request gets ``status``,
    ``headers`` and ``body``."""

    def __init__(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None):
        answer = (status, body, headers or {})

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.send_response(answer[0])
                for key, value in answer[2].items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer[1])))
                self.end_headers()
                self.wfile.write(answer[1])

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def other_site() -> Iterator[Any]:
    servers: list[Answering] = []

    def start(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> str:
        servers.append(Answering(status, body, headers))
        return servers[-1].url

    yield start
    for server in servers:
        server.close()


def use_callbacks(settings: Any, base: str | None, **provider: Any) -> None:
    settings.IMAGEGEN = {**settings.IMAGEGEN, "CALLBACK_BASE_URL": base, **provider}


def apixo_at(sandbox: SandboxServer, **options: Any) -> dict[str, Any]:
    """The real APIXO provider (not the sandbox entry) pointed at the sandbox."""
    return {
        "PROVIDER": "apixo",
        "PROVIDERS": {
            "apixo": {"BASE_URL": sandbox.api_url, "API_KEY": "key", **options},
            "sandbox": {"BASE_URL": sandbox.api_url},
        },
    }


def test_the_probe_answers_every_caller_the_same_constant(client: Any) -> None:
    """Family: GET, HEAD and POST (with or without a body, a query, a JSON
    body) get the same constant; other methods 405. This test has no database
    access: a query would fail it."""
    url = reverse("imagegen:callback-probe")
    answers = [
        client.get(url),
        client.get(url, {"job": "x"}),
        client.post(url),
        client.post(url, b'{"code": 200, "data": {"taskId": "t"}}', "application/json"),
        client.post(url, b"x" * 10_000, "application/octet-stream"),
    ]
    head = client.head(url)
    refused = [client.put(url), client.delete(url), client.patch(url)]
    assert {(a.status_code, a.content) for a in answers} == {(200, json.dumps(ANSWER).encode())}
    assert head.status_code == 200
    assert [r.status_code for r in refused] == [405, 405, 405]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b'{"url": "ftp://example.com/"}', 400, "url must be an http(s) URL"),
        (b'{"url": 5}', 400, "url must be an http(s) URL"),
        (b"{}", 400, "url must be an http(s) URL"),
        (b"[]", 400, "Body must be a JSON object"),
        (b"not json", 400, "Body must be a JSON object"),
        (b'{"url": "http://127.0.0.1:9/", "timeout": "soon"}', 400, "timeout must be"),
        (b'{"url": "http://127.0.0.1:9/", "timeout": 1}', 200, "ConnectionRefusedError: "),
    ],
    ids=["scheme", "not-a-string", "missing", "array", "not-json", "bad-timeout", "refused"],
)
def test_the_sandbox_probe_endpoint_refuses_bad_requests(
    sandbox: SandboxServer, body: bytes, status: int, error: str
) -> None:
    """Family of requests to ``POST /_sandbox/probe-callback`` that cannot
    probe: refused with 400, or (nothing listening) reported with no status."""
    response = httpx.post(f"{sandbox.url}/_sandbox/probe-callback", content=body)
    assert response.status_code == status
    assert error in response.json()["error"]
    if status == 200:
        assert response.json()["status"] is None


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer"}, 401), ({"Authorization": "Bearer k"}, 200)],
    ids=["no-key", "empty-key", "key"],
)
def test_the_sandbox_balance_needs_a_key(
    sandbox: SandboxServer, headers: dict[str, str], status: int
) -> None:
    response = httpx.get(f"{sandbox.api_url}/apikeys/current-balance", headers=headers)
    assert response.status_code == status
    envelope = response.json()
    assert envelope["code"] == status
    assert envelope["data"] == (100.0 if status == 200 else None)


def test_callbacks_not_set_is_an_info_line(settings: Any, imagegen_settings: Any) -> None:
    use_callbacks(settings, None)
    finding = check_callbacks(timeout=5)
    assert finding.level == INFO
    assert "jobs complete by polling only" in finding.text


def test_callbacks_through_the_sandbox(settings: Any, imagegen_settings: Any, live_server: Any):
    use_callbacks(settings, live_server.url)
    finding = check_callbacks(timeout=5)
    assert finding.level == OK, finding.text
    assert finding.text == (f"the sandbox reached {live_server.url}/imagegen/callbacks/probe/.")


def test_callbacks_direct_with_a_real_provider(
    settings: Any, imagegen_settings: Any, live_server: Any, sandbox: SandboxServer
) -> None:
    use_callbacks(settings, live_server.url, **apixo_at(sandbox))
    finding = check_callbacks(timeout=5)
    assert finding.level == OK, finding.text
    assert finding.text.startswith(f"this machine reached {live_server.url}/imagegen/")


CALLBACK_PROBLEMS = [
    ("sandbox", "closed", "could not reach"),
    ("direct", "closed", "cannot be reached from here"),
    ("sandbox", "wrong-path", "answered 404"),
    ("direct", "wrong-path", "answered 404"),
    ("sandbox", "other-site", "answered, but not as imagegen"),
    ("direct", "other-site", "answered, but not as imagegen"),
    ("sandbox", "error", "answered 500"),
    ("direct", "error", "answered 500"),
    # The sandbox follows redirects, as its callbacks do; a direct probe does not.
    ("direct", "redirect", "redirects (301) to https://example.com/"),
]


@pytest.mark.parametrize(
    ("via", "site", "words"), CALLBACK_PROBLEMS, ids=[f"{v}-{s}" for v, s, _ in CALLBACK_PROBLEMS]
)
def test_callback_problems(
    settings: Any,
    imagegen_settings: Any,
    live_server: Any,
    sandbox: SandboxServer,
    other_site: Any,
    via: str,
    site: str,
    words: str,
) -> None:
    """Family: nothing listening, the site under another path, another site,
    a server error, a redirect; through the sandbox and from this process."""
    base = {
        "closed": f"http://{CLOSED}",
        "wrong-path": f"{live_server.url}/prefix",
        "other-site": other_site(200, b"<html>a blog</html>"),
        "error": other_site(500),
        "redirect": other_site(301, headers={"Location": "https://example.com/"}),
    }[site]
    use_callbacks(settings, base, **({} if via == "sandbox" else apixo_at(sandbox)))
    finding = check_callbacks(timeout=3)
    assert finding.failed
    assert words in finding.text, finding.text


def test_callbacks_without_a_sandbox_to_ask(
    settings: Any, imagegen_settings: Any, live_server: Any
):
    settings.IMAGEGEN = {
        **imagegen_settings,
        "CALLBACK_BASE_URL": live_server.url,
        "PROVIDERS": {"sandbox": {"BASE_URL": f"http://{CLOSED}/api/v1"}},
    }
    finding = check_callbacks(timeout=2)
    assert finding.failed
    assert "start it (`manage.py imagegen sandbox`)" in finding.text


def test_callbacks_without_imagegen_urls(settings: Any, imagegen_settings: Any) -> None:
    use_callbacks(settings, "https://example.com")
    settings.ROOT_URLCONF = __name__
    finding = check_callbacks(timeout=2)
    assert finding.failed
    assert 'add path("imagegen/", include("imagegen.urls"))' in finding.text


# --- storage -------------------------------------------------------------------------------


def doctor_files() -> list[str]:
    storage = storages["default"]
    return storage.listdir("imagegen/doctor")[1] if storage.exists("imagegen/doctor") else []


@pytest.mark.django_db
def test_file_storage_served_by_the_site(settings: Any, live_server: Any) -> None:
    use_callbacks(settings, live_server.url)
    finding = check_storage(timeout=5)
    assert finding.level == OK, finding.text
    assert f"fetched at {live_server.url}/media/imagegen/doctor/" in finding.text
    assert "STORAGES['default']" in finding.text
    assert doctor_files() == []


@pytest.mark.django_db
def test_relative_urls_without_a_base_cannot_be_checked(settings: Any) -> None:
    use_callbacks(settings, None)
    finding = check_storage(timeout=5)
    assert finding.level == WARN
    assert "cannot check its URL /media/imagegen/doctor/" in finding.text
    assert "relative and no CALLBACK_BASE_URL" in finding.text
    assert doctor_files() == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"base_url": "/nowhere/"}, "answered 404: serve MEDIA_ROOT at MEDIA_URL"),
        ({"base_url": f"http://{CLOSED}/media/"}, "cannot be fetched"),
        ({"location": "FILE/under-a-file"}, "cannot write to STORAGES['imagegen']"),
    ],
    ids=["not-served", "nothing-listening", "not-writable"],
)
def test_storage_problems(
    settings: Any, live_server: Any, tmp_path: Path, options: dict[str, str], words: str
) -> None:
    """Family: files written but not served at their URL, a URL on a host that
    does not answer, a location that cannot be written."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    if "location" in options:
        options = {"location": options["location"].replace("FILE", str(blocker))}
    use_callbacks(settings, live_server.url)
    settings.STORAGES = {
        **settings.STORAGES,
        "imagegen": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "files"), **options},
        },
    }
    finding = check_storage(timeout=3)
    assert finding.failed
    assert words in finding.text, finding.text
    assert not list((tmp_path / "files").rglob("*.txt"))


@pytest.mark.django_db
def test_relative_urls_on_a_site_that_is_not_running(settings: Any) -> None:
    use_callbacks(settings, f"http://{CLOSED}")
    finding = check_storage(timeout=3)
    assert finding.failed
    assert f"its URL http://{CLOSED}/media/imagegen/doctor/" in finding.text
    assert f"is the site running at http://{CLOSED}? Else check MEDIA_URL" in finding.text
    assert doctor_files() == []


class NoDelete(FileSystemStorage):
    """Storage whose credentials may write but not delete (an S3 policy
    without DeleteObject, say)."""

    def delete(self, name: str) -> None:
        raise PermissionError("delete is not allowed")


@pytest.mark.django_db
def test_storage_that_cannot_delete(settings: Any, live_server: Any) -> None:
    use_callbacks(settings, live_server.url)
    settings.STORAGES = {**settings.STORAGES, "imagegen": {"BACKEND": f"{__name__}.NoDelete"}}
    finding = check_storage(timeout=3)
    for name in doctor_files():  # what the doctor could not delete
        storages["default"].delete(f"imagegen/doctor/{name}")
    assert finding.failed
    assert "cannot delete imagegen/doctor/" in finding.text
    assert "PermissionError: delete is not allowed: check its access." in finding.text


@pytest.mark.django_db
def test_s3_storage_with_signed_urls(s3_storage: Any, moto_endpoint: str) -> None:
    finding = check_storage(timeout=10)
    assert finding.level == OK, finding.text
    assert f"fetched at {moto_endpoint}/{S3_BUCKET}/imagegen/doctor/" in finding.text
    assert "Signature" not in finding.text and "Credential" not in finding.text
    assert "Contents" not in s3_storage.list_objects_v2(Bucket=S3_BUCKET)


@pytest.mark.django_db
def test_s3_bucket_missing(s3_storage: Any, settings: Any) -> None:
    options = settings.STORAGES["imagegen"]["OPTIONS"]
    settings.STORAGES = {
        **settings.STORAGES,
        "imagegen": {
            **settings.STORAGES["imagegen"],
            "OPTIONS": {**options, "bucket_name": "gone"},
        },
    }
    finding = check_storage(timeout=10)
    assert finding.failed
    assert "cannot write to STORAGES['imagegen']" in finding.text
    assert "NoSuchBucket" in finding.text


# --- providers -----------------------------------------------------------------------------


def test_sandbox_provider_with_its_balance(imagegen_settings: Any, sandbox: SandboxServer) -> None:
    finding = check_provider("sandbox", timeout=5)
    assert finding.level == OK, finding.text
    assert finding.text == (f"{sandbox.api_url} answered and accepted the key; balance 100.0 USD.")


@pytest.fixture
def balance(sandbox: SandboxServer) -> Iterator[Any]:
    """Set the session sandbox's balance for one test."""
    before = sandbox.config.balance

    def set_balance(value: float) -> None:
        sandbox.config.balance = value

    yield set_balance
    sandbox.config.balance = before


@pytest.mark.parametrize(
    ("amount", "level"),
    [(0.0, WARN), (0.079, WARN), (0.08, OK), (5.0, OK)],
    ids=["empty", "just-below", "exactly-one", "plenty"],
)
def test_a_balance_below_one_4k_image_warns(
    imagegen_settings: Any, balance: Any, amount: float, level: str
) -> None:
    """Family around the published 4K price (0.08 USD)."""
    balance(amount)
    finding = check_provider("sandbox", timeout=5)
    assert finding.level == level, finding.text
    if level == WARN:
        assert "less than one 4K image (0.08 USD): top up the account" in finding.text


def test_a_refused_key(settings: Any, imagegen_settings: Any) -> None:
    with SandboxServer(config=SandboxConfig(api_key="right")) as strict:
        settings.IMAGEGEN = {
            **imagegen_settings,
            "PROVIDERS": {"sandbox": {"BASE_URL": strict.api_url, "API_KEY": "wrong"}},
        }
        finding = check_provider("sandbox", timeout=5)
    assert finding.failed
    assert "API key refused" in finding.text
    assert "set a valid IMAGEGEN['PROVIDERS']['sandbox']['API_KEY']" in finding.text
    assert "wrong" not in finding.text


def test_an_unreachable_provider(settings: Any, imagegen_settings: Any) -> None:
    """Family: the sandbox (start it) and a real provider (check BASE_URL)."""
    settings.IMAGEGEN = {
        **imagegen_settings,
        "PROVIDERS": {
            "sandbox": {"BASE_URL": f"http://{CLOSED}/api/v1"},
            "apixo": {"BASE_URL": f"http://{CLOSED}/api/v1", "API_KEY": "key"},
        },
    }
    sandbox = check_provider("sandbox", timeout=2)
    assert sandbox.failed and "start the sandbox (`manage.py imagegen sandbox`)" in sandbox.text
    apixo = check_provider("apixo", timeout=2)
    assert apixo.failed and "check IMAGEGEN['PROVIDERS']['apixo']['BASE_URL']" in apixo.text


def test_a_provider_without_a_key(settings: Any, imagegen_settings: Any) -> None:
    settings.IMAGEGEN = {**imagegen_settings, "PROVIDER": "apixo"}
    finding = check_provider("apixo", timeout=2)
    assert finding.failed
    assert finding.text == "no API key: set IMAGEGEN['PROVIDERS']['apixo']['API_KEY']."


def openai_at(sandbox: SandboxServer, **options: Any) -> dict[str, Any]:
    return {
        "openai": {"BASE_URL": f"{sandbox.url}/v1", "API_KEY": "key", **options},
        "sandbox": {"BASE_URL": sandbox.api_url},
    }


@pytest.mark.parametrize(
    ("options", "level", "words"),
    [
        ({}, OK, "answered and accepted the key."),
        ({"MODEL": "dall-e-2"}, FAIL, "OpenAI does not know this model"),
        ({"API_KEY": "wrong"}, FAIL, "API key refused"),
    ],
    ids=["ok", "unknown-model", "refused-key"],
)
def test_openai_provider(
    settings: Any,
    imagegen_settings: Any,
    sandbox: SandboxServer,
    options: dict[str, Any],
    level: str,
    words: str,
) -> None:
    """GET /models/{model} on the sandbox's OpenAI endpoint (a sandbox that
    requires the key "key" for the refused case)."""
    with SandboxServer(config=SandboxConfig(api_key="key")) as strict:
        settings.IMAGEGEN = {**imagegen_settings, "PROVIDERS": openai_at(strict, **options)}
        finding = check_provider("openai", timeout=5)
    assert finding.level == level, finding.text
    assert words in finding.text


class Silent(Provider):
    """A provider without a cheap request."""


def test_a_provider_without_a_cheap_request(settings: Any, imagegen_settings: Any) -> None:
    settings.IMAGEGEN = {
        **imagegen_settings,
        "PROVIDERS": {"silent": {"CLASS": f"{__name__}.Silent"}},
    }
    finding = check_provider("silent", timeout=2)
    assert finding.level == INFO and "Silent has no cheap request" in finding.text


@pytest.mark.parametrize(
    ("data", "balance"),
    [
        (74.87, Decimal("74.87")),
        (0, Decimal("0")),
        ("12.5", Decimal("12.5")),
        (True, None),
        (None, None),
        ("abc", None),
        ({"balance": 1}, None),
        ("NaN", None),
        ("Infinity", None),
    ],
    ids=["number", "zero", "string", "bool", "null", "word", "object", "nan", "infinity"],
)
def test_apixo_balance_answers(data: Any, balance: Decimal | None) -> None:
    """APIXO's ``data`` for the balance, as documented (a JSON number) and as it
    must not be trusted; served by a stand-in at the network edge."""
    provider = get_provider_at(
        httpx.MockTransport(
            lambda request: httpx.Response(200, json={"code": 200, "message": "ok", "data": data})
        )
    )
    if balance is None:
        with pytest.raises(TransientError, match="not a number"):
            provider.account_status(timeout=2)
    else:
        assert provider.account_status(timeout=2).balance == balance


def test_apixo_refused_key_is_a_401_permanent_error(sandbox: SandboxServer) -> None:
    provider = get_provider_at(
        httpx.MockTransport(
            lambda request: httpx.Response(401, json={"code": 401, "message": "Invalid API key"})
        )
    )
    with pytest.raises(PermanentError) as raised:
        provider.account_status(timeout=2)
    assert raised.value.status_code == 401


def get_provider_at(transport: httpx.MockTransport) -> Any:
    from imagegen.providers.apixo import APIXOProvider

    provider = APIXOProvider("apixo", {"BASE_URL": "https://api.example", "API_KEY": "k"})
    provider._client = httpx.Client(transport=transport)
    return provider


# --- the whole command ---------------------------------------------------------------------


def doctor(*args: str, overrides: dict[str, Any], timeout: float = 120) -> Any:
    """``python manage.py imagegen doctor ARGS`` in a shell, on the test database."""
    database = dict(connection.settings_dict)  # the test database, already created
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "IMAGEGEN_TEST_QUEUE": overrides.pop("queue"),
        "IMAGEGEN_TEST_OVERRIDES": json.dumps(
            {"DATABASES": {"default": _plain(database)}, **overrides}
        ),
    }
    return subprocess.run(
        [sys.executable, "manage.py", "imagegen", "doctor", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _plain(database: dict[str, Any]) -> dict[str, Any]:
    keep = ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")
    return {key: database[key] for key in keep if key in database}


def site_overrides(settings: Any, live_server: Any) -> dict[str, Any]:
    return {
        "queue": settings.TEST_QUEUE,
        "IMAGEGEN": {**settings.IMAGEGEN, "CALLBACK_BASE_URL": live_server.url},
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }


def test_doctor_on_a_healthy_system(
    settings: Any, imagegen_settings: Any, live_server: Any, celery_worker: Any
) -> None:
    from imagegen import services

    services.sweep()
    result = doctor("--timeout", "20", overrides=site_overrides(settings, live_server))
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    checks_run = [line.split(":")[0].split()[-1] for line in lines if line]
    for check in ("database", "broker", "worker", "sweeper", "callbacks", "storage"):
        assert check in checks_run, result.stdout
    assert not [line for line in lines if line.startswith(FAIL)], result.stdout
    assert any(line.startswith("ok    worker: a worker ran a task") for line in lines)
    assert any(line.startswith("ok    provider sandbox:") for line in lines)


def test_doctor_without_a_worker(
    settings: Any, imagegen_settings: Any, live_server: Any, transactional_db: Any
) -> None:
    """A clear line, a non-zero exit, and an end within the timeouts."""
    require_service("broker", settings.CELERY_BROKER_URL)
    from imagegen import services

    services.sweep()
    project().control.purge()
    result = doctor("--timeout", "2", overrides=site_overrides(settings, live_server), timeout=90)
    project().control.purge()
    assert result.returncode == 1, result.stdout + result.stderr
    queue = settings.TEST_QUEUE
    assert (
        f"FAIL  worker: no worker ran a task sent to queue {queue!r} within 2 s: start one "
        "(`celery -A project worker`)"
    ) in result.stdout
    assert "1 problem" in result.stderr
    assert [line for line in result.stdout.splitlines() if line.startswith(FAIL)] == [
        line for line in result.stdout.splitlines() if line.startswith("FAIL  worker:")
    ]


def test_run_doctor_yields_one_finding_per_check_in_order(
    settings: Any, imagegen_settings: Any, live_server: Any, celery_worker: Any
) -> None:
    use_callbacks(settings, live_server.url)
    names = [f.check for f in run_doctor(timeout=10) if f.check != "checks"]
    assert names == [
        "database",
        "broker",
        "worker",
        "sweeper",
        "callbacks",
        "storage",
        "provider sandbox",
    ]

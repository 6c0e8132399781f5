"""Fixtures that start real servers: the sandbox, a Celery worker on a real
broker, moto's S3 server. A test that needs a server that is not running is
skipped with the reason, except under CI=true, where it fails."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings

from imagegen.sandbox import SandboxConfig, SandboxServer

from .settings import reachable

CI = os.environ.get("CI") == "true"

#: Sandbox latency in tests, and the provider's matching expectation.
TEST_LATENCY = {"1k": (0.3, 0.8), "2k": (0.3, 0.8), "4k": (0.3, 0.8)}


def unavailable(reason: str) -> NoReturn:
    """Skip for ``reason``; under CI=true fail instead, so that a green CI has run
    everything."""
    if CI:
        pytest.fail(f"{reason}; under CI=true this test must run.")
    pytest.skip(reason)


def require_service(name: str, url: str) -> None:
    """Skip (or under CI fail) when the server behind ``url`` does not answer."""
    parts = urlsplit(url)
    default_ports = {"redis": 6379, "amqp": 5672, "postgres": 5432, "http": 80}
    port = parts.port or default_ports.get(parts.scheme, 0)
    if reachable(parts.hostname or "127.0.0.1", port):
        return
    unavailable(f"{name} is not reachable at {parts.hostname}:{port}")


def require_postgres(why: str = "row locks, SKIP LOCKED") -> None:
    """Skip tests that need PostgreSQL (for ``why``) when the suite runs on SQLite."""
    if django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        if CI and django_settings.TEST_DB == "postgres":
            pytest.fail("PostgreSQL expected under CI.")
        pytest.skip(f"needs PostgreSQL ({why}); this run uses SQLite")


def wait_until(
    predicate: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Return ``predicate()`` once truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def pytest_report_header(config: Any) -> list[str]:
    return [
        f"imagegen test database: {django_settings.TEST_DB}, "
        f"broker: {django_settings.TEST_BROKER}, CI={CI}"
    ]


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer(config=SandboxConfig(latency=(0.3, 0.6))) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    """The session's sandbox with its tasks and counters cleared."""
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture
def imagegen_settings(settings: Any, sandbox: SandboxServer) -> dict[str, Any]:
    """IMAGEGEN pointing at the test sandbox, on a fast time scale, callbacks off."""
    settings.IMAGEGEN = {
        "PROVIDER": "sandbox",
        "PROVIDERS": {"sandbox": {"BASE_URL": sandbox.api_url, "LATENCY": TEST_LATENCY}},
        "POLL_MIN_INTERVAL": 0.2,
        "POLL_MAX_INTERVAL": 1.0,
        "SUBMIT_GRACE": 5,
        "FINALIZE_LEASE": 30,
        "MAX_COUNTDOWN": 2,
    }
    return settings.IMAGEGEN


@pytest.fixture
def callbacks_on(imagegen_settings: dict[str, Any], live_server: Any, settings: Any) -> str:
    """Turn callbacks on, delivered to the live test server."""
    settings.IMAGEGEN = {**imagegen_settings, "CALLBACK_BASE_URL": live_server.url}
    return live_server.url


@pytest.fixture
def celery_worker(transactional_db: Any) -> Iterator[Any]:
    """A real Celery worker (threads pool, concurrency 2) consuming from the
    test broker (Redis, or RabbitMQ with IMAGEGEN_TEST_BROKER=amqp)."""
    from celery.contrib.testing.worker import start_worker

    from project.celery import app

    require_service(f"{django_settings.TEST_BROKER} broker", django_settings.CELERY_BROKER_URL)
    app.control.purge()
    with start_worker(
        app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=30,
    ) as worker:
        yield worker
        # kombu's event loop waits up to 10 s in poll(), and the embedded worker's
        # stop only sets a flag it reads between polls; on RabbitMQ nothing else
        # wakes it. Set the flag and wake the loop, so the worker ends at once.
        from celery.worker import state

        state.should_terminate = 0
        if worker.hub is not None:
            worker.hub.call_soon(lambda: None)


@pytest.fixture
def sweeper() -> Callable[[], Any]:
    """Run the sweeper once, as beat would."""
    from imagegen import services

    return services.sweep


@pytest.fixture
def editor(django_user_model: Any) -> Any:
    """A staff user with the editor permissions (see tests/factories.py)."""
    from .factories import make_editor

    return make_editor(django_user_model, username="editor")


@pytest.fixture
def other(django_user_model: Any) -> Any:
    """A second editor, whose jobs the first may not see."""
    from .factories import make_editor

    return make_editor(django_user_model, username="other")


@pytest.fixture
def logged_in(client: Any, editor: Any) -> Any:
    """The test client, logged in as ``editor``."""
    client.force_login(editor)
    return client


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The sdist and the wheel of this checkout (tests/distributions.py), built once."""
    import shutil

    from .distributions import build

    if shutil.which("git") is None or not (Path(__file__).parent.parent / ".git").exists():
        unavailable("building the distributions needs git and a clone of the repository")
    try:
        import build as _build  # noqa: F401
    except ImportError:
        unavailable("the `build` package is not installed (requirements/test.txt)")
    return build(tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 server, for the session (skips when the s3 extra is missing)."""
    pytest.importorskip("boto3", reason="the s3 extra is not installed")
    moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


#: The bucket of the ``s3_storage`` fixture.
S3_BUCKET = "imagegen-test"


@pytest.fixture
def s3_storage(settings: Any, moto_endpoint: str, aws_credentials: None) -> Iterator[Any]:
    """STORAGES["imagegen"] on django-storages' S3 against moto, in a new bucket
    (``S3_BUCKET``); yields a boto3 client, and empties and deletes the bucket after."""
    import boto3

    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=S3_BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "imagegen": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": S3_BUCKET,
                "endpoint_url": moto_endpoint,
                "region_name": "us-east-1",
                "file_overwrite": True,
            },
        },
    }
    yield client
    for obj in client.list_objects_v2(Bucket=S3_BUCKET).get("Contents", []):
        client.delete_object(Bucket=S3_BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=S3_BUCKET)


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials moto accepts, in the environment (worker subprocesses inherit them)."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)

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


@pytest.fixture(autouse=True)
def _site_language() -> Iterator[None]:
    """Each test starts in the site's language: a request through
    LocaleMiddleware, or a test's ``translation.activate``, leaves its language
    active in the thread, and the next test would render (or deconstruct
    fields) in German."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


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


def wait_for_status(page: Any, status: str, timeout: float = 30_000) -> None:
    """Wait until a progress page's ``#imagegen-status`` says ``status``: its
    images may show while the job is still finalizing, a poll before it ends."""
    page.locator(f"#imagegen-status[data-status='{status}']").wait_for(timeout=timeout)


#: The modules that take longest (``pytest --junitxml``, summed per module: from
#: about 4 minutes of a process down to about one), most first; the rest keep
#: their order after them. scripts/test gives the modules out in this order
#: (``--no-loadscope-reorder``).
SLOWEST_FIRST = (
    "tests/test_cli_argv.py",
    "tests/faults/test_load.py",
    "tests/test_embedded_broker.py",
    "tests/test_cli_demo.py",
    "tests/browser/test_review_in_place.py",
    "tests/faults/test_concurrency_cap.py",
    "tests/install/",
    "tests/test_fill.py",
    "tests/test_api_outage.py",
    "tests/faults/test_provider_answers_lost.py",
    "tests/faults/test_leases.py",
    "tests/test_doctor.py",
    "tests/test_admin_urls.py",
    "tests/faults/test_webhook_outbox.py",
    "tests/test_checks_import.py",
    "tests/browser/",
    "tests/faults/",
)


def _slowness_rank(item: pytest.Item) -> int:
    path = item.nodeid.split("::", 1)[0]
    for rank, prefix in enumerate(SLOWEST_FIRST):
        if path.startswith(prefix):
            return rank
    return len(SLOWEST_FIRST)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        help="Leave out tests that use neither the database nor the broker (scripts/test's "
        "SQLite pass: they would run exactly as in the first pass).",
    )


#: Fixtures through which a test reaches the database.
DATABASE_FIXTURES = frozenset({"db", "transactional_db", "django_db_setup", "live_server"})


def _uses_database(item: pytest.Item) -> bool:
    if item.get_closest_marker("django_db"):
        return True
    return bool(DATABASE_FIXTURES.intersection(getattr(item, "fixturenames", ())))


def _uses_database_or_broker(item: pytest.Item) -> bool:
    if item.get_closest_marker("pipeline") or item.get_closest_marker("brokers"):
        return True
    return _uses_database(item)


#: The hang limit of tests that start processes (Django commands, workers, beat,
#: sites), in place of the suite's 120 s: their own waits are each bounded, and on
#: a slow 2-core machine beside the other passes they took up to 122 s in all.
PROCESSES_TIMEOUT = 300

#: The hang limit of the test that makes a process's test databases: it runs
#: every migration first (Wagtail's settings have hundreds), which took over the
#: suite's 120 s when all the passes started at once on 2 cores.
DATABASE_SETUP_TIMEOUT = 600
_databases_made = False


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Give the first test of a process that uses the database (its setup makes
    the test databases) DATABASE_SETUP_TIMEOUT, unless it has more already.
    Outermost, so that pytest-timeout reads the limit after it is set."""
    global _databases_made
    first = not _databases_made and _uses_database(item)
    if first:
        own = item.get_closest_marker("timeout")
        if own is None or (own.args and own.args[0] < DATABASE_SETUP_TIMEOUT):
            item.add_marker(pytest.mark.timeout(DATABASE_SETUP_TIMEOUT), append=False)
    yield
    if first:
        _databases_made = True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The slowest modules first: with pytest-xdist giving out one test module
    at a time, a long module given out last ends the run alone, while short
    ones given out last even the processes out. A module's tests stay
    together and in order (the sort is stable). With
    ``--database-tests-only``, the tests that reach neither the database nor
    the broker are deselected."""
    if config.getoption("--database-tests-only"):
        kept = [item for item in items if _uses_database_or_broker(item)]
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept
    items.sort(key=_slowness_rank)


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
    """IMAGEGEN pointing at the test sandbox, on a fast time scale, callbacks off,
    alt text drafting off (a drafting task still running when a test that
    waited only for its job ends would outlive the test's database; the
    drafting tests turn it on)."""
    settings.IMAGEGEN = {
        "PROVIDER": "sandbox",
        "PROVIDERS": {"sandbox": {"BASE_URL": sandbox.api_url, "LATENCY": TEST_LATENCY}},
        "DESCRIBER": None,
        "POLL_MIN_INTERVAL": 0.2,
        "POLL_MAX_INTERVAL": 1.0,
        "SUBMIT_GRACE": 5,
        "FINALIZE_LEASE": 30,
        "MAX_COUNTDOWN": 2,
    }
    return settings.IMAGEGEN


@pytest.fixture
def drafting(imagegen_settings: dict[str, Any]) -> dict[str, Any]:
    """Alt text drafting on, as on a site on the sandbox: the sandbox's
    describer (DESCRIBER "auto"). For ``pytest.mark.usefixtures``."""
    imagegen_settings["DESCRIBER"] = "auto"
    return imagegen_settings


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

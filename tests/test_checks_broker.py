"""The Celery app imagegen's tasks go through, and its broker: imagegen.E017,
E018, E009. Celery's configuration is read from the app, not from Django's
settings alone."""

from __future__ import annotations

import threading

import pytest
from celery import Celery, _state

from imagegen.checks import broker, check_settings


def ids() -> set[str]:
    return {message.id for message in check_settings()}


@pytest.fixture
def celery_apps(monkeypatch):
    """Apps made by the test; Celery's current and default apps restored after it."""
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    previous = _state.default_app, _state._tls.current_app
    made: list[Celery] = []

    def make(*, default: bool = True, **conf) -> Celery:
        if not default:
            # Something used Celery's current app before this one was made:
            # the fallback became the default, and Django's fix-up (which makes
            # the first app the default) leaves it so.
            _state.get_current_app()
        app = Celery("site", set_as_current=True)
        app.conf.update(conf)
        if default:
            app.set_default()
        made.append(app)
        return app

    _state.set_default_app(None)
    _state._tls.current_app = None
    yield make
    _state.set_default_app(previous[0])
    _state._tls.current_app = previous[1]
    for app in made:
        app.close()


def test_the_test_settings_app_passes():
    """The example project's app (project/celery.py), configured from the
    test settings: the default app, with a broker and a long visibility timeout."""
    assert not {"imagegen.E009", "imagegen.E017", "imagegen.E018"} & ids()


class TestCeleryApp:
    """Who sends imagegen's tasks from a request thread: nobody made an app;
    an app was made but is current only in the thread that made it (here, or
    in another thread); the app is the default."""

    def test_no_app_is_an_error(self, celery_apps):
        messages = [m for m in check_settings() if m.id == "imagegen.E017"]
        assert messages and "No Celery app" in messages[0].msg
        assert "__init__.py" in messages[0].hint

    @pytest.mark.parametrize(
        ("module", "hint"),
        [
            ("project.settings", "project/celery.py exists but nothing imports it"),
            ("tests.settings", "Create the app in tests/celery.py (Celery('tests')"),
            ("settings", "Create the app in <project>/celery.py"),
            ("", "Create the app in <project>/celery.py"),
        ],
    )
    def test_no_app_hint_names_the_project(self, celery_apps, settings, module, hint):
        """Family: the settings' package has a celery.py nobody imports; has
        none; the settings module is top-level; unknown."""
        settings.SETTINGS_MODULE = module
        (message,) = [m for m in check_settings() if m.id == "imagegen.E017"]
        assert hint in message.hint

    def test_app_current_only_here_is_an_error(self, celery_apps):
        celery_apps(default=False, broker_url="redis://localhost:6379/0")
        messages = [m for m in check_settings() if m.id == "imagegen.E017"]
        assert messages and "current only in the thread" in messages[0].msg
        assert "set_default()" in messages[0].hint

    def test_app_made_in_another_thread_only_is_an_error(self, celery_apps):
        thread = threading.Thread(target=lambda: celery_apps(default=False, broker_url="redis://"))
        thread.start()
        thread.join()
        assert "imagegen.E017" in ids()

    def test_default_app_passes(self, celery_apps):
        app = celery_apps(broker_url="redis://localhost:6379/0")
        assert broker.app_for_requests() is app
        assert "imagegen.E017" not in ids()


@pytest.mark.parametrize(
    ("broker_url", "error"),
    [
        (None, True),
        ("", True),
        ([], True),
        ("redis://localhost:6379/0", False),
        (["amqp://a//", "amqp://b//"], False),
        ("amqp://a//;amqp://b//", False),
    ],
)
def test_app_without_broker_is_an_error(celery_apps, broker_url, error):
    """Unset, empty and empty-list broker URLs, and set ones (one, a list, a
    ``;``-separated failover string)."""
    celery_apps(broker_url=broker_url)
    assert ("imagegen.E018" in ids()) is error


@pytest.mark.parametrize(
    ("read_url", "error"), [("redis://localhost:6379/0", True), ("amqp://localhost//", False)]
)
def test_separate_read_and_write_urls(celery_apps, read_url, error):
    """Tasks are sent to the write URL (so E018 is quiet) and consumed from
    the read URL, whose transport decides E009."""
    celery_apps(
        broker_write_url="amqp://localhost//",
        broker_read_url=read_url,
        broker_transport_options={"visibility_timeout": 300},
    )
    found = ids()
    assert "imagegen.E018" not in found
    assert ("imagegen.E009" in found) is error


def test_broker_from_the_environment_counts(celery_apps, monkeypatch):
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://localhost:6379/0")
    celery_apps()
    assert "imagegen.E018" not in ids()


@pytest.mark.parametrize(
    ("broker_url", "visibility", "max_countdown", "error"),
    [
        # Transports with a visibility timeout: too short, long enough, kombu's default.
        ("redis://localhost:6379/0", 300, 60, True),
        ("redis://localhost:6379/0", 3600, 60, False),
        ("redis://localhost:6379/0", None, 60, False),
        ("redis://localhost:6379/0", None, 1600, True),
        ("rediss://localhost:6380/0", 300, 60, True),
        ("rediss://localhost:6380/0", 3600, 60, False),
        ("sqs://", 300, 60, True),
        ("sqs://", None, 60, False),  # SQS's default is 1800 s
        ("sqs://", None, 1000, True),
        ("sentinel://localhost:26379", 300, 60, True),
        # Transports without one: a tiny "visibility_timeout" is no error.
        ("amqp://guest@localhost//", 1, 60, False),
        ("sqla+sqlite:///broker.sqlite3", 1, 60, False),
        ("filesystem://", 1, 60, False),
        ("memory://", 1, 60, False),
    ],
)
def test_countdowns_fit_the_visibility_timeout(
    settings, celery_apps, broker_url, visibility, max_countdown, error
):
    """E009 reads the app's broker_url and broker_transport_options, for an
    app configured in code (not from Django settings)."""
    options = {} if visibility is None else {"visibility_timeout": visibility}
    celery_apps(broker_url=broker_url, broker_transport_options=options)
    settings.IMAGEGEN = {"MAX_COUNTDOWN": max_countdown}
    assert ("imagegen.E009" in ids()) is error


@pytest.mark.parametrize(("visibility", "error"), [(300, True), (3600, False)])
def test_countdowns_read_django_settings_through_the_app(settings, visibility, error):
    """The test settings' app reads CELERY_BROKER_TRANSPORT_OPTIONS (CELERY
    namespace) on a Redis broker."""
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": visibility}
    assert ("imagegen.E009" in ids()) is error


SQLITE = "imagegen.sqlite_broker:Transport"


@pytest.mark.parametrize(
    ("url", "transport", "pool", "expected"),
    [
        ("sqlite:////tmp/b.sqlite3", SQLITE, "threads", set()),
        ("sqlite:////tmp/b.sqlite3", SQLITE, "solo", set()),
        ("sqlite:////tmp/b.sqlite3", SQLITE, "prefork", {"imagegen.W007"}),
        ("redis://localhost:6379/0", SQLITE, "threads", {"imagegen.E024"}),
        ("amqp://localhost//", SQLITE, "threads", {"imagegen.E024"}),
        ("sqla+sqlite:////tmp/b.sqlite3", SQLITE, "threads", {"imagegen.E024"}),
        ("sqlite:////tmp/b.sqlite3", None, "threads", {"imagegen.E024"}),
        ("sqla+sqlite:////tmp/b.sqlite3", None, "prefork", set()),
        ("redis://localhost:6379/0", None, "prefork", set()),
    ],
)
def test_sqlite_broker_goes_with_its_url_and_a_pool_that_never_forks(
    celery_apps, url, transport, pool, expected
):
    """Family: imagegen's SQLite transport with its own URL and each pool that
    never forks (quiet) or forks (W007); that transport with every other URL
    (Redis, RabbitMQ, kombu's own sqla+sqlite: E024); a sqlite:/// URL without
    it (E024); other brokers without it (quiet)."""
    celery_apps(broker_url=url, broker_transport=transport, worker_pool=pool)
    assert ids() & {"imagegen.E024", "imagegen.W007"} == expected

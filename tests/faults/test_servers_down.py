"""Servers that go away for a while: the broker when a job is created, the
web server's database when a callback arrives. Each is cut for real, with a
TCP proxy in front of the running server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings as django_settings
from django.db import connections

from imagegen import services
from imagegen.choices import Status
from imagegen.models import WebhookDelivery

from ..conftest import require_postgres, wait_until
from ..factories import prove_callbacks
from .conftest import drive_to_end, job_row
from .proxy import TCPProxy
from .test_worker_killed import assert_stored_once

pytestmark = [pytest.mark.faults, pytest.mark.brokers, pytest.mark.django_db(transaction=True)]

DEFAULT_PORTS = {"redis": 6379, "amqp": 5672}


def _through(url: str, proxy: TCPProxy) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    netloc = f"{netloc[0]}@{host}" if len(netloc) == 2 else host
    return urlunsplit(parts._replace(netloc=netloc))


def _use_broker(app: Any, url: str) -> None:
    """Point the app's producers at ``url``. Kombu keeps one pool per URL for
    the process, so the real broker's pool is left open for the switch back."""
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker_proxy(fault_settings: dict[str, Any]) -> Iterator[TCPProxy]:
    """This process sends tasks through a proxy to the broker; workers connect directly."""
    from project.celery import app

    real = django_settings.CELERY_BROKER_URL
    parts = urlsplit(real)
    proxy = TCPProxy(parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORTS[parts.scheme])
    _use_broker(app, _through(real, proxy))
    try:
        yield proxy
    finally:
        _use_broker(app, real)
        proxy.close()


@pytest.fixture
def web_database_proxy(fault_settings: dict[str, Any]) -> Iterator[TCPProxy]:
    """The live server's requests reach the database through a proxy (each
    request opens its own connection); the test and the workers connect
    directly."""
    require_postgres("a database connection over TCP to cut")
    original = connections.settings["default"]
    proxy = TCPProxy(original["HOST"] or "127.0.0.1", int(original["PORT"] or 5432))
    # A new dict, not an in-place change: connections already open (this
    # thread's) keep theirs; connections opened from now on (the live
    # server's request threads) use the proxy.
    connections.settings["default"] = {**original, "HOST": "127.0.0.1", "PORT": str(proxy.port)}
    try:
        yield proxy
    finally:
        connections.settings["default"] = original
        proxy.close()


def test_broker_down_when_the_job_is_created(
    fault_settings: dict[str, Any],
    sandbox: Any,
    workers: Any,
    broker_proxy: TCPProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    workers()
    broker_proxy.cut()
    job = services.create_job(prompt="A lark over a field")

    # The job is saved and the caller is not failed; the message is not sent.
    assert "Could not enqueue imagegen.submit_job" in caplog.text
    assert job_row(job.pk).status == Status.QUEUED
    services.sweep()  # while the broker is down the sweeper cannot send either
    assert job_row(job.pk).submit_attempts == 0

    broker_proxy.restore()
    job = drive_to_end(job.pk)

    assert_stored_once(job)
    assert sandbox.stats()["submits"] == 1


@pytest.mark.postgres
def test_database_down_during_callbacks_polling_completes(
    fault_settings: dict[str, Any], sandbox: Any, workers: Any, web_database_proxy: TCPProxy
) -> None:
    web_database_proxy.cut()
    job = services.create_job(prompt="A wren on a branch")
    workers()
    # Every delivery attempt meets a site whose database is gone: 503.
    attempts = sandbox.config.callback_retries + 1
    wait_until(
        lambda: sandbox.stats()["callbacks_failed"] == attempts, what="the callbacks to fail"
    )
    assert sandbox.stats()["callbacks_sent"] == 0
    web_database_proxy.restore()

    job = drive_to_end(job.pk)

    assert_stored_once(job)
    assert job.poll_count >= 1
    assert not WebhookDelivery.objects.filter(job=job).exists()


@pytest.mark.postgres
def test_database_back_before_the_provider_gives_up(
    fault_settings: dict[str, Any],
    sandbox: Any,
    workers: Any,
    web_database_proxy: TCPProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sandbox.config, "callback_retries", 20)
    prove_callbacks()  # the job waits for its callback
    web_database_proxy.cut()
    job = services.create_job(prompt="A robin in the rain")
    workers()
    wait_until(lambda: sandbox.stats()["callbacks_failed"] >= 1, what="a callback to fail")
    web_database_proxy.restore()

    # The provider's next delivery attempt gets through: no polling needed.
    wait_until(lambda: job_row(job.pk).status == Status.SUCCEEDED, what="the job to finish")
    job = job_row(job.pk)
    assert_stored_once(job)
    assert job.poll_count == 0
    assert sandbox.stats()["callbacks_sent"] == 1
    assert WebhookDelivery.objects.filter(job=job, status_code=200).count() == 1

"""Fixtures of the fault-injection suite: Celery workers as real processes
(so they can be SIGKILLed), on the test broker and the test database.

A worker subprocess runs ``tests.settings`` with what the test changed
(database name, MEDIA_ROOT, IMAGEGEN, STORAGES) passed as JSON in
``IMAGEGEN_TEST_OVERRIDES``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from kombu.exceptions import OperationalError as KombuOperationalError

from imagegen import services
from imagegen.choices import TERMINAL
from imagegen.models import GenerationJob

from ..conftest import TEST_LATENCY, require_service, wait_until

ROOT = Path(__file__).resolve().parents[2]

#: Short leases and a short broker visibility timeout, so a killed worker's
#: job and message come back within seconds instead of minutes.
FAST_RECOVERY = {
    "SUBMIT_LEASE": 4,
    "FINALIZE_LEASE": 4,
    "SUBMIT_GRACE": 3,
    "POLL_MIN_INTERVAL": 0.2,
    "POLL_MAX_INTERVAL": 1.0,
    "MAX_COUNTDOWN": 2,
}
VISIBILITY_TIMEOUT = 5


class WorkerProcess:
    """One ``celery worker`` host: by default the solo pool, where the process
    is the worker, so SIGKILL kills the task mid-flight."""

    def __init__(
        self,
        name: str,
        log: Path,
        pool: str = "solo",
        concurrency: int = 1,
        visibility_timeout: float = VISIBILITY_TIMEOUT,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.log = log
        self.pool = pool
        self.concurrency = concurrency
        self.visibility_timeout = visibility_timeout
        self.env = env or {}
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        overrides = {
            "DATABASES": {"default": _database_settings()},
            "MEDIA_ROOT": str(django_settings.MEDIA_ROOT),
            "IMAGEGEN": django_settings.IMAGEGEN,
            "STORAGES": django_settings.STORAGES,
            "CELERY_BROKER_TRANSPORT_OPTIONS": {"visibility_timeout": self.visibility_timeout},
        }
        env = {
            **os.environ,
            **self.env,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "IMAGEGEN_TEST_QUEUE": django_settings.TEST_QUEUE,
            "IMAGEGEN_TEST_OVERRIDES": json.dumps(overrides),
            "PYTHONPATH": str(ROOT),
        }
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "project",
            "worker",
            f"--pool={self.pool}",
            f"--concurrency={self.concurrency}",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "-n",
            f"{self.name}@%h",
            "--loglevel=INFO",
        ]
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown, no acknowledgement, no cleanup."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        _wake_workers()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _wake_workers() -> None:
    """Send every worker a remote-control message without waiting for replies.

    A worker told to stop (SIGTERM) notices between two polls of its event
    loop, which waits up to 10 s when no message comes (always, on RabbitMQ);
    a message ends the wait. The broker may be down in a fault test: then the
    worker stops at its next poll.
    """
    from project.celery import app

    with contextlib.suppress(KombuOperationalError, OSError):
        app.control.broadcast("ping", reply=False)


def _database_settings() -> dict[str, Any]:
    """The test database as the worker must open it (its real, test-prefixed name)."""
    config = {
        key: value
        for key, value in connection.settings_dict.items()
        if key in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")
    }
    return json.loads(json.dumps(config, default=str))


@pytest.fixture
def fault_settings(
    settings: Any, sandbox: Any, live_server: Any, transactional_db: Any
) -> dict[str, Any]:
    """IMAGEGEN for the fault tests: the sandbox, callbacks to the live
    server, fast recovery. Tests turn callbacks off by removing the URL."""
    require_service(f"{django_settings.TEST_BROKER} broker", django_settings.CELERY_BROKER_URL)
    settings.IMAGEGEN = {
        "PROVIDER": "sandbox",
        "PROVIDERS": {
            "sandbox": {"BASE_URL": sandbox.api_url, "LATENCY": TEST_LATENCY, "TIMEOUT": 8}
        },
        "CALLBACK_BASE_URL": live_server.url,
        # Drafting off, as in imagegen_settings: no task outlives a test.
        "DESCRIBER": None,
        **FAST_RECOVERY,
    }
    from project.celery import app

    app.control.purge()
    return settings.IMAGEGEN


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """``start()`` starts another worker process; all are stopped after the test.
    Their output is printed when the test fails (pytest shows captured stdout)."""
    started: list[WorkerProcess] = []
    numbers = count(1)

    def start(**options: Any) -> WorkerProcess:
        number = next(numbers)
        log = tmp_path / f"worker{number}.log"
        worker = WorkerProcess(f"faults{number}-{os.getpid()}", log, **options)
        started.append(worker.start())
        return worker

    yield start
    for worker in started:
        worker.stop()
        print(f"--- {worker.name} ---\n{worker.output()[-4000:]}")


def job_row(job_id: Any) -> GenerationJob:
    return GenerationJob.objects.get(pk=job_id)


def drive_to_end(job_id: Any, *, timeout: float = 60.0, interval: float = 0.25) -> GenerationJob:
    """Run the sweeper (as beat would, every ``interval`` seconds) until the
    job is finished; return it."""

    def finished() -> GenerationJob | None:
        services.sweep()
        job = job_row(job_id)
        return job if job.status in TERMINAL else None

    return wait_until(finished, timeout=timeout, interval=interval, what=f"job {job_id} to finish")

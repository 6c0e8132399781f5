"""What every benchmark needs: Django set up on a fresh benchmark database,
medians, and a table printer."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def setup_django() -> None:
    """Create the benchmark database if needed, set Django up and migrate."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    import django
    from django.conf import settings

    _create_database(settings.DATABASES["default"])
    django.setup()
    from django.core.management import call_command

    import project.celery  # noqa: F401 (binds the shared tasks to the site's app)

    call_command("migrate", verbosity=0)


def _create_database(config: dict[str, Any]) -> None:
    import psycopg

    conninfo = {
        "dbname": "postgres",
        "user": config["USER"],
        "password": config["PASSWORD"] or None,
        "host": config["HOST"],
        "port": config["PORT"],
        "autocommit": True,
    }
    with psycopg.connect(**{k: v for k, v in conninfo.items() if v is not None}) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{config["NAME"]}"')


class PeakMemory:
    """Peak RSS growth of this process over a ``with`` block, in MB.

    The kernel's high-water mark is reset at the start (``/proc/self/clear_refs``),
    so a peak reached earlier (imports, a warm-up) neither hides the block's
    nor counts as it: ``ru_maxrss`` would keep the process's all-time peak.
    """

    def __enter__(self) -> PeakMemory:
        Path("/proc/self/clear_refs").write_text("5")
        self._start = _status_mb("VmRSS")
        self.mb = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.mb = _status_mb("VmHWM") - self._start


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (it pastes into docs/benchmarks.md as it is)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "| " + " | ".join("-" * w for w in widths) + " |"
    body = [
        "| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    return "\n".join([line, rule, *body])


def empty_tables() -> None:
    """Start from empty imagegen tables (the benchmark database only)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE imagegen_generationjob, imagegen_generatedimage, "
            "imagegen_webhookdelivery CASCADE"
        )


def site_env(sandbox_port: int, web_port: int, **extra: str) -> dict[str, str]:
    """The environment of the benchmark site's processes: the sandbox on
    ``sandbox_port``, callbacks to the site on ``web_port``, and ``extra``
    variables. This process takes the site's variables too, sets Django up
    and starts from empty tables and an empty queue."""
    site = {
        "IMAGEGEN_SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}/api/v1",
        "IMAGEGEN_CALLBACK_BASE_URL": f"http://127.0.0.1:{web_port}",
        **extra,
    }
    os.environ.update(site)
    setup_django()
    from project.celery import app

    empty_tables()
    app.control.purge()
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
        "PYTHONPATH": str(ROOT),
        **site,
    }


def free_port() -> int:
    """A TCP port nothing listens on now, for a server the benchmark starts."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    """Return once something accepts connections on ``port``; exit after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port} after {timeout:g} s")


def start_sandbox(port: int, *options: str, env: dict | None = None) -> subprocess.Popen:
    """The sandbox in its own process on ``port``, once it accepts connections."""
    process = subprocess.Popen(
        [sys.executable, "-m", "imagegen.sandbox", "--port", str(port), *options],
        stdout=subprocess.DEVNULL,
        env=env,
    )
    wait_for_port(port)
    return process


def start_web(port: int, env: dict, *, log_level: str = "warning") -> subprocess.Popen:
    """The example site under gunicorn with 2 workers, once it accepts connections."""
    gunicorn = Path(sys.executable).parent / "gunicorn"
    process = subprocess.Popen(
        [
            str(gunicorn),
            "project.wsgi",
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            log_level,
        ],
        cwd=ROOT,
        env=env,
    )
    wait_for_port(port)
    return process


def start_worker(env: dict, *, concurrency: int) -> subprocess.Popen:
    """One Celery worker host (prefork) of the example site."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "project",
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            "--loglevel=WARNING",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
    )


def stop(*processes: subprocess.Popen) -> None:
    """Stop servers started by the helpers above and wait for them."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # A worker's warm shutdown waits for its tasks: the figures are
            # taken, so a server that does not stop in time is killed.
            process.kill()
            process.wait()


#: The prefix of the lines ``python -m benchmarks`` gathers into its summary.
SUMMARY = "SUMMARY "


def summary(
    benchmark: str, figure: str, value: str, target: str = "", met: bool | None = None
) -> None:
    """Print one machine-readable result line for the summary of ``make bench``."""
    print(
        SUMMARY
        + json.dumps(
            {"benchmark": benchmark, "figure": figure, "value": value, "target": target, "met": met}
        ),
        flush=True,
    )

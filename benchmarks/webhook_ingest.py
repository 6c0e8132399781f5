"""Webhook ingest: callbacks per second into the callback view under gunicorn
(2 workers), each a valid success callback for a distinct job, side by side
in the same run (wrk) with two baselines under the same gunicorn: a bare
Django view (answers 200, information only) and the durable floor, a view
that stores the raw body and headers in one INSERT and answers 200 (the
first thing a careful receiver such as dj-stripe does).

    .venv/bin/python -m benchmarks.webhook_ingest [--seconds 10]

Needs wrk (Debian's package: apt-get install wrk). Targets: callbacks at
least 0.5 of the durable floor's rate; p99 under 50 ms at 200 callbacks/s
offered; zero errors, every callback recorded once.

Beside the rates, each endpoint's CPU per answered request in the gunicorn
workers and in their PostgreSQL backends (from /proc, so PostgreSQL must run
on this machine): what the shared cores pay per request, which a loaded
machine moves far less than the rates.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .common import ROOT, empty_tables, free_port, setup_django, start_web, stop, summary, table

JOBS = 40_000

LUA = """
local paths = {}
local bodies = {}
for line in io.lines("%(file)s") do
  local path, body = line:match("^(%%S+) (.+)$")
  paths[#paths + 1] = path
  bodies[#bodies + 1] = body
end
local threads, counter, mode = %(threads)d, 0, "callbacks"
local next_id = 0
-- setup() runs in the main state; "thread_id" becomes a global of each thread's own state.
function setup(thread) thread:set("thread_id", next_id); next_id = next_id + 1 end
local pause = 0
-- args: "bare", "durable" or "callbacks", the first request's index, a pause (ms)
-- before each request.
function init(args)
  mode = args[1]
  counter = thread_id + (tonumber(args[2]) or 0)
  pause = tonumber(args[3]) or 0
end
function delay() return pause end
function request()
  local i = (counter %% #paths) + 1
  counter = counter + threads
  local path = paths[i]
  if mode ~= "callbacks" then path = "/" .. mode .. "/" end
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, bodies[i])
end
"""


def _wrk(url: str, script: str, seconds: int, threads: int, connections: int, *extra: str) -> dict:
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            script,
            url,
            "--",
            *extra,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    latency = dict(re.findall(r"\s+(50|99)%\s+([\d.]+\w+)", out))
    return {
        "rate": rate,
        "requests": total,
        "errors": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "none",
        "p50": latency.get("50"),
        "p99": latency.get("99"),
    }


def _cpu_seconds(pid: int) -> float:
    """CPU time (user and system) process ``pid`` has used; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # utime and stime, fields 14 and 15 of stat(5) (the 12th and 13th after the name).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(parent: int) -> list[int]:
    """The pids whose parent is ``parent`` (gunicorn's workers)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                pids.append(int(stat.parent.name))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return pids


class CpuMeter:
    """CPU used by gunicorn's workers and by the PostgreSQL backends of the
    benchmark database (other than this process's own) between
    :meth:`start` and :meth:`stop`."""

    def __init__(self, server: subprocess.Popen) -> None:
        self.server = server

    def _backends(self) -> dict[int, float]:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
            return {pid: _cpu_seconds(pid) for (pid,) in cursor.fetchall()}

    def _workers(self) -> dict[int, float]:
        return {pid: _cpu_seconds(pid) for pid in _children(self.server.pid)}

    def start(self) -> None:
        self._start = self._workers(), self._backends()

    def stop(self) -> tuple[float, float]:
        """Seconds of CPU of the workers and of their database backends since
        :meth:`start` (a backend opened meanwhile counts from zero)."""
        workers, backends = self._workers(), self._backends()
        return tuple(
            sum(cpu - before.get(pid, 0.0) for pid, cpu in now.items())
            for now, before in ((workers, self._start[0]), (backends, self._start[1]))
        )


def _measured(meter: CpuMeter, *args: object) -> dict:
    """:func:`_wrk` with the CPU per answered request, in ms."""
    meter.start()
    result = _wrk(*args)
    web, database = meter.stop()
    answered = max(result["requests"], 1)
    result["web_cpu"], result["db_cpu"] = 1000 * web / answered, 1000 * database / answered
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=int, default=200, help="offered callbacks/s, paced run")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    setup_django()
    from django.db import connection
    from django.urls import reverse
    from django.utils import timezone

    from imagegen import tokens
    from imagegen.models import GenerationJob, WebhookDelivery
    from project.celery import app

    from .urls import COUNT_RAW_TABLE, CREATE_RAW_TABLE, EMPTY_RAW_TABLE

    empty_tables()
    with connection.cursor() as cursor:
        cursor.execute(CREATE_RAW_TABLE)
        cursor.execute(EMPTY_RAW_TABLE)
    now = timezone.now()
    jobs = [
        GenerationJob(
            provider="sandbox",
            model="gpt-image-2",
            mode="text-to-image",
            prompt=f"ingest {n}",
            resolution="1k",
            aspect_ratio="auto",
            status="submitted",
            provider_task_id=f"task-{n}",
            deadline_at=now + timezone.timedelta(hours=1),
            next_poll_at=now + timezone.timedelta(hours=1),
        )
        for n in range(JOBS)
    ]
    for job in jobs:
        job.callback_token_hash = tokens.hash_token(tokens.callback_token(job.pk))
    GenerationJob.objects.bulk_create(jobs, batch_size=2000)

    workdir = Path(tempfile.mkdtemp(prefix="imagegen-wrk-"))
    lines = []
    for job in jobs:
        path = reverse(
            "imagegen:callback",
            kwargs={
                "provider": "sandbox",
                "job_id": job.pk,
                "token": tokens.callback_token(job.pk),
            },
        )
        data = {
            "taskId": job.provider_task_id,
            "state": "success",
            "resultJson": json.dumps({"resultUrls": ["https://cdn.example.com/out.png"]}),
        }
        lines.append(f"{path} {json.dumps({'code': 200, 'msg': 'success', 'data': data})}")
    (workdir / "requests.txt").write_text("\n".join(lines) + "\n")
    threads = 2
    script = workdir / "callbacks.lua"
    script.write_text(LUA % {"file": workdir / "requests.txt", "threads": threads})

    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.settings", "PYTHONPATH": str(ROOT)}
    server = start_web(port, env, log_level="error")
    try:
        base = f"http://127.0.0.1:{port}"
        meter = CpuMeter(server)
        full = (base, str(script), args.seconds, threads, args.connections)
        bare = _measured(meter, *full, "bare")
        durable = _measured(meter, *full, "durable")
        callbacks = _measured(meter, *full, "callbacks")
        # The paced run: each connection pauses so that together they offer
        # --rate requests/s (wrk measures latency from send to answer). A first
        # run measures the answer time, which the second run's pause leaves out.
        connections = 32
        offset = callbacks["requests"] + 1000
        pause = connections * 1000 / args.rate
        answered = callbacks["requests"]
        for _ in range(2):
            paced = _measured(
                meter,
                base,
                str(script),
                args.seconds,
                threads,
                connections,
                "callbacks",
                str(offset),
                f"{max(pause, 0):.1f}",
            )
            offset += paced["requests"] + 1000
            answered += paced["requests"]
            pause -= (connections / paced["rate"] - connections / args.rate) * 1000
    finally:
        stop(server)
        app.control.purge()
    with connection.cursor() as cursor:
        cursor.execute(COUNT_RAW_TABLE)
        stored_raw = cursor.fetchone()[0]
    recorded = WebhookDelivery.objects.count()
    distinct = WebhookDelivery.objects.values("job_ref").distinct().count()
    accepted = WebhookDelivery.objects.filter(outcome="accepted").count()
    moved = GenerationJob.objects.filter(status="finalizing").count()
    print(
        f"Webhook ingest (gunicorn -w 2, wrk -t{threads}, -c{args.connections} at full load "
        f"and -c32 paced, {args.seconds} s each, same run):\n"
    )
    print(
        table(
            [
                "endpoint",
                "requests/s",
                "p50",
                "p99",
                "web CPU/req",
                "PostgreSQL CPU/req",
                "non-2xx",
                "socket errors",
            ],
            [
                _row("bare view", bare),
                _row("durable floor (raw body, one INSERT)", durable),
                _row("callback view", callbacks),
                _row(f"callback view, {args.rate} req/s offered", paced),
            ],
        )
    )
    floor = callbacks["rate"] / durable["rate"]
    ratio = callbacks["rate"] / bare["rate"]
    # The rate the CPU per request allows, side by side: what the ratio
    # would be if the cores did nothing but serve these requests.
    cpu_floor = (durable["web_cpu"] + durable["db_cpu"]) / (
        callbacks["web_cpu"] + callbacks["db_cpu"]
    )
    p99 = _ms(paced["p99"])
    print(
        f"\nratio callbacks / durable floor: {floor:.2f} (target >= 0.5); "
        f"callbacks / bare view: {ratio:.2f}; durable floor / bare view: "
        f"{durable['rate'] / bare['rate']:.2f}\n"
        f"CPU per request (web + PostgreSQL), durable floor / callback view: {cpu_floor:.2f}\n"
        f"durable floor: {stored_raw} bodies stored for {durable['requests']} answered\n"
        f"callbacks answered {answered}, recorded {recorded} "
        f"for {distinct} distinct jobs, accepted {accepted}, jobs moved to finalizing {moved}"
    )
    errors = bare["errors"] + durable["errors"] + callbacks["errors"] + paced["errors"]
    summary(
        "webhook_ingest", "callbacks/s / durable floor/s", f"{floor:.2f}", ">= 0.5", floor >= 0.5
    )
    summary("webhook_ingest", "callbacks/s / bare view/s (information)", f"{ratio:.2f}")
    summary(
        "webhook_ingest",
        "CPU/req (web + PostgreSQL), durable floor / callback (information)",
        f"{cpu_floor:.2f}",
    )
    summary(
        "webhook_ingest",
        f"p99 at {paced['rate']:.0f} req/s ({args.rate} offered), ms",
        f"{p99:.1f} (p50 {_ms(paced['p50']):.1f})",
        "< 50",
        p99 < 50,
    )
    summary(
        "webhook_ingest",
        "errors; callbacks recorded, each once",
        f"{errors}; {recorded} for {distinct} jobs",
        "0; all, once",
        errors == 0 and recorded == distinct == accepted == moved,
    )


def _row(name: str, result: dict) -> tuple:
    return (
        name,
        f"{result['rate']:.0f}",
        result["p50"],
        result["p99"],
        f"{result['web_cpu']:.2f}ms",
        f"{result['db_cpu']:.2f}ms",
        result["errors"],
        result["socket_errors"],
    )


def _ms(latency: str | None) -> float:
    """wrk's latency (``812.00us``, ``25.03ms``, ``1.20s``, ``2.00m``) in milliseconds."""
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", latency or "").groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000}[unit]


if __name__ == "__main__":
    main()

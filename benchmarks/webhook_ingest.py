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
        bare = _wrk(base, str(script), args.seconds, threads, args.connections, "bare")
        durable = _wrk(base, str(script), args.seconds, threads, args.connections, "durable")
        callbacks = _wrk(base, str(script), args.seconds, threads, args.connections, "callbacks")
        # The paced run: each connection pauses so that together they offer
        # --rate requests/s (wrk measures latency from send to answer). A first
        # run measures the answer time, which the second run's pause leaves out.
        connections = 32
        offset = callbacks["requests"] + 1000
        pause = connections * 1000 / args.rate
        answered = callbacks["requests"]
        for _ in range(2):
            paced = _wrk(
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
            ["endpoint", "requests/s", "p50", "p99", "non-2xx", "socket errors"],
            [
                (
                    "bare view",
                    f"{bare['rate']:.0f}",
                    bare["p50"],
                    bare["p99"],
                    bare["errors"],
                    bare["socket_errors"],
                ),
                (
                    "durable floor (raw body, one INSERT)",
                    f"{durable['rate']:.0f}",
                    durable["p50"],
                    durable["p99"],
                    durable["errors"],
                    durable["socket_errors"],
                ),
                (
                    "callback view",
                    f"{callbacks['rate']:.0f}",
                    callbacks["p50"],
                    callbacks["p99"],
                    callbacks["errors"],
                    callbacks["socket_errors"],
                ),
                (
                    f"callback view, {args.rate} req/s offered",
                    f"{paced['rate']:.0f}",
                    paced["p50"],
                    paced["p99"],
                    paced["errors"],
                    paced["socket_errors"],
                ),
            ],
        )
    )
    floor = callbacks["rate"] / durable["rate"]
    ratio = callbacks["rate"] / bare["rate"]
    p99 = _ms(paced["p99"])
    print(
        f"\nratio callbacks / durable floor: {floor:.2f} (target >= 0.5); "
        f"callbacks / bare view: {ratio:.2f}; durable floor / bare view: "
        f"{durable['rate'] / bare['rate']:.2f}\n"
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


def _ms(latency: str | None) -> float:
    """wrk's latency (``812.00us``, ``25.03ms``, ``1.20s``, ``2.00m``) in milliseconds."""
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", latency or "").groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000}[unit]


if __name__ == "__main__":
    main()

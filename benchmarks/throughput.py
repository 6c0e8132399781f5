"""Pipeline throughput: jobs per second from creation to stored asset, and
imagegen's own CPU time per job.

One worker host (Celery prefork, concurrency 2), the site under gunicorn
(2 workers) receiving the callbacks, the sandbox in its own process with
zero latency and 1K PNG outputs, PostgreSQL and Redis.

    .venv/bin/python -m benchmarks.throughput [--jobs 300]

CPU per job counts the worker host, the web server and this process (which
creates the jobs, as a request would); not the sandbox. Previews are not
part of a job: they are made on first view (``benchmarks.preview_first_view``).
Targets: at least 20 jobs/s; under 30 ms of imagegen CPU per job.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from .common import (
    free_port,
    site_env,
    start_sandbox,
    start_web,
    start_worker,
    stop,
    summary,
    table,
)

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(root_pid: int) -> float:
    """User + system CPU of a process and its live descendants, from /proc."""
    total = 0.0
    pending = [root_pid]
    while pending:
        pid = pending.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS
        pending += [int(child) for child in children]
    return total


def _run(ids: list) -> None:
    """Wait until every job in ``ids`` is stored."""
    from imagegen.models import GenerationJob

    pending = GenerationJob.objects.filter(pk__in=ids).exclude(status="succeeded")
    while pending.exists():
        time.sleep(0.05)


#: Untimed jobs before the step table's: a step's first call in a process
#: pays one-time costs (the first finalize imports the describer's OpenAI
#: SDK, about 0.6 s of CPU), which the worker host's figures above already
#: leave to the warm-up.
STAGE_WARM_UP = 5


def stage_costs(jobs: int) -> dict[str, float]:
    """CPU per job of each step, in this process: the services called one
    after the other against the sandbox, with the broker left out (what a
    task sends is not sent), so each figure is the step's own cost, after
    :data:`STAGE_WARM_UP` untimed jobs."""
    from unittest import mock

    from django.conf import settings
    from django.test import override_settings

    from imagegen import services

    cpu: Counter = Counter()

    counting = False

    def timed(step: str, action: Callable[[], object]) -> object:
        began = time.process_time()
        result = action()
        if counting:
            cpu[step] += time.process_time() - began
        return result

    polling_only = {**settings.IMAGEGEN, "CALLBACK_BASE_URL": None}
    with (
        mock.patch("imagegen.services.jobs.enqueue"),
        override_settings(IMAGEGEN=polling_only),
    ):
        for n in range(STAGE_WARM_UP + jobs):
            counting = n >= STAGE_WARM_UP
            job = timed("create", lambda n=n: services.create_job(prompt=f"stages {n}"))
            timed("submit", lambda job=job: services.submit(job.pk))
            while job.status != "finalizing":
                timed("poll", lambda job=job: services.poll(job.pk))
                job.refresh_from_db()
            timed("finalize", lambda job=job: services.finalize(job.pk))
    return {step: seconds / jobs * 1000 for step, seconds in cpu.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    args = parser.parse_args()
    sandbox_port, web_port = free_port(), free_port()
    env = site_env(sandbox_port, web_port)
    from imagegen import services
    from imagegen.models import GenerationJob

    processes = {
        "sandbox": start_sandbox(sandbox_port, "--latency", "0", env=env),
        "web": start_web(web_port, env),
        "worker": start_worker(env, concurrency=2),
    }
    try:
        # Untimed warm-up: the worker's pool processes start, and the first
        # results prove callbacks arrive (as on a site that has been running).
        _run([services.create_job(prompt=f"warm-up {n}").pk for n in range(10)])
        before = {name: _cpu_seconds(p.pid) for name, p in processes.items()}
        own_before = time.process_time()
        start = time.perf_counter()
        ids = [services.create_job(prompt=f"throughput {n}").pk for n in range(args.jobs)]
        own = time.process_time() - own_before
        _run(ids)
        elapsed = time.perf_counter() - start
        after = {name: _cpu_seconds(p.pid) for name, p in processes.items()}
        stages = stage_costs(50)
    finally:
        stop(*processes.values())
    stored = GenerationJob.objects.filter(pk__in=ids, status="succeeded").count()
    cpu = {name: after[name] - before[name] for name in processes}
    imagegen_cpu = cpu["worker"] + cpu["web"] + own
    print(f"Pipeline throughput ({args.jobs} jobs, sandbox latency 0, callbacks on):\n")
    print(
        table(
            ["figure", "value"],
            [
                ("jobs stored", f"{stored} / {args.jobs}"),
                ("wall time, s", f"{elapsed:.1f}"),
                ("jobs per second", f"{stored / elapsed:.1f}"),
                ("worker host CPU per job, ms", f"{cpu['worker'] / args.jobs * 1000:.1f}"),
                ("web server (callbacks) CPU per job, ms", f"{cpu['web'] / args.jobs * 1000:.1f}"),
                ("job creation CPU per job, ms", f"{own / args.jobs * 1000:.1f}"),
                ("imagegen CPU per job, ms", f"{imagegen_cpu / args.jobs * 1000:.1f}"),
                (
                    "sandbox CPU per job, ms (not imagegen)",
                    f"{cpu['sandbox'] / args.jobs * 1000:.1f}",
                ),
            ],
        )
    )
    print(
        "\nCPU per job of each step, in-process, broker left out"
        f" (50 jobs after {STAGE_WARM_UP} untimed):\n"
    )
    print(table(["step", "CPU ms"], [(step, f"{ms:.1f}") for step, ms in stages.items()]))
    rate = stored / elapsed
    per_job = imagegen_cpu / args.jobs * 1000
    summary("throughput", "jobs stored per second", f"{rate:.1f}", ">= 20", rate >= 20)
    summary("throughput", "imagegen CPU per job, ms", f"{per_job:.1f}", "< 30", per_job < 30)


if __name__ == "__main__":
    main()

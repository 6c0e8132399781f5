"""Provider done -> asset stored, on the callback path: from the time the
provider says a job finished to the time its image is stored and attached,
at 1K and 4K, and imagegen's overhead in it with the byte transfer left out.

    .venv/bin/python -m benchmarks.callback_to_asset [--jobs 20 --jobs-4k 4]

The sandbox in its own process serves the results from loopback; the site
under gunicorn (2 workers) receives the callbacks; one worker host (Celery
prefork, concurrency 2) finalizes; PostgreSQL and Redis. Jobs run one after
another, so each figure is one job's path, not a queue. Each job's result is
asked for once before the provider finishes (untimed), so the sandbox's own
rendering of the picture is not counted as imagegen's. The outputs are the
sandbox's largest PNGs (random pixels: 3 MB at 1K, 48 MB at 4K), so the
transfer is as large as a provider's can be.

"Done" is the provider's completion time (APIXO's ``completeTime``, kept as
``provider_completed_at``); "stored" is the job's ``completed_at``. The byte
transfer is measured separately as a copy of the same file at disk speed
(median of 5); the overhead is the path minus that copy. Target: p50
overhead under 150 ms, at each resolution.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path

from .common import (
    free_port,
    median,
    site_env,
    start_sandbox,
    start_web,
    start_worker,
    stop,
    summary,
    table,
)

#: The provider's latency per output: long enough to fetch the result once
#: before the callback comes (the sandbox renders it then), short for the run.
LATENCY = {"1k": 1.5, "2k": 4.0, "4k": 10.0}


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank): with fewer than 100 values p99 is the maximum."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def wait_for(check, timeout: float = 120.0, every: float = 0.02):
    """``check()``'s first true value; exits after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise SystemExit(f"gave up waiting after {timeout:g} s")


def one_job(n: int, resolution: str, sandbox_url: str) -> dict:
    """Run one job; its path's times in ms."""
    from imagegen import services
    from imagegen.models import GenerationJob, WebhookDelivery

    job = services.create_job(
        prompt=f"callback path {resolution} {n} [sandbox:noise] "
        f"[sandbox:latency={LATENCY[resolution]:g}]",
        resolution=resolution,
    )
    task_id = wait_for(
        lambda: GenerationJob.objects.filter(pk=job.pk).values_list("provider_task_id", flat=True)[
            0
        ]
    )
    # The sandbox renders a result on its first download: done here, untimed.
    with urllib.request.urlopen(f"{sandbox_url}/files/{task_id}/0.png", timeout=60) as answer:
        answer.read()
    wait_for(lambda: GenerationJob.objects.filter(pk=job.pk, status="succeeded").exists())
    job = GenerationJob.objects.get(pk=job.pk)
    received = (
        WebhookDelivery.objects.filter(job_ref=str(job.pk), outcome="accepted")
        .order_by("received_at")
        .values_list("received_at", flat=True)
        .first()
    )
    image = job.images.get()
    done = job.provider_completed_at
    return {
        "total": (job.completed_at - done).total_seconds() * 1000,
        "to_callback": (received - done).total_seconds() * 1000 if received else None,
        "via": job.completed_via,
        "path": image.file.path,
        "size": image.size,
    }


def copy_ms(path: str) -> float:
    """A copy of ``path`` to a new file at disk speed (median of 5), in ms."""
    times = []
    with tempfile.TemporaryDirectory() as folder:
        for n in range(5):
            began = time.perf_counter()
            shutil.copyfile(path, Path(folder) / f"copy-{n}")
            os.sync()
            times.append((time.perf_counter() - began) * 1000)
    return median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20, help="jobs at 1K")
    parser.add_argument("--jobs-4k", type=int, default=4, help="jobs at 2K and 4K")
    parser.add_argument("--resolutions", nargs="+", default=["1k", "4k"])
    args = parser.parse_args()
    sandbox_port, web_port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    env = site_env(sandbox_port, web_port)
    from project.celery import app

    processes = [
        start_sandbox(sandbox_port, env=env),
        start_web(web_port, env),
        start_worker(env, concurrency=2),
    ]
    results: dict[str, list[dict]] = {}
    try:
        # Untimed: the worker's pool starts, and callbacks are seen to arrive
        # (so jobs wait for theirs instead of polling within the latency).
        for n in range(3):
            one_job(n, "1k", sandbox_url)
        for resolution in args.resolutions:
            jobs = args.jobs if resolution == "1k" else args.jobs_4k
            results[resolution] = [one_job(n, resolution, sandbox_url) for n in range(jobs)]
    finally:
        stop(*processes)
        app.control.purge()
    rows, figures = [], {}
    for resolution, runs in results.items():
        totals = [r["total"] for r in runs]
        arrivals = [r["to_callback"] for r in runs if r["to_callback"] is not None]
        copy = copy_ms(runs[0]["path"])
        p50, p99 = percentile(totals, 0.5), percentile(totals, 0.99)
        by_callback = sum(r["via"] == "callback" for r in runs)
        figures[resolution] = (p50, p99, copy)
        rows.append(
            (
                resolution,
                f"{runs[0]['size'] / 2**20:.2f}",
                f"{by_callback}/{len(runs)}",
                f"{p50:.0f}",
                f"{p99:.0f}",
                f"{median(arrivals):.0f}" if arrivals else "-",
                f"{copy:.1f}",
                f"{p50 - copy:.0f}",
            )
        )
    print(
        f"Provider done -> asset stored ({args.jobs} jobs at 1K, {args.jobs_4k} at 4K, "
        "one at a time; "
        "callbacks on; sandbox on loopback):\n"
    )
    print(
        table(
            [
                "output",
                "file MB",
                "by callback",
                "p50 ms",
                "p99 ms",
                "done -> callback received, p50 ms",
                "disk copy ms",
                "p50 overhead ms",
            ],
            rows,
        )
    )
    print("\n(p99 is the nearest rank: with fewer than 100 jobs, the slowest.)")
    for resolution, (p50, p99, copy) in figures.items():
        label = resolution.upper()
        overhead = p50 - copy
        summary(
            "callback_to_asset",
            f"{label}: done -> stored p50; p99, ms",
            f"{p50:.0f}; {p99:.0f}",
        )
        summary(
            "callback_to_asset",
            f"{label}: p50 overhead without the transfer, ms",
            f"{overhead:.0f} (copy {copy:.0f})",
            "< 150",
            overhead < 150,
        )


if __name__ == "__main__":
    main()

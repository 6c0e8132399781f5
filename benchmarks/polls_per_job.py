"""Polls per job: what imagegen's polling schedule costs and how late it
sees results, with callbacks arriving and with every callback dropped,
against a naive poller that asks every second, in the same run.

    .venv/bin/python -m benchmarks.polls_per_job [--jobs 60] [--scale 2]

Job latencies are spread evenly over the provider's documented range for
their resolution (1K 30-120 s, 2K 60-180 s, 4K 120-240 s): stratified, so
that 20 jobs of a resolution stand for the range as a far larger random
sample would, and the three scenarios get the same latencies in a shuffled
order. Every duration in
the run (latencies, poll intervals, the sweep interval, countdown limit and
deadline) is divided by ``--scale`` so the run takes minutes. Jobs arrive
evenly over the first half of the run. The site runs under gunicorn (for the
callbacks), a Celery worker host on Redis, the sweeper every 5 s (scaled) and
the sandbox, on PostgreSQL. The naive poller submits the same kind of tasks
without a callback and asks for each one's state every second (scaled).

Targets: with callbacks, median 0 polls per job; with callbacks dropped, at
most 6 polls per job and a median delay from the provider finishing to the
asset stored under 10% of the job's duration.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import threading
import time
from collections.abc import Callable

from .common import (
    ROOT,
    empty_tables,
    free_port,
    median,
    setup_django,
    start_sandbox,
    start_web,
    start_worker,
    stop,
    summary,
    table,
)

RANGES = {"1k": (30.0, 120.0), "2k": (60.0, 180.0), "4k": (120.0, 240.0)}
SWEEP_INTERVAL = 5.0
NAIVE_INTERVAL = 1.0


def _overrides(scale: float, sandbox_url: str, web_url: str) -> dict:
    latency = {res: (low / scale, high / scale) for res, (low, high) in RANGES.items()}
    provider = {
        "CLASS": "imagegen.providers.apixo.APIXOProvider",
        "BASE_URL": sandbox_url,
        "API_KEY": "sandbox",
        "MODEL": "gpt-image-2",
        "ALLOWED_RESULT_HOSTS": None,
        "ALLOW_PRIVATE_HOSTS": True,
        "LATENCY": latency,
    }
    return {
        "PROVIDER": "callbacks",
        "PROVIDERS": {"callbacks": provider, "dropped": provider},
        "CALLBACK_BASE_URL": web_url,
        "POLL_MIN_INTERVAL": 2.0 / scale,
        "POLL_MAX_INTERVAL": 30.0 / scale,
        "MAX_COUNTDOWN": 60.0 / scale,
        "JOB_TIMEOUT": 600.0 / scale,
        "SUBMIT_GRACE": 30.0 / scale,
    }


def _prompt(n: int, latency: float, extra: str = "") -> str:
    return f"poll bench {n} [sandbox:latency={latency:.3f}]{extra}"


def _plan(jobs: int, scale: float) -> list[tuple[str, float]]:
    """(resolution, scaled latency) of each job, in arrival order: the
    resolutions in turn, each one's latencies at evenly spaced points of its range."""
    resolutions = [res for n in range(jobs) for res in RANGES][:jobs]
    shuffle = random.Random(5).shuffle
    latencies = {}
    for res, (low, high) in RANGES.items():
        count = resolutions.count(res)
        points = [(low + (k + 0.5) * (high - low) / count) / scale for k in range(count)]
        shuffle(points)
        latencies[res] = iter(points)
    plan = [(res, next(latencies[res])) for res in resolutions]
    shuffle(plan)
    return plan


def _every(interval: float, halt: threading.Event, action: Callable[[], object]) -> None:
    while not halt.wait(interval):
        action()


def _naive(resolution: str, n: int, latency: float, scale: float, results: list) -> None:
    """Submit one task without a callback and ask for its state every second."""
    from imagegen.providers import GenerationRequest, get_provider

    provider = get_provider("dropped")
    request = GenerationRequest(
        mode="text-to-image",
        prompt=_prompt(n, latency),
        resolution=resolution,
        aspect_ratio="auto",
    )
    task_id = provider.submit(request).task_id
    calls = 0
    while True:
        time.sleep(NAIVE_INTERVAL / scale)
        state = provider.fetch(task_id)
        calls += 1
        if state.is_terminal:
            seen = time.time()
            done = state.completed_at_ms / 1000
            results.append((calls, (seen - done) / (done - state.created_at_ms / 1000)))
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=60, help="per scenario")
    parser.add_argument("--scale", type=float, default=2.0)
    args = parser.parse_args()
    scale = args.scale
    sandbox_port, web_port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}/api/v1"
    web_url = f"http://127.0.0.1:{web_port}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
        "IMAGEGEN_BENCH_SETTINGS": json.dumps(_overrides(scale, sandbox_url, web_url)),
        "PYTHONPATH": str(ROOT),
    }
    os.environ["IMAGEGEN_BENCH_SETTINGS"] = env["IMAGEGEN_BENCH_SETTINGS"]
    setup_django()
    from django.db import connection

    from imagegen import services
    from imagegen.choices import TERMINAL
    from imagegen.models import GenerationJob
    from project.celery import app

    empty_tables()
    app.control.purge()
    processes = [
        start_sandbox(sandbox_port, env=env),
        start_web(web_port, env),
        start_worker(env, concurrency=4),
    ]
    halt = threading.Event()

    def sweep() -> None:
        services.sweep()
        connection.close()

    sweeper = threading.Thread(target=_every, args=(SWEEP_INTERVAL / scale, halt, sweep))
    naive: list = []
    try:
        sweeper.start()
        plan = _plan(args.jobs, scale)
        spacing = max(high for _, high in RANGES.values()) / scale / len(plan)
        ids: dict[str, list] = {"callbacks": [], "dropped": []}
        threads = []
        start = time.monotonic()
        for n, (resolution, latency) in enumerate(plan):
            for provider, extra in (("callbacks", ""), ("dropped", " [sandbox:callback=drop]")):
                job = services.create_job(
                    prompt=_prompt(n, latency, extra),
                    resolution=resolution,
                    provider=provider,
                )
                ids[provider].append(job.pk)
            thread = threading.Thread(target=_naive, args=(resolution, n, latency, scale, naive))
            thread.start()
            threads.append(thread)
            time.sleep(spacing)
        every = [pk for group in ids.values() for pk in group]
        unfinished = GenerationJob.objects.filter(pk__in=every).exclude(status__in=list(TERMINAL))
        while unfinished.exists():
            time.sleep(0.2)
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - start
    finally:
        halt.set()
        stop(*processes)
    if sweeper.is_alive():
        sweeper.join()

    rows = []
    stats: dict[str, dict[str, float]] = {}
    for provider, group in ids.items():
        jobs = list(GenerationJob.objects.filter(pk__in=group))
        done = [j for j in jobs if j.status == "succeeded"]
        polls = [j.poll_count for j in jobs]
        delays = [
            (j.completed_at - j.provider_completed_at) / (j.provider_completed_at - j.submitted_at)
            for j in done
        ]
        via = {
            source: sum(1 for j in done if j.completed_via == source)
            for source in ("callback", "poll")
        }
        stats[provider] = {
            "mean": statistics.mean(polls),
            "median": median(polls),
            "max": max(polls),
            "delay": median(delays),
        }
        rows.append(
            (
                f"imagegen, callbacks {'dropped' if provider == 'dropped' else 'on'}",
                f"{len(done)} / {len(jobs)}",
                f"{median(polls):g}",
                max(polls),
                f"{statistics.mean(polls):.2f}",
                f"{median(delays):.1%}",
                f"{sorted(delays)[int(0.9 * (len(delays) - 1))]:.1%}",
                f"{via['callback']} / {via['poll']}",
            )
        )
    naive_calls = [calls for calls, _ in naive]
    naive_delays = [delay for _, delay in naive]
    rows.append(
        (
            "naive poller, every 1 s",
            f"{len(naive)} / {len(plan)}",
            f"{median(naive_calls):g}",
            max(naive_calls),
            f"{statistics.mean(naive_calls):.2f}",
            f"{median(naive_delays):.1%} (seen)",
            f"{sorted(naive_delays)[int(0.9 * (len(naive_delays) - 1))]:.1%}",
            "-",
        )
    )
    print(
        f"Polls per job ({len(plan)} jobs per row, 1K/2K/4K mixed, durations / {scale:g}, "
        f"{elapsed:.0f} s):\n"
    )
    print(
        table(
            [
                "scenario",
                "succeeded",
                "median polls",
                "max polls",
                "mean polls",
                "median delay / duration",
                "p90 delay",
                "by callback / poll",
            ],
            rows,
        )
    )
    naive_mean = statistics.mean(naive_calls)
    on, dropped = stats["callbacks"], stats["dropped"]
    summary(
        "polls_per_job", "callbacks on: median polls", f"{on['median']:g}", "0", on["median"] == 0
    )
    summary(
        "polls_per_job",
        "callbacks dropped: max polls",
        str(dropped["max"]),
        "<= 6",
        dropped["max"] <= 6,
    )
    summary(
        "polls_per_job",
        "callbacks dropped: median delay / duration",
        f"{dropped['delay']:.1%}",
        "< 10%",
        dropped["delay"] < 0.10,
    )
    summary(
        "polls_per_job",
        "status calls / naive 1 s poller's (on; dropped)",
        f"{on['mean'] / naive_mean:.3f}; {dropped['mean'] / naive_mean:.3f}",
    )


if __name__ == "__main__":
    main()

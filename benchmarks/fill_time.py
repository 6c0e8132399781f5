"""Bulk fill time: 10 articles' covers filled, against the sandbox's latency.

Issue 14 asks that "the bulk action fills 10 articles within the sandbox's
latency": the jobs run side by side, not one after another.

The example site's ``articles.Article.cover`` (its ``IMAGE_FIELDS``
declaration) is filled for 10 new articles through
``imagegen.services.fill.start``, the service the admin action and
``manage.py imagegen fill`` call, by a superuser (as the admin action runs).
The sandbox runs in its own process at its default latency (2-4 s, what a
demo shows), the site under gunicorn (2 workers) receives the callbacks, one
Celery worker host (prefork, concurrency 2) on Redis, PostgreSQL. Time runs
from the call of ``start`` until each article's saved cover is seen in the
database (read every 50 ms).

    .venv/bin/python -m benchmarks.fill_time [--objects 10] [--cap 3]

Two runs: without a concurrency cap, then with ``MAX_IN_FLIGHT`` 3 for the
sandbox (information: the jobs then go in ceil(10 / 3) = 4 rounds).
Target without a cap: the total within 1.5 times the upper end of the
sandbox's latency, i.e. the jobs run side by side, not one after another.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import urllib.request
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

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

#: The target without a cap: total / upper end of the sandbox's latency.
TARGET = 1.5
#: How often the database is read for attached covers, seconds.
READ_INTERVAL = 0.05
#: Give up on a run after this long (a broken pipeline, not a slow one).
GIVE_UP = 180.0


def _sandbox_default_latency() -> tuple[float, float]:
    """The latency range the sandbox uses when started without ``--latency``."""
    from imagegen.sandbox.__main__ import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args([]).latency


def _sandbox(port: int, action: str) -> dict[str, Any]:
    """The sandbox's own test endpoints: ``reset`` (POST) and ``stats``."""
    url = f"http://127.0.0.1:{port}/_sandbox/{action}"
    request = urllib.request.Request(url, method="POST" if action == "reset" else "GET")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def _warm_up() -> None:
    """Untimed: the worker's pool processes start and callbacks are known to
    arrive, as on a site that has been running."""
    from imagegen import services
    from imagegen.choices import TERMINAL

    ids = [services.create_job(prompt=f"warm-up {n} [sandbox:latency=0.2]").pk for n in range(4)]
    _wait(lambda: not _active(ids, TERMINAL), "the warm-up jobs")


def _active(ids: Sequence[Any], terminal: Sequence[str]) -> bool:
    from imagegen.models import GenerationJob

    return GenerationJob.objects.filter(pk__in=ids).exclude(status__in=list(terminal)).exists()


def _wait(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GIVE_UP
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not finish in {GIVE_UP:g} s")
        time.sleep(READ_INTERVAL)


def _fill(objects: int, user: Any, scenario: str) -> dict[str, Any]:
    """Fill ``objects`` new articles' covers; when each cover was seen saved."""
    from django.utils import timezone

    from imagegen.choices import Status
    from imagegen.models import GenerationJob
    from imagegen.services import fill
    from project.articles.models import Article

    articles = Article.objects.bulk_create(
        Article(
            title=f"Harbour at dawn, {scenario}, {n}",
            summary="Fishing boats come back in the morning mist; the market opens on the quay.",
        )
        for n in range(objects)
    )
    ids = [article.pk for article in articles]
    wall_start = timezone.now()
    start = time.perf_counter()
    started = fill.start(Article.objects.filter(pk__in=ids), "cover", user=user)
    start_call = time.perf_counter() - start
    seen: dict[int, float] = {}
    covered = Article.objects.filter(pk__in=ids).exclude(cover="")
    ended = GenerationJob.objects.filter(
        run=started.run, status__in=[Status.FAILED, Status.EXPIRED, Status.CANCELED]
    )
    deadline = start + GIVE_UP
    while len(seen) < len(ids) and time.perf_counter() < deadline and not ended.exists():
        now = time.perf_counter()
        for pk in covered.exclude(pk__in=list(seen)).values_list("pk", flat=True):
            seen[pk] = now - start
        time.sleep(READ_INTERVAL)
    attached = {pk: seen[pk] for pk in ids if pk in seen}
    jobs = {
        int(job.target_object_id): job
        for job in GenerationJob.objects.filter(pk__in=[j.pk for j in started.jobs])
    }
    return {
        "jobs": len(started.jobs),
        "attached": attached,
        "start_call": start_call,
        "phases": _phases(wall_start, jobs, attached),
        "statuses": sorted({job.status for job in jobs.values()}),
    }


def _phases(
    wall_start: datetime, jobs: dict[int, Any], attached: dict[int, float]
) -> dict[str, list[float]]:
    """Per attached cover, seconds: start to submitted (queue, worker, the
    submission; for a capped job its wait for a slot), the sandbox's own
    generation, and provider finished to cover seen (callback, finalize, attach)."""
    phases: dict[str, list[float]] = {"to submitted": [], "generating": [], "to attached": []}
    for pk, at in attached.items():
        job = jobs[pk]
        if job.submitted_at is None or job.provider_completed_at is None:
            continue
        submitted = (job.submitted_at - wall_start).total_seconds()
        finished = (job.provider_completed_at - wall_start).total_seconds()
        phases["to submitted"].append(submitted)
        phases["generating"].append(finished - submitted)
        phases["to attached"].append(at - finished)
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10)
    parser.add_argument("--cap", type=int, default=3, help="MAX_IN_FLIGHT of the second run")
    args = parser.parse_args()
    sandbox_port, web_port = free_port(), free_port()
    # The sandbox even where an APIXO key is set (the example site would pick APIXO).
    site = {"PROVIDER": "sandbox"}
    env = site_env(sandbox_port, web_port, IMAGEGEN_BENCH_SETTINGS=json.dumps(site))
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import override_settings

    from project.articles.models import Article

    Article.objects.all().delete()
    user, _ = get_user_model().objects.get_or_create(
        username="fill-benchmark", defaults={"is_staff": True, "is_superuser": True}
    )
    low, high = _sandbox_default_latency()
    sandbox = start_sandbox(sandbox_port, env=env)
    results = []
    try:
        for cap in (None, args.cap):
            caps = {"MAX_IN_FLIGHT": {"sandbox": cap}} if cap else {}
            # The site's processes and this one (which calls start, as the
            # admin action's request would) share the run's settings.
            run_env = {**env, "IMAGEGEN_BENCH_SETTINGS": json.dumps({**site, **caps})}
            processes = [start_web(web_port, run_env), start_worker(run_env, concurrency=2)]
            try:
                with override_settings(IMAGEGEN={**settings.IMAGEGEN, **caps}):
                    _warm_up()
                    _sandbox(sandbox_port, "reset")
                    result = _fill(args.objects, user, f"cap {cap}" if cap else "no cap")
                result["max_concurrent"] = _sandbox(sandbox_port, "stats")["max_concurrent_tasks"]
            finally:
                stop(*processes)
            results.append((cap, result))
    finally:
        stop(sandbox)
    _report(results, args.objects, low, high)


def _report(results: list, objects: int, low: float, high: float) -> None:
    rows, phase_rows = [], []
    for cap, result in results:
        times = sorted(result["attached"].values())
        total = times[-1] if len(times) == objects else math.nan
        rounds = math.ceil(objects / cap) if cap else 1
        result["total"], result["ratio"] = total, total / high
        result["p50"] = median(times) if times else math.nan
        rows.append(
            (
                f"MAX_IN_FLIGHT {cap}" if cap else "no cap",
                f"{len(times)} / {objects}",
                f"{low:g}-{high:g}",
                f"{result['p50']:.1f}",
                f"{total:.1f}",
                f"{result['ratio']:.2f}",
                f"{rounds} ({rounds * high:g} s)",
                result["max_concurrent"],
                f"{result['start_call'] * 1000:.0f}",
            )
        )
        for phase, seconds in result["phases"].items():
            phase_rows.append(
                (
                    f"MAX_IN_FLIGHT {cap}" if cap else "no cap",
                    phase,
                    f"{median(seconds):.2f}" if seconds else "-",
                    f"{max(seconds):.2f}" if seconds else "-",
                )
            )
    print(
        f"Bulk fill of {objects} articles' covers (articles.Article.cover, fill.start), "
        f"sandbox latency {low:g}-{high:g} s, callbacks on:\n"
    )
    print(
        table(
            [
                "run",
                "covers attached",
                "sandbox latency, s",
                "p50 per cover, s",
                "total, s",
                "total / upper latency",
                "latency rounds (upper bound)",
                "max at sandbox at once",
                "start call, ms",
            ],
            rows,
        )
    )
    print("\nWhere each cover's time goes, seconds from the start (median; max):\n")
    print(table(["run", "phase", "median s", "max s"], phase_rows))
    for cap, result in results:
        if len(result["attached"]) < objects:
            print(
                f"\nNot every cover attached ({'cap ' + str(cap) if cap else 'no cap'}): "
                f"job statuses {', '.join(result['statuses'])}."
            )
    (_, free), (cap, capped) = results
    summary(
        "fill_time",
        f"{objects} covers: total / upper latency ({high:g} s)",
        f"{free['ratio']:.2f}",
        f"<= {TARGET:g}",
        free["ratio"] <= TARGET,
    )
    summary(
        "fill_time",
        f"{objects} covers: p50 per cover; total, s",
        f"{free['p50']:.1f}; {free['total']:.1f}",
    )
    summary(
        "fill_time",
        f"MAX_IN_FLIGHT {cap}: total / upper latency (~{math.ceil(objects / cap)} rounds)",
        f"{capped['ratio']:.2f}",
    )
    if any(len(result["attached"]) < objects for _, result in results):
        raise SystemExit("not every cover was attached")


if __name__ == "__main__":
    main()

"""Jobs in flight: 10,000 jobs waiting for their callbacks at once against
100: the sweeper's time and the provider status calls it makes per minute
must stay flat per job.

    .venv/bin/python -m benchmarks.jobs_in_flight [--sizes 100 10000]

Each size is one simulated minute of the real sweeper (``services.sweep``
on PostgreSQL, its poll messages sent to Redis and dropped) at the example
site's beat interval (5 s). The jobs are in flight with APIXO's latency
range (30-240 s) and the schedule ``services.submit`` gives a job that
expects its callback (``scheduling.first_poll_delay``); their submission
times are spread evenly over the time a job waits, so every size holds the
same mix. Callbacks arrive, each at its job's latency (the job leaves the
in-flight set then). A second minute of each size loses 5% of the callbacks:
those jobs are polled on the schedule past the latency range
(``scheduling.next_poll_delay``), each poll answered "still running" as
``services.poll`` would apply it. Targets: at 10,000 in flight, within 1.5x
of 100: the sweep's time and the status calls per minute with callbacks
arriving, and the status calls per minute per job in flight with 5% lost.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

from .common import empty_tables, median, setup_django, summary, table

#: APIXO's latency range for 1K (imagegen.providers.apixo), seconds.
LATENCY = (30.0, 240.0)
#: Of every 100 jobs, how many lose their callback (and are polled), in the second minute.
LOST_PER_100 = 5
#: The example site's beat interval for the sweeper, seconds.
SWEEP_INTERVAL = 5.0
DEADLINE = 600.0


def fill(size: int, start, lost_per_100: int) -> dict:
    """``size`` jobs in flight at ``start``; their simulated callback times
    (None: lost) and submission times, by id."""
    from imagegen import scheduling
    from imagegen.models import GenerationJob

    first = scheduling.first_poll_delay(LATENCY, callbacks=True)
    low, high = LATENCY
    rows, callbacks, submitted = [], {}, {}
    lost_count = size * lost_per_100 // 100
    for n in range(size):
        lost = n < lost_count
        # Evenly spread within each kind, so every size holds the same mix.
        spread = (n + 0.5) / lost_count if lost else (n - lost_count + 0.5) / (size - lost_count)
        if lost:
            # Lost callbacks: waiting anywhere up to the deadline.
            age = spread * DEADLINE
            latency = None
        else:
            # In the latency range, not yet finished: age below its latency.
            latency = low + (high - low) * ((n * 7919) % size + 0.5) / size
            age = spread * latency
        submitted_at = start - timedelta(seconds=age)
        waited = age
        next_poll = first
        while next_poll < waited and lost:
            next_poll += scheduling.next_poll_delay(LATENCY, next_poll)
        job = GenerationJob(
            provider="apixo",
            model="gpt-image-2",
            mode="text-to-image",
            prompt=f"in flight {n}",
            resolution="1k",
            aspect_ratio="auto",
            status="submitted",
            provider_task_id=f"flight-{n}",
            submitted_at=submitted_at,
            deadline_at=submitted_at + timedelta(seconds=DEADLINE),
            next_poll_at=min(
                submitted_at + timedelta(seconds=next_poll),
                submitted_at + timedelta(seconds=DEADLINE),
            ),
        )
        rows.append(job)
        callbacks[job.pk] = None if latency is None else submitted_at + timedelta(seconds=latency)
        submitted[job.pk] = submitted_at
    GenerationJob.objects.bulk_create(rows, batch_size=2000)
    return {"callbacks": callbacks, "submitted": submitted}


def simulate(size: int, lost_per_100: int) -> dict:
    """One simulated minute of sweeps over ``size`` jobs in flight."""
    from django.db import connection, transaction
    from django.db.models import F
    from django.utils import timezone

    from imagegen import conf, scheduling
    from imagegen.models import GenerationJob
    from imagegen.services import sweep
    from imagegen.services.sweep import due_jobs
    from project.celery import app

    empty_tables()
    start = timezone.now()
    state = fill(size, start, lost_per_100)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE imagegen_generationjob")
    batch = int(conf.get_setting("SWEEP_BATCH_SIZE"))
    pending = {pk: at for pk, at in state["callbacks"].items() if at is not None}
    times, calls, in_flight, claimed = [], 0, [], []
    for tick in range(int(60 / SWEEP_INTERVAL)):
        now = start + timedelta(seconds=tick * SWEEP_INTERVAL)
        # Callbacks that came by now: those jobs leave the in-flight set.
        arrived = [pk for pk, at in pending.items() if at <= now]
        for pk in arrived:
            del pending[pk]
        GenerationJob.objects.filter(pk__in=arrived).update(status="finalizing", next_poll_at=None)
        in_flight.append(GenerationJob.objects.filter(status="submitted").count())
        # The jobs this sweep claims (its own query, read first without keeping the locks).
        with transaction.atomic():
            due = [row[0] for row in due_jobs(now)[:batch]]
        claimed.append(len(due))
        began = time.perf_counter()
        counts = sweep(now)
        times.append((time.perf_counter() - began) * 1000)
        app.control.purge()
        calls += counts["poll"]
        # Each poll answers "still running": the next one as services.poll schedules it.
        for pk in due:
            waited = (now - state["submitted"][pk]).total_seconds()
            job = GenerationJob.objects.only("deadline_at").get(pk=pk)
            GenerationJob.objects.filter(pk=pk).update(
                poll_count=F("poll_count") + 1,
                next_poll_at=scheduling.clamp(
                    now + timedelta(seconds=scheduling.next_poll_delay(LATENCY, waited)),
                    job.deadline_at,
                ),
            )
    mean_in_flight = sum(in_flight) / len(in_flight)
    return {
        "size": size,
        "lost": lost_per_100,
        "claimed": max(claimed),
        "sweep_ms": median(times),
        "calls": calls,
        "in_flight": mean_in_flight,
        "per_100": calls / mean_in_flight * 100,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[100, 10_000])
    args = parser.parse_args()
    setup_django()
    results = [simulate(size, lost) for lost in (0, LOST_PER_100) for size in args.sizes]
    print(
        f"Jobs in flight (one simulated minute each, a sweep every {SWEEP_INTERVAL:g} s, "
        f"latency {LATENCY[0]:g}-{LATENCY[1]:g} s):\n"
    )
    print(
        table(
            [
                "callbacks lost",
                "jobs in flight at the start",
                "mean in flight",
                "most claimed by a sweep",
                "sweep ms (median)",
                "x",
                "status calls / minute",
                "per 100 in flight",
                "x",
            ],
            [
                (
                    f"{r['lost']}%",
                    f"{r['size']:,}",
                    f"{r['in_flight']:,.0f}",
                    r["claimed"],
                    f"{r['sweep_ms']:.1f}",
                    f"{r['sweep_ms'] / base['sweep_ms']:.2f}",
                    r["calls"],
                    f"{r['per_100']:.2f}",
                    f"{r['per_100'] / base['per_100']:.2f}" if base["per_100"] else "-",
                )
                for r in results
                for base in [next(b for b in results if b["lost"] == r["lost"])]
            ],
        )
    )
    small, large, small_lost, large_lost = results
    sweep_ratio = large["sweep_ms"] / small["sweep_ms"]
    label = f"{large['size']:,} / {small['size']:,} in flight"
    summary(
        "jobs_in_flight",
        f"sweep time, {label} (callbacks arriving)",
        f"{sweep_ratio:.2f}",
        "<= 1.5",
        sweep_ratio <= 1.5,
    )
    summary(
        "jobs_in_flight",
        f"status calls/min, {large['size']:,}; {small['size']:,} in flight (callbacks arriving)",
        f"{large['calls']}; {small['calls']}",
        "flat (<= 1.5x)",
        large["calls"] <= 1.5 * small["calls"],
    )
    call_ratio = (
        large_lost["per_100"] / small_lost["per_100"] if small_lost["per_100"] else float("inf")
    )
    summary(
        "jobs_in_flight",
        f"status calls/min per job, {label} ({LOST_PER_100}% callbacks lost)",
        f"{call_ratio:.2f} ({large_lost['per_100']:.2f} vs {small_lost['per_100']:.2f} per 100)",
        "<= 1.5",
        call_ratio <= 1.5,
    )
    summary(
        "jobs_in_flight",
        f"sweep time, {label} ({LOST_PER_100}% lost: polls sent)",
        f"{large_lost['sweep_ms'] / small_lost['sweep_ms']:.2f}",
    )


if __name__ == "__main__":
    main()

"""Sweep at scale: time per sweep batch on tables of 10k, 100k and 1M jobs
with 1% due, and the claim query's plan (it must use the partial index).

    .venv/bin/python -m benchmarks.sweep_scale [--sizes 10000 100000 1000000]

Target: the 1M sweep within 1.5x of the 10k one.
"""

from __future__ import annotations

import argparse
import time

from .common import empty_tables, median, setup_django, summary, table

#: Jobs in each 100: 1 due (submitted, poll time passed), 9 running but not
#: due, 90 finished. The sweeper must find the 1 without reading the 99.
FILL_SQL = """
INSERT INTO imagegen_generationjob (
    id, provider, model, mode, prompt, reference_urls, resolution, aspect_ratio,
    status, provider_task_id, callback_token_hash, result_urls, created_at, updated_at,
    deadline_at, next_poll_at, poll_count, submit_attempts, finalize_attempts,
    error_code, error_message, target_object_id, idempotency_key, completed_via
)
SELECT
    gen_random_uuid(), 'sandbox', 'gpt-image-2', 'text-to-image',
    CASE WHEN i %% 100 = 0 THEN 'due' ELSE 'job ' || i END,
    '[]', '1k', 'auto',
    CASE WHEN i %% 100 = 0 THEN 'submitted' WHEN i %% 100 < 10 THEN 'running' ELSE 'succeeded' END,
    'task-' || i, '', '[]', now() - interval '1 hour', now(),
    now() + interval '1 hour',
    CASE WHEN i %% 100 = 0 THEN now() - interval '1 minute'
         WHEN i %% 100 < 10 THEN now() + interval '1 hour' END,
    0, 1, 0, '', '', '', '',
    CASE WHEN i %% 100 >= 10 THEN 'callback' ELSE '' END
FROM generate_series(1, %s) AS i
"""

REPEATS = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    # The smallest table's due count, so every sweep claims the same number of jobs.
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    setup_django()
    from django.conf import settings
    from django.test import override_settings

    with override_settings(IMAGEGEN={**settings.IMAGEGEN, "SWEEP_BATCH_SIZE": args.batch}):
        run(args.sizes)


def run(sizes: list[int]) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    from imagegen import conf, services
    from imagegen.services.sweep import due_jobs
    from project.celery import app

    batch = conf.get_setting("SWEEP_BATCH_SIZE")
    rows = []
    plans = {}
    for size in sizes:
        empty_tables()
        with connection.cursor() as cursor:
            cursor.execute(FILL_SQL, [size])
            cursor.execute("ANALYZE imagegen_generationjob")
        sweep_times, claim_times = [], []
        for _ in range(REPEATS):
            with connection.cursor() as cursor:
                # Make the same 1% due again (outside the timing).
                cursor.execute(
                    "UPDATE imagegen_generationjob SET next_poll_at = now() - interval '1 minute' "
                    "WHERE prompt = 'due'"
                )
                # As autovacuum would between sweeps: the reset leaves dead index entries.
                cursor.execute("VACUUM ANALYZE imagegen_generationjob")
            # EXPLAIN ANALYZE runs (and locks) for real: inside a transaction, rolled back.
            with transaction.atomic(), connection.cursor() as cursor:
                sql, params = due_jobs(timezone.now())[:batch].query.sql_with_params()
                cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
                plan = cursor.fetchone()[0][0]
                transaction.set_rollback(True)
            claim_times.append(plan["Execution Time"])
            plans[size] = plan
            start = time.perf_counter()
            counts = services.sweep()
            sweep_times.append((time.perf_counter() - start) * 1000)
            app.control.purge()
        claimed = counts["poll"]
        rows.append((size, size // 100, claimed, median(claim_times), median(sweep_times)))

    base_claim, base_sweep = rows[0][3], rows[0][4]
    print(f"Sweep at scale (batch {batch}, median of {REPEATS} sweeps, PostgreSQL):\n")
    print(
        table(
            ["jobs", "due", "claimed", "claim query ms", "x", "whole sweep ms", "x"],
            [
                (
                    f"{size:,}",
                    f"{due:,}",
                    claimed,
                    f"{claim:.2f}",
                    f"{claim / base_claim:.2f}",
                    f"{sweep:.1f}",
                    f"{sweep / base_sweep:.2f}",
                )
                for size, due, claimed, claim, sweep in rows
            ],
        )
    )
    largest = max(plans)
    print(f"\nClaim query plan at {largest:,} jobs:")
    print(_plan_text(plans[largest]["Plan"]))
    print(
        f"\nindex used: {'imagegen_job_due_idx' in str(plans[largest])}; "
        f"1M/10k sweep ratio: {rows[-1][4] / base_sweep:.2f} (target <= 1.5)"
    )
    ratio = rows[-1][4] / base_sweep
    summary(
        "sweep_scale",
        f"sweep at {largest:,} / at 10,000 jobs",
        f"{ratio:.2f}",
        "<= 1.5",
        ratio <= 1.5,
    )
    indexed = "imagegen_job_due_idx" in str(plans[largest])
    summary("sweep_scale", "claim query uses the due-jobs index", str(indexed), "True", indexed)


def _plan_text(node: dict, depth: int = 0) -> str:
    label = node["Node Type"]
    if "Index Name" in node:
        label += f" using {node['Index Name']}"
    if "Relation Name" in node and "Index Name" not in node:
        label += f" on {node['Relation Name']}"
    rows, ms = node.get("Actual Rows"), node.get("Actual Total Time")
    line = f"{'  ' * depth}-> {label}  (rows {rows}, {ms} ms)"
    children = [_plan_text(child, depth + 1) for child in node.get("Plans", [])]
    return "\n".join([line, *children])


if __name__ == "__main__":
    main()

"""Run every benchmark and print a summary table of their figures and targets.

    .venv/bin/python -m benchmarks [name ...]

Each benchmark runs in its own process, its output shown as it comes; the
lines it marks as summary lines are gathered into one table at the end.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from .common import ROOT, SUMMARY, table

BENCHMARKS = (
    "webhook_ingest",
    "sweep_scale",
    "throughput",
    "finalize_memory",
    "preview_first_view",
    "polls_per_job",
    "web_time",
    "fill_time",
    "callback_to_asset",
    "generate_click",
    "status_polling",
    "jobs_in_flight",
)


def main() -> None:
    names = sys.argv[1:] or BENCHMARKS
    rows, failed = [], []
    start = time.monotonic()
    for name in names:
        print(f"== benchmarks.{name}", flush=True)
        began = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", f"benchmarks.{name}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for line in process.stdout:
            if line.startswith(SUMMARY):
                result = json.loads(line[len(SUMMARY) :])
                met = {True: "yes", False: "NO", None: ""}[result["met"]]
                rows.append((name, result["figure"], result["value"], result["target"], met))
            else:
                print(line, end="", flush=True)
        if process.wait():
            failed.append(name)
        print(f"({time.monotonic() - began:.0f} s)\n", flush=True)
    print(f"Summary ({time.monotonic() - start:.0f} s in all):\n")
    print(table(["benchmark", "figure", "value", "target", "met"], rows))
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()

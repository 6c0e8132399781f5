"""Memory: peak RSS growth of a worker process finalizing (download, verify,
hash, store, attach) one 1K, 2K and 4K output, the sandbox's largest PNGs
(random pixels, which do not compress). Previews are made on first view,
measured by ``benchmarks.preview_first_view``.

    .venv/bin/python -m benchmarks.finalize_memory

Target: finalize under 64 MB at 4K, and growth that does not track the file size.
Each resolution runs in a fresh process; the sandbox runs in its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from .common import PeakMemory, free_port, setup_django, summary, table


def measure(resolution: str, api_url: str) -> dict:
    """In this (fresh) process: one warm-up 1K job, then the measured one."""
    setup_django()
    from django.conf import settings
    from django.test import override_settings

    from imagegen import services
    from imagegen.models import GenerationJob

    config = {
        **settings.IMAGEGEN,
        "PROVIDER": "sandbox",
        "PROVIDERS": {"sandbox": {"BASE_URL": api_url, "LATENCY": {"1k": (0, 0.1)}}},
        "CALLBACK_BASE_URL": None,
    }

    def finish(prompt: str, res: str) -> GenerationJob:
        job = services.create_job(prompt=prompt, resolution=res)
        services.submit(job.pk)
        while GenerationJob.objects.get(pk=job.pk).status != "finalizing":
            time.sleep(0.05)
            services.poll(job.pk)
        return job

    with override_settings(IMAGEGEN=config):
        warm = finish("warm-up [sandbox:latency=0]", "1k")
        services.finalize(warm.pk)
        job = finish(f"memory {resolution} [sandbox:noise] [sandbox:latency=0]", resolution)
        with PeakMemory() as peak:
            outcome = services.finalize(job.pk)
    image = GenerationJob.objects.get(pk=job.pk).images.get()
    return {
        "resolution": resolution,
        "outcome": outcome,
        "pixels": f"{image.width}x{image.height}",
        "file_mb": image.size / 2**20,
        "finalize_mb": peak.mb,
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(measure(*sys.argv[2].split(",", 1))))
        return
    port = free_port()
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "imagegen.sandbox", "--port", str(port), "--latency", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        sandbox.stdout.readline()  # its "listening" line: it is up
        api_url = f"http://127.0.0.1:{port}/api/v1"
        rows = []
        for resolution in ("1k", "2k", "4k"):
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.finalize_memory",
                    "--one",
                    f"{resolution},{api_url}",
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        sandbox.terminate()
        sandbox.wait()
    print("Peak RSS growth of a worker process (fresh process per resolution):\n")
    print(
        table(
            ["output", "pixels", "file MB", "finalize MB", "finalize / file"],
            [
                (
                    r["resolution"],
                    r["pixels"],
                    f"{r['file_mb']:.1f}",
                    f"{r['finalize_mb']:.1f}",
                    f"{r['finalize_mb'] / r['file_mb']:.2f}",
                )
                for r in rows
            ],
        )
    )
    four_k = rows[-1]
    print(f"\n4K finalize growth {four_k['finalize_mb']:.1f} MB (target < 64 MB)")
    summary(
        "finalize_memory",
        "4K finalize RSS growth, MB",
        f"{four_k['finalize_mb']:.1f}",
        "< 64",
        four_k["finalize_mb"] < 64,
    )
    flat = four_k["finalize_mb"] / rows[0]["finalize_mb"]
    summary("finalize_memory", "growth 4K / 1K (file 16x larger)", f"{flat:.2f}", "flat")


if __name__ == "__main__":
    main()

"""Previews on first view: the time of the request that makes an image's
preview (``imagegen:image-preview``: read the original, render, store,
record, answer), the peak RSS growth of the process serving it, and a later
view's time, for the sandbox's largest 1K, 2K and 4K PNGs (random pixels:
they do not compress), with each engine installed (libvips, Pillow).

    .venv/bin/python -m benchmarks.preview_first_view

Through Django's full request handling (the test client: middleware,
session, permissions), file storage on local disk. Each resolution and
engine is viewed by a fresh process that stored nothing (the peak is reset
before the view: ``common.PeakMemory``); the sandbox runs in its own.
Targets at 4K, with the engine a site gets from ``pip install
django-imagegen[vips]``: RSS growth under 32 MB, first view under 1 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from .common import PeakMemory, free_port, median, setup_django, summary, table

#: Later views timed per row (their median is shown).
LATER_VIEWS = 5


def stored_image(prompt: str, resolution: str, api_url: str) -> int:
    """A finished job's stored image (made through the services against the
    sandbox, in this process); its id."""
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
    with override_settings(IMAGEGEN=config):
        job = services.create_job(prompt=f"{prompt} [sandbox:latency=0]", resolution=resolution)
        services.submit(job.pk)
        while GenerationJob.objects.get(pk=job.pk).status != "finalizing":
            time.sleep(0.05)
            services.poll(job.pk)
        services.finalize(job.pk)
    return GenerationJob.objects.get(pk=job.pk).images.get().pk


def measure(image_id: str, warm_id: str, engine: str) -> dict:
    """In this fresh process, which has stored nothing (its peak RSS is the
    request's, not a finalize's): a 1K preview as a warm-up, then the
    measured image's first view and later views."""
    setup_django()
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from imagegen import previews
    from imagegen.models import GeneratedImage

    if engine == "pillow":
        previews.vips = lambda: None  # as on a site without libvips
    user, _created = get_user_model().objects.get_or_create(
        username="bench-previews", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(SERVER_NAME="localhost")
    client.force_login(user)

    def view(pk: str) -> tuple[float, int]:
        began = time.perf_counter()
        response = client.get(reverse("imagegen:image-preview", args=[pk]))
        return time.perf_counter() - began, response.status_code

    view(warm_id)
    with PeakMemory() as peak:
        first, status = view(image_id)
    later = [view(image_id)[0] for _ in range(LATER_VIEWS)]
    image = GeneratedImage.objects.get(pk=image_id)
    return {
        "engine": engine,
        "status": status,
        "pixels": f"{image.width}x{image.height}",
        "file_mb": image.size / 2**20,
        "first_s": first,
        "later_ms": median(later) * 1000,
        "rss_mb": peak.mb,
    }


def engines() -> list[str]:
    from imagegen import previews

    return ["vips", "pillow"] if previews.engine() == "vips" else ["pillow"]


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(measure(*sys.argv[2].split(","))))
        return
    setup_django()
    port = free_port()
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "imagegen.sandbox", "--port", str(port), "--latency", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    rows = []
    try:
        sandbox.stdout.readline()  # its "listening" line: it is up
        api_url = f"http://127.0.0.1:{port}/api/v1"
        for engine in engines():
            for resolution in ("1k", "2k", "4k"):
                image = stored_image(f"preview {resolution} [sandbox:noise]", resolution, api_url)
                warm = stored_image("warm-up", "1k", api_url)
                out = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.preview_first_view",
                        "--one",
                        f"{image},{warm},{engine}",
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append({"resolution": resolution, **result})
    finally:
        sandbox.terminate()
        sandbox.wait()
    print("First view of a preview (made then), fresh process per row:\n")
    print(
        table(
            [
                "engine",
                "output",
                "pixels",
                "file MB",
                "answer",
                "first view s",
                "RSS MB",
                "later ms",
            ],
            [
                (
                    r["engine"],
                    r["resolution"],
                    r["pixels"],
                    f"{r['file_mb']:.1f}",
                    r["status"],
                    f"{r['first_s']:.2f}",
                    f"{r['rss_mb']:.1f}",
                    f"{r['later_ms']:.1f}",
                )
                for r in rows
            ],
        )
    )
    four_k = next(r for r in rows if r["resolution"] == "4k")
    engine = four_k["engine"]
    summary(
        "preview_first_view",
        f"4K preview RSS growth, MB ({engine})",
        f"{four_k['rss_mb']:.1f}",
        "< 32",
        four_k["rss_mb"] < 32 and four_k["status"] == 200,
    )
    summary(
        "preview_first_view",
        f"4K preview first view, s ({engine})",
        f"{four_k['first_s']:.2f}",
        "< 1",
        four_k["first_s"] < 1 and four_k["status"] == 200,
    )
    if engine != "pillow":
        pillow = next(r for r in rows if r["resolution"] == "4k" and r["engine"] == "pillow")
        summary(
            "preview_first_view",
            "without libvips (Pillow): 4K RSS MB; first view s",
            f"{pillow['rss_mb']:.1f}; {pillow['first_s']:.2f}",
            "",
        )


if __name__ == "__main__":
    main()

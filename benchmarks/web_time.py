"""Web time per generation: how long an editor's request holds a web worker.

imagegen's generate form saves a job and answers; the work happens in Celery.
The common design of other CMS plugins calls the provider inside the request
and waits for the image. Both run here for the same job, through Django's
full request handling (middleware, admin, session), against the sandbox in
its own process with a fixed provider latency.

    .venv/bin/python -m benchmarks.web_time [--latency 3]

The synchronous request lasts as long as the provider; with APIXO's real
latency (30-240 s) the ratio grows by the same factor.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from .common import free_port, setup_django, summary, table

#: How often the synchronous design asks the provider (a typical fixed poll).
SYNC_POLL_INTERVAL = 1.0


def generate_synchronously(prompt: str) -> str:
    """Submit, wait, download and store inside the caller: the blocking design."""
    from imagegen import services
    from imagegen.choices import TaskStatus
    from imagegen.fetching import download
    from imagegen.imaging import verify_image
    from imagegen.providers import GenerationRequest, get_provider
    from imagegen.storage import save_file

    provider = get_provider()
    task = provider.submit(
        GenerationRequest(
            mode="text-to-image",
            prompt=prompt,
            resolution="1k",
            aspect_ratio="auto",
            image_urls=(),
            callback_url=None,
        )
    )
    while (state := provider.fetch(task.task_id)).status != TaskStatus.SUCCESS:
        time.sleep(SYNC_POLL_INTERVAL)
    with download(state.outputs[0].url, services.fetch_policy(provider)) as fetched:
        image = verify_image(fetched.path, declared_type=fetched.content_type)
        return save_file(f"sync/{task.task_id}.{image.extension}", fetched.path, image.content_type)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=3.0, help="provider latency, seconds")
    parser.add_argument("--requests", type=int, default=5)
    args = parser.parse_args()
    setup_django()

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client, override_settings
    from django.urls import reverse

    port = free_port()
    sandbox = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imagegen.sandbox",
            "--port",
            str(port),
            "--latency",
            str(args.latency),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    sandbox.stdout.readline()  # its "listening" line: it is up
    config = {
        **settings.IMAGEGEN,
        "PROVIDER": "sandbox",
        "PROVIDERS": {"sandbox": {"BASE_URL": f"http://127.0.0.1:{port}/api/v1"}},
    }
    user, _ = get_user_model().objects.get_or_create(
        username="bench-editor", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    add_url = reverse("admin:imagegen_generationjob_add")
    queued, blocking = [], []
    try:
        with override_settings(IMAGEGEN=config, ALLOWED_HOSTS=["*"]):
            for n in range(args.requests):
                data = {
                    "prompt": f"web time {n} {time.time()}",
                    "mode": "text-to-image",
                    "resolution": "1k",
                    "aspect_ratio": "auto",
                    "provider": "sandbox",
                    "idempotency_key": f"bench:{time.time()}:{n}",
                }
                start = time.perf_counter()
                response = client.post(add_url, data)
                queued.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 302, response.status_code
                start = time.perf_counter()
                generate_synchronously(data["prompt"])
                blocking.append((time.perf_counter() - start) * 1000)
    finally:
        sandbox.terminate()
        sandbox.wait()
        # No worker runs here: drop the submissions the form queued.
        from project.celery import app

        app.control.purge()
    fast, slow = statistics.median(queued), statistics.median(blocking)
    print(
        f"Web time per generation (median of {args.requests}, "
        f"provider latency {args.latency:g} s):\n"
    )
    print(
        table(
            ["design", "web worker held, ms"],
            [
                ("imagegen: save the job, answer, work in Celery", f"{fast:.1f}"),
                ("synchronous: provider called inside the request", f"{slow:.1f}"),
            ],
        )
    )
    print(f"\nratio synchronous / imagegen: {slow / fast:.0f}x")
    summary(
        "web_time",
        f"web worker held, synchronous / imagegen ({args.latency:g} s provider)",
        f"{slow / fast:.0f}x",
    )


if __name__ == "__main__":
    main()

"""``manage.py imagegen demo``: the whole pipeline on one machine, no servers needed.

It starts, in the background, the sandbox (at the sandbox provider's
``BASE_URL``), this site's WSGI app (at ``CALLBACK_BASE_URL``, so callbacks
arrive), and a real Celery worker and beat as subprocesses on the configured
broker. Then it creates a text-to-image job through the service layer (the
same call the admin makes), waits until it is stored, and creates an
image-to-image job from that result whose callback the sandbox drops, so it
completes by polling. It prints the stored files and timings; the last line
is the path of the last stored image.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO
from urllib.parse import urlsplit

from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.core.wsgi import get_wsgi_application

from . import conf, services
from .management.progress import wait_for_job
from .models import GenerationJob
from .providers import get_provider
from .sandbox import SandboxConfig, SandboxServer


class DemoError(Exception):
    """The demo cannot run with this configuration; the message says why."""


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class DemoOptions:
    celery_app: str
    timeout: float = 120.0
    sandbox_latency: tuple[float, float] = (1.5, 3.0)
    #: Keep everything running afterwards, with an admin login, until interrupted.
    serve: bool = False


def run_demo(options: DemoOptions, stdout: TextIO) -> GenerationJob:
    """Run both jobs and return the last one. Raises :class:`DemoError`."""
    provider = get_provider()
    if not provider.options.get("SANDBOX"):
        raise DemoError(
            "The demo runs against the sandbox: set IMAGEGEN['PROVIDER'] = 'sandbox' "
            "(unset APIXO_API_KEY for the example site)."
        )
    sandbox_url = urlsplit(provider.base_url)
    callback_base = conf.get_setting("CALLBACK_BASE_URL")
    with contextlib.ExitStack() as stack:
        sandbox = SandboxServer(
            sandbox_url.hostname or "127.0.0.1",
            sandbox_url.port or 80,
            config=SandboxConfig(latency=options.sandbox_latency),
        )
        stack.enter_context(sandbox)
        stdout.write(f"sandbox     {sandbox.api_url}\n")
        if callback_base:
            stack.enter_context(_web_server(callback_base))
            stdout.write(f"callbacks   {callback_base}\n")
        else:
            stdout.write("callbacks   off (CALLBACK_BASE_URL not set): polling only\n")
        stack.enter_context(
            _celery(options.celery_app, "worker", "--concurrency=2", "-n", "imagegen-demo@%h")
        )
        stack.enter_context(_celery(options.celery_app, "beat"))
        stdout.write("celery      worker and beat started\n\n")

        first = services.create_job(
            prompt="A lighthouse on a cliff at dawn, watercolor",
            resolution="1k",
            aspect_ratio="16:9",
        )
        stdout.write(f"job 1 {first.pk}: text-to-image, completes by callback\n")
        first = wait_for_job(first.pk, stream=stdout, timeout=options.timeout)
        _require_success(first)
        second = services.create_job(
            prompt="The same lighthouse at night under the stars [sandbox:callback=drop]",
            mode="image-to-image",
            resolution="1k",
            aspect_ratio="1:1",
            reference_images=list(first.images.all()),
        )
        stdout.write(
            f"\njob 2 {second.pk}: image-to-image, callback dropped, completes by polling\n"
        )
        second = wait_for_job(second.pk, stream=stdout, timeout=options.timeout)
        _require_success(second)
        if options.serve:
            _serve(callback_base, stdout)
    # Reported after the worker and servers have stopped, so their shutdown
    # messages cannot follow the last line (the stored image's path).
    stdout.write("\n")
    for job in (first, second):
        _report(job, stdout)
    stdout.write(_stored_path(second) + "\n")
    return second


def _serve(callback_base: str | None, stdout: TextIO) -> None:
    """Open the admin to a demo superuser and wait for Ctrl-C."""
    if not callback_base:
        raise DemoError("--serve needs CALLBACK_BASE_URL: the site is served there.")
    from django.contrib.auth import get_user_model

    password = secrets.token_urlsafe(12)
    user, _created = get_user_model().objects.get_or_create(
        username="demo", defaults={"is_staff": True, "is_superuser": True}
    )
    user.set_password(password)
    user.save()
    stdout.write(
        f"\nadmin       {callback_base.rstrip('/')}/admin/imagegen/generationjob/add/\n"
        f"login       demo / {password}  (a new password every run)\n"
        "Ctrl-C stops the site, the worker and the sandbox.\n"
    )
    stdout.flush()
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def _require_success(job: GenerationJob) -> None:
    if job.status != "succeeded":
        raise DemoError(
            f"Job {job.pk} ended {job.status}: {job.error_message or 'still not finished'}"
        )


def _report(job: GenerationJob, stdout: TextIO) -> None:
    def since_created(value: object) -> str:
        return f"{(value - job.created_at).total_seconds():6.2f}s" if value else "     -"

    deliveries = job.deliveries.count()
    stdout.write(
        f"job {job.pk} {job.mode} {job.resolution} {job.aspect_ratio}: {job.status}\n"
        f"  submitted {since_created(job.submitted_at)}  provider done "
        f"{since_created(job.provider_completed_at)}  stored {since_created(job.completed_at)}"
        f"  polls {job.poll_count}  callbacks {deliveries}\n"
    )
    for image in job.images.order_by("index"):
        stdout.write(
            f"  [{image.index}] {image.file.name} {image.width}x{image.height} "
            f"{image.content_type} {image.size} bytes sha256 {image.sha256[:12]}\n"
        )


def _stored_path(job: GenerationJob) -> str:
    image = job.images.order_by("-index").first()
    try:
        return image.file.path
    except NotImplementedError:
        return image.file.url


@contextlib.contextmanager
def _web_server(base_url: str) -> Iterator[None]:
    parts = urlsplit(base_url)
    try:
        server = ThreadedWSGIServer((parts.hostname, parts.port or 80), _QuietHandler)
    except OSError as exc:
        raise DemoError(f"Cannot listen on {base_url} for callbacks: {exc}") from exc
    # Static files too (the admin's), as runserver would, without a web server in front.
    server.set_app(StaticFilesHandler(get_wsgi_application()))
    thread = threading.Thread(target=server.serve_forever, name="imagegen-demo-web", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def _celery(app: str, *args: str) -> Iterator[subprocess.Popen]:
    command = [sys.executable, "-m", "celery", "-A", app, *args, "--loglevel=WARNING"]
    process = subprocess.Popen(command, env=os.environ.copy())  # noqa: S603 (our own argv)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

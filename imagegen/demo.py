"""``manage.py imagegen demo``: the whole pipeline on one machine, no servers needed.

It starts, in the background, the sandbox (at the sandbox provider's
``BASE_URL``), this site's WSGI app (at ``CALLBACK_BASE_URL``, so callbacks
arrive), and a real Celery worker and beat as subprocesses on the configured
broker. Then it creates a text-to-image job through the service layer (the
same call the admin makes), waits until it is stored, and creates an
image-to-image job from that result whose callback the sandbox drops, so it
completes by polling. It prints the stored files and timings; the last line
is the path of the last stored image.

The worker counts as started only once it has taken the first job; if the
worker or beat exits, the demo stops at once with its exit code.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.core.wsgi import get_wsgi_application

from . import conf, services
from .choices import Status
from .management.progress import wait_for_job
from .models import GenerationJob
from .providers import get_provider
from .sandbox import SandboxConfig, SandboxServer


class DemoError(Exception):
    """The demo cannot run with this configuration; the message says why."""


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


#: Seconds the worker has to take the first job (or ``timeout``, if shorter).
WORKER_START_TIMEOUT = 60.0


@dataclass
class DemoOptions:
    #: ``celery -A`` of the worker and beat; None: $IMAGEGEN_CELERY_APP, else
    #: the settings module's top package (``mysite`` for ``mysite.settings``).
    celery_app: str | None = None
    #: Seconds each wait may take: the worker taking the first job (at most
    #: WORKER_START_TIMEOUT), then each job.
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
    celery_app = _load_celery_app(options.celery_app)
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
        celery = {
            "worker": stack.enter_context(
                _celery(celery_app, "worker", "--concurrency=2", "-n", "imagegen-demo@%h")
            ),
            "beat": stack.enter_context(_celery(celery_app, "beat")),
        }
        stdout.write(f"celery      worker and beat starting (-A {celery_app})\n")
        stdout.flush()

        def check() -> None:
            _check_running(celery, celery_app)

        first = services.create_job(
            prompt="A lighthouse on a cliff at dawn, watercolor",
            resolution="1k",
            aspect_ratio="16:9",
        )
        waited = _wait_taken(first, check, min(options.timeout, WORKER_START_TIMEOUT), celery_app)
        stdout.write(f"celery      worker consuming: it took job 1 after {waited:.1f}s\n\n")
        stdout.write(f"job 1 {first.pk}: text-to-image, completes by callback\n")
        first = wait_for_job(first.pk, stream=stdout, timeout=options.timeout, check=check)
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
        second = wait_for_job(second.pk, stream=stdout, timeout=options.timeout, check=check)
        _require_success(second)
        if options.serve:
            _serve(callback_base, stdout, check)
    # Reported after the worker and servers have stopped, so their shutdown
    # messages cannot follow the last line (the stored image's path).
    stdout.write("\n")
    for job in (first, second):
        _report(job, stdout)
    stdout.write(_stored_path(second) + "\n")
    return second


def _serve(callback_base: str | None, stdout: TextIO, check: Callable[[], None]) -> None:
    """Open the admin to a demo superuser and wait for Ctrl-C (or for ``check``
    to raise)."""
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
        while not stop.wait(1.0):
            check()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def _load_celery_app(given: str | None) -> str:
    """The ``celery -A`` value for the worker and beat, once this process has
    loaded the app from it as ``celery -A`` would. Raises :class:`DemoError`
    naming what failed."""
    from celery import Celery
    from celery.app.utils import find_app

    from_env = os.environ.get("IMAGEGEN_CELERY_APP")
    if given:
        name, source = given, "--celery-app"
    elif from_env:
        name, source = from_env, "IMAGEGEN_CELERY_APP"
    elif settings.SETTINGS_MODULE:
        name = settings.SETTINGS_MODULE.split(".")[0]
        source = f"derived from DJANGO_SETTINGS_MODULE={settings.SETTINGS_MODULE}"
    else:
        raise DemoError(
            "No Celery app to start: pass --celery-app (what `celery -A` takes for this "
            "site) or set IMAGEGEN_CELERY_APP."
        )
    hint = (
        "Pass --celery-app with what `celery -A` takes for this site (or set "
        "IMAGEGEN_CELERY_APP), e.g. --celery-app mysite when mysite/celery.py defines `app`."
    )
    try:
        app = find_app(name)
    except Exception as exc:  # whatever importing the user's module raises
        raise DemoError(
            f"Cannot load the Celery app {name!r} ({source}): {type(exc).__name__}: {exc}. {hint}"
        ) from None
    if not isinstance(app, Celery):
        raise DemoError(f"{name!r} ({source}) is not a Celery app but {app!r}. {hint}")
    return name


def _check_running(processes: Mapping[str, subprocess.Popen], celery_app: str) -> None:
    """Raise :class:`DemoError` if one of the Celery processes has exited."""
    for role, process in processes.items():
        code = process.poll()
        if code is not None:
            raise DemoError(
                f"The Celery {role} (celery -A {celery_app} {role}) exited with code {code}; "
                "its output is above."
            )


def _wait_taken(
    job: GenerationJob, check: Callable[[], None], timeout: float, celery_app: str
) -> float:
    """Seconds until a worker took ``job`` (it left ``queued``). Raises
    :class:`DemoError` after ``timeout`` seconds, or when ``check`` does."""
    start = time.monotonic()
    while True:
        check()
        if GenerationJob.objects.filter(pk=job.pk).exclude(status=Status.QUEUED).exists():
            return time.monotonic() - start
        if time.monotonic() - start >= timeout:
            raise DemoError(
                f"The Celery worker (celery -A {celery_app} worker) is running but has not "
                f"taken job 1 in {timeout:.0f}s: it is not consuming imagegen's tasks. Check "
                "that the app reads this site's settings (config_from_object("
                "'django.conf:settings', namespace='CELERY')), that it uses the broker "
                "this site sends to (CELERY_BROKER_URL) and consumes the queue imagegen's "
                "tasks go to (CELERY_TASK_DEFAULT_QUEUE, CELERY_TASK_ROUTES); its output "
                "is above."
            )
        time.sleep(0.2)  # the job row is the only sign of the worker that every broker gives


def _require_success(job: GenerationJob) -> None:
    if job.status != "succeeded":
        raise DemoError(
            f"Job {job.pk} ended {job.status}: {job.error_text or 'still not finished'}"
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
    env = os.environ.copy()
    # celery -A imports from the working directory; this process may have found
    # the app elsewhere (python mysite/manage.py, --pythonpath): there too.
    env["PYTHONPATH"] = os.pathsep.join(
        path for path in (_import_root(app), env.get("PYTHONPATH")) if path
    )
    process = subprocess.Popen(command, env=env)  # noqa: S603 (our own argv)
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


def _import_root(app: str) -> str | None:
    """The directory this process imported the app's top package from."""
    top = sys.modules.get(app.partition(":")[0].split(".")[0])
    file = getattr(top, "__file__", None)
    if not file:
        return None
    path = Path(file).resolve().parent
    return str(path.parent if hasattr(top, "__path__") else path)

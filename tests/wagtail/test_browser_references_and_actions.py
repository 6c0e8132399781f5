"""In real Chromium, as a Wagtail editor holding the documented permissions
(imagegen's add and view of jobs, Wagtail's add and choose of images) and as
a superuser (test_browser_chooser.ROLES): image-to-image from a library
image, the job page's Retry and Cancel, and its logout notice.

All real: the live server, a Celery worker on the test broker, the sandbox
over HTTP with callbacks to the live server.
"""

from __future__ import annotations

import io
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.files.base import ContentFile
from PIL import Image as PILImage
from wagtail.images import get_image_model

from imagegen import services
from imagegen.choices import Mode, Status
from imagegen.contrib.wagtail import references
from imagegen.models import GenerationJob

from ..conftest import wait_for_status, wait_until
from .conftest import WAGTAIL_IMAGEGEN
from .test_browser_chooser import ROLES, log_in, make_driver, screenshot, wagtail_editor

pytestmark = [
    pytest.mark.browser,
    pytest.mark.pipeline,
    pytest.mark.django_db(transaction=True),
]


def public_host() -> str:
    """A name of this machine that is not a loopback literal: job validation
    refuses ``localhost`` and loopback addresses in reference URLs (as it
    must on a real site), while the name still reaches the live server."""
    name = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(name, None)}
    assert name != "localhost" and any(a.startswith("127.") for a in addresses), (
        f"this test needs the host name {name!r} to resolve to a loopback address"
    )
    return name


@pytest.fixture
def site(imagegen_settings, settings, live_server, celery_worker, sandbox) -> str:
    """imagegen with the Wagtail adapter, the public URLs mounted, callbacks
    and reference URLs on the machine's own name."""
    host = public_host()
    port = live_server.url.rsplit(":", 1)[1]
    settings.ROOT_URLCONF = "tests.wagtail.urls"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, host]
    settings.IMAGEGEN = {
        **imagegen_settings,
        **WAGTAIL_IMAGEGEN,
        "CALLBACK_BASE_URL": f"http://{host}:{port}",
    }
    return f"http://{host}:{port}"


def library_image(title: str, color: tuple[int, int, int]) -> Any:
    out = io.BytesIO()
    PILImage.new("RGB", (320, 200), color).save(out, "PNG")
    image = get_image_model()(title=title, file=ContentFile(out.getvalue(), name="photo.png"))
    image.save()
    return image


@pytest.mark.parametrize("role", ROLES)
def test_image_to_image_from_a_library_image(
    role: str,
    page: Any,
    live_server: Any,
    site: str,
    sandbox: Any,
    django_user_model: Any,
    screenshot_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Slow enough to fetch the reference as the provider would, while the job waits.
    monkeypatch.setattr(sandbox.config, "latency", (3.0, 4.0))
    editor = make_driver(django_user_model, role, wagtail_editor)
    harbour = library_image("Harbour at dusk", (20, 60, 140))
    library_image("Lighthouse", (200, 180, 40))
    log_in(page, live_server, editor)

    page.goto(f"{live_server.url}/admin/imagegen/")
    # The picker belongs to image-to-image: hidden for text-to-image.
    assert not page.locator(".field-reference_images").is_visible()
    page.get_by_label("Image to image").check()
    picker = page.locator(".field-reference_images")
    picker.wait_for()
    assert picker.locator("img").count() == 2
    picker.get_by_title("Harbour at dusk").click()
    assert "(1 / 16)" in page.locator("#imagegen-ref-count").inner_text()
    page.fill("#id_prompt", "The same harbour at dawn, warm light")
    screenshot(page, role, screenshot_dir / "wagtail-references.png", full_page=True)
    page.get_by_role("button", name="Generate").click()

    page.wait_for_url("**/admin/imagegen/jobs/*/")
    job = GenerationJob.objects.get(created_by=editor)
    assert job.mode == Mode.IMAGE_TO_IMAGE
    [url] = job.reference_urls
    assert url.startswith(f"{site}/imagegen/wagtail/references/")
    token = url.rstrip("/").rsplit("/", 1)[-1]
    assert references.image_id_for(token) == harbour.pk

    # While the job waits on its provider, the signed URL serves the image, no login.
    wait_until(lambda: GenerationJob.objects.get(pk=job.pk).status == Status.RUNNING)
    fetched = httpx.get(url)
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png"
    assert PILImage.open(io.BytesIO(fetched.content)).getpixel((5, 5))[:3] == (20, 60, 140)

    page.locator("#imagegen-results img").first.wait_for(timeout=30_000)
    wait_for_status(page, Status.SUCCEEDED)
    assert page.locator("#imagegen-prompt").inner_text() == "The same harbour at dawn, warm light"
    # Once the job has its image, the link answers nothing.
    assert httpx.get(url).status_code == 404

    # Generate again picks the library image again, with a freshly signed link.
    page.get_by_role("link", name="Generate again").click()
    page.wait_for_url("**/admin/imagegen/?from=*")
    checked = page.locator(".field-reference_images input:checked")
    assert checked.count() == 1 and checked.get_attribute("value") == f"image:{harbour.pk}"
    assert page.locator("#id_reference_urls").input_value() == ""


@pytest.mark.parametrize("role", ROLES)
def test_job_page_retry_and_cancel(
    role: str,
    page: Any,
    live_server: Any,
    site: str,
    settings: Any,
    sandbox: Any,
    django_user_model: Any,
    screenshot_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    editor = make_driver(django_user_model, role, wagtail_editor)
    log_in(page, live_server, editor)
    failing = services.create_job(
        user=editor,
        prompt="A lighthouse in a storm [sandbox:fail=INTERNAL_ERROR]",
        resolution="1k",
    )

    # Retry: offered once the job fails (no reload), it makes one retry and opens it.
    page.goto(f"{live_server.url}/admin/imagegen/jobs/{failing.pk}/")
    assert "A lighthouse in a storm" in page.locator("#imagegen-prompt").inner_text()
    retry = page.get_by_role("button", name="Retry")
    retry.wait_for(timeout=30_000)
    assert page.locator("#imagegen-status").get_attribute("data-status") == Status.FAILED
    assert page.locator("#imagegen-error").is_visible()
    assert not page.get_by_role("button", name="Cancel").is_visible()
    screenshot(page, role, screenshot_dir / "wagtail-job-failed.png", full_page=True)
    retry.click()
    page.wait_for_url(lambda url: str(failing.pk) not in url)
    again = GenerationJob.objects.get(retry_of=failing)
    assert page.url.endswith(f"/admin/imagegen/jobs/{again.pk}/")
    assert "The retry was started" in page.locator(".messages").inner_text()
    assert page.get_by_role("link", name=str(failing)).is_visible()  # "Retry of"
    page.goto(f"{live_server.url}/admin/imagegen/jobs/{failing.pk}/")
    page.get_by_role("link", name="See the retry").wait_for()
    assert not page.get_by_role("button", name="Retry").is_visible()

    # Cancel: offered while the job runs, with what it still costs.
    monkeypatch.setattr(sandbox.config, "latency", (60.0, 60.0))
    sandbox_settings = settings.IMAGEGEN["PROVIDERS"]["sandbox"]
    settings.IMAGEGEN = {
        **settings.IMAGEGEN,
        "PROVIDERS": {"sandbox": {**sandbox_settings, "LATENCY": {"1k": (20.0, 45.0)}}},
    }
    slow = services.create_job(user=editor, prompt="A harbour at night, long exposure")
    page.goto(f"{live_server.url}/admin/imagegen/jobs/{slow.pk}/")
    # Accepted by the provider (submitted, then running): canceling may still cost.
    page.wait_for_function(
        "() => ['submitted', 'running']"
        ".includes(document.querySelector('#imagegen-status').dataset.status)"
    )
    cancel = page.get_by_role("button", name="Cancel")
    assert cancel.is_visible()
    assert "may still be charged" in page.locator("#imagegen-cancel-note").inner_text()
    screenshot(page, role, screenshot_dir / "wagtail-job-actions.png", full_page=True)
    cancel.click()
    page.wait_for_load_state()
    assert "it may still be charged" in page.locator(".messages").inner_text()
    slow.refresh_from_db()
    assert slow.status == Status.CANCELED
    assert page.locator("#imagegen-status").get_attribute("data-status") == Status.CANCELED
    assert not page.get_by_role("button", name="Cancel").is_visible()


@pytest.mark.parametrize("role", ROLES)
def test_job_page_notices_a_logout_and_carries_on(
    role: str,
    page: Any,
    live_server: Any,
    site: str,
    settings: Any,
    sandbox: Any,
    django_user_model: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The status URL answers a logged-out reader with Wagtail's login page:
    the job page says so, keeps asking, and carries on once logged in again."""
    monkeypatch.setattr(sandbox.config, "latency", (6.0, 6.0))
    editor = make_driver(django_user_model, role, wagtail_editor)
    log_in(page, live_server, editor)
    job = services.create_job(user=editor, prompt="A harbour at night, long exposure")
    page.goto(f"{live_server.url}/admin/imagegen/jobs/{job.pk}/")
    notice = page.locator("#imagegen-connection")
    page.wait_for_function("() => document.querySelector('#imagegen-elapsed').textContent")
    assert not notice.is_visible()

    page.context.clear_cookies()
    notice.wait_for(state="visible")
    assert "You were logged out" in notice.inner_text()

    log_in(page, live_server, editor)
    notice.wait_for(state="hidden", timeout=30_000)
    page.locator("#imagegen-results img").first.wait_for(timeout=30_000)
    wait_for_status(page, Status.SUCCEEDED)

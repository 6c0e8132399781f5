"""Fixtures for the browser tests: real headless Chromium driven by Playwright.

The browser is Debian's ``chromium`` package (or ``IMAGEGEN_CHROMIUM``), not one
downloaded by ``playwright install``, whose CDN is out of reach here. Without a
browser the tests are skipped with the reason, except under CI=true, where they fail.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..conftest import unavailable
from ..factories import PASSWORD, make_superuser, make_user

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# Playwright's sync API runs an asyncio event loop in the test thread, and Django
# refuses ORM calls (fixtures such as admin_user) in a thread with a running loop.
# The tests themselves never share the loop with Django code, so the check only
# gets in the way here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

BROWSER_TESTS = Path(__file__).resolve().parent
DEFAULT_CHROMIUM = "/usr/bin/chromium"

# Chromium's background services (component updates, sync, safe browsing lists...)
# open outgoing connections that this machine's closed network refuses; turn them off.
CHROMIUM_ARGS = [
    "--no-sandbox",  # the suite may run as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
]

LoginFunc = Callable[["Page", str, str, str], None]
#: ``sign_in(*perms, username=None, superuser=False)`` -> the user.
SignIn = Callable[..., Any]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests under tests/browser ``browser`` so ``-m browser`` selects them."""
    # A conftest's hook sees the whole session's items, not just this directory's.
    for item in items:
        if item.path.resolve().is_relative_to(BROWSER_TESTS):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Path of the Chromium binary: ``IMAGEGEN_CHROMIUM`` or Debian's /usr/bin/chromium."""
    if importlib.util.find_spec("playwright") is None:
        unavailable(
            "playwright is not installed; install the test requirements "
            "(pip install -r requirements/test.txt)"
        )
    path = os.environ.get("IMAGEGEN_CHROMIUM", DEFAULT_CHROMIUM)
    if not os.access(path, os.X_OK):
        unavailable(
            f"no Chromium at {path}; install Debian's package "
            "(apt-get install --no-install-recommends chromium) "
            "or point IMAGEGEN_CHROMIUM at a Chromium binary"
        )
    return path


@pytest.fixture(scope="session")
def browser(chromium_executable: str) -> Iterator[Browser]:
    """One headless Chromium for the whole session; tests isolate in their own contexts."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh browser context (own cookies and storage), closed after the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    # Long enough for a cold live server on a busy CI machine, short enough that a
    # missing element fails well inside pytest-timeout's limit.
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def admin_login() -> LoginFunc:
    """A function ``login(page, live_server_url, username, password)`` that signs in
    through the admin's login form; it raises AssertionError with the form's error
    text when the credentials are refused."""

    def login(page: Page, live_server_url: str, username: str, password: str) -> None:
        page.goto(f"{live_server_url.rstrip('/')}/admin/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        # Django answers a good login with a redirect and a bad one by re-rendering
        # the form (200), so the POST's status tells which to wait for.
        with page.expect_response(
            lambda response: response.request.method == "POST" and "/login/" in response.url
        ) as posted:
            page.click("#login-form [type=submit]")
        if posted.value.status in (301, 302, 303):
            page.wait_for_url(lambda url: "/login/" not in url)
            return
        page.wait_for_load_state()
        errors = page.locator(".errornote, .errorlist").all_inner_texts()
        detail = " ".join(text.strip() for text in errors) or "no error shown"
        raise AssertionError(
            f"admin login as {username!r} failed (HTTP {posted.value.status}): {detail}"
        )

    return login


@pytest.fixture
def sign_in(page: Page, live_server: Any, admin_login: LoginFunc, django_user_model: Any) -> SignIn:
    """A function ``sign_in(*perms, username="editor")`` that makes a staff user
    with exactly ``perms`` (``"app_label.codename"``, as tests.factories.make_user),
    signs it in on ``page`` through the admin's login form and returns it;
    ``sign_in(superuser=True)`` does the same for a superuser (named "root")."""

    def login_as(*perms: str, username: str | None = None, superuser: bool = False) -> Any:
        username = username or ("root" if superuser else "editor")
        if superuser:
            assert not perms, "a superuser has every permission"
            user = make_superuser(django_user_model, username)
        else:
            user = make_user(django_user_model, *perms, username=username)
        admin_login(page, live_server.url, username, PASSWORD)
        return user

    return login_as


@pytest.fixture
def live_pipeline(callbacks_on: str, celery_worker: Any, sandbox: Any) -> Any:
    """The whole pipeline, real: the live server, a Celery worker on the test
    broker, the sandbox over HTTP with callbacks to the live server. Returns
    the sandbox (its ``config`` sets the provider's latency)."""
    return sandbox


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    """Where tests save screenshots: ``IMAGEGEN_SCREENSHOT_DIR`` when set (that is how
    scripts/screenshots refreshes docs/screenshots), else the test's tmp_path."""
    configured = os.environ.get("IMAGEGEN_SCREENSHOT_DIR")
    if not configured:
        return tmp_path
    directory = Path(configured)
    directory.mkdir(parents=True, exist_ok=True)
    return directory

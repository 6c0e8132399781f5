"""Smoke test: the admin works in a real browser, end to end through the live server."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .conftest import LoginFunc

if TYPE_CHECKING:
    from playwright.sync_api import Page


def test_admin_login_shows_index(
    page: Page,
    live_server: Any,
    admin_user: Any,
    admin_login: LoginFunc,
    screenshot_dir: Path,
) -> None:
    admin_login(page, live_server.url, "admin", "password")

    assert "Site administration" in page.locator("#content h1").inner_text()

    screenshot = screenshot_dir / "admin-index.png"
    page.screenshot(path=str(screenshot), full_page=True)
    data = screenshot.read_bytes()
    assert data.startswith(b"\x89PNG")
    assert len(data) > 8

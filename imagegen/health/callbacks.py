"""The doctor's callback check: does a request to ``CALLBACK_BASE_URL`` reach this site?

With the sandbox as provider, the sandbox itself is asked to POST to the
probe URL (``POST /_sandbox/probe-callback``), so the request comes from
where callbacks come from. With a real provider, the doctor's own process
sends it: proof that the URL answers, if not that the provider's network
reaches it.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from django.urls import NoReverseMatch, reverse

from .. import conf
from ..exceptions import ImagegenConfigurationError
from ..providers import get_provider
from .findings import FAIL, INFO, OK, Finding, brief
from .probe import ANSWER

CHECK = "callbacks"


def probe_url() -> str | None:
    """The probe's public URL under ``CALLBACK_BASE_URL`` (None when unset);
    raises NoReverseMatch when imagegen's URLs are not mounted."""
    base = conf.get_setting("CALLBACK_BASE_URL")
    if not base:
        return None
    path = reverse("imagegen:callback-probe")
    # Joined as services.jobs.callback_url joins the real callback URLs.
    return urljoin(base.rstrip("/") + "/", path.lstrip("/"))


def check_callbacks(timeout: float) -> Finding:
    try:
        url = probe_url()
    except NoReverseMatch:
        return Finding(
            CHECK,
            FAIL,
            'imagegen\'s URLs are not mounted: add path("imagegen/", '
            'include("imagegen.urls")) to the site\'s urls.py.',
        )
    if url is None:
        return Finding(
            CHECK,
            INFO,
            "CALLBACK_BASE_URL is not set: jobs complete by polling only (a few status "
            "requests each); set it to the site's public origin to receive callbacks.",
        )
    try:
        provider = get_provider()
    except ImagegenConfigurationError:
        provider = None  # reported by the provider check
    if provider is not None and provider.options.get("SANDBOX"):
        return _through_sandbox(getattr(provider, "base_url", ""), url, timeout)
    return _direct(url, timeout)


def _through_sandbox(base_url: str, url: str, timeout: float) -> Finding:
    parts = urlsplit(base_url)
    sandbox = f"{parts.scheme}://{parts.netloc}"
    try:
        with httpx.Client(trust_env=False, timeout=timeout + 5) as client:
            response = client.post(
                f"{sandbox}/_sandbox/probe-callback", json={"url": url, "timeout": timeout}
            )
        report = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return Finding(
            CHECK,
            FAIL,
            f"cannot ask the sandbox at {sandbox} to call {url}: {brief(exc)}: start it "
            "(`manage.py imagegen sandbox`).",
        )
    if response.status_code != 200 or not isinstance(report, dict):
        return Finding(
            CHECK,
            FAIL,
            f"the sandbox at {sandbox} cannot probe callbacks (it answered "
            f"{response.status_code}): run the sandbox of this imagegen version.",
        )
    if report.get("status") is None:
        return Finding(
            CHECK,
            FAIL,
            f"the sandbox could not reach {url}: {report.get('error', 'no answer')}: "
            "CALLBACK_BASE_URL must be an address the sandbox can reach, with this site "
            "running there.",
        )
    return _judge(url, report["status"], str(report.get("body", "")), "the sandbox", {})


def _direct(url: str, timeout: float) -> Finding:
    try:
        with httpx.Client(trust_env=False, timeout=timeout, follow_redirects=False) as client:
            response = client.post(url, json={})
    except httpx.HTTPError as exc:
        return Finding(
            CHECK,
            FAIL,
            f"{url} cannot be reached from here: {brief(exc)}: set CALLBACK_BASE_URL to the "
            "site's public https origin.",
        )
    return _judge(url, response.status_code, response.text, "this machine", response.headers)


def _judge(url: str, status: int, body: str, source: str, headers: Any) -> Finding:
    if status == 200 and _is_probe(body):
        reached = f"{source} reached {url}"
        if source == "this machine":
            reached += " (the provider must reach it from its own network too)"
        return Finding(CHECK, OK, reached + ".")
    if status == 200:
        return Finding(
            CHECK,
            FAIL,
            f"{url} answered, but not as imagegen: CALLBACK_BASE_URL points at another site "
            "or a page in front of this one.",
        )
    if 300 <= status < 400:
        target = headers.get("Location", "elsewhere")
        return Finding(
            CHECK,
            FAIL,
            f"{url} redirects ({status}) to {target}: callbacks are not redirected; set "
            "CALLBACK_BASE_URL to the origin it redirects to.",
        )
    if status == 404:
        return Finding(
            CHECK,
            FAIL,
            f"{url} answered 404: CALLBACK_BASE_URL must be the site's origin (no path) "
            "with imagegen's URLs mounted there.",
        )
    return Finding(CHECK, FAIL, f"{url} answered {status} to {source}: callbacks would fail.")


def _is_probe(body: str) -> bool:
    try:
        return json.loads(body) == ANSWER
    except ValueError:
        return False

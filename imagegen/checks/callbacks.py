"""``CALLBACK_BASE_URL``: the origin providers call back.

A callback URL is this origin followed by ``reverse()`` of imagegen's callback
view (``services.jobs.callback_url``), so the origin must be just that: a
path in it would be doubled (or wrong), and a provider on the internet
must be able to reach it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.checks import CheckMessage, Error, Warning

from .. import conf
from ..exceptions import ImagegenConfigurationError, UnsafeURLError
from ..fetching import FetchPolicy, check_url
from ..providers import get_provider


def check() -> list[CheckMessage]:
    base = conf.get_setting("CALLBACK_BASE_URL")
    if not base:
        return [
            Warning(
                "IMAGEGEN['CALLBACK_BASE_URL'] is not set: jobs complete by polling only.",
                hint="Set it to the public https origin of this site to receive callbacks.",
                id="imagegen.W003",
            )
        ]
    base = str(base)
    try:
        parts = urlsplit(base)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return [
            Error(
                "IMAGEGEN['CALLBACK_BASE_URL'] must be an absolute http(s) URL.",
                id="imagegen.E008",
            )
        ]
    origin = f"{parts.scheme}://{parts.netloc}"
    errors: list[CheckMessage] = []
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        errors.append(
            Error(
                f"IMAGEGEN['CALLBACK_BASE_URL'] ({base!r}) must be an origin only "
                "(scheme://host[:port]): callback URLs are this origin followed by the full "
                "path of imagegen's callback URL, so a path here is doubled or wrong, and a "
                "query or fragment breaks them.",
                hint=f"Use {origin!r}. For a site under a sub-path, set FORCE_SCRIPT_NAME "
                "(reverse() then adds the sub-path).",
                id="imagegen.E019",
            )
        )
    errors += _check_reachable(base, parts.scheme)
    return errors


def _check_reachable(base: str, scheme: str) -> list[CheckMessage]:
    """A real provider calls back from the internet: the origin must be public https."""
    problems = []
    if scheme != "https":
        problems.append("is not https")
    try:
        check_url(base, FetchPolicy(allowed_ports=None))
    except UnsafeURLError:
        problems.append("names a loopback or private host")
    if not problems:
        return []
    calling_back = _real_providers_calling_back()
    if not calling_back:
        return []
    names = ", ".join(repr(name) for name in calling_back)
    return [
        Error(
            f"IMAGEGEN['CALLBACK_BASE_URL'] ({base!r}) {' and '.join(problems)}, but provider "
            f"{names} calls back from the internet, to public https URLs only (APIXO's "
            "rule): its jobs would fail or never be called back.",
            hint="Use this site's public https origin (in development, an https tunnel to "
            "it), or leave CALLBACK_BASE_URL unset: jobs then complete by polling.",
            id="imagegen.E020",
        )
    ]


def _real_providers_calling_back() -> list[str]:
    """Providers editors may choose that send callbacks, the local sandbox aside."""
    try:
        configured = conf.configured_providers()
    except ImagegenConfigurationError:
        return []  # imagegen.E021 or E004
    names = []
    for name in configured:
        try:
            provider = get_provider(name)
        except ImagegenConfigurationError:
            continue  # imagegen.E004
        if provider.capabilities.supports_callback and not provider.options.get("SANDBOX"):
            names.append(name)
    return names

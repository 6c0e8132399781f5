"""Safe downloads of result and reference images (SSRF-hardened).

http(s) only, ports and hosts from an allowlist, every resolved address
checked and the connection made to that very address (no DNS rebinding),
redirects re-checked hop by hop, no proxies from the environment, a size
cap with or without Content-Length, and a wall-clock deadline. The body is
streamed to a temporary file, never held in memory.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import ssl
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

import certifi
import httpx

from .exceptions import DownloadTooLargeError, FetchError, UnsafeURLError

REDIRECTS = {301, 302, 303, 307, 308}


@dataclass(frozen=True)
class FetchPolicy:
    """Download rules. ``allowed_hosts`` None means any host; entries are
    hostnames or ``*.example.com`` patterns."""

    allowed_hosts: tuple[str, ...] | None = None
    allow_private: bool = False
    allowed_ports: tuple[int, ...] | None = (80, 443)
    max_bytes: int = 50 * 1024 * 1024
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    total_timeout: float = 120.0
    max_redirects: int = 3
    user_agent: str = "imagegen"


@dataclass
class Download:
    """A downloaded body in a temporary file; ``close()`` deletes it."""

    path: Path
    size: int
    content_type: str | None
    url: str

    def close(self) -> None:
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> Download:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def redact_url(url: str) -> str:
    """``url`` fit to show in a message or a log: scheme, host and port as
    written (an IPv6 literal keeps its brackets), and path. Never the
    userinfo, query string or fragment: credentials and signed URLs' tokens
    live there. Never raises: a URL that cannot be parsed shows as
    ``(invalid URL)``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(invalid URL)"
    host_and_port = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host_and_port, parts.path, "", ""))


def resolve(host: str, port: int) -> list[str]:
    """All addresses of ``host`` (a seam for tests about the network edge)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _host_allowed(host: str, patterns: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    for pattern in patterns:
        pattern = pattern.lower()
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False


def check_url(url: str, policy: FetchPolicy) -> None:
    """Scheme, port and host-allowlist checks (no DNS). Raises UnsafeURLError."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeURLError("The URL is not valid.", url=redact_url(url)) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURLError(
            f"Only http and https URLs are allowed ({redact_url(url)!r}).", url=redact_url(url)
        )
    port = port or (443 if parts.scheme == "https" else 80)
    if policy.allowed_ports is not None and port not in policy.allowed_ports:
        raise UnsafeURLError(f"Port {port} is not allowed.", url=redact_url(url))
    if policy.allowed_hosts is not None and not _host_allowed(parts.hostname, policy.allowed_hosts):
        raise UnsafeURLError(
            f"The host {parts.hostname} is not in the allowlist.", url=redact_url(url)
        )
    if not policy.allow_private and _names_local_host(parts.hostname):
        raise UnsafeURLError(
            f"{parts.hostname} is a private or local address.", url=redact_url(url)
        )


def _names_local_host(host: str) -> bool:
    """``localhost``, or an IP literal that is not public, in any spelling
    HTTP clients accept (``127.1``, ``2130706433``, ``0x7f.1``). Names are
    checked after resolution, where they are fetched."""
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        try:
            ip = ipaddress.IPv4Address(socket.inet_aton(host))
        except (OSError, ValueError):
            return False
    return not _public(ip)


def _is_public(address: str) -> bool:
    return _public(ipaddress.ip_address(address.split("%")[0]))


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _checked_address(url: str, policy: FetchPolicy) -> str:
    check_url(url, policy)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve(parts.hostname, port)
    except (OSError, UnicodeError):
        raise FetchError(
            f"Could not resolve {parts.hostname}.", retryable=True, url=redact_url(url)
        ) from None
    if not addresses:
        raise FetchError(f"{parts.hostname} has no address.", retryable=True, url=redact_url(url))
    if not policy.allow_private:
        for address in addresses:
            if not _is_public(address):
                raise UnsafeURLError(
                    f"{parts.hostname} resolves to a private or reserved address.",
                    url=redact_url(url),
                )
    return addresses[0]


def _pinned(url: str, address: str) -> tuple[str, str]:
    """The URL with the host replaced by the checked address, and the Host header."""
    parts = urlsplit(url)
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), host_header


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: loading the CA bundle costs about 25 ms of
    CPU, more than the rest of a typical download."""
    return ssl.create_default_context(cafile=certifi.where())


@dataclass(frozen=True)
class PinnedTarget:
    """Where to send a request so that the checked address is the one
    connected to: ``url`` names that address, ``headers`` carry the original
    Host, ``extensions`` the TLS server name (certificates are verified
    against the original host)."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, str]


def pin(url: str, policy: FetchPolicy) -> PinnedTarget:
    """Check ``url`` under ``policy``, resolve it once and pin the request to
    the checked address. Raises UnsafeURLError, or FetchError for DNS failures."""
    address = _checked_address(url, policy)
    target, host = _pinned(url, address)
    parts = urlsplit(url)
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return PinnedTarget(target, {"Host": host}, extensions)


def safe_client(policy: FetchPolicy) -> httpx.Client:
    """The client for :func:`pin`ned requests: no proxies from the environment,
    no redirects followed (a caller re-checks each hop or refuses it), the
    policy's timeouts and the shared TLS context. Downloads and outbound
    webhooks both go through it."""
    timeout = httpx.Timeout(policy.read_timeout, connect=policy.connect_timeout)
    return httpx.Client(
        trust_env=False, follow_redirects=False, timeout=timeout, verify=_tls_context()
    )


def download(url: str, policy: FetchPolicy, *, dir: str | None = None) -> Download:
    """Download ``url`` under ``policy`` to a temporary file."""
    deadline = time.monotonic() + policy.total_timeout
    with safe_client(policy) as client:
        for _hop in range(policy.max_redirects + 1):
            target = pin(url, policy)
            try:
                with client.stream(
                    "GET",
                    target.url,
                    headers={**target.headers, "User-Agent": policy.user_agent},
                    extensions=target.extensions,
                ) as response:
                    if response.status_code in REDIRECTS and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    _raise_for_status(response, url)
                    return _save(response, url, policy, deadline, dir)
            except httpx.TimeoutException:
                raise FetchError(
                    f"Timed out downloading {redact_url(url)}.", retryable=True, url=redact_url(url)
                ) from None
            except httpx.TransportError as exc:
                raise FetchError(
                    f"Could not download {redact_url(url)}: {type(exc).__name__}.",
                    retryable=True,
                    url=redact_url(url),
                ) from None
    raise UnsafeURLError("Too many redirects.", url=redact_url(url))


def _raise_for_status(response: httpx.Response, url: str) -> None:
    status = response.status_code
    if status < 400 and status not in REDIRECTS:
        return
    retryable = status in (408, 425, 429) or status >= 500
    error = FetchError(
        f"Downloading {redact_url(url)} failed with HTTP {status}.",
        retryable=retryable,
        url=redact_url(url),
    )
    error.status_code = status
    raise error


def _save(
    response: httpx.Response, url: str, policy: FetchPolicy, deadline: float, dir: str | None
) -> Download:
    declared = response.headers.get("content-length")
    expected = int(declared) if declared and declared.isdigit() else None
    if expected is not None and expected > policy.max_bytes:
        raise DownloadTooLargeError(
            f"The file is {expected} bytes; the limit is {policy.max_bytes}.", url=redact_url(url)
        )
    fd, name = tempfile.mkstemp(prefix="imagegen-", dir=dir)
    path = Path(name)
    size = 0
    try:
        with os.fdopen(fd, "wb") as fh:
            # No chunk size: httpx would hold bytes back until a chunk is full,
            # and a trickling server would never reach the deadline check.
            for chunk in response.iter_raw():
                size += len(chunk)
                if size > policy.max_bytes:
                    raise DownloadTooLargeError(
                        f"The file is over the {policy.max_bytes}-byte limit.", url=redact_url(url)
                    )
                if time.monotonic() > deadline:
                    raise FetchError(
                        f"Downloading {redact_url(url)} took too long.",
                        retryable=True,
                        url=redact_url(url),
                    )
                fh.write(chunk)
        if expected is not None and size != expected:
            raise FetchError(
                "The download ended before its declared length.",
                retryable=True,
                url=redact_url(url),
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Download(
        path=path, size=size, content_type=response.headers.get("content-type"), url=url
    )

"""Safe downloads of result and reference images (SSRF-hardened).

http(s) only; URLs with control characters, an unclear host or past
``MAX_URL_LENGTH`` refused before anything else; ports and hosts from an
allowlist, matched on the very name that is resolved and sent; every
address, literal or resolved, judged by :func:`address_allowed` and the
connection made to that very address (no DNS rebinding); redirects
re-checked hop by hop; no proxies from the environment; a size cap with or
without Content-Length, and a wall-clock deadline. The body is streamed to
a temporary file, never held in memory. Outbound webhooks use the same
checks (:func:`pin`, :func:`safe_client`).
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import socket
import ssl
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import certifi
import h11
import httpx

from .exceptions import DownloadTooLargeError, FetchError, UnsafeURLError

REDIRECTS = {301, 302, 303, 307, 308}
#: The longest URL imagegen accepts or fetches: 8 KiB, what common servers
#: take in a request line (Apache's ``LimitRequestLine`` is 8190, nginx's
#: ``large_client_header_buffers`` 8k); httpx itself stops at 64 KiB.
MAX_URL_LENGTH = 8192
#: The longest host name DNS can carry, as text (RFC 1035).
MAX_HOST_LENGTH = 253
#: The longest URL :func:`redact_url` shows.
SHOWN_URL_LENGTH = 200
#: C0 controls, DEL and C1 controls.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
#: A host name after IDNA encoding: labels of letters, digits, hyphens and
#: underscores (some real names have those), separated by single dots.
_HOST_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
#: What ``inet_aton`` may take for an IPv4 address (decimal, octal, hex parts).
_IPV4_SPELLING = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}")


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
    live there. Control characters show percent-encoded (a CR or LF must not
    start a new log line), and the result is at most ``SHOWN_URL_LENGTH``
    characters. Never raises: a URL that cannot be parsed shows as
    ``(invalid URL)``."""
    url = _CONTROL.sub(lambda match: f"%{ord(match.group()):02X}", url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(invalid URL)"
    host_and_port = parts.netloc.rpartition("@")[2]
    shown = urlunsplit((parts.scheme, host_and_port, parts.path, "", ""))
    return shown if len(shown) <= SHOWN_URL_LENGTH else shown[: SHOWN_URL_LENGTH - 1] + "…"


def resolve(host: str, port: int) -> list[str]:
    """All addresses of ``host`` (a seam for tests about the network edge)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: IPv6 ranges whose addresses carry an IPv4 address that packets reach:
#: that IPv4 address decides. IPv4-mapped (``::ffff:a.b.c.d``) is handled
#: by ``ipv4_mapped``, 6to4 (2002::/16) by ``sixtofour``.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
#: IPv6 ranges refused whatever they carry.
_REFUSED_V6 = (
    # IPv4-compatible (::a.b.c.d, deprecated by RFC 4291), with :: and ::1.
    ipaddress.IPv6Network("::/96"),
    # Local-use NAT64 (RFC 8215): where the IPv4 address sits is the operator's choice.
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    # Teredo (RFC 4380): tunnels to an obfuscated IPv4 client through a relay.
    ipaddress.IPv6Network("2001::/32"),
    # Deprecated site-local (RFC 3879): private, like fc00::/7.
    ipaddress.IPv6Network("fec0::/10"),
    # Documentation (RFC 9637), which Python before 3.13 calls global.
    ipaddress.IPv6Network("3fff::/20"),
)
#: Global unicast: every public IPv6 address is in it (Python's
#: ``is_global`` alone calls unassigned and reserved space global).
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")


def address_allowed(ip: IPAddress, policy: FetchPolicy) -> bool:
    """Whether ``policy`` lets imagegen connect to ``ip``: the one decision
    for URL literals, DNS answers and every redirect hop, for result
    downloads, reference images and outbound webhooks. Without
    ``allow_private`` only public unicast addresses pass; an IPv6 address
    that embeds an IPv4 one the packets reach (IPv4-mapped, NAT64
    64:ff9b::/96, 6to4 2002::/16) is judged by that IPv4 address, and the
    IPv6 forms that hide one elsewhere (IPv4-compatible, local-use NAT64,
    Teredo) or are private by an older rule (site-local) are refused."""
    if policy.allow_private:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            ip = embedded
        elif any(ip in network for network in _REFUSED_V6) or ip not in _GLOBAL_UNICAST:
            return False
    return ip.is_global and not ip.is_multicast


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def parse_address(text: str) -> IPAddress:
    """An IP address in any spelling resolvers and HTTP clients accept:
    IPv6 in any case, with or without a zone id (dropped: the address
    decides), IPv4 dotted, shortened (``127.1``), decimal (``2130706433``),
    octal (``0177.0.0.1``) or hex (``0x7f.1``), with or without a trailing
    dot. Raises ValueError for anything else."""
    text = text.strip().lower()
    text = text[:-1] if text.endswith(".") else text
    if ":" in text:
        return ipaddress.IPv6Address(text.partition("%")[0])
    if not _IPV4_SPELLING.fullmatch(text):
        raise ValueError(f"not an IP address: {text!r}")
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        raise ValueError(f"not an IP address: {text!r}") from None


@dataclass(frozen=True)
class _Target:
    """A checked URL: ``host`` is the name imagegen resolves, matches
    against the allowlist and sends as Host and TLS server name (ASCII,
    lowercase, no trailing dot), or the address it names in standard form."""

    scheme: str
    host: str
    ip: IPAddress | None
    port: int
    explicit_port: bool
    path: str
    query: str


def check_url(url: str, policy: FetchPolicy) -> None:
    """Length, control characters, scheme, host, port and host-allowlist
    checks, and the address check of a URL that names an address (no DNS).
    Raises UnsafeURLError."""
    _check(url, policy)


def _check(url: str, policy: FetchPolicy) -> _Target:
    shown = redact_url(url)
    _refuse_bad_text(url, shown)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeURLError("The URL is not valid.", url=shown) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURLError(f"Only http and https URLs are allowed ({shown!r}).", url=shown)
    # Parsers disagree on a backslash (WHATWG: a path separator; urlsplit:
    # part of the userinfo) and on percent-escapes in the authority.
    authority = parts.netloc
    if "\\" in authority or _CONTROL.search(unquote(authority)):
        raise UnsafeURLError(
            "The URL's host part contains a backslash or an encoded control character.", url=shown
        )
    host, ip = _canonical_host(parts.hostname, shown)
    explicit = port is not None
    port = port if explicit else (443 if parts.scheme == "https" else 80)
    if policy.allowed_ports is not None and port not in policy.allowed_ports:
        raise UnsafeURLError(f"Port {port} is not allowed.", url=shown)
    if policy.allowed_hosts is not None and not _host_allowed(host, ip, policy.allowed_hosts):
        raise UnsafeURLError(f"The host {host} is not in the allowlist.", url=shown)
    if not policy.allow_private and (
        (ip is not None and not address_allowed(ip, policy))
        or host == "localhost"
        or host.endswith(".localhost")
    ):
        raise UnsafeURLError(f"{host} is a private or local address.", url=shown)
    return _Target(parts.scheme, host, ip, port, explicit, parts.path, parts.query)


def _refuse_bad_text(url: str, shown: str) -> None:
    """Refuse what no parser may see: a URL past ``MAX_URL_LENGTH``, or one
    with a control character anywhere (``urlsplit`` silently drops tabs and
    line breaks, so the host checked would not be the host written)."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURLError(
            f"The URL is {len(url)} characters long; the limit is {MAX_URL_LENGTH}.", url=shown
        )
    if _CONTROL.search(url):
        raise UnsafeURLError("The URL contains control characters.", url=shown)


def _canonical_host(hostname: str, shown: str) -> tuple[str, IPAddress | None]:
    """The host as imagegen connects to it, and its address if it names one.
    Names are IDNA-encoded the way the resolver would encode them."""
    if ":" in hostname:  # a bracketed IPv6 literal, already validated by urlsplit
        if "%" in hostname:
            raise UnsafeURLError(
                "IPv6 zone ids are not allowed: they name a network interface of this machine.",
                url=shown,
            )
        ip = ipaddress.IPv6Address(hostname)
        return str(ip), ip
    name = hostname[:-1] if hostname.endswith(".") else hostname
    try:
        name = name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        name = ""
    if len(name) > MAX_HOST_LENGTH or not _HOST_NAME.fullmatch(name):
        raise UnsafeURLError("The URL's host is not a valid host name.", url=shown)
    try:
        ip = parse_address(name)
    except ValueError:
        return name, None
    return str(ip), ip


def _host_allowed(host: str, ip: IPAddress | None, patterns: tuple[str, ...]) -> bool:
    """Exact matches of the canonical host; ``*.example.com`` matches names
    under example.com (not example.com itself, not ``evilexample.com``,
    never an address)."""
    for pattern in patterns:
        pattern = pattern.strip().lower()
        pattern = pattern[:-1] if pattern.endswith(".") else pattern
        wildcard = pattern.startswith("*.")
        try:
            pattern = pattern.removeprefix("*.").encode("idna").decode("ascii")
        except UnicodeError:
            continue
        if wildcard:
            if ip is None and host.endswith("." + pattern):
                return True
        elif host == pattern:
            return True
    return False


def _resolved_address(target: _Target, policy: FetchPolicy, shown: str) -> IPAddress:
    """The address to connect to: the first of the host's, after checking
    all of them."""
    try:
        answers = resolve(target.host, target.port)
    except OSError:
        raise FetchError(f"Could not resolve {target.host}.", retryable=True, url=shown) from None
    if not answers:
        raise FetchError(f"{target.host} has no address.", retryable=True, url=shown)
    addresses = []
    for answer in answers:
        try:
            address = parse_address(answer)
        except ValueError:
            raise UnsafeURLError(
                f"{target.host} resolves to something that is not an address.", url=shown
            ) from None
        if not address_allowed(address, policy):
            raise UnsafeURLError(
                f"{target.host} resolves to a private or reserved address.", url=shown
            )
        addresses.append(address)
    return addresses[0]


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: loading the CA bundle costs about 25 ms of
    CPU, more than the rest of a typical download."""
    return ssl.create_default_context(cafile=certifi.where())


@dataclass(frozen=True)
class PinnedTarget:
    """Where to send a request so that the checked address is the one
    connected to: ``url`` names that address, ``headers`` carry the Host
    (the checked name: IDNA-encoded, lower case, no trailing dot; the port
    if the URL gave one), ``extensions`` the TLS server name (certificates
    are verified against that name)."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, str]


def pin(url: str, policy: FetchPolicy) -> PinnedTarget:
    """Check ``url`` under ``policy``, resolve it once and pin the request to
    the checked address. Raises UnsafeURLError, or FetchError for DNS failures."""
    shown = redact_url(url)
    target = _check(url, policy)
    address = target.ip if target.ip is not None else _resolved_address(target, policy, shown)
    host = f"[{target.host}]" if target.ip is not None and target.ip.version == 6 else target.host
    literal = f"[{address}]" if address.version == 6 else str(address)
    port = f":{target.port}" if target.explicit_port else ""
    pinned = urlunsplit((target.scheme, literal + port, target.path or "/", target.query, ""))
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return PinnedTarget(pinned, {"Host": host + port}, extensions)


def redirect_url(url: str, location: str) -> str:
    """Where a redirect from ``url`` with this ``Location`` leads. The
    Location is checked as written (``urljoin`` would drop tabs and line
    breaks from it); the result still has to pass :func:`pin`. Raises
    UnsafeURLError."""
    _refuse_bad_text(location, redact_url(location))
    try:
        return urljoin(url, location)
    except ValueError:
        raise UnsafeURLError(
            "The redirect's Location is not a valid URL.", url=redact_url(location)
        ) from None


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
                        url = redirect_url(url, response.headers["location"])
                        continue
                    _raise_for_status(response, url)
                    return _save(response, url, policy, deadline, dir)
            except httpx.TimeoutException:
                raise FetchError(
                    f"Timed out downloading {redact_url(url)}.", retryable=True, url=redact_url(url)
                ) from None
            except httpx.RemoteProtocolError as exc:
                # A server that broke HTTP gets the same answer when asked again.
                raise refusal(exc, url) or FetchError(
                    f"Could not download {redact_url(url)}: {type(exc).__name__}.",
                    retryable=True,
                    url=redact_url(url),
                ) from None
            except httpx.TransportError as exc:
                raise FetchError(
                    f"Could not download {redact_url(url)}: {type(exc).__name__}.",
                    retryable=True,
                    url=redact_url(url),
                ) from None
    raise UnsafeURLError("Too many redirects.", url=redact_url(url))


def refusal(exc: BaseException, url: str) -> FetchError | None:
    """The error for a response refused for good: by httpx (a redirect's
    Location it cannot parse, such as one with a control character) or by
    h11 (headers past httpcore's 100 KiB, not valid HTTP); or None: the
    connection closed early, worth another try."""
    shown = redact_url(url)
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, httpx.InvalidURL):
            return UnsafeURLError(
                f"The redirect from {shown} is refused: its Location is not a valid URL.",
                url=shown,
            )
        if isinstance(seen, h11.RemoteProtocolError):
            if seen.error_status_hint == 431:
                return FetchError(f"The answer from {shown} has too large headers.", url=shown)
            if "closed" in str(seen):
                return None
            return FetchError(f"The answer from {shown} is not valid HTTP.", url=shown)
        seen = seen.__cause__ or seen.__context__
    return None


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

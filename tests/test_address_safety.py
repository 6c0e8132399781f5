"""Address safety (issue 13): which addresses imagegen connects to, for
result downloads, reference images and outbound webhooks alike.

``imagegen.fetching.address_allowed`` is the one decision, reached from a URL
literal, a DNS answer (the ``resolve`` seam, the network edge) and every
redirect's Location. An IPv6 address that carries an IPv4 one the packets
reach (IPv4-mapped, NAT64 64:ff9b::/96, 6to4 2002::/16) is judged by that
IPv4 address; IPv4-compatible, local-use NAT64, Teredo and site-local are
refused whatever they carry. Addresses count in every spelling resolvers and
HTTP clients accept. Redirects go to a real local server; it listens on
127.0.0.2, the one address these tests trust, so a hop to 127.0.0.1 in any
spelling meets the real decision.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from imagegen import fetching, services
from imagegen.api import auth
from imagegen.choices import Mode, Status
from imagegen.exceptions import FetchError, UnsafeURLError
from imagegen.fetching import FetchPolicy, address_allowed, check_url, download, pin
from imagegen.models import GeneratedImage, GenerationJob, OutboundDelivery
from imagegen.providers import get_provider
from imagegen.providers.openai import OpenAIImagesProvider
from imagegen.services.finalize import fetch_policy
from imagegen.webhooks import delivery

from .factories import make_job
from .test_api import JOBS, bearer, error_of
from .test_url_messages import SECRET, _deliver_once

# On every database: the SQLite pass runs them too.
pytestmark = pytest.mark.services

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: IPv4 addresses no policy without ``allow_private`` may reach: loopback,
#: private, link-local (cloud metadata), shared, "this network", IETF
#: protocol assignments, benchmarking, reserved, broadcast, multicast.
PRIVATE_V4 = [
    "127.0.0.1",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",  # noqa: S104 (an address to refuse, not to bind)
    "192.0.0.1",
    "198.18.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "224.0.0.1",
]
PUBLIC_V4 = ["8.8.8.8", "93.184.215.14"]


def _v6(value: int) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(value)


def _v4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def teredo(v4: str) -> ipaddress.IPv6Address:
    """A Teredo address with ``v4`` as both server and (obfuscated) client."""
    client = ~_v4(v4) & 0xFFFFFFFF
    return _v6((0x20010000 << 96) | (_v4(v4) << 64) | (0x8000FFFF << 32) | client)


#: IPv6 forms whose embedded IPv4 address decides.
UNWRAPPED: dict[str, Callable[[str], ipaddress.IPv6Address]] = {
    "IPv4-mapped": lambda v4: _v6((0xFFFF << 32) | _v4(v4)),
    "NAT64": lambda v4: _v6((0x64FF9B << 96) | _v4(v4)),
    "6to4": lambda v4: _v6((0x2002 << 112) | (_v4(v4) << 80) | 1),
}
#: IPv6 forms refused whatever IPv4 address they carry.
REFUSED: dict[str, Callable[[str], ipaddress.IPv6Address]] = {
    "IPv4-compatible": lambda v4: _v6(_v4(v4)),
    "local-use NAT64": lambda v4: _v6((0x64FF9B0001 << 80) | _v4(v4)),
    "Teredo": teredo,
    "site-local": lambda v4: _v6((0xFEC0 << 112) | _v4(v4)),
}


def refused_addresses() -> list[IPAddress]:
    """Every address that must be refused: the private IPv4 ones, each
    wrapped in every IPv6 form, every refused form around public IPv4 too,
    and IPv6's own private, local, documentation, multicast and unassigned
    space."""
    addresses: list[IPAddress] = [ipaddress.IPv4Address(v4) for v4 in PRIVATE_V4]
    for v4 in PRIVATE_V4:
        addresses += [wrap(v4) for wrap in (*UNWRAPPED.values(), *REFUSED.values())]
    for v4 in PUBLIC_V4:
        addresses += [wrap(v4) for wrap in REFUSED.values()]
    addresses += [
        ipaddress.IPv6Address(text)
        for text in (
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "5f00::1",
            "4000::1",
            "::ffff:0:7f00:1",  # IPv4-translated (SIIT)
        )
    ]
    return addresses


def allowed_addresses() -> list[IPAddress]:
    """Public addresses: IPv4, and wrapped in each form that is unwrapped."""
    addresses: list[IPAddress] = [ipaddress.IPv4Address(v4) for v4 in PUBLIC_V4]
    for v4 in PUBLIC_V4:
        addresses += [wrap(v4) for wrap in UNWRAPPED.values()]
    return [*addresses, ipaddress.IPv6Address("2606:4700:4700::1111")]


REFUSED_ADDRESSES = refused_addresses()
ALLOWED_ADDRESSES = allowed_addresses()


def ipv4_spellings(ip: ipaddress.IPv4Address) -> list[str]:
    """``ip`` as ``inet_aton`` reads it: dotted, decimal, hex (either case),
    octal and hex parts, two parts, with a trailing dot."""
    octets = ip.packed
    return [
        str(ip),
        str(int(ip)),
        hex(int(ip)),
        hex(int(ip)).upper(),
        ".".join(f"0{octet:o}" for octet in octets),
        ".".join(hex(octet) for octet in octets),
        f"{octets[0]}.{int.from_bytes(octets[1:], 'big')}",
        f"{ip}.",
    ]


def ipv6_spellings(ip: ipaddress.IPv6Address) -> list[str]:
    """``ip`` compressed, uppercase, fully written out, and with its last 32
    bits as a dotted IPv4 address."""
    head = ip.exploded.rsplit(":", 2)[0]
    tail = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return [str(ip), str(ip).upper(), ip.exploded, f"{head}:{tail}"]


def spellings(ip: IPAddress) -> list[str]:
    return ipv4_spellings(ip) if ip.version == 4 else ipv6_spellings(ip)


def in_url(spelling: str) -> str:
    return f"[{spelling}]" if ":" in spelling else spelling


def spelled(addresses: list[IPAddress]) -> list[Any]:
    return [pytest.param(s, id=s) for ip in addresses for s in spellings(ip)]


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Resolution fails the test: what it guards must be decided before."""
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        raise AssertionError(f"resolved {host}")

    monkeypatch.setattr(fetching, "resolve", resolve)
    return asked


def answering(monkeypatch: pytest.MonkeyPatch, *answers: str) -> list[str]:
    """Every name resolves to ``answers``; returns the names asked for."""
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return list(answers)

    monkeypatch.setattr(fetching, "resolve", resolve)
    return asked


# The decision ------------------------------------------------------------------


@pytest.mark.parametrize("ip", REFUSED_ADDRESSES, ids=str)
def test_refused_addresses(ip: IPAddress) -> None:
    """Family: ``refused_addresses``. Refused without ``allow_private``,
    allowed with it (a development setting)."""
    assert not address_allowed(ip, FetchPolicy())
    assert address_allowed(ip, FetchPolicy(allow_private=True))


@pytest.mark.parametrize("ip", ALLOWED_ADDRESSES, ids=str)
def test_public_addresses_allowed(ip: IPAddress) -> None:
    """Family: public IPv4 and IPv6, and public IPv4 in every form that is
    unwrapped (mapped, NAT64, 6to4): the embedded address decides."""
    assert address_allowed(ip, FetchPolicy())


# URL literals ----------------------------------------------------------------


@pytest.mark.parametrize("spelling", spelled(REFUSED_ADDRESSES))
def test_refused_literals_in_every_spelling(spelling: str, no_dns: list[str]) -> None:
    """Family: every refused address in every spelling, as the URL's host:
    refused by the check every caller runs first (result downloads and
    reference images through ``download``, reference URLs through job
    validation, webhook endpoints through ``check_endpoint_url``), without
    a DNS lookup."""
    url = f"http://{in_url(spelling)}/a.png"

    for check in (
        lambda: check_url(url, FetchPolicy()),
        lambda: download(url, FetchPolicy(allowed_ports=None)),
        lambda: delivery.check_endpoint_url(url),
    ):
        with pytest.raises(UnsafeURLError, match="private or local"):
            check()
    assert no_dns == []


@pytest.mark.parametrize("spelling", spelled(ALLOWED_ADDRESSES))
def test_public_literals_in_every_spelling_are_the_address(
    spelling: str, no_dns: list[str]
) -> None:
    """Family: public addresses in every spelling: read as the address they
    spell (not as a name to resolve), and the request goes to that address."""
    ip = fetching.parse_address(spelling)

    target = pin(f"https://{in_url(spelling)}/a.png", FetchPolicy())

    literal = in_url(str(ip))
    assert target.url == f"https://{literal}/a.png"
    assert target.headers == {"Host": literal}
    assert no_dns == []


@pytest.mark.parametrize("host", ["[fe80::1%25eth0]", "[::1%25lo]", "[2606:4700::1%251]"])
def test_zone_ids_refused(host: str, no_dns: list[str]) -> None:
    """Family: IPv6 literals with a zone id (link-local, loopback, even a
    public address): a zone names this machine's interface."""
    with pytest.raises(UnsafeURLError, match="zone"):
        check_url(f"http://{host}/a.png", FetchPolicy(allow_private=True))


# DNS answers -------------------------------------------------------------------


def result_policy() -> FetchPolicy:
    return fetch_policy(get_provider())


def reference_policy() -> FetchPolicy:
    return OpenAIImagesProvider("openai", {"API_KEY": "k"}).reference_policy()


CALLER_POLICIES = {
    "result download": result_policy,
    "reference image": reference_policy,
    "webhook": delivery.policy,
}


@pytest.fixture
def strict_settings(settings: Any) -> None:
    """Production rules: no private hosts anywhere, any result host."""
    settings.IMAGEGEN = {
        **(settings.IMAGEGEN or {}),
        "PROVIDER": "sandbox",
        "PROVIDERS": {"sandbox": {"ALLOW_PRIVATE_HOSTS": False, "ALLOWED_RESULT_HOSTS": None}},
        "ALLOW_PRIVATE_HOSTS": False,
        "WEBHOOK_ALLOW_PRIVATE_HOSTS": False,
    }


def answer_spellings(ip: IPAddress) -> list[str]:
    """How a resolver may write ``ip``: every spelling, and IPv6 with a zone id."""
    extra = [f"{ip}%eth0"] if ip.version == 6 else []
    return spellings(ip) + extra


@pytest.mark.parametrize("caller", list(CALLER_POLICIES))
@pytest.mark.parametrize(
    "answer", [pytest.param(s, id=s) for ip in REFUSED_ADDRESSES for s in answer_spellings(ip)]
)
def test_refused_dns_answers(
    caller: str, answer: str, strict_settings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Family: every refused address in every spelling a resolver may give,
    alone and among public answers, under each caller's policy: refused
    before connecting."""
    policy = CALLER_POLICIES[caller]()
    for answers in ([answer], ["93.184.215.14", answer]):
        asked = answering(monkeypatch, *answers)
        with pytest.raises(UnsafeURLError, match="private or reserved"):
            pin("https://images.example.com/a.png", policy)
        assert asked == ["images.example.com"]


@pytest.mark.parametrize("answer", ["", "images.example.com", "127.0.0.1 x", "::1::2", "1.2.3.4.5"])
def test_answers_that_are_no_address_are_refused(
    answer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Family: resolver answers that are not addresses (empty, a name, junk
    after an address, malformed IPv6, too many parts): refused, never an
    exception escaping."""
    answering(monkeypatch, answer)
    with pytest.raises(UnsafeURLError, match="not an address"):
        pin("https://images.example.com/a.png", FetchPolicy())


@pytest.mark.parametrize(
    "answer", [pytest.param(s, id=s) for ip in ALLOWED_ADDRESSES for s in answer_spellings(ip)]
)
def test_public_dns_answers_are_connected_to(answer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Family: public answers in every spelling (unwrapped forms included):
    the request goes to the address, named in standard form, with the
    original host in Host and as the TLS server name."""
    answering(monkeypatch, answer)
    ip = fetching.parse_address(answer)

    target = pin("https://images.example.com/a.png", FetchPolicy())

    assert target.url == f"https://{in_url(str(ip))}/a.png"
    assert target.headers == {"Host": "images.example.com"}
    assert target.extensions == {"sni_hostname": "images.example.com"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "answer", [str(wrap("127.0.0.1")) for wrap in (*UNWRAPPED.values(), *REFUSED.values())]
)
def test_webhook_to_a_name_with_an_embedded_private_address_fails_once(
    answer: str, strict_settings: None, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Family: a webhook endpoint whose name resolves to loopback inside each
    IPv6 form: the delivery fails at once (not retried), saying why."""
    settings.IMAGEGEN = {**settings.IMAGEGEN, "WEBHOOK_MAX_ATTEMPTS": 5}
    answering(monkeypatch, answer)

    row = _deliver_once("https://hooks.example.com/hook")

    assert row.attempts == 1
    assert "private or reserved" in row.last_error


# Redirects ---------------------------------------------------------------------

#: The test server's address, the one these tests trust.
SERVER = ipaddress.IPv4Address("127.0.0.2")


class Redirector(BaseHTTPRequestHandler):
    """``/redirect`` answers 302 to ``server.location`` (raw bytes), to a
    GET or a POST (a webhook delivery); ``/ok`` serves a small body and
    counts its hits."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/ok":
            self.server.hits += 1  # type: ignore[attr-defined]
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            return
        location = self.server.location  # type: ignore[attr-defined]
        self.wfile.write(
            b"HTTP/1.1 302 Found\r\nLocation: " + location + b"\r\nContent-Length: 0\r\n\r\n"
        )

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.do_GET()


@pytest.fixture(scope="module")
def redirect_server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer((str(SERVER), 0), Redirector)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def redirector(
    redirect_server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> ThreadingHTTPServer:
    """The redirecting server on 127.0.0.2, no hits yet, trusted; every
    other address meets the real decision."""
    redirect_server.hits = 0  # type: ignore[attr-defined]
    real = fetching.address_allowed
    monkeypatch.setattr(
        fetching, "address_allowed", lambda ip, policy: ip == SERVER or real(ip, policy)
    )
    return redirect_server


def follow(server: ThreadingHTTPServer, location: str | bytes) -> None:
    """Download ``/redirect`` from ``server``, which redirects to ``location``."""
    server.location = location if isinstance(location, bytes) else location.encode("latin-1")  # type: ignore[attr-defined]
    port = server.server_address[1]
    download(f"http://{SERVER}:{port}/redirect", FetchPolicy(allowed_ports=None))


def test_the_trusted_server_is_reachable(redirector: ThreadingHTTPServer) -> None:
    """The control for the redirect tests: a hop to the server itself works."""
    port = redirector.server_address[1]
    follow(redirector, f"http://{SERVER}:{port}/ok")
    assert redirector.hits == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "spelling",
    spelled(
        [ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv4Address("169.254.169.254")]
        + [wrap("127.0.0.1") for wrap in (*UNWRAPPED.values(), *REFUSED.values())]
    ),
)
def test_redirect_to_a_refused_literal(
    spelling: str, redirector: ThreadingHTTPServer, no_dns: list[str]
) -> None:
    """Family: a redirect to loopback or the metadata address in every IPv4
    spelling, and to loopback inside every IPv6 form in every spelling:
    refused before the hop connects (by httpx for the dotted octal
    spellings, which it cannot read as a URL at all)."""
    port = redirector.server_address[1]
    with pytest.raises(UnsafeURLError, match=r"private or local|not a valid URL"):
        follow(redirector, f"http://{in_url(spelling)}:{port}/ok")
    assert redirector.hits == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "answer", [str(wrap("127.0.0.1")) for wrap in (*UNWRAPPED.values(), *REFUSED.values())]
)
def test_redirect_to_a_name_with_a_refused_answer(
    answer: str, redirector: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Family: a redirect to a name that resolves to loopback inside each
    IPv6 form: refused before the hop connects."""
    asked = answering(monkeypatch, answer)
    with pytest.raises(UnsafeURLError, match="private or reserved"):
        follow(redirector, "http://images.example.com/a.png")
    assert asked == ["images.example.com"]


#: Control characters: C0, DEL, C1.
CONTROLS = [chr(code) for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))]


@pytest.mark.parametrize("char", CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_redirect_location_with_a_control_character(
    char: str, redirector: ThreadingHTTPServer
) -> None:
    """Family: a Location with any control character (sent as the byte, C1
    ones as Latin-1): refused, for good (not a retryable error), without
    connecting. h11 refuses a line break or NUL as invalid HTTP, httpx
    refuses other C0 controls and DEL, imagegen the C1 ones httpx lets by."""
    port = redirector.server_address[1]
    location = f"http://{SERVER}:{port}/o{char}k".encode("latin-1")
    with pytest.raises(FetchError) as info:
        follow(redirector, location)
    assert not info.value.retryable
    assert redirector.hits == 0  # type: ignore[attr-defined]
    if char not in "\x00\n\r\x0b\x0c":
        assert isinstance(info.value, UnsafeURLError)


# Control characters ---------------------------------------------------------------

#: Where a control character can sit in a URL (``{c}`` marks the place).
PLACES = {
    "before": "{c}https://allowed.com/a.png",
    "scheme": "ht{c}tps://allowed.com/a.png",
    "userinfo": "https://us{c}er@allowed.com/a.png",
    "host": "https://allo{c}wed.com/a.png",
    "end of host": "https://allowed.com{c}/a.png",
    "port": "https://allowed.com:4{c}43/a.png",
    "path": "https://allowed.com/a{c}.png",
    "query": "https://allowed.com/a.png?x={c}",
    "fragment": "https://allowed.com/a.png#{c}",
    "after": "https://allowed.com/a.png{c}",
}
ALLOWLISTED = FetchPolicy(allowed_hosts=("allowed.com",), allowed_ports=None)


@pytest.mark.parametrize("place", list(PLACES))
@pytest.mark.parametrize("char", CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_control_characters_anywhere_are_refused_first(
    char: str, place: str, no_dns: list[str]
) -> None:
    """Family: every C0 control (NUL, tab, CR, LF...), DEL and every C1
    control, at every place in a URL whose host is on the allowlist:
    refused for the control character (not matched against the allowlist,
    not resolved) by every caller's check, and the message shows the
    character percent-encoded, never raw."""
    url = PLACES[place].format(c=char)
    for check in (
        lambda: check_url(url, ALLOWLISTED),
        lambda: download(url, ALLOWLISTED),
        lambda: delivery.check_endpoint_url(url),
    ):
        with pytest.raises(UnsafeURLError, match="control characters") as info:
            check()
        assert char not in info.value.message + info.value.url
    assert no_dns == []


@pytest.mark.django_db
@pytest.mark.parametrize("char", CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_reference_urls_with_control_characters_are_form_errors(
    char: str, imagegen_settings: dict[str, Any]
) -> None:
    """Family: every control character inside a reference URL's host: a
    validation error on ``reference_urls``, nothing saved."""
    with pytest.raises(ValidationError) as info:
        services.create_job(
            prompt="a red bicycle",
            mode=Mode.IMAGE_TO_IMAGE,
            reference_urls=[f"https://exa{char}mple.com/a.png"],
        )
    assert "control characters" in " ".join(info.value.message_dict["reference_urls"])
    assert not GenerationJob.objects.exists()


#: Percent-encoded control characters: C0 and DEL as bytes, C1 as UTF-8.
ENCODED = [f"%{code:02x}" for code in (*range(0x20), 0x7F)] + [
    "%c2%" + f"{code:02X}" for code in range(0x80, 0xA0)
]


@pytest.mark.parametrize("encoded", ENCODED)
@pytest.mark.parametrize("where", ["{e}allowed.com", "allowed.com{e}", "allo{e}wed.com"])
def test_encoded_control_characters_in_the_host_are_refused(
    encoded: str, where: str, no_dns: list[str]
) -> None:
    """Family: every control character percent-encoded, before, inside and
    after an allowlisted host name: refused before the allowlist and DNS."""
    url = "https://" + where.format(e=encoded) + "/a.png"
    with pytest.raises(UnsafeURLError, match="encoded control character"):
        check_url(url, ALLOWLISTED)


# The allowlist matches the host connected to -----------------------------------

PATTERNS = ("allowed.com", "*.example.com", "bücher.example", "cdn.allowed.net.", "*.0.0.1")
ALLOWLIST = FetchPolicy(allowed_hosts=PATTERNS, allow_private=True, allowed_ports=None)


@pytest.mark.parametrize(
    "url",
    [
        "http://allowed.com@evil.com/a.png",
        "http://allowed.com:443@evil.com/a.png",
        "http://user:allowed.com@evil.com/a.png",
        "http://allowed.com%2f@evil.com/a.png",
        "http://evil.com#@allowed.com/a.png",
        "http://evil.com?@allowed.com/a.png",
        "http://evilexample.com/a.png",
        "http://example.com/a.png",
        "http://example.com.evil.com/a.png",
        "http://allowed.com.evil.com/a.png",
        "http://allowed.co/a.png",
        "http://xn--bcher-kva.example.evil/a.png",
        "http://bucher.example/a.png",
        "http://127.0.0.1/a.png",
        "http://0x7f.1/a.png",
    ],
)
def test_allowlist_refuses_look_alikes(url: str, no_dns: list[str]) -> None:
    """Family: an allowed name in the userinfo (with a port, as password,
    with an escaped slash),
    after a fragment or query mark, a wildcard's domain glued to another
    name or bare, an allowed name as a prefix, a near miss, an IDNA name's
    ASCII neighbour, an address a wildcard would end with, in two spellings:
    refused by the allowlist."""
    with pytest.raises(UnsafeURLError, match="allowlist"):
        check_url(url, ALLOWLIST)


@pytest.mark.parametrize(
    "url",
    [
        "http://allowed.com\\@evil.com/a.png",
        "http://evil.com\\@allowed.com/a.png",
        "http://allowed%2ecom/a.png",
        "http://allowed.com%00.evil.com/a.png",
        "http://allowed.com..//a.png",
        "http://*.example.com/a.png",
        "http://allowed com/a.png",
    ],
)
def test_hosts_parsers_disagree_on_are_refused(url: str, no_dns: list[str]) -> None:
    """Family: a backslash in the authority (WHATWG parsers end the host
    there, urlsplit does not), a percent-escape in the host, an empty label,
    a wildcard as a host, a space: refused before the allowlist."""
    with pytest.raises(UnsafeURLError) as info:
        check_url(url, ALLOWLIST)
    assert "allowlist" not in info.value.message


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://allowed.com/a.png", "allowed.com"),
        ("http://ALLOWED.COM/a.png", "allowed.com"),
        ("http://allowed.com./a.png", "allowed.com"),
        ("http://user:pw@allowed.com/a.png", "allowed.com"),
        ("http://allowed。com/a.png", "allowed.com"),
        ("http://a.b.example.com/a.png", "a.b.example.com"),
        ("http://A.EXAMPLE.COM./a.png", "a.example.com"),
        ("http://bücher.example/a.png", "xn--bcher-kva.example"),
        ("http://BÜCHER.example/a.png", "xn--bcher-kva.example"),
        ("http://xn--bcher-kva.example/a.png", "xn--bcher-kva.example"),
        ("http://cdn.allowed.net/a.png", "cdn.allowed.net"),
    ],
)
def test_allowlist_matches_the_name_resolved_and_sent(
    url: str, host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Family: allowed names in upper case, with a trailing dot, behind
    userinfo, with an ideographic full stop, under a wildcard, as Unicode
    (any case) and as punycode, against a pattern with a trailing dot: the
    name matched is exactly the one resolved, sent as Host and as the TLS
    server name."""
    asked = answering(monkeypatch, "93.184.215.14")

    target = pin(url.replace("http:", "https:"), ALLOWLIST)

    assert asked == [host]
    assert target.headers == {"Host": host}
    assert target.extensions == {"sni_hostname": host}


# Overlong URLs -----------------------------------------------------------------

MAX = fetching.MAX_URL_LENGTH


def long_url(length: int) -> str:
    """An https URL of exactly ``length`` characters, a signed query at its end."""
    head, tail = "https://images.example.com/", f"?sig={SECRET}"
    return head + "a" * (length - len(head) - len(tail)) + tail


#: URLs too long to fetch: one character past the limit, past httpx's own
#: limit (64 KiB), a megabyte; a host name past DNS's 253 characters, a
#: label past 63.
OVERLONG = {
    "one past the limit": (long_url(MAX + 1), "limit is 8192"),
    "past httpx's limit": (long_url(65_537), "limit is 8192"),
    "a megabyte": (long_url(1 << 20), "limit is 8192"),
    "host name": (f"https://{'.'.join(['a' * 60] * 5)}.example/a.png", "host"),
    "label": (f"https://{'a' * 64}.example/a.png", "host"),
}


def test_a_url_at_the_limit_is_accepted() -> None:
    check_url(long_url(MAX), FetchPolicy())


@pytest.mark.parametrize("kind", list(OVERLONG))
def test_overlong_urls_are_refused(kind: str, no_dns: list[str]) -> None:
    """Family: ``OVERLONG``: refused by the URL check, the downloader (never
    an exception of httpx's escaping it) and the webhook endpoint check; the
    message says why, is short and carries no secret."""
    url, reason = OVERLONG[kind]
    for check in (
        lambda: check_url(url, FetchPolicy()),
        lambda: download(url, FetchPolicy()),
        lambda: delivery.check_endpoint_url(url),
    ):
        with pytest.raises(UnsafeURLError, match=reason) as info:
            check()
        assert not info.value.retryable
        assert len(info.value.message) < 300 and len(info.value.url) <= 200
        assert SECRET not in info.value.message + info.value.url


@pytest.mark.django_db
@pytest.mark.parametrize("kind", list(OVERLONG))
def test_overlong_result_url_fails_the_job_at_once(
    kind: str, strict_settings: None, no_dns: list[str]
) -> None:
    """Family: ``OVERLONG`` as a provider's result URL: the job fails on the
    first finalize attempt (no retry) with a readable message, stores
    nothing."""
    url, reason = OVERLONG[kind]
    job = make_job(status=Status.FINALIZING, result_urls=[url])

    assert services.finalize(job.pk) == "failed"

    job.refresh_from_db()
    assert job.status == Status.FAILED and job.error_code == "BAD_RESULT"
    assert job.finalize_attempts == 1
    assert reason in job.error_message and SECRET not in job.error_message
    assert len(job.error_message) < 400
    assert not GeneratedImage.objects.filter(job=job).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("kind", list(OVERLONG))
def test_overlong_reference_url_is_a_form_error(kind: str, imagegen_settings: Any) -> None:
    """Family: ``OVERLONG`` as a reference URL: a validation error on
    ``reference_urls`` saying why, nothing saved."""
    url, reason = OVERLONG[kind]
    with pytest.raises(ValidationError) as info:
        services.create_job(prompt="a red bicycle", mode=Mode.IMAGE_TO_IMAGE, reference_urls=[url])
    assert reason in " ".join(info.value.message_dict["reference_urls"])
    assert not GenerationJob.objects.exists()


@pytest.mark.parametrize(
    ("length", "error", "reason"),
    [
        (MAX + 1, UnsafeURLError, "limit is 8192"),
        (70_000, UnsafeURLError, "not a valid URL"),
        (200_000, FetchError, "too large headers"),
    ],
)
def test_overlong_redirect_location_is_refused_for_good(
    length: int, error: type[FetchError], reason: str, redirector: ThreadingHTTPServer
) -> None:
    """Family: a Location past imagegen's limit, past httpx's (64 KiB), past
    httpcore's limit on a response head (100 KiB): a refusal, not a
    retryable error, and nothing fetched."""
    port = redirector.server_address[1]
    head = f"http://{SERVER}:{port}/ok?"
    with pytest.raises(error, match=reason) as info:
        follow(redirector, head + "a" * (length - len(head)))
    assert not info.value.retryable
    assert redirector.hits == 0  # type: ignore[attr-defined]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        pytest.param(OVERLONG["one past the limit"][0], id="overlong"),
        pytest.param(OVERLONG["host name"][0], id="host name too long"),
        pytest.param(OVERLONG["label"][0], id="label too long"),
        pytest.param("https://[64:ff9b::7f00:1]/a.png", id="NAT64 loopback"),
        pytest.param("https://[2002:a9fe:a9fe::1]/a.png", id="6to4 metadata"),
        pytest.param("https://[::ffff:10.0.0.1]/a.png", id="mapped private"),
        pytest.param("https://[2001::1]/a.png", id="Teredo"),
        pytest.param("https://ima\u0085ges.example.com/a.png", id="C1 in host"),
        pytest.param("https://images%0a.example.com/a.png", id="encoded LF in host"),
        pytest.param("https://images.example.com\\@evil.com/a.png", id="backslash"),
    ],
)
def test_api_reference_urls_are_validation_errors(
    url: str, client: Any, editor: Any, imagegen_settings: Any
) -> None:
    """Family: an overlong URL, host or label; loopback, metadata, private
    and Teredo addresses inside IPv6 forms; a C1 control or an encoded LF in
    the host; a backslash: as a reference URL posted to the API, a 400
    validation error on ``reference_urls``, nothing saved, never a 500."""
    raw = auth.create_token(editor, "tests")[1]
    response = client.post(
        JOBS,
        {"prompt": "a boat", "mode": "image-to-image", "reference_urls": [url]},
        content_type="application/json",
        headers=bearer(raw),
    )
    error = error_of(response, 400, "validation_error")
    assert list(error["fields"]) == ["reference_urls"]
    assert not GenerationJob.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "location",
    # In the middle: a trailing tab or line break would end the header there.
    [pytest.param(f"/o{c}k", id=f"U+{ord(c):04X}") for c in CONTROLS]
    + [pytest.param("/ok?" + "a" * MAX, id="overlong")],
)
def test_webhook_redirect_to_an_unusable_location(
    location: str, redirector: ThreadingHTTPServer, strict_settings: None
) -> None:
    """Family: a webhook receiver redirecting to a Location with any C0, DEL
    or C1 control (httpx itself refuses some of them, imagegen the others)
    or past the length limit: the delivery fails for good at once, saying
    why, with no control character in its record; nothing follows the
    redirect."""
    port = redirector.server_address[1]
    redirector.location = location.encode("latin-1")  # type: ignore[attr-defined]

    row = _deliver_once(f"http://{SERVER}:{port}/redirect")

    assert (row.attempts, row.state, row.next_attempt_at) == (
        1,
        OutboundDelivery.State.FAILED,
        None,
    )
    assert any(
        reason in row.last_error
        for reason in (
            "control characters",
            "limit is 8192",
            "Location is not a valid URL",
            "is not valid HTTP",  # h11 refuses NUL, CR, LF, VT, FF in a header
        )
    ), row.last_error
    assert not any(c in row.last_error for c in CONTROLS)
    assert redirector.hits == 0  # type: ignore[attr-defined]

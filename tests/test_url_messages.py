"""URLs quoted in error messages and logs (``imagegen.fetching.redact_url``):
they keep the host's port, so an operator can tell which server failed, and
never carry the userinfo, query string or fragment, where credentials and
signed URLs' tokens live. Real failures against real local servers, for
downloads (result and reference images) and outbound webhook deliveries."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.utils import timezone

from imagegen.exceptions import FetchError, UnsafeURLError
from imagegen.fetching import FetchPolicy, check_url, download, redact_url
from imagegen.models import OutboundDelivery, WebhookEndpoint
from imagegen.webhooks import delivery, events

#: A marker to look for in messages and logs.
SECRET = "S3CR3T"

#: Host and port as written in a URL, from no port at all to an IPv6 literal with one.
AUTHORITIES = [
    "example.com",
    "example.com:8443",
    "example.com:443",
    "127.0.0.1:9000",
    "[2001:db8::1]",
    "[2001:db8::1]:8080",
]
#: Where a URL can carry a credential or a signed token.
SECRET_PLACES = {
    "nowhere": ("", ""),
    "password": (f"user:{SECRET}@", ""),
    "token as user": (f"{SECRET}@", ""),
    "password with @": (f"user:p@{SECRET}@", ""),
    "query": ("", f"?sig={SECRET}&expires=1"),
    "fragment": ("", f"#{SECRET}"),
    "all": (f"user:{SECRET}@", f"?sig={SECRET}#{SECRET}"),
}


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("authority", AUTHORITIES)
@pytest.mark.parametrize("place", list(SECRET_PLACES))
def test_shown_urls_keep_the_port_and_drop_secrets(scheme: str, authority: str, place: str) -> None:
    """Family: http and https; no port (none is added), an explicit port, an
    explicit default port (kept as written), IPv4 and IPv6 literals with and
    without a port; a secret nowhere, in the password, as the user, in a
    password containing "@", in the query string, in the fragment, or all."""
    userinfo, tail = SECRET_PLACES[place]
    url = f"{scheme}://{userinfo}{authority}/images/a.png{tail}"

    assert redact_url(url) == f"{scheme}://{authority}/images/a.png"


@pytest.mark.parametrize(
    "url", [f"http://[::1/a.png?sig={SECRET}", f"http://user:{SECRET}@[2001:db8::1/a"]
)
def test_unparsable_urls_are_shown_without_raising(url: str) -> None:
    """Family: URLs ``urlsplit`` refuses (an unclosed IPv6 bracket), with and
    without a secret: shown as a placeholder, and checking one is a refusal,
    not a ValueError."""
    assert redact_url(url) == "(invalid URL)"
    with pytest.raises(UnsafeURLError) as info:
        check_url(url, FetchPolicy())
    assert SECRET not in str(info.value) and SECRET not in info.value.url


# Downloads -------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path.startswith("/busy"):
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        # /slow: a body in chunks, for a download that outlives its deadline.
        self.send_response(200)
        self.send_header("Content-Length", str(4 * 4096))
        self.end_headers()
        for _ in range(4):
            self.wfile.write(b"x" * 4096)
            self.wfile.flush()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        # Redirects elsewhere, to a URL with a port, a user and a token.
        self.send_response(302)
        self.send_header("Location", self.server.location)  # type: ignore[attr-defined]
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def closed_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on (bound, then released)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family) as sock:
            sock.bind((host, 0))
            return sock.getsockname()[1]
    except OSError:
        return 9  # no IPv6 loopback here: any port is refused the same way


def _fail_download(kind: str, server: ThreadingHTTPServer) -> tuple[FetchError, str]:
    """Make a download fail as ``kind``; returns the error and the URL as it must be shown."""
    policy = FetchPolicy(allow_private=True, allowed_ports=None, total_timeout=10)
    with contextlib.ExitStack() as stack:
        if kind == "HTTP error":
            authority, path = f"127.0.0.1:{server.server_address[1]}", "/busy"
        elif kind == "refused":
            authority, path = f"127.0.0.1:{closed_port()}", "/a.png"
        elif kind == "refused, IPv6":
            authority, path = f"[::1]:{closed_port('::1')}", "/a.png"
        elif kind == "timeout":
            authority, path = f"127.0.0.1:{stack.enter_context(silent_server())}", "/a.png"
            policy = FetchPolicy(allow_private=True, allowed_ports=None, read_timeout=0.3)
        else:  # "too long": the deadline passes while the body arrives
            authority, path = f"127.0.0.1:{server.server_address[1]}", "/slow"
            policy = FetchPolicy(allow_private=True, allowed_ports=None, total_timeout=0)
        url = f"http://user:{SECRET}@{authority}{path}?sig={SECRET}#{SECRET}"
        with pytest.raises(FetchError) as info:
            download(url, policy)
    return info.value, f"http://{authority}{path}"


@pytest.mark.parametrize("kind", ["HTTP error", "refused", "refused, IPv6", "timeout", "too long"])
def test_download_errors_name_the_port_and_no_secret(
    kind: str, server: ThreadingHTTPServer
) -> None:
    """Family: every download failure whose message quotes the URL (an HTTP
    error status, a refused connection over IPv4 and IPv6, a read timeout, a
    body past the deadline), from a URL with a port, a password, a signed
    query string and a fragment."""
    error, shown = _fail_download(kind, server)

    assert shown in error.message
    assert error.url == shown
    assert SECRET not in error.message and SECRET not in str(error)


# Outbound webhooks -------------------------------------------------------------


@pytest.fixture
def webhook_settings(settings: Any) -> None:
    settings.IMAGEGEN = {
        **(settings.IMAGEGEN or {}),
        "WEBHOOK_ALLOW_PRIVATE_HOSTS": True,
        "WEBHOOK_TIMEOUT": 5,
        "WEBHOOK_MAX_ATTEMPTS": 1,
    }


def _deliver_once(url: str) -> OutboundDelivery:
    endpoint = WebhookEndpoint.objects.create(url=url, events=list(events.EVENTS))
    row = OutboundDelivery.objects.create(
        endpoint=endpoint,
        event=events.TEST,
        message_id=events.new_message_id(),
        payload=events.payload(events.TEST, {}),
        next_attempt_at=timezone.now(),
    )
    assert delivery.attempt(row.pk, 0) == "failed"
    row.refresh_from_db()
    return row


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["redirect", "refused", "refused, IPv6"])
def test_webhook_errors_name_the_port_and_no_secret(
    kind: str,
    server: ThreadingHTTPServer,
    webhook_settings: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Family: the delivery errors that quote a URL (a redirect's target, a
    refused connection over IPv4 and IPv6), in the delivery's recorded error
    and in the log line, from an endpoint URL with a port and a token in its
    query string."""
    if kind == "redirect":
        target = f"127.0.0.1:{closed_port()}"
        server.location = f"http://user:{SECRET}@{target}/moved?token={SECRET}"  # type: ignore[attr-defined]
        endpoint, shown = f"127.0.0.1:{server.server_address[1]}", f"http://{target}/moved"
    else:
        endpoint = f"[::1]:{closed_port('::1')}" if "IPv6" in kind else f"127.0.0.1:{closed_port()}"
        shown = f"http://{endpoint}/hook"
    caplog.set_level(logging.INFO, logger="imagegen")

    row = _deliver_once(f"http://{endpoint}/hook?token={SECRET}")

    assert shown in row.last_error
    assert f"http://{endpoint}/hook" in caplog.text
    assert SECRET not in row.last_error and SECRET not in caplog.text

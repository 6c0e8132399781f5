"""Safe downloads (RELIABILITY.md S1-S10) against real local servers;
resolution is replaced only in the tests about public addresses."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from imagegen import fetching
from imagegen.exceptions import DownloadTooLargeError, FetchError, UnsafeURLError
from imagegen.fetching import FetchPolicy, check_url, download, redact_url

LOCAL = FetchPolicy(allow_private=True, allowed_ports=None, max_bytes=10_000, total_timeout=5)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hits = 0

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).hits += 1
        routes = {
            "/ok": (200, b"x" * 100, {"Content-Length": "100"}),
            "/big": (200, b"x" * 20_000, {"Content-Length": "20000"}),
            "/gone": (410, b"", {"Content-Length": "0"}),
            "/busy": (503, b"", {"Content-Length": "0"}),
            "/to-ok": (302, b"", {"Location": "/ok", "Content-Length": "0"}),
            "/loop": (302, b"", {"Location": "/loop", "Content-Length": "0"}),
            "/to-file": (302, b"", {"Location": "file:///etc/passwd", "Content-Length": "0"}),
        }
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(5):
                self.wfile.write(b"1000\r\n" + b"y" * 4096 + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path == "/short":
            self.send_response(200)
            self.send_header("Content-Length", "500")
            self.end_headers()
            self.wfile.write(b"z" * 100)
            self.close_connection = True
            return
        status, body, headers = routes.get(self.path, (404, b"", {"Content-Length": "0"}))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_to_temp_file(server, tmp_path):
    with download(f"{server}/ok", LOCAL, dir=str(tmp_path)) as result:
        assert result.path.read_bytes() == b"x" * 100
        assert result.size == 100
    assert list(tmp_path.iterdir()) == []


def test_redirect_followed_and_rechecked(server, tmp_path):
    with download(f"{server}/to-ok", LOCAL, dir=str(tmp_path)) as result:
        assert result.url.endswith("/ok")
    with pytest.raises(UnsafeURLError, match="redirects"):
        download(f"{server}/loop", LOCAL, dir=str(tmp_path))
    with pytest.raises(UnsafeURLError):
        download(f"{server}/to-file", LOCAL, dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", ["/big", "/chunked"])
def test_size_cap_with_and_without_length(server, tmp_path, path):
    with pytest.raises(DownloadTooLargeError):
        download(f"{server}{path}", LOCAL, dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_body_shorter_than_declared_is_refused(server, tmp_path):
    with pytest.raises(FetchError) as info:
        download(f"{server}/short", LOCAL, dir=str(tmp_path))
    assert info.value.retryable
    assert list(tmp_path.iterdir()) == []


def test_http_errors(server):
    with pytest.raises(FetchError) as gone:
        download(f"{server}/gone", LOCAL)
    assert not gone.value.retryable and gone.value.status_code == 410
    with pytest.raises(FetchError) as busy:
        download(f"{server}/busy", LOCAL)
    assert busy.value.retryable


def test_loopback_refused_before_connecting(server):
    Handler.hits = 0
    with pytest.raises(UnsafeURLError, match="private"):
        download(f"{server}/ok", FetchPolicy(allowed_ports=None))
    assert Handler.hits == 0


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 (an address to refuse, not to bind)
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "fc00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
    ],
)
def test_private_and_reserved_addresses_refused(monkeypatch, address):
    monkeypatch.setattr(fetching, "resolve", lambda host, port: [address])
    with pytest.raises(UnsafeURLError):
        download("https://images.example.com/a.png", FetchPolicy())


def test_any_private_address_among_several_is_refused(monkeypatch):
    monkeypatch.setattr(fetching, "resolve", lambda host, port: ["93.184.216.34", "10.0.0.1"])
    with pytest.raises(UnsafeURLError):
        download("https://images.example.com/a.png", FetchPolicy())


def test_connects_to_the_checked_address(monkeypatch, server):
    # DNS rebinding: the second answer would be loopback; only the first is used.
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])
    calls = []

    def resolve(host, port):
        calls.append(host)
        return next(answers)

    monkeypatch.setattr(fetching, "resolve", resolve)
    port = server.rsplit(":", 1)[1]
    with download(f"http://sandbox.test:{port}/ok", LOCAL) as result:
        assert result.size == 100
    assert calls == ["sandbox.test"]


def test_unresolvable_host_is_retryable(monkeypatch):
    def fail(host, port):
        raise OSError("no such host")

    monkeypatch.setattr(fetching, "resolve", fail)
    with pytest.raises(FetchError) as info:
        download("https://nowhere.example/a.png", FetchPolicy())
    assert info.value.retryable


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/a.png", "gopher://example.com/", "nohost"]
)
def test_schemes_refused(url):
    with pytest.raises(UnsafeURLError):
        check_url(url, FetchPolicy())


def test_ports_and_allowlist():
    policy = FetchPolicy(allowed_hosts=("*.apixo.ai", "cdn.example.com"))
    check_url("https://files.apixo.ai/a.png", policy)
    check_url("https://cdn.example.com/a.png", policy)
    with pytest.raises(UnsafeURLError, match="allowlist"):
        check_url("https://evil.example.com/a.png", policy)
    with pytest.raises(UnsafeURLError, match="allowlist"):
        check_url("https://apixo.ai.evil.com/a.png", policy)
    with pytest.raises(UnsafeURLError, match="Port"):
        check_url("https://files.apixo.ai:8443/a.png", policy)


def test_environment_proxies_ignored(server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    with download(f"{server}/ok", LOCAL) as result:
        assert result.size == 100


def test_messages_never_carry_query_strings():
    assert redact_url("https://cdn.example.com/a.png?sig=secret") == "https://cdn.example.com/a.png"
    with pytest.raises(UnsafeURLError) as info:
        check_url("https://evil.example.com/a.png?sig=secret", FetchPolicy(allowed_hosts=()))
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.1",
        "2130706433",
        "0x7f.1",
        "10.0.0.5",
        "[::1]",
        "[::ffff:10.0.0.1]",
        "169.254.169.254",
        "localhost",
        "api.localhost.",
    ],
)
def test_local_and_private_literals_refused_without_dns(host, monkeypatch):
    def no_dns(*args):
        raise AssertionError("check_url must not resolve names")

    monkeypatch.setattr("imagegen.fetching.resolve", no_dns)
    with pytest.raises(UnsafeURLError, match="private or local"):
        check_url(f"http://{host}/a.png", FetchPolicy())
    check_url(f"http://{host}/a.png", FetchPolicy(allow_private=True))


def test_public_literal_and_names_pass_the_static_check():
    check_url("http://93.184.215.14/a.png", FetchPolicy())
    check_url("https://images.example.com/a.png", FetchPolicy())

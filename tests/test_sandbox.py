"""The sandbox speaks APIXO's protocol over real HTTP (no Django needed)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from imagegen.sandbox import SandboxConfig, SandboxServer, parse_markers, render
from imagegen.sandbox.render import dimensions

from .conftest import wait_until

AUTH = {"Authorization": "Bearer k"}


def submit(server, prompt="a kite", **extra):
    body = {
        "request_type": "async",
        "input": {"mode": "text-to-image", "prompt": prompt, "resolution": "1k"},
    }
    body.update(extra)
    return httpx.post(f"{server.api_url}/generateTask/gpt-image-2", json=body, headers=AUTH)


def status(server, task_id):
    return httpx.get(
        f"{server.api_url}/statusTask/gpt-image-2", params={"taskId": task_id}, headers=AUTH
    )


@pytest.fixture
def server():
    with SandboxServer(config=SandboxConfig(latency=(0.1, 0.2))) as sandbox:
        yield sandbox


def test_lifecycle(server):
    response = submit(server)
    assert response.status_code == 200
    envelope = response.json()
    assert envelope["code"] == 200 and envelope["message"] == "success"
    task_id = envelope["data"]["taskId"]
    data = wait_until(
        lambda: (d := status(server, task_id).json()["data"])["state"] == "success" and d,
        timeout=5,
    )
    urls = json.loads(data["resultJson"])["resultUrls"]
    image = httpx.get(urls[0])
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")
    assert data["costTime"] > 0 and data["completeTime"] >= data["createTime"]


@pytest.mark.parametrize(
    "body",
    [
        {"request_type": "sync"},
        {"request_type": "callback", "input": {"mode": "text-to-image", "prompt": "x"}},
        {"request_type": "async", "input": {"mode": "paint", "prompt": "x"}},
        {"request_type": "async", "input": {"mode": "text-to-image", "prompt": ""}},
        {"request_type": "async", "input": {"mode": "image-to-image", "prompt": "x"}},
        {
            "request_type": "async",
            "input": {"mode": "text-to-image", "prompt": "x", "resolution": "8k"},
        },
    ],
)
def test_validation(server, body):
    response = httpx.post(f"{server.api_url}/generateTask/gpt-image-2", json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["code"] == 400 and response.json()["message"]


def test_auth_and_unknown_paths(server):
    assert httpx.post(f"{server.api_url}/generateTask/gpt-image-2", json={}).status_code == 401
    response = httpx.post(f"{server.api_url}/generateTask/other", json={}, headers=AUTH)
    assert response.status_code == 404
    assert status(server, "missing").status_code == 404


def test_forced_http_errors(server):
    first = submit(server, "x [sandbox:submit-http=503x1]")
    assert first.status_code == 503
    assert submit(server, "x [sandbox:submit-http=503x1]").status_code == 200
    limited = submit(server, "x [sandbox:submit-http=429]")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"


class Receiver(BaseHTTPRequestHandler):
    bodies: list = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        type(self).bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def receiver():
    Receiver.bodies = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/cb"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize(
    ("marker", "states"),
    [
        ("", ["success"]),
        ("[sandbox:callback=duplicate]", ["success", "success"]),
        ("[sandbox:callback=reorder]", ["success", "processing"]),
        ("[sandbox:fail=NSFW_DETECTED]", ["failed"]),
    ],
)
def test_callbacks(server, receiver, marker, states):
    response = submit(server, f"x {marker}", request_type="callback", callback_url=receiver)
    task_id = response.json()["data"]["taskId"]
    wait_until(lambda: len(Receiver.bodies) == len(states), timeout=30)
    assert [b["data"]["state"] for b in Receiver.bodies] == states
    assert all(b["data"]["taskId"] == task_id and b["code"] == 200 for b in Receiver.bodies)


def test_dropped_callback_and_forgotten_task(server, receiver):
    dropped = submit(
        server, "x [sandbox:callback=drop]", request_type="callback", callback_url=receiver
    ).json()["data"]["taskId"]
    wait_until(lambda: status(server, dropped).json()["data"]["state"] == "success", timeout=30)
    assert Receiver.bodies == []
    forgotten = submit(server, "x [sandbox:forget]").json()["data"]["taskId"]
    assert status(server, forgotten).status_code == 404
    assert server.stats()["tasks"][dropped]["status_calls"] >= 1


@pytest.mark.parametrize(
    ("resolution", "ratio", "size"),
    [
        ("1k", "auto", (1024, 1024)),
        ("2k", "16:9", (2048, 1152)),
        ("4k", "9:16", (2304, 4096)),
        ("1k", "4:3", (1024, 768)),
        ("1k", "3:4", (768, 1024)),
    ],
)
def test_dimensions(resolution, ratio, size):
    assert dimensions(resolution, ratio) == size


def test_markers():
    assert parse_markers("a [sandbox:fail=X] b [sandbox:forget]") == {"fail": "X", "forget": ""}


def test_cli_prints_listening_line():
    process = subprocess.Popen(
        [sys.executable, "-m", "imagegen.sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("imagegen sandbox listening on http://127.0.0.1:")
        assert line.strip().endswith("/api/v1/")
    finally:
        process.terminate()
        process.wait(timeout=10)


def _chat(server, body, headers=AUTH):
    return httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers)


def _image_part(url):
    return {"type": "image_url", "image_url": {"url": url}}


_PNG = base64.b64encode(render.render("x", "1k", "auto")).decode()


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, {}, 401, None),
        ({"messages": [{"role": "user", "content": "x"}]}, AUTH, 400, None),
        ({"model": "m", "messages": []}, AUTH, 400, None),
        ({"model": "m", "messages": [{"content": "x"}]}, AUTH, 400, None),
        ({"model": "m", "messages": [{"role": "user", "content": 3}]}, AUTH, 400, None),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": [_image_part("https://e.com/a.png")]}],
            },
            AUTH,
            400,
            "invalid_image_url",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {"role": "user", "content": [_image_part("data:image/png;base64,AAAA")]}
                ],
            },
            AUTH,
            400,
            "invalid_image_format",
        ),
    ],
)
def test_chat_completions_refuses(server, body, headers, status, code):
    """Requests the chat completions endpoint refuses, in OpenAI's error shape; none counted."""
    response = _chat(server, body, headers)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"] and error["code"] == code
    assert server.stats().get("chat_completions", 0) == 0


def test_chat_completions_answer(server):
    """Alt text for an image part, in OpenAI's shape, counted."""
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "a kite"},
            _image_part(f"data:image/png;base64,{_PNG}"),
        ],
    }
    system = {"role": "system", "content": "Write in German (language code de)."}
    response = _chat(server, {"model": "gpt-4o-mini", "messages": [system, message]})
    assert response.status_code == 200
    answer = response.json()
    assert answer["object"] == "chat.completion" and answer["model"] == "gpt-4o-mini"
    assert answer["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Generiertes Bild (1024×1024): a kite.",
        "refusal": None,
    }
    assert server.stats()["chat_completions"] == 1

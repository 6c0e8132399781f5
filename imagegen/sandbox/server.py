"""The sandbox HTTP server: APIXO's wire protocol, tasks in memory, callbacks.

Besides the protocol, two endpoints serve ``manage.py imagegen doctor``:
APIXO's ``GET /api/v1/apikeys/current-balance`` (the balance is
:attr:`SandboxConfig.balance`) and ``POST /_sandbox/probe-callback``, which
POSTs once to a URL as a callback would come and reports the answer.
"""

from __future__ import annotations

import heapq
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import chat_api, openai_api, render
from .markers import parse_http, parse_latency, parse_markers

#: What ``answer=deep`` and ``answer=deep-result`` nest: 100 000 levels of
#: arrays (about 200 kB), where a plain ``json.loads`` raises RecursionError.
_DEEP = "[" * 100_000 + "]" * 100_000
_DEEP_PLACEHOLDER = "__sandbox_deep__"
#: What ``answer=huge`` adds to an answer: past imagegen's default 256 KiB cap.
HUGE_ANSWER_BYTES = 1024 * 1024


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-answer (imagegen stops reading an answer
    past its size cap) is normal here, not a traceback on stderr."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def dumps(payload: Any) -> str:
    """``json.dumps``, with the ``answer=deep`` placeholder replaced by the
    deep document (json.dumps itself cannot nest that far)."""
    return json.dumps(payload).replace(f'"{_DEEP_PLACEHOLDER}"', _DEEP)


MODEL = "gpt-image-2"
MODES = ("text-to-image", "image-to-image")
FAIL_MESSAGES = {
    "CONTENT_VIOLATION": "Content violates the usage policy",
    "NSFW_DETECTED": "NSFW content detected",
    "GENERATION_FAILED": "Image generation failed",
    "INSUFFICIENT_CREDITS": "Insufficient credits",
}


@dataclass
class SandboxConfig:
    """Run-wide behaviour; prompt markers override it per task."""

    latency: tuple[float, float] = (2.0, 4.0)
    progress_callbacks: bool = False
    callback_mode: str = "send"  # send | drop | duplicate | delay | reorder
    callback_delay: float = 0.0
    callback_retries: int = 2
    image_format: str = "png"
    api_key: str | None = None
    public_url: str | None = None
    fail_rate: float = 0.0
    verbose: bool = False
    #: What ``GET /api/v1/apikeys/current-balance`` reports, in USD.
    balance: float = 100.0
    #: Sign every rendered result with a C2PA manifest (render.with_credentials),
    #: as GPT Image's results carry one; the ``credentials`` marker decides per task.
    content_credentials: bool = False


@dataclass
class Task:
    task_id: str
    prompt: str
    mode: str
    resolution: str
    aspect_ratio: str
    callback_url: str | None
    markers: dict[str, str]
    created: float
    duration: float
    fail_code: str = ""
    count: int = 1
    fmt: str = "png"
    status_calls: int = 0
    callbacks_sent: int = 0
    files: dict[int, bytes] = field(default_factory=dict)
    #: Outputs whose first download was delayed (``download-delay``).
    delayed: set[int] = field(default_factory=set)

    def state(self, now: float) -> str:
        elapsed = now - self.created
        if elapsed >= self.duration:
            return "failed" if self.fail_code else "success"
        return "processing" if elapsed >= self.duration * 0.1 else "pending"


class SandboxServer:
    """The sandbox, bound on construction (port 0 picks a free port)."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, config: SandboxConfig | None = None
    ) -> None:
        self.config = config or SandboxConfig()
        self._lock = threading.Lock()
        self._tasks: dict[str, Task] = {}
        self._counters: dict[str, int] = {}
        self._http_budget: dict[tuple[str, str], int] = {}
        self._heap: list[tuple[float, int, str, str]] = []
        self._seq = 0
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sandbox-callback")
        self._httpd = _QuietServer((host, port), _handler(self))
        self._httpd.daemon_threads = True
        self._threads: list[threading.Thread] = []
        self.reset()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v1"

    def start(self) -> SandboxServer:
        for target in (self._httpd.serve_forever, self._scheduler):
            thread = threading.Thread(target=target, daemon=True, name="imagegen-sandbox")
            thread.start()
            self._threads.append(thread)
        return self

    def serve_forever(self) -> None:
        threading.Thread(target=self._scheduler, daemon=True).start()
        self._httpd.serve_forever()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        with self._lock:
            self._tasks.clear()
            self._heap.clear()
            self._http_budget.clear()
            self._counters = dict.fromkeys(
                ("submits", "status_calls", "callbacks_sent", "callbacks_failed", "downloads"), 0
            )

    def stats(self) -> dict[str, Any]:
        now = time.time()
        with self._lock:
            return {
                **self._counters,
                # The most tasks generating at one moment (a client's concurrency).
                "max_concurrent_tasks": _max_overlap(
                    [(t.created, t.created + t.duration) for t in self._tasks.values()]
                ),
                "tasks": {
                    t.task_id: {
                        "status_calls": t.status_calls,
                        "callbacks_sent": t.callbacks_sent,
                        "state": t.state(now),
                        "prompt": t.prompt[:80],
                    }
                    for t in self._tasks.values()
                },
            }

    # --- protocol -------------------------------------------------------

    def forced_http(self, kind: str, key: str, markers: dict[str, str]) -> int | None:
        """An HTTP error a ``submit-http``/``status-http`` marker asks for, if any."""
        value = markers.get(f"{kind}-http")
        if not value:
            return None
        status, times = parse_http(value)
        if times is None:
            return status
        with self._lock:
            used = self._http_budget.get((kind, key), 0)
            self._http_budget[(kind, key)] = used + 1
        return status if used < times else None

    def submit(self, body: Any) -> tuple[int, Any]:
        error = _validate(body)
        if error:
            return 400, error
        payload = body["input"]
        prompt = payload["prompt"]
        markers = parse_markers(prompt)
        forced = self.forced_http("submit", prompt, markers)
        if forced:
            return forced, f"Forced HTTP {forced}"
        low, high = (
            parse_latency(markers["latency"]) if "latency" in markers else self.config.latency
        )
        fail = markers.get("fail", "")
        if not fail and self.config.fail_rate and random.random() < self.config.fail_rate:
            fail = "GENERATION_FAILED"
        task = Task(
            task_id=uuid.uuid4().hex,
            prompt=prompt,
            mode=payload["mode"],
            resolution=payload.get("resolution", "1k"),
            aspect_ratio=payload.get("aspect_ratio", "auto"),
            callback_url=body.get("callback_url") if body["request_type"] == "callback" else None,
            markers=markers,
            created=time.time(),
            duration=random.uniform(low, high),
            fail_code=fail,
            count=max(1, min(4, int(markers.get("count", "1") or 1))),
            fmt=markers.get("format", self.config.image_format),
        )
        with self._lock:
            self._tasks[task.task_id] = task
            self._counters["submits"] += 1
            if task.callback_url and "forget" not in markers:
                self._schedule(task.created + task.duration, task.task_id, "final")
                if self.config.progress_callbacks:
                    self._schedule(task.created + task.duration * 0.1, task.task_id, "progress")
        return 200, {"taskId": task.task_id}

    def status(self, task_id: str | None) -> tuple[int, Any]:
        if not task_id:
            return 400, "taskId is required"
        with self._lock:
            self._counters["status_calls"] += 1
            task = self._tasks.get(task_id)
            if task is not None:
                task.status_calls += 1
        if task is None or "forget" in task.markers:
            return 404, "Task not found"
        forced = self.forced_http("status", task_id, task.markers)
        if forced:
            return forced, f"Forced HTTP {forced}"
        return 200, self.task_data(task)

    def task_data(self, task: Task, state: str | None = None) -> dict[str, Any]:
        state = state or task.state(time.time())
        done = state in ("success", "failed")
        ext = render.EXTENSIONS.get(task.fmt, "png")
        base = self.config.public_url or self.url
        listed = int(task.markers.get("result-urls") or task.count)
        urls = [f"{base}/files/{task.task_id}/{i}.{ext}" for i in range(listed)]
        answer = task.markers.get("answer", "")
        if answer == "duplicate-urls":
            urls = [urls[0], *urls]
        result = json.dumps({"resultUrls": urls})
        if answer == "deep-result":
            result = result[:-1] + ', "x": ' + _DEEP + "}"
        data = {
            "taskId": task.task_id,
            "state": state,
            "resultJson": result if state == "success" else "",
            "failCode": task.fail_code if state == "failed" else "",
            "failMsg": FAIL_MESSAGES.get(task.fail_code, f"Task failed: {task.fail_code}")
            if state == "failed"
            else "",
            "createTime": int(task.created * 1000),
            "completeTime": int((task.created + task.duration) * 1000) if done else None,
            "costTime": int(task.duration * 1000) if done else 0,
        }
        if answer == "deep":
            data["x"] = _DEEP_PLACEHOLDER
        elif answer == "huge":
            data["padding"] = "x" * HUGE_ANSWER_BYTES
        return data

    def task(self, task_id: str | None) -> Task | None:
        """The task with this id, if the sandbox knows it."""
        with self._lock:
            return self._tasks.get(task_id or "")

    def file(self, task_id: str, index: int) -> Task | None:
        with self._lock:
            self._counters["downloads"] += 1
            return self._tasks.get(task_id)

    def first_download(self, task: Task, index: int) -> bool:
        """True the first time output ``index`` of ``task`` is asked for."""
        with self._lock:
            first = index not in task.delayed
            task.delayed.add(index)
            return first

    # --- callbacks ------------------------------------------------------

    def _schedule(self, when: float, task_id: str, kind: str) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, task_id, kind))
        self._wake.notify()

    def _scheduler(self) -> None:
        with self._lock:
            while not self._stopping:
                if not self._heap:
                    self._wake.wait()
                    continue
                when, _, task_id, kind = self._heap[0]
                delay = when - time.time()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                heapq.heappop(self._heap)
                task = self._tasks.get(task_id)
                if task is not None:
                    self._dispatch(task, kind)

    def _dispatch(self, task: Task, kind: str) -> None:
        """Called with the lock held: decide what to send, send it on the pool."""
        if kind == "progress":
            self._pool.submit(self._deliver, task, "processing")
            return
        mode = task.markers.get("callback", self.config.callback_mode)
        if mode == "drop":
            return
        if mode == "delay" and kind == "final":
            delay = float(task.markers.get("callback-delay", self.config.callback_delay) or 0)
            self._schedule(time.time() + delay, task.task_id, "late")
            return
        final = "failed" if task.fail_code else "success"
        self._pool.submit(self._deliver, task, final)
        if mode == "duplicate":
            self._pool.submit(self._deliver, task, final)
        if mode == "reorder":
            self._pool.submit(self._deliver_after, task, "processing", 0.2)

    def _deliver_after(self, task: Task, state: str, delay: float) -> None:
        time.sleep(delay)  # a stale callback must arrive after the final one
        self._deliver(task, state)

    def _deliver(self, task: Task, state: str) -> None:
        body = dumps({"code": 200, "message": "success", "data": self.task_data(task, state)})
        for attempt in range(self.config.callback_retries + 1):
            request = _callback_request(task.callback_url, body)
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    ok = 200 <= response.status < 300
            except Exception:
                ok = False
            with self._lock:
                self._counters["callbacks_sent" if ok else "callbacks_failed"] += 1
                task.callbacks_sent += ok
            if ok:
                return
            time.sleep(0.2 * (attempt + 1))  # short backoff between delivery attempts

    def probe_callback(self, url: Any, timeout: Any = 10) -> tuple[int, dict[str, Any]]:
        """POST a probe to ``url`` once, as a callback is sent, and report the
        answer: ``{"status": int, "body": str}`` or ``{"status": None, "error": str}``."""
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            return 400, {"error": "url must be an http(s) URL"}
        try:
            seconds = min(30.0, max(0.1, float(timeout)))
        except (TypeError, ValueError):
            return 400, {"error": "timeout must be a number of seconds"}
        body = json.dumps({"code": 200, "message": "probe", "data": None})
        try:
            with urllib.request.urlopen(_callback_request(url, body), timeout=seconds) as response:
                return 200, {"status": response.status, "body": _text(response.read(2000))}
        except urllib.error.HTTPError as exc:
            return 200, {"status": exc.code, "body": _text(exc.read(2000))}
        except Exception as exc:
            # urllib wraps the socket's error (connection refused, no such host).
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            text = f"{type(reason).__name__}: {reason}" if isinstance(reason, Exception) else reason
            return 200, {"status": None, "error": str(text)[:300]}


def _callback_request(url: str, body: str) -> urllib.request.Request:
    return urllib.request.Request(
        url,
        data=body.encode(),
        headers={"Content-Type": "application/json", "User-Agent": "imagegen-sandbox"},
        method="POST",
    )


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _validate(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "Body must be a JSON object"
    if body.get("request_type") not in ("async", "callback"):
        return "request_type must be 'async' or 'callback'"
    if body["request_type"] == "callback":
        url = body.get("callback_url")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            return "callback_url is required for callback requests and must be http(s)"
    payload = body.get("input")
    if not isinstance(payload, dict):
        return "input must be an object"
    if payload.get("mode") not in MODES:
        return "input.mode must be 'text-to-image' or 'image-to-image'"
    prompt = payload.get("prompt")
    if not isinstance(prompt, str) or not 1 <= len(prompt) <= 20000:
        return "input.prompt must be 1-20000 characters"
    urls = payload.get("image_urls", [])
    if not isinstance(urls, list) or not all(
        isinstance(u, str) and urlsplit(u).scheme in ("http", "https") for u in urls
    ):
        return "input.image_urls must be a list of http(s) URLs"
    if payload["mode"] == "image-to-image" and not 1 <= len(urls) <= 16:
        return "image-to-image needs 1-16 image_urls"
    if payload.get("aspect_ratio", "auto") not in render.RATIOS:
        return "input.aspect_ratio is not supported"
    if payload.get("resolution", "1k") not in render.LONG_SIDE:
        return "input.resolution must be 1k, 2k or 4k"
    return None


def _handler(sandbox: SandboxServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            if sandbox.config.verbose:
                sys.stderr.write("sandbox: " + format % args + "\n")

        def do_GET(self) -> None:
            self._safely(self._get)

        def do_POST(self) -> None:
            self._safely(self._post)

        def _safely(self, action: Any) -> None:
            try:
                action()
            except Exception as exc:
                sys.stderr.write(f"sandbox: internal error {exc!r}\n")
                self._envelope(500, "Internal error")

        def _authorized(self) -> bool:
            auth = self.headers.get("Authorization", "")
            key = auth[7:] if auth.startswith("Bearer ") else ""
            if not key or (sandbox.config.api_key is not None and key != sandbox.config.api_key):
                self._envelope(401, "Invalid API key")
                return False
            return True

        def _post(self) -> None:
            path = urlsplit(self.path).path
            if path == "/_sandbox/reset":
                sandbox.reset()
                return self._json(200, {"ok": True})
            if path == "/_sandbox/probe-callback":
                request = self._read_json()
                if not isinstance(request, dict):
                    return self._json(400, {"error": "Body must be a JSON object"})
                return self._json(
                    *sandbox.probe_callback(request.get("url"), request.get("timeout", 10))
                )
            if path == chat_api.PATH:  # describers' chat completions (reads its own body)
                return chat_api.handle(self, sandbox)
            if path.startswith(openai_api.PREFIX):  # OpenAI's Images API (reads its own body)
                return openai_api.handle(self, sandbox, path)
            try:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
            except ValueError:
                return self._envelope(400, "Bad Content-Length")
            if not path.startswith("/api/v1/generateTask/"):
                return self._envelope(404, "Not found")
            if not self._authorized():
                return None
            if path != f"/api/v1/generateTask/{MODEL}":
                return self._envelope(404, "Unknown model")
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                return self._envelope(400, "Body must be UTF-8 JSON")
            status, result = sandbox.submit(body)
            if status == 200 and self._lose_response(body["input"]["prompt"], "submit"):
                return None
            return self._envelope(
                status, "success" if status == 200 else result, result if status == 200 else None
            )

        def _read_json(self) -> Any:
            """The request body as JSON, or None when it is not."""
            try:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                return json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                return None

        def _lose_response(self, prompt: str, kind: str) -> bool:
            """``submit-delay``/``status-delay`` markers answer late;
            ``submit-hangup``/``status-hangup`` close the connection without an
            answer, after the work was done: the "accepted, answer lost" case."""
            markers = parse_markers(prompt)
            delay = markers.get(f"{kind}-delay")
            if delay:
                time.sleep(float(delay))
            if f"{kind}-hangup" in markers:
                self.close_connection = True
                return True
            return False

        def _get(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/_sandbox/health":
                return self._json(200, {"ok": True})
            if parts.path == "/_sandbox/stats":
                return self._json(200, sandbox.stats())
            if parts.path == "/api/v1/apikeys/current-balance":
                if not self._authorized():
                    return None
                return self._envelope(200, "success", sandbox.config.balance)
            if parts.path.startswith(openai_api.MODELS):
                return openai_api.handle_model(self, sandbox, parts.path)
            if parts.path.startswith("/files/"):
                return self._file(parts.path)
            if parts.path.startswith("/api/v1/statusTask/"):
                if not self._authorized():
                    return None
                if parts.path != f"/api/v1/statusTask/{MODEL}":
                    return self._envelope(404, "Unknown model")
                task_id = parse_qs(parts.query).get("taskId", [None])[0]
                status, result = sandbox.status(task_id)
                task = sandbox.task(task_id)
                if task is not None and self._lose_response(task.prompt, "status"):
                    return None
                return self._envelope(
                    status,
                    "success" if status == 200 else result,
                    result if status == 200 else None,
                )
            return self._envelope(404, "Not found")

        def _file(self, path: str) -> None:
            try:
                _, _, task_id, name = path.split("/", 3)
                index = int(name.split(".")[0])
            except ValueError:
                return self._envelope(404, "Not found")
            task = sandbox.file(task_id, index)
            if task is None or index >= task.count:
                return self._envelope(404, "Not found")
            delay = task.markers.get("download-delay")
            if delay and sandbox.first_download(task, index):
                time.sleep(float(delay))
            kind = task.markers.get("download", "")
            if kind == "404":
                return self._envelope(404, "Expired")
            if kind.startswith("redirect:"):
                self.send_response(302)
                self.send_header("Location", kind[len("redirect:") :])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if kind == "huge":
                return self._stream_huge()
            if kind == "slow":
                return self._trickle()
            ctype = render.CONTENT_TYPES.get(task.fmt, "image/png")
            if kind == "html":
                data = b"<html><body>Not an image</body></html>"
            elif kind == "bomb":
                data = render.bomb_png()
            elif kind == "gif":
                data, ctype = render.gif(), "image/gif"
            elif kind in ("apng", "awebp"):
                fmt = "PNG" if kind == "apng" else "WEBP"
                data, ctype = render.animated(fmt), f"image/{fmt.lower()}"
            else:
                data = task.files.get(index)
                if data is None:
                    data = render.render(
                        task.prompt,
                        task.resolution,
                        task.aspect_ratio,
                        task.fmt,
                        index,
                        noise="noise" in task.markers,
                    )
                    # Signed like GPT Image's results: [sandbox:credentials], or the
                    # run-wide content_credentials ([sandbox:credentials=off] overrides it).
                    default = "on" if sandbox.config.content_credentials else "off"
                    if task.markers.get("credentials", default) != "off":
                        data = render.with_credentials(data, task.fmt, MODEL)
                    task.files[index] = data
                if kind == "truncated":
                    data = data[: len(data) // 2]
                elif kind == "polyglot":
                    data = render.polyglot(data)
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None

        def _stream_huge(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"\0" * 65536
            try:
                for _ in range(200 * 16):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
            self.close_connection = True

        def _trickle(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b"\0")
                    self.wfile.flush()
                    time.sleep(1)  # the point of this response is to be slow
            except OSError:
                pass
            self.close_connection = True

        def _envelope(self, status: int, message: str, data: Any = None) -> None:
            headers = {"Retry-After": "1"} if status == 429 else {}
            self._json(status, {"code": status, "message": message, "data": data}, headers)

        def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most ``[start, end)`` intervals that overlap at one instant."""
    # At equal times an end sorts before a start: back-to-back tasks do not overlap.
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = current = 0
    for _, step in events:
        current += step
        most = max(most, current)
    return most

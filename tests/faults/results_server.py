"""A result file server for the fault tests: one 4K PNG, served slowly or
stopped half way, so a finalize can be caught mid-download.

A sandbox job points its result at it with the prompt marker
``[sandbox:download=redirect:<url>]``; the download follows the redirect.
"""

from __future__ import annotations

import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image


def four_k_png() -> bytes:
    """A 3840x2160 PNG (a gradient: small on the wire, 4K to the verifier)."""
    image = Image.linear_gradient("L").resize((3840, 2160)).convert("RGB")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


class ResultServer:
    """Serves :func:`four_k_png` at :attr:`url`.

    By default the whole file at once. :meth:`trickle` spreads each body
    over some seconds in small pieces (a slow but steady download);
    :meth:`hold_first` sends the first request half the body and then
    nothing until :meth:`release` (a download stopped half way). Later
    requests get the file at once. :attr:`requests` counts the GETs.
    """

    def __init__(self) -> None:
        self.data = four_k_png()
        self.requests = 0
        self.holding = threading.Event()
        self._released = threading.Event()
        self._trickle_seconds = 0.0
        self._hold = False
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner._serve(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/result.png"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def trickle(self, seconds: float) -> None:
        self._trickle_seconds = seconds

    def hold_first(self) -> None:
        self._hold = True

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests += 1
            hold = self._hold and self.requests == 1
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Content-Length", str(len(self.data)))
        handler.end_headers()
        try:
            if hold:
                half = len(self.data) // 2
                handler.wfile.write(self.data[:half])
                handler.wfile.flush()
                self.holding.set()
                self._released.wait(timeout=120)
                handler.wfile.write(self.data[half:])
            elif self._trickle_seconds:
                pieces = 40
                size = -(-len(self.data) // pieces)
                for start in range(0, len(self.data), size):
                    handler.wfile.write(self.data[start : start + size])
                    handler.wfile.flush()
                    time.sleep(self._trickle_seconds / pieces)  # the point: a slow download
            else:
                handler.wfile.write(self.data)
        except OSError:
            pass  # the client went away (a killed worker)

"""A TCP proxy that can be cut: the way the fault tests make a real server
(broker, database, S3) unreachable for a while without stopping it."""

from __future__ import annotations

import contextlib
import re
import select
import socket
import threading

#: The start of an HTTP request, to name what a choked connection was sending.
REQUEST_LINE = re.compile(rb"^[A-Z]{3,7} /")


class TCPProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target``.

    :meth:`cut` drops every open connection and refuses new ones (they are
    accepted and closed at once, as a server that went away); :meth:`stall`
    accepts new connections and never answers (a server that hangs);
    :meth:`choke` lets each new connection send ``n`` bytes upstream and then
    holds the rest (a transfer that stops half way; :attr:`choked` tells
    when one did); :meth:`restore` lets connections through again.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._mode = "up"
        self._budget: int | None = None
        self.choked = threading.Event()
        #: The request line the choked connection was sending when it stopped.
        self.choked_request = b""
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)
        self._thread.start()

    def url(self, template: str) -> str:
        """``template`` with ``{port}`` filled in, e.g. ``redis://127.0.0.1:{port}/15``."""
        return template.format(port=self.port)

    def cut(self) -> None:
        self._set_mode("cut")

    def stall(self) -> None:
        self._set_mode("stall")

    def choke(self, after_bytes: int) -> None:
        with self._lock:
            self._budget = after_bytes
        self.choked.clear()

    def restore(self) -> None:
        # Also drops connections held by a stall or a choke: they never finished.
        with self._lock:
            self._budget = None
        self._set_mode("up")

    def _set_mode(self, mode: str) -> None:
        with self._lock:
            self._mode = mode
            sockets, self._open = self._open, set()
        for sock in sockets:
            _close(sock)

    def close(self) -> None:
        self._closed = True
        self.cut()
        _close(self._listener)
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _addr = self._listener.accept()
            except OSError:
                return
            with self._lock:
                mode = self._mode
                if mode == "stall":
                    # Held open, never answered; closed by the next mode change.
                    self._open.add(client)
            if mode == "cut":
                _close(client)
            if mode != "up":
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open.update((client, upstream))
            threading.Thread(
                target=self._pipe, args=(client, upstream), name="tcp-proxy-pipe", daemon=True
            ).start()

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        pair = {client: upstream, upstream: client}
        with self._lock:
            budget = self._budget
        last_request = b""
        try:
            while True:
                readable, _, _ = select.select(list(pair), [], [], 1.0)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client and REQUEST_LINE.match(data):
                        last_request = data.split(b"\r\n", 1)[0]
                    if sock is client and budget is not None:
                        data, budget = data[:budget], budget - len(data)
                        if budget <= 0:
                            pair[sock].sendall(data)
                            self.choked_request = last_request
                            self.choked.set()
                            # Hold the connection open, sending nothing more,
                            # until the test restores or closes the proxy.
                            while client.fileno() != -1 and not self._closed:
                                select.select([], [], [], 0.2)
                            return
                    pair[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                self._open.discard(client)
                self._open.discard(upstream)
            _close(client)
            _close(upstream)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()

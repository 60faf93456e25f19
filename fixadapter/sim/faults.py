"""A TCP proxy between a FIX client and the simulator that can inject bytes and cut the line.

Used by tests to play a broken network or server: a garbled message slipped between two real ones,
a disconnect the server side did not announce. It forwards whole FIX messages only, so injected bytes
never split a real message.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading

log = logging.getLogger("fixadapter.sim.faults")
_TRAILER = re.compile(rb"\x0110=\d{3}\x01")
CHUNK = 65536


class _Link:
    """One client connection and its upstream; downstream writes happen only at message boundaries."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.lock = threading.Lock()
        self.partial = b""
        self.queued: list[bytes] = []

    def forward_down(self, data: bytes) -> None:
        with self.lock:
            self.partial += data
            cut = 0
            for match in _TRAILER.finditer(self.partial):
                cut = match.end()
            if cut:
                self.client.sendall(self.partial[:cut])
                self.partial = self.partial[cut:]
            if not self.partial:
                self._flush_queued()

    def inject(self, data: bytes) -> None:
        with self.lock:
            self.queued.append(data)
            if not self.partial:
                self._flush_queued()

    def _flush_queued(self) -> None:
        while self.queued:
            self.client.sendall(self.queued.pop(0))

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


class FaultProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self._upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._links: list[_Link] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self.drop()

    def inject_to_client(self, data: bytes) -> int:
        """Send `data` to every connected client between two server messages; returns how many got it.
        A link the venue or the client has closed meanwhile is forgotten, not an error."""
        reached = 0
        for link in list(self._links):
            try:
                link.inject(data)
            except OSError:
                link.close()
                with contextlib.suppress(ValueError):
                    self._links.remove(link)
                continue
            reached += 1
        return reached

    def drop(self) -> None:
        """Cut every connection without a FIX Logout, as a broken line would."""
        for link in list(self._links):
            link.close()
        self._links.clear()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._upstream, timeout=5)
            except OSError as exc:
                log.warning("proxy cannot reach %s:%d: %s", *self._upstream, exc)
                client.close()
                continue
            upstream.settimeout(None)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(client, upstream)
            self._links.append(link)
            threading.Thread(target=self._pump_up, args=(link,), daemon=True).start()
            threading.Thread(target=self._pump_down, args=(link,), daemon=True).start()

    @staticmethod
    def _pump_up(link: _Link) -> None:
        with contextlib.suppress(OSError):
            while data := link.client.recv(CHUNK):
                link.upstream.sendall(data)
        link.close()

    @staticmethod
    def _pump_down(link: _Link) -> None:
        with contextlib.suppress(OSError):
            while data := link.upstream.recv(CHUNK):
                link.forward_down(data)
        link.close()

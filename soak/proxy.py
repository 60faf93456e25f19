"""A TCP proxy the soak owns in front of a server (PostgreSQL) so it can cut the line and restore it.

While cut, every open connection is closed at once (both ways, no goodbye) and new ones are closed as
soon as they are accepted: to the daemon the database is gone, as when its host or network fails.
"""

from __future__ import annotations

import contextlib
import socket
import threading

CHUNK = 65536


class _Link:
    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.sockets = (client, upstream)

    def close(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


class CuttableProxy:
    """127.0.0.1:<port> (port chosen by the system) relayed to `upstream`; cut() and restore()."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._links: set[_Link] = set()
        self._lock = threading.Lock()
        self._cut = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="soak-proxy", daemon=True)
        self.cuts = 0

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def start(self) -> CuttableProxy:
        self._thread.start()
        return self

    def cut(self) -> None:
        """Close every connection and refuse new ones until restore()."""
        self._cut.set()
        self.cuts += 1
        self._close_all()

    def restore(self) -> None:
        self._cut.clear()

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._close_all()
        self._thread.join(5)

    def _close_all(self) -> None:
        with self._lock:
            links, self._links = self._links, set()
        for link in links:
            link.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            link = _Link(client, upstream)
            with self._lock:
                self._links.add(link)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(link, source, sink), daemon=True).start()

    def _pump(self, link: _Link, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(CHUNK):
                sink.sendall(data)
        link.close()
        with self._lock:
            self._links.discard(link)

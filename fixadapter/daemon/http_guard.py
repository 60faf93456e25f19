"""What keeps the HTTP server answering and private: a bound on open connections, the Host check, and
notes that are counted per event but logged at most once a minute (a flood must not become a log flood).

Idle and half-sent connections are closed by aiohttp's keep-alive timer, which runs from the moment a
connection is made until its first request's headers are complete, and again after every answer
(`daemon.http.idle_timeout_seconds`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from prometheus_client import Counter

log = logging.getLogger("fixadapter.http")

NOTE_EVERY_SECONDS = 60.0
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_FULL = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class RateLimitedNote:
    """Counts every occurrence; logs a warning at most once per `every` seconds with the count since."""

    def __init__(self, text: str, every: float = NOTE_EVERY_SECONDS) -> None:
        self._text = text
        self._every = every
        self._since = 0
        self._last: float | None = None

    def add(self, detail: str) -> None:
        self._since += 1
        now = time.monotonic()
        if self._last is not None and now - self._last < self._every:
            return
        log.warning("%s (%d since the last note; latest: %s)", self._text, self._since, detail)
        self._last = now
        self._since = 0


class QuietServerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's own log for malformed requests (a traceback each): at most one line a minute, counted."""

    def __init__(self, every: float = NOTE_EVERY_SECONDS) -> None:
        super().__init__(logging.getLogger("fixadapter.http.server"), {})
        self._every = every
        self._since = 0
        self._last: float | None = None

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if level < logging.WARNING:
            return
        self._since += 1
        now = time.monotonic()
        if self._last is not None and now - self._last < self._every:
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = str(msg)
        self.logger.warning("HTTP: %s (%d since the last note; details suppressed)", text[:300], self._since)
        self._last = now
        self._since = 0


class _Refused(asyncio.Protocol):
    """A connection over the bound when every open one is busy: told so in one line and closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.WriteTransport):
            transport.write(_FULL)
        transport.close()


class ConnectionLimit:
    """At most `limit` open connections. A newcomer over the bound closes the oldest idle connection (one
    with no request being answered), so a crowd of idle sockets can never lock out /healthz; only when
    every connection is busy is the newcomer refused with 503."""

    def __init__(self, server: web.Server, limit: int, closed: Counter) -> None:
        self._server = server
        self._limit = limit
        self._closed = closed
        self.busy: set[RequestHandler] = set()
        self._note = RateLimitedNote(
            f"HTTP connections at daemon.http.max_connections ({limit}): closing idle ones for new ones; "
            "raise the limit if these are real clients"
        )

    def admit(self) -> asyncio.BaseProtocol:
        """The protocol factory given to the listening socket."""
        live = [h for h in self._server.connections if h.transport is not None]
        if len(live) >= self._limit:
            idle = next((h for h in live if h not in self.busy), None)
            if idle is None:
                self._closed.labels("refused_all_busy").inc()
                self._note.add("a new connection refused: all busy")
                return _Refused()
            idle.force_close()
            self._closed.labels("idle_closed_for_new").inc()
            self._note.add("the oldest idle connection closed")
        return self._server()


def allowed_host_names(bound_host: str, extra: Iterable[str]) -> frozenset[str]:
    return frozenset(_normalize(name) for name in (bound_host, *LOOPBACK_NAMES, *extra))


def host_name(header: str) -> str:
    """A Host header's name without its port: `[::1]:8080` -> `::1`, `Example.com.:80` -> `example.com`."""
    text = header.strip()
    if text.startswith("["):
        return _normalize(text[1:].partition("]")[0])
    name, colon, port = text.rpartition(":")
    return _normalize(name if colon and port.isdigit() else text)


def _normalize(name: str) -> str:
    return name.strip().strip("[]").rstrip(".").lower()

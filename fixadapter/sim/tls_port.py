"""A TLS port in front of a plain FIX port, as cTrader serves 5211/5212 beside 5201/5202.

TLS is terminated here and each connection is relayed to the QuickFIX acceptor on loopback (the PyPI
`quickfix` build has no SSL). `drop()` cuts every TLS connection without close_notify or FIX Logout:
the broker-side disconnect tests need.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from pathlib import Path

from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.sim.config import SimConfig
from fixadapter.tls.loop_thread import LoopThread
from fixadapter.tls.relay import Pipe, join

log = logging.getLogger("fixadapter.sim.tls")
HANDSHAKE_SECONDS = 10.0
CLOSE_WAIT_SECONDS = 1.0


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


def tls_port_for(config: SimConfig, kind: SessionKind) -> TlsPort | None:
    """The session's TLS port, if the config serves one (the runner has made or found the certificate)."""
    port = config.tls_port(kind)
    if port is None:
        return None
    if config.tls_cert is None or config.tls_key is None:
        raise ValueError(f"{kind.value}: a TLS port needs tls_cert and tls_key")
    context = server_context(config.tls_cert, config.tls_key)
    return TlsPort(kind.value, config.host, port, config.port(kind), context)


class TlsPort:
    def __init__(self, name: str, host: str, port: int, target_port: int, context: ssl.SSLContext) -> None:
        self.name = name
        self._address = (host, port)
        self._target_port = target_port
        self._context = context
        self._thread = LoopThread(f"sim-tls-{name}")
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[Pipe, Pipe]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0  # TLS handshakes completed

    @property
    def port(self) -> int:
        if self._server is None:
            return self._address[1]
        return int(self._server.sockets[0].getsockname()[1])

    def start(self, target_port: int | None = None) -> None:
        """`target_port`: the plain port's bound number when it was configured as 0."""
        if target_port is not None:
            self._target_port = target_port
        self._thread.start()
        self._thread.call(self._serve())
        log.info(
            "%s: TLS on %s:%d -> plain port %d", self.name, self._address[0], self.port, self._target_port
        )

    async def _serve(self) -> None:
        self._server = await asyncio.get_running_loop().create_server(
            lambda: Pipe(on_made=self._accepted),
            *self._address,
            ssl=self._context,
            ssl_handshake_timeout=HANDSHAKE_SECONDS,
            ssl_shutdown_timeout=CLOSE_WAIT_SECONDS / 2,
            reuse_address=True,
        )

    def _accepted(self, client: Pipe) -> None:
        if client.transport is None:
            return
        self.connections += 1
        client.transport.pause_reading()
        task = asyncio.get_running_loop().create_task(self._open(client))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open(self, client: Pipe) -> None:
        acceptor = Pipe()
        joined = False
        try:
            await asyncio.get_running_loop().create_connection(
                lambda: acceptor, "127.0.0.1", self._target_port
            )
            joined = join(client, acceptor)
        except OSError as exc:
            log.warning("%s: plain port %d unreachable: %s", self.name, self._target_port, exc)
        finally:
            if joined:
                self._pairs = {pair for pair in self._pairs if not pair[0].lost}
                self._pairs.add((client, acceptor))
            else:
                client.close()
                acceptor.close()

    def drop(self) -> int:
        """Abort every TLS connection (no close_notify, no Logout); returns how many."""
        return self._thread.call(self._drop())

    async def _drop(self) -> int:
        pairs = [pair for pair in self._pairs if not pair[0].lost]
        for client, acceptor in pairs:
            client.abort()
            acceptor.abort()
        self._pairs.clear()
        log.info("%s: dropped %d TLS connection(s)", self.name, len(pairs))
        return len(pairs)

    def stop(self) -> None:
        if not self._thread.running:
            return
        self._thread.call(self._close())
        self._thread.stop()

    async def _close(self) -> None:
        """Close every connection (close_notify), give clients a moment to answer, abort the rest."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for client, acceptor in self._pairs:
            client.close()
            acceptor.close()
        deadline = time.monotonic() + CLOSE_WAIT_SECONDS
        while any(not client.lost for client, _ in self._pairs) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for client, acceptor in self._pairs:
            client.abort()
            acceptor.abort()
        await asyncio.sleep(0)

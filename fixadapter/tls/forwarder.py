"""One loopback listener per TLS session: QuickFIX connects to it, it connects to the broker over TLS.

Each connection QuickFIX opens gets a fresh TLS connection to the broker and the two live and die
together, so the forwarder needs no reconnect logic of its own: when the broker drops the line the
loopback side is closed, QuickFIX reconnects after ReconnectInterval, and that connection gets a new
TLS one. A failure is never answered with plain text: the loopback side is closed, the failure is
reported once (reason and host), counted, and the next attempts are held back with a growing delay.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fixadapter.config import TLS_PORTS, AccountConfig, is_loopback
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.errors import ConfigError
from fixadapter.metrics import Metrics
from fixadapter.tls.failures import Attempt, TlsFailure, classify_connect, classify_handshake
from fixadapter.tls.loop_thread import LoopThread
from fixadapter.tls.relay import Pipe, join

log = logging.getLogger("fixadapter.tls")

Report = Callable[[SessionKind, str], None]
LOOPBACK = "127.0.0.1"
EXPIRY_WARNING_DAYS = 14
CLOSE_WAIT_SECONDS = 1.0  # for the broker's close_notify at stop, then the connection is aborted
SHUTDOWN_SECONDS = 0.5  # asyncio's own limit for close_notify: ends inside CLOSE_WAIT_SECONDS


def client_context(ca_file: Path | None) -> ssl.SSLContext:
    """The system trust store, or only the CAs in `ca_file` (pinned); hostname checked; TLS 1.2+."""
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"account.tls_ca_file {ca_file}: cannot load it as PEM CA certificates ({exc}); "
            "give the broker's CA bundle in PEM form"
        ) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


@dataclass(frozen=True)
class Upstream:
    session: SessionKind
    host: str
    port: int
    ca_file: Path | None = None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


class Backoff:
    """After n failures in a row the next attempt waits initial * 2**(n-1), at most `maximum` seconds.

    The wait counts from when the failed attempt started, less a second of slack: QuickFIX reconnects
    every `initial` seconds from the start of its previous attempt, so its next retry must fall after
    the wait, not just before it."""

    SLACK = 1.0

    def __init__(self, initial: float, maximum: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._initial = initial
        self._maximum = maximum
        self._clock = clock
        self.failures = 0
        self._not_before = 0.0

    def failed(self, started: float | None = None) -> float:
        """The attempt that began at `started` (default: now) failed; returns the wait before the next."""
        self.failures += 1
        delay = min(self._maximum, self._initial * 2.0 ** min(self.failures - 1, 32))
        begun = self._clock() if started is None else started
        self._not_before = begun + delay - min(self.SLACK, delay / 2)
        return delay

    def succeeded(self) -> None:
        self.failures = 0
        self._not_before = 0.0

    def remaining(self) -> float:
        return max(0.0, self._not_before - self._clock())


class SessionForwarder:
    def __init__(
        self,
        upstream: Upstream,
        context: ssl.SSLContext,
        *,
        timeout: float,
        backoff: Backoff,
        metrics: Metrics,
        report: Report,
    ) -> None:
        """`report(session, text)` is called once per new kind of failure (from the forwarder's thread)."""
        self.upstream = upstream
        self._context = context
        self._timeout = timeout
        self._backoff = backoff
        self._metrics = metrics
        self._report = report
        self._kind = upstream.session.value
        self._listener = socket.create_server((LOOPBACK, 0))
        self._server: asyncio.Server | None = None
        self._local: Pipe | None = None  # QuickFIX's connection
        self._remote: Pipe | None = None  # the broker's, once TLS is up
        self._tasks: set[asyncio.Task[None]] = set()
        self._reported: set[str] = set()  # kinds of failure told since the last connection that worked
        self._open_pipes: set[Pipe] = set()  # every connection (QuickFIX's and the broker's) not yet closed
        self._stopping = False

    @property
    def local_port(self) -> int:
        return int(self._listener.getsockname()[1])

    def release(self) -> None:
        """Close the listener of a forwarder that never served."""
        self._listener.close()

    async def serve(self) -> None:
        self._server = await asyncio.get_running_loop().create_server(
            lambda: Pipe(on_made=self._accepted, on_lost=self._local_lost), sock=self._listener
        )

    async def close(self) -> None:
        """Stop accepting, then close every connection: TLS ones with close_notify, waited for a moment,
        aborted after that (a broker that never answers close_notify must not keep a socket open).

        Every connection is tracked from the moment it is made, not only the joined pair: one accepted as
        the listener closed, or a refused second one still flushing, would otherwise outlive the loop."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        else:
            self._listener.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:  # their cleanup closes what they opened
            await asyncio.wait(list(self._tasks), timeout=CLOSE_WAIT_SECONDS)
        for pipe in list(self._open_pipes):
            pipe.close()
        deadline = time.monotonic() + CLOSE_WAIT_SECONDS
        while self._open_pipes and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for pipe in list(self._open_pipes):
            pipe.abort()
        for _ in range(3):
            await asyncio.sleep(0)  # aborted transports run their close callbacks before the loop stops
        self._metrics.tls_connected.labels(self._kind).set(0)

    # -- one connection from QuickFIX ---------------------------------------------------------

    def _accepted(self, local: Pipe) -> None:
        if local.transport is None:
            return
        self._open_pipes.add(local)
        if self._stopping:  # accepted as the listener closed: nothing will relay it
            local.abort()
            return
        if self._local is not None and not self._local.lost:
            # QuickFIX keeps one connection per session; anything else on this port is not ours to relay.
            log.warning("%s: a second local connection to the TLS forwarder was refused", self._kind)
            local.close()
            return
        local.transport.pause_reading()  # the Logon waits in the kernel until TLS is up
        self._local, self._remote = local, None
        task = asyncio.get_running_loop().create_task(self._open(local))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open(self, local: Pipe) -> None:
        """Connect to the broker for `local`; whatever happens, `local` ends joined or closed."""
        held = self._backoff.remaining()
        if held > 0:
            log.debug(
                "%s: TLS to %s held back %.1fs more after failures", self._kind, self.upstream.where, held
            )
            local.close()
            return
        remote = Pipe(on_lost=self._remote_lost)
        started = time.monotonic()
        joined = False
        try:
            failure = await self._connect(remote)
            if failure is not None:
                self._failed(failure, started)
            elif not local.lost:  # (lost: QuickFIX gave up meanwhile, nothing to relay)
                self._connected(remote, time.monotonic() - started)
                self._remote = remote
                joined = join(local, remote)
        except Exception as exc:  # never leave QuickFIX's connection hanging on a surprise
            log.exception("%s: unexpected error connecting to %s", self._kind, self.upstream.where)
            self._failed(classify_connect(exc, self._attempt()), started)
        finally:
            if not joined:
                if remote.transport is not None and not remote.lost:
                    remote.abort()
                local.close()

    def _attempt(self) -> Attempt:
        return Attempt(self.upstream.host, self.upstream.port, self.upstream.ca_file, self._timeout)

    async def _connect(self, remote: Pipe) -> TlsFailure | None:
        loop = asyncio.get_running_loop()
        host, port = self.upstream.host, self.upstream.port
        attempt = self._attempt()
        try:
            async with asyncio.timeout(self._timeout):
                await loop.create_connection(lambda: remote, host, port)
        except (OSError, TimeoutError, UnicodeError) as exc:
            return classify_connect(exc, attempt)
        if remote.transport is None:
            return classify_connect(ConnectionResetError("closed at once"), attempt)
        self._open_pipes.add(remote)
        try:
            async with asyncio.timeout(self._timeout):
                tls = await loop.start_tls(
                    remote.transport,
                    remote,
                    self._context,
                    server_hostname=host,
                    ssl_handshake_timeout=self._timeout + 1,  # ours fires first: one clear reason
                    ssl_shutdown_timeout=SHUTDOWN_SECONDS,
                )
        except (OSError, ssl.SSLError, TimeoutError, EOFError) as exc:
            return classify_handshake(exc, attempt)
        if tls is None:
            return classify_handshake(ssl.SSLEOFError("closed during the handshake"), attempt)
        remote.transport = tls
        if remote.received_early:
            # Bytes that came before the handshake are not the broker's TLS-protected words: never relay them.
            return classify_handshake(ssl.SSLError("WRONG_VERSION_NUMBER: plain bytes before TLS"), attempt)
        return None

    def _connected(self, remote: Pipe, seconds: float) -> None:
        transport = remote.transport
        if transport is None:
            return
        kind = self._kind
        self._metrics.tls_connections.labels(kind).inc()
        self._metrics.tls_handshake_seconds.labels(kind).observe(seconds)
        self._metrics.tls_connected.labels(kind).set(1)
        version = transport.get_extra_info("ssl_object")
        cipher = transport.get_extra_info("cipher")
        expires = _expiry(transport.get_extra_info("peercert"))
        if expires is not None:
            self._metrics.tls_certificate_expiry.labels(kind).set(expires)
        log.info(
            "%s: TLS to %s up in %.0f ms (%s, %s)",
            kind,
            self.upstream.where,
            seconds * 1000,
            version.version() if version is not None else "?",
            cipher[0] if cipher else "?",
        )
        if expires is not None and expires - time.time() < EXPIRY_WARNING_DAYS * 86400:
            log.warning(
                "%s: the server certificate of %s expires %s; tell the broker",
                kind,
                self.upstream.host,
                time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(expires)),
            )
        if self._backoff.failures:
            failures = self._backoff.failures
            log.info(
                "%s: TLS to %s works again after %d failed attempts", kind, self.upstream.where, failures
            )
        self._backoff.succeeded()
        self._reported.clear()

    def _failed(self, failure: TlsFailure, started: float) -> None:
        self._metrics.tls_failures.labels(self._kind, failure.reason).inc()
        delay = self._backoff.failed(started)
        text = failure.describe(self.upstream.where)
        if failure.reason in self._reported:
            log.debug("%s: %s (again, %d in a row)", self._kind, text, self._backoff.failures)
            return
        self._reported.add(failure.reason)
        log.error("%s: %s; no plain-text fallback, next attempt in %.0fs or later", self._kind, text, delay)
        self._report(self.upstream.session, text)

    def _local_lost(self, local: Pipe, exc: Exception | None) -> None:
        self._open_pipes.discard(local)

    def _remote_lost(self, remote: Pipe, exc: Exception | None) -> None:
        self._open_pipes.discard(remote)
        if remote is not self._remote:
            return  # a connection that never got joined (failed handshake)
        self._metrics.tls_connected.labels(self._kind).set(0)
        if not self._stopping:
            log.info(
                "%s: TLS connection to %s closed%s",
                self._kind,
                self.upstream.where,
                f" ({exc})" if exc else "",
            )


def _expiry(peercert: object) -> float | None:
    if isinstance(peercert, dict) and isinstance(peercert.get("notAfter"), str):
        return float(ssl.cert_time_to_seconds(peercert["notAfter"]))
    return None


class TlsForwarders:
    """The forwarders of one account, relaying on a thread of their own."""

    @classmethod
    def for_account(cls, account: AccountConfig, metrics: Metrics, report: Report) -> TlsForwarders:
        """A forwarder for each session with TLS on (none when both are plain)."""
        kinds = [kind for kind in SessionKind if account.tls(kind)]
        for kind in SessionKind:
            if account.tls_explicitly_off(kind) and not is_loopback(account.host):
                log.warning(
                    "%s: TLS is off toward %s: the Logon carries the password in plain text; set "
                    "account.%s_tls: true (port %d) unless this line is private",
                    kind.value,
                    account.endpoint(kind),
                    kind.value.lower(),
                    TLS_PORTS[kind],
                )
        if not kinds:
            return cls([])
        context = client_context(account.tls_ca_file)
        forwarders: list[SessionForwarder] = []
        try:
            for kind in kinds:
                forwarders.append(
                    SessionForwarder(
                        Upstream(kind, account.host, account.port(kind), account.tls_ca_file),
                        context,
                        timeout=account.tls_timeout_seconds,
                        backoff=Backoff(account.reconnect_seconds, account.tls_retry_max_seconds),
                        metrics=metrics,
                        report=report,
                    )
                )
        except OSError:
            for forwarder in forwarders:
                forwarder.release()
            raise
        return cls(forwarders)

    def __init__(self, forwarders: list[SessionForwarder]) -> None:
        self._forwarders = {forwarder.upstream.session: forwarder for forwarder in forwarders}
        self._thread = LoopThread("fix-tls")

    def __contains__(self, kind: SessionKind) -> bool:
        return kind in self._forwarders

    def local_port(self, kind: SessionKind) -> int:
        return self._forwarders[kind].local_port

    def upstream(self, kind: SessionKind) -> Upstream:
        return self._forwarders[kind].upstream

    def start(self) -> None:
        if not self._forwarders or self._thread.running:
            return
        self._thread.start()
        self._thread.call(self._serve())

    async def _serve(self) -> None:
        for forwarder in self._forwarders.values():
            await forwarder.serve()

    def stop(self) -> None:
        """Close the listeners and every connection (with TLS close_notify), then end the thread."""
        if self._thread.running:
            self._thread.call(self._close())
            self._thread.stop()
        else:
            for forwarder in self._forwarders.values():
                forwarder.release()

    async def _close(self) -> None:
        for forwarder in self._forwarders.values():
            await forwarder.close()

"""The TLS forwarder: what QuickFIX writes to it on loopback reaches the broker only inside verified TLS.

Each test plays the broker with a real TLS server on loopback (or a server that misbehaves) and the
QuickFIX side with a plain socket, the way the engine connects to the forwarder.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fixadapter.config import AccountConfig
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.errors import ConfigError
from fixadapter.metrics import Metrics
from fixadapter.tls.certs import Issued, issue_server, make_ca
from fixadapter.tls.forwarder import Backoff, SessionForwarder, TlsForwarders, Upstream, client_context
from fixadapter.tls.loop_thread import LoopThread

SECRET = b"554=not-for-the-wire\x01"
LOGON = b"8=FIX.4.4\x019=20\x0135=A\x01" + SECRET + b"10=000\x01"
TIMEOUT = 5.0  # generous: a loaded CI machine must never turn a slow handshake into a failure
SHORT_TIMEOUT = 0.5  # for the servers that never answer


@pytest.fixture(scope="module")
def ca() -> Issued:
    return make_ca("test broker CA")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory, ca: Issued) -> Callable[..., tuple[Path, Path]]:
    """Write a server certificate signed by `ca` (or `by`) and return (cert, key) files."""
    directory = tmp_path_factory.mktemp("certs")
    count = iter(range(1000))

    def make(
        names: tuple[str, ...] = ("localhost", "127.0.0.1"), by: Issued | None = None, **dates: datetime
    ):
        number = next(count)
        issued = issue_server(by or ca, names, **dates)
        cert, key = directory / f"server-{number}.pem", directory / f"server-{number}-key.pem"
        issued.write(cert, key)
        return cert, key

    return make


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory, ca: Issued) -> Path:
    path = tmp_path_factory.mktemp("pin") / "ca.pem"
    path.write_bytes(ca.cert_pem)
    return path


class Broker:
    """A TLS server that records what it decrypts, answers each chunk with `ack`, and can drop clients."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.server_names: list[str | None] = []
        self.context.sni_callback = lambda _sock, name, _ctx: self.server_names.append(name)
        self.received = bytearray()
        self.handshakes = 0
        self.writers: list[asyncio.StreamWriter] = []
        self._thread = LoopThread("test-broker")
        self.port = 0

    def __enter__(self) -> Broker:
        self._thread.start()
        self.port = self._thread.call(self._serve())
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.call(self._close())
        self._thread.stop()

    async def _serve(self) -> int:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0, ssl=self.context)
        return int(self._server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1
        self.writers.append(writer)
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                self.received += data
                writer.write(b"ack:" + data)
        writer.close()

    def drop(self) -> None:
        async def drop() -> None:
            for writer in self.writers:
                writer.transport.abort()
            self.writers.clear()

        self._thread.call(drop())

    async def _close(self) -> None:
        self._server.close()
        for writer in self.writers:
            writer.transport.abort()


class TcpServer:
    """A loopback TCP server on a thread; `handle` gets each accepted connection."""

    def __init__(self) -> None:
        self.accepted = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                self.accepted += 1
                self._sockets.append(client)
                self.handle(client)

    def handle(self, client: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            # shutdown first: close() alone leaves the connection up while a pump thread still blocks in
            # recv() on it, so the broker's side of a refused handshake never learns it ended and its
            # transport is left closing, warning later as unclosed (a flake under load).
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class Wire(TcpServer):
    """A TCP hop that records every byte the forwarder puts on the wire toward the broker."""

    def __init__(self, upstream_port: int) -> None:
        self.bytes = bytearray()
        self._upstream = upstream_port
        super().__init__()

    def handle(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self._upstream))
        self._sockets.append(upstream)
        threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, record: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if record:
                    self.bytes += data
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


class Silent(TcpServer):
    """Accepts TCP and then says nothing (or `reply` once it hears anything): not a TLS server."""

    def __init__(self, reply: bytes | None = None) -> None:
        self._reply = reply
        super().__init__()

    def handle(self, client: socket.socket) -> None:
        if self._reply is not None:
            client.recv(65536)
            client.sendall(self._reply)


class Reports:
    def __init__(self) -> None:
        self.texts: list[tuple[SessionKind, str]] = []

    def __call__(self, kind: SessionKind, text: str) -> None:
        self.texts.append((kind, text))


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def reports() -> Reports:
    return Reports()


@pytest.fixture
def forward(metrics: Metrics, reports: Reports) -> Iterator[Callable[..., TlsForwarders]]:
    started: list[TlsForwarders] = []

    def make(
        port: int,
        host: str = "127.0.0.1",
        ca_file: Path | None = None,
        backoff: Backoff | None = None,
        timeout: float = TIMEOUT,
    ) -> TlsForwarders:
        forwarder = SessionForwarder(
            Upstream(SessionKind.TRADE, host, port, ca_file),
            client_context(ca_file),
            timeout=timeout,
            backoff=backoff or Backoff(0.01, 0.01),
            metrics=metrics,
            report=reports,
        )
        forwarders = TlsForwarders([forwarder])
        forwarders.start()
        started.append(forwarders)
        return forwarders

    yield make
    for forwarders in started:
        forwarders.stop()
    gc.collect()  # a transport left open by stop() warns here (warnings are errors), not in a later test


def connect(forwarders: TlsForwarders) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", forwarders.local_port(SessionKind.TRADE)), timeout=5)
    sock.settimeout(5)
    return sock


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def refused(forwarders: TlsForwarders) -> bool:
    """QuickFIX connects and writes its Logon; True when the forwarder closes the connection on it."""
    with connect(forwarders) as quickfix:
        quickfix.sendall(LOGON)
        return closed_by_peer(quickfix)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.value(name, {"session": "TRADE", **labels}) or 0.0


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


# -- relaying over verified TLS ------------------------------------------------------------------


def test_bytes_cross_in_both_directions_and_only_encrypted_on_the_wire(
    certs: Callable[..., tuple[Path, Path]],
    ca_file: Path,
    forward: Callable[..., TlsForwarders],
    metrics: Metrics,
) -> None:
    with Broker(*certs()) as broker:
        wire = Wire(broker.port)
        try:
            with connect(forward(wire.port, ca_file=ca_file)) as quickfix:
                quickfix.sendall(LOGON)
                assert read_until(quickfix, b"10=000\x01") == b"ack:" + LOGON
            wait_for(lambda: bytes(broker.received) == LOGON)
            assert SECRET not in wire.bytes and len(wire.bytes) > len(LOGON)
        finally:
            wire.close()
    assert sample(metrics, "fixadapter_tls_connections_total") == 1
    assert sample(metrics, "fixadapter_tls_certificate_expiry_timestamp_seconds") > time.time()


def test_the_host_name_is_sent_as_sni_and_verified(
    certs: Callable[..., tuple[Path, Path]], ca_file: Path, forward: Callable[..., TlsForwarders]
) -> None:
    with Broker(*certs(names=("localhost",))) as broker:
        with connect(forward(broker.port, host="localhost", ca_file=ca_file)) as quickfix:
            quickfix.sendall(LOGON)
            read_until(quickfix, b"10=000\x01")
        assert broker.server_names == ["localhost"]


def test_the_logon_written_before_the_handshake_ends_is_delivered_first(
    certs: Callable[..., tuple[Path, Path]], ca_file: Path, forward: Callable[..., TlsForwarders]
) -> None:
    """QuickFIX writes its Logon the moment loopback connects; TLS is not up yet then."""
    with Broker(*certs()) as broker:
        with connect(forward(broker.port, ca_file=ca_file)) as quickfix:
            quickfix.sendall(LOGON + b"second\x01")
            read_until(quickfix, b"second\x01")
        assert bytes(broker.received).startswith(LOGON + b"second")


def test_the_client_context_verifies_the_chain_and_the_name_and_offers_tls_1_2_or_newer(
    ca_file: Path,
) -> None:
    for context in (client_context(ca_file), client_context(None)):
        assert context.verify_mode is ssl.CERT_REQUIRED
        assert context.check_hostname is True
        assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert len(client_context(ca_file).get_ca_certs()) == 1  # pinned: only the given CA


def test_a_ca_file_that_is_not_pem_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"account\.tls_ca_file .*PEM"):
        client_context(bad)


# -- failures: refused, reported once, never plain text -----------------------------------------


def test_a_certificate_from_an_unknown_ca_is_refused_and_nothing_is_sent_in_plain_text(
    certs: Callable[..., tuple[Path, Path]],
    forward: Callable[..., TlsForwarders],
    metrics: Metrics,
    reports: Reports,
    tmp_path: Path,
) -> None:
    other = tmp_path / "other-ca.pem"
    other.write_bytes(make_ca("somebody else").cert_pem)
    with Broker(*certs()) as broker:
        wire = Wire(broker.port)
        try:
            assert refused(forward(wire.port, ca_file=other))
            assert broker.received == b""
            assert SECRET not in wire.bytes
        finally:
            wire.close()
    assert sample(metrics, "fixadapter_tls_failures_total", reason="unknown_ca") == 1
    (kind, text), *_ = reports.texts
    assert kind is SessionKind.TRADE
    assert f"127.0.0.1:{wire.port}" in text and "unknown ca" in text and "tls_ca_file" in text


def test_a_certificate_for_another_host_name_is_refused(
    certs: Callable[..., tuple[Path, Path]],
    ca_file: Path,
    forward: Callable[..., TlsForwarders],
    metrics: Metrics,
    reports: Reports,
) -> None:
    with Broker(*certs(names=("broker.invalid",))) as broker:
        assert refused(forward(broker.port, ca_file=ca_file))
        assert broker.received == b""
    assert sample(metrics, "fixadapter_tls_failures_total", reason="wrong_hostname") == 1
    assert "wrong hostname" in reports.texts[0][1] and "'127.0.0.1'" in reports.texts[0][1]


def test_an_expired_certificate_is_refused(
    certs: Callable[..., tuple[Path, Path]],
    ca_file: Path,
    forward: Callable[..., TlsForwarders],
    metrics: Metrics,
    reports: Reports,
) -> None:
    past = datetime.now(UTC) - timedelta(days=30)
    with Broker(*certs(not_before=past - timedelta(days=365), not_after=past)) as broker:
        assert refused(forward(broker.port, ca_file=ca_file))
    assert sample(metrics, "fixadapter_tls_failures_total", reason="expired_certificate") == 1
    assert "expired" in reports.texts[0][1]


def test_a_server_that_never_answers_the_handshake_times_out(
    forward: Callable[..., TlsForwarders], metrics: Metrics, reports: Reports
) -> None:
    silent = Silent()
    try:
        with connect(forward(silent.port, timeout=SHORT_TIMEOUT)) as quickfix:
            quickfix.sendall(LOGON)
            started = time.monotonic()
            assert closed_by_peer(quickfix)
            assert time.monotonic() - started < SHORT_TIMEOUT + 2
    finally:
        silent.close()
    assert sample(metrics, "fixadapter_tls_failures_total", reason="handshake_timeout") == 1
    assert "5211" in reports.texts[0][1]


def test_a_plain_text_port_is_named_as_such(
    forward: Callable[..., TlsForwarders], metrics: Metrics, reports: Reports
) -> None:
    plain = Silent(reply=b"8=FIX.4.4\x019=5\x0135=5\x0110=000\x01")
    try:
        assert refused(forward(plain.port))
    finally:
        plain.close()
    assert sample(metrics, "fixadapter_tls_failures_total", reason="not_tls") == 1
    assert "5201/5202 are plain text" in reports.texts[0][1]


def test_an_unreachable_broker_is_a_connect_failure_with_host_and_port(
    forward: Callable[..., TlsForwarders], metrics: Metrics, reports: Reports
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = int(probe.getsockname()[1])  # closed again below: nothing listens there
    assert refused(forward(port))
    assert sample(metrics, "fixadapter_tls_failures_total", reason="connect_failed") == 1
    assert f"127.0.0.1:{port}" in reports.texts[0][1]


def test_the_same_failure_is_reported_once_and_counted_every_time(
    forward: Callable[..., TlsForwarders],
    metrics: Metrics,
    reports: Reports,
    caplog: pytest.LogCaptureFixture,
) -> None:
    silent = Silent()
    caplog.set_level(logging.ERROR, logger="fixadapter.tls")
    try:
        forwarders = forward(silent.port, timeout=SHORT_TIMEOUT)
        for _ in range(3):
            assert refused(forwarders)
            time.sleep(0.02)  # past the (test-sized) backoff
    finally:
        silent.close()
    assert sample(metrics, "fixadapter_tls_failures_total", reason="handshake_timeout") == 3
    assert len(reports.texts) == 1
    assert len([r for r in caplog.records if "handshake timeout" in r.getMessage()]) == 1


def test_attempts_inside_the_backoff_are_closed_without_touching_the_broker(
    forward: Callable[..., TlsForwarders],
) -> None:
    silent = Silent()
    try:
        forwarders = forward(silent.port, backoff=Backoff(30.0, 60.0), timeout=SHORT_TIMEOUT)
        assert refused(forwarders)
        assert refused(forwarders)
        assert silent.accepted == 1
    finally:
        silent.close()


def test_backoff_doubles_up_to_its_maximum_and_resets_on_success() -> None:
    now = [100.0]
    backoff = Backoff(1.0, 5.0, clock=lambda: now[0])
    assert [backoff.failed() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff.remaining() == 4.0  # a second of slack: QuickFIX's retry lands just after, not before
    now[0] += 4.0
    assert backoff.remaining() == 0.0
    backoff.succeeded()
    assert (backoff.failures, backoff.failed()) == (0, 1.0)


def test_backoff_counts_from_the_start_of_the_failed_attempt() -> None:
    now = [100.0]
    backoff = Backoff(5.0, 60.0, clock=lambda: now[0])
    backoff.failed(started=96.0)  # a 4 s handshake timeout that began at 96
    assert backoff.remaining() == 0.0  # QuickFIX's retry at 101 (96 + 5) goes through
    backoff.failed(started=101.0)
    now[0] = 106.0
    assert backoff.remaining() == 4.0  # 101 + 10 - 1: the retry at 106 waits, the one at 111 goes


def test_a_malformed_host_name_is_a_dns_failure_and_the_next_connection_is_tried_again(
    forward: Callable[..., TlsForwarders],
    metrics: Metrics,
    reports: Reports,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="fixadapter.tls")
    forwarders = forward(5212, host="broker..example.com")
    for _ in range(2):
        assert refused(forwarders)
        time.sleep(0.02)
    assert sample(metrics, "fixadapter_tls_failures_total", reason="dns") == 2
    assert "broker..example.com" in reports.texts[0][1]
    assert not [r for r in caplog.records if "second local connection" in r.getMessage()]


def test_each_kind_of_failure_is_reported_once_even_when_they_alternate(
    forward: Callable[..., TlsForwarders], metrics: Metrics, reports: Reports
) -> None:
    """A flaky line alternating between two failures must not log (and tell the engine) every attempt."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with contextlib.suppress(OSError):
            for number in range(4):
                client, _ = listener.accept()
                with client:
                    client.recv(65536)  # the ClientHello
                    if number % 2:
                        client.sendall(b"8=FIX.4.4\x019=5\x0135=5\x0110=000\x01")  # plain text: not_tls
                    # else: closed without a word: handshake_closed

    threading.Thread(target=serve, daemon=True).start()
    try:
        forwarders = forward(int(listener.getsockname()[1]))
        for _ in range(4):
            assert refused(forwarders)
            time.sleep(0.02)
    finally:
        listener.close()
    assert sample(metrics, "fixadapter_tls_failures_total", reason="not_tls") == 2
    assert sample(metrics, "fixadapter_tls_failures_total", reason="handshake_closed") == 2
    assert len(reports.texts) == 2


# -- lifetime ------------------------------------------------------------------------------------


def test_a_broker_side_disconnect_closes_the_loopback_side_and_the_next_connection_gets_new_tls(
    certs: Callable[..., tuple[Path, Path]],
    ca_file: Path,
    forward: Callable[..., TlsForwarders],
    metrics: Metrics,
) -> None:
    with Broker(*certs()) as broker:
        forwarders = forward(broker.port, ca_file=ca_file)
        with connect(forwarders) as quickfix:
            quickfix.sendall(LOGON)
            read_until(quickfix, b"10=000\x01")
            broker.drop()
            assert closed_by_peer(quickfix)
        wait_for(lambda: sample(metrics, "fixadapter_tls_connected") == 0)
        with connect(forwarders) as quickfix:
            quickfix.sendall(LOGON)
            assert read_until(quickfix, b"10=000\x01") == b"ack:" + LOGON
        assert broker.handshakes == 2
    assert sample(metrics, "fixadapter_tls_connections_total") == 2


def test_closing_the_loopback_side_closes_the_tls_connection(
    certs: Callable[..., tuple[Path, Path]],
    ca_file: Path,
    forward: Callable[..., TlsForwarders],
    metrics: Metrics,
) -> None:
    with Broker(*certs()) as broker:
        with connect(forward(broker.port, ca_file=ca_file)) as quickfix:
            quickfix.sendall(LOGON)
            read_until(quickfix, b"10=000\x01")
        wait_for(lambda: sample(metrics, "fixadapter_tls_connected") == 0)


def test_a_second_local_connection_is_refused_while_the_first_is_open(
    certs: Callable[..., tuple[Path, Path]], ca_file: Path, forward: Callable[..., TlsForwarders]
) -> None:
    with Broker(*certs()) as broker:
        forwarders = forward(broker.port, ca_file=ca_file)
        with connect(forwarders) as quickfix:
            quickfix.sendall(LOGON)
            read_until(quickfix, b"10=000\x01")
            with connect(forwarders) as intruder:
                assert closed_by_peer(intruder)
            quickfix.sendall(b"still here\x01")
            assert read_until(quickfix, b"here\x01") == b"ack:still here\x01"
        assert broker.handshakes == 1


def test_stop_closes_the_listener_and_open_connections(
    certs: Callable[..., tuple[Path, Path]], ca_file: Path, forward: Callable[..., TlsForwarders]
) -> None:
    with Broker(*certs()) as broker:
        forwarders = forward(broker.port, ca_file=ca_file)
        port = forwarders.local_port(SessionKind.TRADE)
        with connect(forwarders) as quickfix:
            quickfix.sendall(LOGON)
            read_until(quickfix, b"10=000\x01")
            forwarders.stop()
            assert closed_by_peer(quickfix)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_stop_in_the_middle_of_a_handshake_leaves_nothing_open(forward: Callable[..., TlsForwarders]) -> None:
    silent = Silent()
    try:
        forwarders = forward(silent.port)
        with connect(forwarders) as quickfix:
            quickfix.sendall(LOGON)
            wait_for(lambda: silent.accepted == 1)
            forwarders.stop()
            assert closed_by_peer(quickfix)
    finally:
        silent.close()


class MuteBroker(TcpServer):
    """Completes the TLS handshake, then never reads again: its close_notify answer never comes."""

    def __init__(self, cert: Path, key: Path) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert, key)
        self.wrapped: list[ssl.SSLSocket] = []
        super().__init__()

    def handle(self, client: socket.socket) -> None:
        self.wrapped.append(self._context.wrap_socket(client, server_side=True))

    def close(self) -> None:
        super().close()
        for sock in self.wrapped:
            sock.close()


def test_stop_right_after_quickfix_hangs_up_leaves_no_socket_behind_a_broker_that_never_answers(
    certs: Callable[..., tuple[Path, Path]],
    ca_file: Path,
    forward: Callable[..., TlsForwarders],
    metrics: Metrics,
) -> None:
    broker = MuteBroker(*certs())
    try:
        forwarders = forward(broker.port, ca_file=ca_file)
        with connect(forwarders) as quickfix:
            quickfix.sendall(LOGON)
            wait_for(lambda: sample(metrics, "fixadapter_tls_connected") == 1)
        time.sleep(0.05)  # the forwarder has begun the TLS shutdown the broker will not answer
        started = time.monotonic()
        forwarders.stop()
        assert time.monotonic() - started < 3
    finally:
        broker.close()


# -- which sessions get a forwarder --------------------------------------------------------------


def account_config(**values: object) -> AccountConfig:
    base: dict[str, object] = {
        "host": "h51.p.ctrader.com",
        "sender_comp_id": "demo.broker.1",
        "username": "1",
        "password": "unused",
    }
    return AccountConfig.model_validate({**base, **values})


def test_every_session_to_a_remote_host_gets_a_forwarder_by_default(
    metrics: Metrics, reports: Reports
) -> None:
    forwarders = TlsForwarders.for_account(account_config(), metrics, reports)
    try:
        assert [kind in forwarders for kind in SessionKind] == [True, True]
        assert forwarders.upstream(SessionKind.TRADE) == Upstream(
            SessionKind.TRADE, "h51.p.ctrader.com", 5212
        )
    finally:
        forwarders.stop()


def test_plain_text_to_a_remote_host_is_allowed_only_explicitly_and_warned_about_at_start(
    metrics: Metrics, reports: Reports, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="fixadapter.tls")
    forwarders = TlsForwarders.for_account(account_config(quote_tls=False), metrics, reports)
    try:
        assert SessionKind.QUOTE not in forwarders and SessionKind.TRADE in forwarders
    finally:
        forwarders.stop()
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "fixadapter.tls"]
    assert "QUOTE: TLS is off toward h51.p.ctrader.com:5201" in warning and "password" in warning


def test_loopback_sessions_need_no_forwarder_and_no_warning(
    metrics: Metrics, reports: Reports, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="fixadapter.tls")
    forwarders = TlsForwarders.for_account(
        account_config(host="127.0.0.1", trade_tls=False), metrics, reports
    )
    assert [kind in forwarders for kind in SessionKind] == [False, False]
    assert caplog.records == []

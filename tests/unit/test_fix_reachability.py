"""Why QuickFIX cannot connect, in words (QuickFIX itself only says "Connection failed")."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.connectors.fix.reachability import Reachability, probe

CONNECTING = "Connecting to broker.example on port 5212 (Source :0) ReconnectInterval=5"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_probe_says_connection_refused_for_a_port_nobody_listens_on() -> None:
    assert probe("127.0.0.1", closed_port(), 2.0) == "connection refused (nothing listens there)"


def test_the_probe_says_the_host_name_does_not_resolve() -> None:
    cause = probe("no-such-host.invalid", 5201, 2.0)
    assert cause is not None and cause.startswith("the host name does not resolve")


def test_the_probe_says_nothing_when_the_port_answers() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert probe("127.0.0.1", server.getsockname()[1], 2.0) is None


def wait_for(condition: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not callable(condition) or not condition():
        if time.monotonic() > deadline:
            pytest.fail("not reported in time")
        time.sleep(0.01)


def test_a_failed_attempt_is_explained_once_with_host_port_and_what_to_check(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("WARNING", logger="fixadapter.fix")
    reports: list[tuple[SessionKind, str]] = []
    lock = threading.Lock()

    def report(kind: SessionKind, text: str) -> None:
        with lock:
            reports.append((kind, text))

    watch = Reachability(
        report, prober=lambda host, port, timeout: "connection refused (nothing listens there)"
    )
    for _ in range(3):  # QuickFIX retries every ReconnectInterval
        watch.event(SessionKind.TRADE, CONNECTING)
        watch.event(None, "Connection failed")
        wait_for(lambda: bool(reports))
        time.sleep(0.05)

    expected = (
        "cannot connect to broker.example:5212: connection refused (nothing listens there); check "
        "account.host and account.trade_port against the broker's FIX credentials form, and that the "
        "server (or `fixadapter simulate`) is running"
    )
    assert reports == [(SessionKind.TRADE, expected)]
    assert [r.getMessage() for r in caplog.records] == [f"TRADE: {expected}; retrying"]
    assert watch.last_cause(SessionKind.TRADE) == expected

    watch.connected(SessionKind.TRADE)  # after a logon, a new failure is told again
    watch.event(SessionKind.TRADE, CONNECTING)
    watch.event(SessionKind.TRADE, CONNECTING)
    wait_for(lambda: len(reports) == 2)


def test_an_attempt_that_connects_is_never_probed() -> None:
    probed: list[int] = []

    def prober(host: str, port: int, timeout: float) -> str | None:
        probed.append(port)
        return "connection refused (nothing listens there)"

    watch = Reachability(lambda kind, text: None, prober=prober)
    watch.event(SessionKind.QUOTE, "Connecting to 127.0.0.1 on port 5201 (Source :0) ReconnectInterval=5")
    watch.event(SessionKind.QUOTE, "Connection succeeded")
    watch.event(None, "Connection failed")  # another session's
    watch.event(SessionKind.QUOTE, "Connecting to 127.0.0.1 on port 5201 (Source :0) ReconnectInterval=5")
    time.sleep(0.1)
    assert probed == []


def test_a_retry_after_a_connection_that_carried_our_logon_is_never_probed() -> None:
    """QuickFIX 1.16 says "Connection succeeded" in the engine's log, naming no session: the session's
    "Initiated logon request" is what tells its connection was up (a refused logon's retry is no failure)."""
    probed: list[int] = []

    def prober(host: str, port: int, timeout: float) -> str | None:
        probed.append(port)
        return None

    watch = Reachability(lambda kind, text: None, prober=prober)
    for _ in range(3):  # the venue refuses the logon, the session retries
        watch.event(SessionKind.TRADE, CONNECTING)
        watch.event(None, "Connection succeeded")
        watch.event(SessionKind.TRADE, "Initiated logon request")
        watch.event(SessionKind.TRADE, "Received logout request")
        watch.event(SessionKind.TRADE, "Disconnecting")
    time.sleep(0.1)
    assert probed == []


def test_a_session_behind_the_tls_forwarder_is_never_probed() -> None:
    """A probe of the forwarder's loopback port would be relayed to the broker in place of QuickFIX's own
    connection (the forwarder relays one at a time), which the forwarder then refuses."""
    probed: list[int] = []

    def prober(host: str, port: int, timeout: float) -> str | None:
        probed.append(port)
        return "connection refused (nothing listens there)"

    watch = Reachability(lambda kind, text: None, sessions=[SessionKind.QUOTE], prober=prober)
    forwarder = "Connecting to 127.0.0.1 on port 40001 (Source :0) ReconnectInterval=1"
    for _ in range(3):
        watch.event(SessionKind.TRADE, forwarder)
        watch.event(None, "Connection failed")
    time.sleep(0.1)
    assert probed == []
    assert watch.last_cause(SessionKind.TRADE) is None

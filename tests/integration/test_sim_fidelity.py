"""The simulator answers as cTrader does where clients notice (issue 13, item 20): the TargetCompID's case
is echoed, a logon on the wrong port is answered with the qualifier the client asked for, every TRADE
connection of the account gets a copy of every report, and volumes a real server refuses are refused."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest

from fixadapter.api import Adapter
from fixadapter.connectors.fix.wire import SOH, Fields
from fixadapter.model.enums import OrderStatus
from fixadapter.model.requests import NewOrder
from fixadapter.sim.process import SimAccountCredentials, SimProcess

from .conftest import ConfigFactory

WAIT_SECONDS = 15.0


def frame(fields: list[tuple[int, str]]) -> bytes:
    """A FIX 4.4 message with its BodyLength and CheckSum."""
    body = "".join(f"{tag}={value}{SOH}" for tag, value in fields)
    head = f"8=FIX.4.4{SOH}9={len(body.encode())}{SOH}"
    checksum = sum((head + body).encode()) % 256
    return f"{head}{body}10={checksum:03d}{SOH}".encode()


class RawSession:
    """A FIX connection by hand (no QuickFIX), to see exactly what the server sends, as `account`."""

    def __init__(
        self, sock: socket.socket, account: SimAccountCredentials, target: str, qualifier: str
    ) -> None:
        self._sock = sock
        self.account = account
        self._target = target
        self._qualifier = qualifier
        self._seq = 0
        self._buffer = b""

    def send(self, msg_type: str, body: list[tuple[int, str]], target_sub_id: str | None = None) -> None:
        self._seq += 1
        now = datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]
        header = [(35, msg_type), (49, self.account.sender_comp_id), (56, self._target), (34, str(self._seq))]
        header += [(52, now), (50, self._qualifier), (57, target_sub_id or self._qualifier)]
        self._sock.sendall(frame(header + body))

    def logon(
        self, password: str | None = None, target_sub_id: str | None = None, username: str | None = None
    ) -> None:
        """A Logon with the account's login and password unless others are given."""
        login = username if username is not None else self.account.username
        secret = password if password is not None else self.account.password
        body = [(98, "0"), (108, "30"), (141, "Y"), (553, login), (554, secret)]
        self.send("A", body, target_sub_id)

    def receive(self) -> Fields:
        """The next whole message (blocking, with the socket's timeout)."""
        while True:
            end = self._buffer.find(f"{SOH}10=".encode())
            if end >= 0 and self._buffer.find(SOH.encode(), end + 1) >= 0:
                stop = self._buffer.find(SOH.encode(), end + 1) + 1
                raw, self._buffer = self._buffer[:stop], self._buffer[stop:]
                return Fields.parse(raw.decode())
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self._buffer += chunk

    def receive_until(self, wanted: str) -> Fields:
        while True:
            fields = self.receive()
            if fields.get(35) == wanted:
                return fields


@contextmanager
def raw_session(
    sim: SimProcess,
    port: int,
    target: str = "CSERVER",
    qualifier: str = "TRADE",
    account: SimAccountCredentials | None = None,
) -> Iterator[RawSession]:
    """A connection to `port` as `account` (None: the simulator's first account)."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_SECONDS) as sock:
        yield RawSession(sock, account if account is not None else sim.account(), target, qualifier)


@pytest.mark.parametrize("spelling", ["cServer", "CServer"])
def test_the_server_answers_in_the_target_comp_id_case_the_client_used(
    sim: SimProcess, make_config: ConfigFactory, spelling: str
):
    with raw_session(sim, sim.trade_port, target=spelling) as session:
        session.logon(sim.password)
        logon = session.receive()
    assert (logon.get(35), logon.get(49), logon.get(56)) == ("A", spelling, sim.sender_comp_id)

    async def scenario() -> None:
        async with Adapter(make_config(sim, target_comp_id=spelling)) as adapter:
            await adapter.wait_ready(WAIT_SECONDS)
            order = await adapter.submit(
                NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=10000)
            )
            await adapter.wait_for(order.cl_ord_id, OrderStatus.FILLED, timeout=WAIT_SECONDS)

    asyncio.run(scenario())


def test_a_trade_logon_on_the_quote_port_is_refused_with_the_trade_qualifier_in_the_header(sim: SimProcess):
    with raw_session(sim, sim.quote_port, qualifier="TRADE") as session:
        session.logon(sim.password)
        logout = session.receive()
    assert logout.get(35) == "5"
    assert logout.get(58) == "TargetSubID is assigned with the unexpected value 'TRADE', expected 'QUOTE'"
    assert (logout.get(50), logout.get(57)) == ("TRADE", "TRADE")


def test_a_refused_password_is_answered_with_the_sessions_own_qualifier(sim: SimProcess):
    with raw_session(sim, sim.trade_port) as session:
        session.logon("not-the-password")
        logout = session.receive()
    assert (logout.get(35), logout.get(58)) == ("5", "InternalError: RET_INVALID_DATA")
    assert (logout.get(50), logout.get(57)) == ("TRADE", "TRADE")


def test_a_second_trade_connection_of_the_account_gets_a_copy_of_every_report(
    sim: SimProcess, make_config: ConfigFactory
):
    with raw_session(sim, sim.trade_port) as second:  # the same CompIDs as the adapter's
        second.logon(sim.password)
        assert second.receive().get(35) == "A"

        async def scenario() -> str:
            async with Adapter(make_config(sim)) as adapter:
                await adapter.wait_ready(WAIT_SECONDS)
                order = await adapter.submit(
                    NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=10000)
                )
                await adapter.wait_for(order.cl_ord_id, OrderStatus.FILLED, timeout=WAIT_SECONDS)
                return order.cl_ord_id

        cl_ord_id = asyncio.run(scenario())
        copies: list[str] = []
        while "2" not in copies:
            report = second.receive_until("8")
            if report.get(11) == cl_ord_id:
                copies.append(report.get(39) or "")
    assert copies == ["0", "2"]  # New, then Filled: the same reports the adapter got


@pytest.mark.parametrize(
    ("quantity", "reason"),
    [
        ("1.5", "is less than the minimum volume 1000 of EURUSD"),
        ("1500", "is not a multiple of the volume step 1000 of EURUSD"),
    ],
)
def test_a_volume_a_real_server_refuses_is_rejected_with_its_reason(
    sim: SimProcess, make_config: ConfigFactory, quantity: str, reason: str
):
    async def scenario() -> None:
        async with Adapter(make_config(sim)) as adapter:
            await adapter.wait_ready(WAIT_SECONDS)
            order = await adapter.submit(
                NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=quantity)
            )
            final = await adapter.wait_for(order.cl_ord_id, timeout=WAIT_SECONDS)
            assert final.status is OrderStatus.REJECTED
            assert final.reason == f"TRADING_BAD_VOLUME:Order volume {quantity} {reason}."

    asyncio.run(scenario())
    assert sim.control("/state")["positions"] == []

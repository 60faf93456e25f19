"""The simulator serves several accounts at once, as one cTrader server does (issue 14): each logs on with its
own SenderCompID, login and password, and has its own orders, execution reports, positions and mass status
on the one market; the control port reads one account and logs out one account's session while the others
keep trading. A raw FIX client shows what each account's connections receive, message by message."""

from __future__ import annotations

import asyncio
import time
import urllib.error
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fixadapter.api import Adapter
from fixadapter.connectors.fix.wire import Fields
from fixadapter.model.enums import OrderStatus
from fixadapter.model.requests import NewOrder
from fixadapter.sim.process import SimAccountCredentials, SimProcess, SimulatorFailed

from .conftest import ConfigFactory, SimFactory
from .test_sim_fidelity import WAIT_SECONDS, RawSession, raw_session

ALICE = SimAccountCredentials("alice", "demo.sim.1001", "1001", "alice-secret-1001")
BOB = SimAccountCredentials("bob", "demo.sim.2002", "2002", "bob-secret-2002")
WRONG_PASSWORD = "not-bobs-password"  # noqa: S105 - a test's wrong credential
STRANGER = SimAccountCredentials("stranger", "demo.sim.9999", "9999", "stranger-secret-9999")
EURUSD = "1"


@pytest.fixture
def two(start_sim: SimFactory) -> SimProcess:
    """A simulator serving Alice and Bob (Alice first)."""
    return start_sim(accounts=(ALICE, BOB), extra_args=("--tick-ms", "100"))


def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for a state the simulator reaches on its own (a logon is counted just after it is answered)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_SECONDS:g}s: {what}")
        time.sleep(0.02)


def now() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


class Client:
    """A raw TRADE (or QUOTE) connection of one account that keeps everything it received."""

    def __init__(self, session: RawSession) -> None:
        self.session = session
        self.received: list[Fields] = []

    def logon(self, **options: Any) -> Fields:
        self.session.logon(**options)
        return self.next()

    def next(self) -> Fields:
        fields = self.session.receive()
        self.received.append(fields)
        return fields

    def until(self, wanted: Callable[[Fields], bool]) -> Fields:
        while not wanted(fields := self.next()):
            pass
        return fields

    def order(self, cl_ord_id: str, side: str, quantity: int, price: str | None = None) -> Fields:
        """Send a D (market, or limit at `price`) and return its first report once the order is done or
        resting: the Fill of a market order, the New of a limit."""
        body = [(11, cl_ord_id), (55, EURUSD), (54, side), (60, now()), (38, str(quantity))]
        body += [(40, "1")] if price is None else [(40, "2"), (44, price), (59, "1")]
        self.session.send("D", body)
        final = "2" if price is None else "0"
        return self.until(lambda f: f.get(35) == "8" and f.get(11) == cl_ord_id and f.get(39) == final)

    def mass_status(self, request_id: str) -> list[Fields]:
        self.session.send("AF", [(584, request_id), (585, "7")])
        first = self.until(lambda f: f.get(584) == request_id or f.get(35) == "j")
        reports = [first]
        while first.get(35) == "8" and len(reports) < int(first.get(911) or "0"):
            reports.append(self.until(lambda f: f.get(584) == request_id))
        return reports

    def positions(self, request_id: str) -> list[Fields]:
        self.session.send("AN", [(710, request_id)])
        first = self.until(lambda f: f.get(35) == "AP" and f.get(710) == request_id)
        reports = [first]
        while len(reports) < int(first.get(727) or "0"):
            reports.append(self.until(lambda f: f.get(35) == "AP" and f.get(710) == request_id))
        return reports

    def seen(self, tag: int) -> set[str]:
        """Every value of `tag` in what this connection received."""
        return {value for fields in self.received if (value := fields.get(tag)) is not None}


@pytest.fixture
def connect(two: SimProcess) -> Iterator[Callable[..., Client]]:
    """Open raw connections (closed at teardown): connect(account, kind="TRADE")."""
    with ExitStack() as stack:

        def open_client(account: SimAccountCredentials, kind: str = "TRADE") -> Client:
            port = two.trade_port if kind == "TRADE" else two.quote_port
            session = stack.enter_context(raw_session(two, port, qualifier=kind, account=account))
            return Client(session)

        yield open_client


def logged_on(sim: SimProcess, name: str, kind: str) -> bool:
    return any(a["name"] == name and a["logged_on"][kind] for a in sim.control("/accounts"))


def test_the_simulator_names_each_account_it_serves_and_never_a_password(two: SimProcess):
    assert [(a.name, a.sender_comp_id, a.username) for a in two.served_accounts] == [
        ("alice", "demo.sim.1001", "1001"),
        ("bob", "demo.sim.2002", "2002"),
    ]
    accounts = two.control("/accounts")
    assert [(a["name"], a["sender_comp_id"], a["username"]) for a in accounts] == [
        ("alice", "demo.sim.1001", "1001"),
        ("bob", "demo.sim.2002", "2002"),
    ]
    assert two.log_path is not None
    for secret in (ALICE.password, BOB.password):
        assert secret not in str(accounts)
        assert secret not in two.log_path.read_text()


def test_both_accounts_log_on_at_once_each_with_its_own_login_and_password(
    two: SimProcess, connect: Callable[..., Client]
):
    for account in (ALICE, BOB):
        for kind in ("TRADE", "QUOTE"):
            logon = connect(account, kind).logon()
            assert (logon.get(35), logon.get(56), logon.get(50)) == ("A", account.sender_comp_id, kind)
    for name in ("alice", "bob"):
        for kind in ("TRADE", "QUOTE"):
            until(lambda: logged_on(two, name, kind), f"{name}'s {kind} session logged on")  # noqa: B023
        assert two.control(f"/state?account={name}")["logons"] == 1


def test_a_wrong_password_for_bob_is_refused_while_alice_logs_on_and_trades(
    two: SimProcess, connect: Callable[..., Client]
):
    alice = connect(ALICE)
    assert alice.logon().get(35) == "A"
    wrong_password = connect(BOB).logon(password=WRONG_PASSWORD)
    assert (wrong_password.get(35), wrong_password.get(58)) == ("5", "InternalError: RET_INVALID_DATA")
    alices_login = connect(BOB).logon(username=ALICE.username, password=BOB.password)
    assert (alices_login.get(35), alices_login.get(58)) == ("5", "RET_NO_SUCH_LOGIN")
    alices_password = connect(BOB).logon(password=ALICE.password)
    assert (alices_password.get(35), alices_password.get(58)) == ("5", "InternalError: RET_INVALID_DATA")

    assert alice.order("a-1", "1", 10000).get(39) == "2"
    assert two.control("/state?account=bob")["logons_refused"] == 3
    assert two.control("/state?account=alice")["logons_refused"] == 0
    assert two.control("/state?account=alice")["logons"] == 1
    assert not logged_on(two, "bob", "TRADE")


def test_a_sender_comp_id_no_account_has_is_refused_with_no_such_login(
    two: SimProcess, connect: Callable[..., Client]
):
    stranger = connect(STRANGER)
    logout = stranger.logon()
    assert (logout.get(35), logout.get(58)) == ("5", "RET_NO_SUCH_LOGIN")
    assert (logout.get(49), logout.get(56)) == ("CSERVER", STRANGER.sender_comp_id)
    assert (logout.get(50), logout.get(57)) == ("TRADE", "TRADE")
    with pytest.raises(ConnectionError):
        stranger.next()  # and the connection is closed
    state = two.control("/state")
    assert state["logons_refused_no_such_login"] == 1
    assert (state["logons"], state["logons_refused"]) == (0, 0)


def test_on_the_quote_port_a_wrong_password_is_refused_and_an_unknown_comp_id_gets_no_answer(
    two: SimProcess, connect: Callable[..., Client]
):
    assert connect(ALICE, "QUOTE").logon().get(35) == "A"
    refused = connect(BOB, "QUOTE").logon(password=WRONG_PASSWORD)
    assert (refused.get(35), refused.get(58)) == ("5", "InternalError: RET_INVALID_DATA")
    assert (refused.get(50), refused.get(57)) == ("QUOTE", "QUOTE")
    # The QUOTE port has no front to answer for QuickFIX, which has no session for a stranger: it closes.
    with pytest.raises(ConnectionError):
        connect(STRANGER, "QUOTE").logon()
    until(lambda: logged_on(two, "alice", "QUOTE"), "alice's QUOTE session logged on")


def test_a_simulator_given_an_account_without_its_password_says_which_variable_to_set(tmp_path: Path):
    sim = SimProcess(state_path=tmp_path / "v.db", extra_args=("--account", "carol:demo.sim.3003:3003"))
    with pytest.raises(SimulatorFailed) as failed:
        sim.start()
    assert "exit code 1" in str(failed.value)  # a refused configuration (usage errors are 2)
    assert "account carol: set its password in FIXADAPTER_SIM_PASSWORD_CAROL" in str(failed.value)


def test_orders_reports_positions_and_mass_status_are_kept_apart_per_account(
    two: SimProcess, connect: Callable[..., Client]
):
    alice, bob = connect(ALICE), connect(BOB)
    assert alice.logon().get(35) == bob.logon().get(35) == "A"
    alice_fill = alice.order("a-1", "1", 10000)
    bob_fill = bob.order("b-1", "2", 20000)
    alice_resting = alice.order("a-2", "1", 1000, price="0.90000")
    bob_resting = bob.order("b-2", "2", 3000, price="2.00000")

    alice_status, bob_status = alice.mass_status("ms-a"), bob.mass_status("ms-b")
    assert [(r.get(37), r.get(911)) for r in alice_status] == [(alice_resting.get(37), "1")]
    assert [(r.get(37), r.get(911)) for r in bob_status] == [(bob_resting.get(37), "1")]

    (alice_position,) = alice.positions("pos-a")
    (bob_position,) = bob.positions("pos-b")
    assert alice_position.get(721) == alice_fill.get(721)
    assert (alice_position.get(704), alice_position.get(705)) == ("10000", "0")
    assert bob_position.get(721) == bob_fill.get(721)
    assert (bob_position.get(704), bob_position.get(705)) == ("0", "20000")

    # Nothing of one account ever reached the other's connection; ids are the server's, never shared.
    assert alice.seen(11) == {"a-1", "a-2"} and bob.seen(11) == {"b-1", "b-2"}
    assert alice.seen(37).isdisjoint(bob.seen(37))
    assert alice.seen(721).isdisjoint(bob.seen(721))
    alice_state = two.control("/state?account=alice")
    bob_state = two.control("/state?account=bob")
    assert sorted(o["cl_ord_id"] for o in alice_state["orders"]) == ["a-1", "a-2"]
    assert sorted(o["cl_ord_id"] for o in bob_state["orders"]) == ["b-1", "b-2"]
    assert [(p["side"], p["volume"]) for p in alice_state["positions"]] == [("buy", "10000")]
    assert [(p["side"], p["volume"]) for p in bob_state["positions"]] == [("sell", "20000")]
    assert two.control("/state")["orders"] == alice_state["orders"]  # no account named: the first


def test_every_account_trades_on_the_one_market(two: SimProcess, connect: Callable[..., Client]):
    alice, bob = connect(ALICE), connect(BOB)
    assert alice.logon().get(35) == bob.logon().get(35) == "A"
    two.control("/scenario", {"freeze_prices": True})
    two.control("/quote", {"symbol_id": 1, "bid": "1.10000", "ask": "1.10010"})
    assert Decimal(alice.order("a-1", "1", 1000).get(6) or "") == Decimal("1.10010")
    assert Decimal(bob.order("b-1", "1", 1000).get(6) or "") == Decimal("1.10010")
    # A price that crosses both accounts' resting orders fills each on its own account.
    alice.order("a-2", "1", 1000, price="1.09000")
    bob.order("b-2", "1", 2000, price="1.09000")
    two.control("/quote", {"symbol_id": 1, "bid": "1.08990", "ask": "1.08995"})
    assert alice.until(lambda f: f.get(11) == "a-2" and f.get(39) == "2").get(32) == "1000"
    assert bob.until(lambda f: f.get(11) == "b-2" and f.get(39) == "2").get(32) == "2000"
    assert "a-2" not in bob.seen(11) and "b-2" not in alice.seen(11)


def test_the_control_port_logs_out_one_accounts_session_while_the_other_keeps_trading(
    two: SimProcess, connect: Callable[..., Client]
):
    alice, bob = connect(ALICE), connect(BOB)
    alice_quote, bob_quote = connect(ALICE, "QUOTE"), connect(BOB, "QUOTE")
    for client in (alice, bob, alice_quote, bob_quote):
        assert client.logon().get(35) == "A"
    until(lambda: logged_on(two, "alice", "TRADE") and logged_on(two, "bob", "QUOTE"), "all logged on")

    two.control("/logout", {"session": "TRADE", "account": "alice", "reason": "maintenance"})
    logout = alice.until(lambda f: f.get(35) == "5")
    assert logout.get(58) == "maintenance"
    assert bob.order("b-1", "1", 10000).get(39) == "2"
    assert [f.get(35) for f in bob.received].count("5") == 0

    two.control("/logout", {"session": "QUOTE", "account": "bob", "reason": "maintenance"})
    assert bob_quote.until(lambda f: f.get(35) == "5").get(58) == "maintenance"
    alice_quote.session.send("1", [(112, "still-there")])  # a TestRequest: answered after any Logout
    alice_quote.until(lambda f: f.get(35) == "0" and f.get(112) == "still-there")
    assert [f.get(35) for f in alice_quote.received].count("5") == 0

    with pytest.raises(urllib.error.HTTPError) as unknown:
        two.control("/logout", {"session": "TRADE", "account": "carol"})
    unknown.value.close()  # the error holds the answer's connection
    assert unknown.value.code == 404


def test_each_account_resumes_its_own_orders_after_a_restart(two: SimProcess, connect: Callable[..., Client]):
    alice, bob = connect(ALICE), connect(BOB)
    assert alice.logon().get(35) == bob.logon().get(35) == "A"
    before = {alice.order("a-1", "1", 1000, price="0.90000").get(37)}
    before.add(bob.order("b-1", "2", 1000, price="2.00000").get(37))
    two.kill()
    two.start()
    assert (
        two.state_path is not None and two.state_path.with_name(f"{two.state_path.stem}.bob.sqlite").exists()
    )
    assert [o["cl_ord_id"] for o in two.control("/state?account=alice")["orders"]] == ["a-1"]
    assert [o["cl_ord_id"] for o in two.control("/state?account=bob")["orders"]] == ["b-1"]

    alice, bob = connect(ALICE), connect(BOB)
    assert alice.logon().get(35) == bob.logon().get(35) == "A"
    after = {alice.order("a-3", "1", 1000).get(37), bob.order("b-3", "1", 1000).get(37)}
    assert len(after) == 2 and after.isdisjoint(before)


def test_two_adapters_trade_each_on_its_own_account_and_one_trade_session_cut_leaves_the_other(
    two: SimProcess, make_config: ConfigFactory, tmp_path: Path
):
    configs = {}
    for account in (ALICE, BOB):
        directory = tmp_path / account.name  # each adapter its own store and compliance record beside it
        directory.mkdir()
        store_url = f"sqlite:///{directory / 'adapter.db'}"
        configs[account.name] = make_config(two, store_url, **two.adapter_settings(account=account.name))

    def state(name: str) -> dict[str, Any]:
        return dict(two.control(f"/state?account={name}"))

    async def scenario() -> None:
        async with Adapter(configs["alice"]) as alice, Adapter(configs["bob"]) as bob:
            await asyncio.gather(alice.wait_ready(WAIT_SECONDS), bob.wait_ready(WAIT_SECONDS))
            buy = await alice.submit(
                NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=10000)
            )
            sell = await bob.submit(
                NewOrder(symbol="EURUSD", side="sell", order_type="market", quantity=20000)
            )
            assert (await alice.wait_for(buy.cl_ord_id, timeout=WAIT_SECONDS)).status is OrderStatus.FILLED
            assert (await bob.wait_for(sell.cl_ord_id, timeout=WAIT_SECONDS)).status is OrderStatus.FILLED
            alice_positions = await alice.positions(refresh=True)
            bob_positions = await bob.positions(refresh=True)
            assert [(p.side.value, p.quantity) for p in alice_positions] == [("long", Decimal(10000))]
            assert [(p.side.value, p.quantity) for p in bob_positions] == [("short", Decimal(20000))]

            await asyncio.to_thread(two.control, "/logout", {"session": "TRADE", "account": "alice"})
            more = await bob.submit(
                NewOrder(symbol="EURUSD", side="sell", order_type="market", quantity=1000)
            )
            assert (await bob.wait_for(more.cl_ord_id, timeout=WAIT_SECONDS)).status is OrderStatus.FILLED
            # Alice was logged out and came back (her second logon); Bob's one session never went down.
            async with asyncio.timeout(WAIT_SECONDS):
                while (await asyncio.to_thread(state, "alice"))["logons"] < 2:
                    await asyncio.sleep(0.02)
            await alice.wait_ready(WAIT_SECONDS)
            again = await alice.submit(
                NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=1000)
            )
            assert (await alice.wait_for(again.cl_ord_id, timeout=WAIT_SECONDS)).status is OrderStatus.FILLED
            assert (await asyncio.to_thread(state, "bob"))["logons"] == 1

    asyncio.run(scenario())
    # Each order opened a position of its own (a hedged account), each on its own account.
    assert len(state("alice")["orders"]) == len(state("bob")["orders"]) == 2
    alice_positions = sorted((p["side"], Decimal(p["volume"])) for p in state("alice")["positions"])
    bob_positions = sorted((p["side"], Decimal(p["volume"])) for p in state("bob")["positions"])
    assert alice_positions == [("buy", Decimal(1000)), ("buy", Decimal(10000))]
    assert bob_positions == [("sell", Decimal(1000)), ("sell", Decimal(20000))]

"""The simulator's QUOTE port over real sockets, seen by a minimal raw QuickFIX initiator (no adapter).

The client builds its own depth book from W/X exactly as the reference describes (MDEntryID -> entry,
W replaces, X applies New/Delete in order) and compares it with the simulator's /book while the feed
is paused.

Nothing waits a fixed time for messages to stop coming: what was sent before a point is pinned down by a
barrier on the session (`ClientBooks.barrier`), and "nothing more comes" is shown by a second stream that
does come meanwhile, counted in messages rather than seconds (the CI machine's two cores are shared).
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
import urllib.error
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import quickfix as fix

from fixadapter.connectors.fix import tags as t
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.connectors.fix.wire import Fields
from fixadapter.sim.process import SimProcess

from .conftest import OVER_TLS, raw_fix_port

SOH = "\x01"
EURUSD = "1"
GBPUSD = "2"
UNLISTED = "999"
W_MEMBERS = frozenset({t.MD_ENTRY_TYPE, 299, t.MD_ENTRY_PX, t.MD_ENTRY_SIZE, t.MD_ENTRY_ID})
X_MEMBERS = frozenset(
    {t.MD_UPDATE_ACTION, t.MD_ENTRY_TYPE, t.MD_ENTRY_ID, t.SYMBOL, t.MD_ENTRY_PX, t.MD_ENTRY_SIZE}
)
DICTIONARY_PATH = Path(__file__).resolve().parents[2] / "spec" / "FIX44-CTRADER.xml"
DICTIONARY = fix.DataDictionary(str(DICTIONARY_PATH))
WAIT_SECONDS = 30.0  # a condition ends every wait; this only bounds a broken one
_barriers = itertools.count(1)


class RawQuoteClient(fix.Application):  # type: ignore[misc]
    """A QUOTE initiator that hands every application message to the test as raw text.

    It validates more strictly than the adapter (unknown and user-defined fields refused), so a W or X
    that our dictionary does not accept becomes a session Reject, which the fixture counts.
    """

    def __init__(self, sim: SimProcess) -> None:
        super().__init__()
        self.sim = sim
        self.messages: queue.Queue[str] = queue.Queue()
        self.logons = 0
        self.logouts = 0
        self.session_rejects = 0  # 35=3 this client sent: a W/X our dictionary does not accept
        self.logged_on = threading.Event()
        self.session_id: fix.SessionID | None = None

    def onCreate(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        self.session_id = sessionID

    def onLogon(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        self.logons += 1
        self.logged_on.set()

    def onLogout(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        self.logouts += 1
        self.logged_on.clear()

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        header = message.getHeader()
        header.setField(t.SENDER_SUB_ID, "QUOTE")
        header.setField(t.TARGET_SUB_ID, "QUOTE")
        msg_type = header.getField(t.MSG_TYPE)
        self.session_rejects += msg_type == "3"
        if msg_type == "A":
            message.setField(t.USERNAME, self.sim.username)
            message.setField(t.PASSWORD, self.sim.password)

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        message.getHeader().setField(t.SENDER_SUB_ID, "QUOTE")
        message.getHeader().setField(t.TARGET_SUB_ID, "QUOTE")

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        pass

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        self.messages.put(message.toString())

    def request(
        self, md_req_id: str, symbol: str = EURUSD, depth: str = "0", request_type: str = "1"
    ) -> None:
        text = (
            f"8=FIX.4.4{SOH}9=0{SOH}35=V{SOH}262={md_req_id}{SOH}263={request_type}{SOH}264={depth}{SOH}"
            f"265=1{SOH}267=2{SOH}269=0{SOH}269=1{SOH}146=1{SOH}55={symbol}{SOH}10=000{SOH}"
        )
        assert fix.Session.sendToTarget(fix.Message(text, DICTIONARY, False), self.session_id)


@dataclass
class ClientBooks:
    """Depth books as a client builds them, plus every spot W and reject, in arrival order."""

    depth: dict[str, dict[str, tuple[str, str, str]]] = field(default_factory=dict)
    spots: list[Fields] = field(default_factory=list)
    snapshots: list[Fields] = field(default_factory=list)
    rejects: list[Fields] = field(default_factory=list)
    updates: int = 0
    updates_of: Counter[str] = field(default_factory=Counter)  # X per symbol (55) it touches
    messages_of: Counter[str] = field(default_factory=Counter)  # W and X per symbol

    def apply(self, raw: str) -> str:
        fields = Fields.parse(raw)
        msg_type = fields.require(t.MSG_TYPE)
        if msg_type == "W":
            self.messages_of[fields.require(t.SYMBOL)] += 1
            entries = fields.group(t.NO_MD_ENTRIES, W_MEMBERS)
            if entries and t.MD_ENTRY_ID in entries[0]:
                self.snapshots.append(fields)
                self.depth[fields.require(t.SYMBOL)] = {e.require(t.MD_ENTRY_ID): _entry(e) for e in entries}
            else:
                self.spots.append(fields)
        elif msg_type == "X":
            self.updates += 1
            entries = fields.group(t.NO_MD_ENTRIES, X_MEMBERS)
            for symbol in {entry.require(t.SYMBOL) for entry in entries}:
                self.updates_of[symbol] += 1
                self.messages_of[symbol] += 1
            for entry in entries:
                book = self.depth[entry.require(t.SYMBOL)]
                if entry.require(t.MD_UPDATE_ACTION) == "0":
                    book[entry.require(t.MD_ENTRY_ID)] = _entry(entry)
                else:
                    del book[entry.require(t.MD_ENTRY_ID)]
        elif msg_type == "Y":
            self.rejects.append(fields)
        return msg_type

    def barrier(self, client: RawQuoteClient) -> list[str]:
        """Apply every message the simulator sent before it handles a request sent now; their types.

        The request names a symbol the simulator does not list, so it answers with a Y and subscribes
        nothing. It handles a session's requests in order (so after every earlier request) and sends market
        data under the lock that covers handling a request: its Y follows on the wire every message it sent
        before, and the client reads the wire in order.
        """
        md_req_id = f"barrier-{next(_barriers)}"
        client.request(md_req_id, symbol=UNLISTED)
        deadline = time.monotonic() + WAIT_SECONDS
        seen: list[str] = []
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no answer to the barrier request {md_req_id} within {WAIT_SECONDS}s"
            try:
                raw = client.messages.get(timeout=left)
            except queue.Empty:
                continue
            fields = Fields.parse(raw)
            if fields.require(t.MSG_TYPE) == "Y" and fields.get(t.MD_REQ_ID) == md_req_id:
                return seen
            seen.append(self.apply(raw))

    def wait_for(self, client: RawQuoteClient, msg_type: str, count: int = 1) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        seen = 0
        while seen < count:
            left = deadline - time.monotonic()
            assert left > 0, f"no {msg_type} within {WAIT_SECONDS}s"
            try:
                seen += self.apply(client.messages.get(timeout=left)) == msg_type
            except queue.Empty:
                continue

    def wait_for_spot(self, client: RawQuoteClient, bid: str, ask: str) -> None:
        """Apply messages until a spot W with these prices (a W of an earlier quote may come first)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while not self.spots or _spot_prices(self.spots[-1]) != [("0", bid), ("1", ask)]:
            left = deadline - time.monotonic()
            assert left > 0, f"no spot W {bid}/{ask} within {WAIT_SECONDS}s"
            try:
                self.apply(client.messages.get(timeout=left))
            except queue.Empty:
                continue


def _spot_prices(spot: Fields) -> list[tuple[str, str]]:
    return [
        (e.require(t.MD_ENTRY_TYPE), e.require(t.MD_ENTRY_PX)) for e in spot.group(t.NO_MD_ENTRIES, W_MEMBERS)
    ]


def _entry(fields: Fields) -> tuple[str, str, str]:
    return fields.require(t.MD_ENTRY_TYPE), fields.require(t.MD_ENTRY_PX), fields.require(t.MD_ENTRY_SIZE)


def _settings(sim: SimProcess, port: int) -> fix.SessionSettings:
    text = f"""[DEFAULT]
ConnectionType=initiator
BeginString=FIX.4.4
SenderCompID={sim.sender_comp_id}
TargetCompID=CSERVER
HeartBtInt=30
ReconnectInterval=1
StartTime=00:00:00
EndTime=00:00:00
ResetOnLogon=Y
ResetOnLogout=Y
ResetOnDisconnect=Y
PersistMessages=N
UseDataDictionary=Y
DataDictionary={DICTIONARY_PATH}
AllowUnknownMsgFields=N
ValidateUserDefinedFields=Y
ValidateFieldsOutOfOrder=N
CheckLatency=N
SocketNodelay=Y
[SESSION]
SocketConnectHost=127.0.0.1
SocketConnectPort={port}
"""
    settings = fix.SessionSettings()
    settings.setFromString(text)
    return settings


@pytest.fixture(scope="module")
def quote_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    """One simulator for the module; prices move every 50 ms so books re-centre while streaming."""
    work = tmp_path_factory.mktemp("sim-quote")
    sim = SimProcess(
        state_path=work / "venue.sqlite",
        log_path=work / "sim.log",
        extra_args=("--tick-ms", "50", "--md-rate", "20", "--md-levels", "5", "--seed", "7"),
        tls=OVER_TLS,
    ).start()
    yield sim
    sim.stop()


@pytest.fixture
def client(quote_sim: SimProcess) -> Iterator[RawQuoteClient]:
    quote_sim.control("/market", {"rate": 20, "paused": False})
    quote_sim.control("/scenario", {"freeze_prices": False})
    app = RawQuoteClient(quote_sim)
    with raw_fix_port(quote_sim, SessionKind.QUOTE) as port:
        initiator = fix.ThreadedSocketInitiator(app, fix.MemoryStoreFactory(), _settings(quote_sim, port))
        initiator.start()
        assert app.logged_on.wait(WAIT_SECONDS), "QUOTE logon failed"
        yield app
        initiator.stop(True)  # a disconnect: the simulator ends the session's subscriptions as at a logout
        del initiator  # before the application it calls back (QuickFIX keeps a raw pointer to it)
        _wait(lambda: not quote_sim.control("/market")["subscriptions"])
    assert app.session_rejects == 0


def _wait(condition: Any, seconds: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _sent_to_us(sim: SimProcess, start: dict[str, Any]) -> int:
    return int(sim.control("/market")["updates_sent"]) - int(start["updates_sent"])


def test_depth_stream_builds_the_simulators_book(quote_sim: SimProcess, client: RawQuoteClient) -> None:
    books = ClientBooks()
    start = quote_sim.control("/market")
    quote_sim.control("/market", {"rate": 5000})
    client.request("depth-1")
    books.wait_for(client, "W")
    while books.updates <= 1500:  # how fast is the bench's to say (market.depth_rate_sustained), not a test's
        books.apply(client.messages.get(timeout=WAIT_SECONDS))
    state = quote_sim.control("/market", {"paused": True})
    assert state["paused"] is True
    expected = int(state["updates_sent"]) - int(start["updates_sent"])
    assert set(books.barrier(client)) <= {"X"}  # the X still on their way at the pause, nothing else
    assert books.updates == expected

    book = quote_sim.control("/book?symbol_id=1")
    assert books.depth[EURUSD] == {
        e["id"]: ("0" if e["side"] == "bid" else "1", _wire(e["price"]), _wire(e["size"]))
        for e in book["entries"]
    }
    levels = _levels(books.depth[EURUSD])
    assert levels == (book["bids"], book["asks"])
    assert len(book["bids"]) == len(book["asks"]) == 5
    assert Decimal(book["bids"][0][0]) < Decimal(book["asks"][0][0])
    snapshot = books.snapshots[0]
    assert t.MD_REQ_ID not in snapshot  # cTrader's W and X carry no 262
    assert quote_sim.control("/market")["subscriptions"] == [
        {"md_req_id": "depth-1", "symbol_id": 1, "depth": True}
    ]


def _wire(text: str) -> str:
    """The control port's "1.08350" as the wire sends it ("1.0835")."""
    return text.rstrip("0").rstrip(".") if "." in text else text


def _levels(book: dict[str, tuple[str, str, str]]) -> tuple[list[list[str]], list[list[str]]]:
    sides: dict[str, dict[Decimal, Decimal]] = {"0": {}, "1": {}}
    for side, price, size in book.values():
        sides[side][Decimal(price)] = sides[side].get(Decimal(price), Decimal(0)) + Decimal(size)

    def rows(side: str, best_first_high: bool) -> list[tuple[Decimal, Decimal]]:
        return sorted(sides[side].items(), reverse=best_first_high)

    digits = 5  # EURUSD
    quantum = Decimal(1).scaleb(-digits)
    return (
        [[format(p.quantize(quantum), "f"), format(s, "f")] for p, s in rows("0", True)],
        [[format(p.quantize(quantum), "f"), format(s, "f")] for p, s in rows("1", False)],
    )


def test_spot_w_has_prices_only_and_follows_the_venue_quote(
    quote_sim: SimProcess, client: RawQuoteClient
) -> None:
    quote_sim.control("/scenario", {"freeze_prices": True})
    books = ClientBooks()
    client.request("spot-1", depth="1")
    books.wait_for(client, "W")
    first = books.spots[0]
    assert first.get(t.SYMBOL) == EURUSD
    assert first.get(t.NO_MD_ENTRIES) == "2"
    entries = first.group(t.NO_MD_ENTRIES, W_MEMBERS)
    assert [e.require(t.MD_ENTRY_TYPE) for e in entries] == ["0", "1"]
    for tag in (t.MD_ENTRY_SIZE, t.MD_ENTRY_ID, t.MD_REQ_ID):
        assert tag not in first, f"spot W carries {tag}"

    # A quote of a clock tick from before the freeze may reach the QUOTE port after the subscription: its
    # W can come before the pinned one.
    quote_sim.control("/quote", {"symbol_id": 1, "bid": "1.07001", "ask": "1.07011"})
    books.wait_for_spot(client, "1.07001", "1.07011")
    book = quote_sim.control("/book?symbol_id=1")
    assert (book["bids"][0][0], book["asks"][0][0]) == ("1.07001", "1.07011")  # where the venue fills

    quote_sim.control("/market", {"paused": True})  # the venue still moves; the feed holds its quote
    spots = len(books.spots)
    quote_sim.control("/quote", {"symbol_id": 1, "bid": "1.07101", "ask": "1.07111"})
    # The quote reaches the QUOTE process ahead of this /book request (one pipe, in order), so it has been
    # held, not applied; and no W went out for it (one would be ahead of the barrier's Y).
    book = quote_sim.control("/book?symbol_id=1")
    assert (book["bids"][0][0], book["asks"][0][0]) == ("1.07001", "1.07011")
    assert books.barrier(client) == []
    quote_sim.control("/market", {"paused": False})
    books.wait_for_spot(client, "1.07101", "1.07111")
    assert len(books.spots) == spots + 1  # the held quote, once
    assert books.updates == 0  # a spot subscription gets no X


def test_refused_requests_are_answered_with_y(quote_sim: SimProcess, client: RawQuoteClient) -> None:
    books = ClientBooks()
    client.request("CS8260:sXlXex", symbol="CS8260")
    client.request("bad-depth", depth="2")
    client.request("snapshot-only", request_type="0")
    client.request("unknown", symbol="999")
    books.wait_for(client, "Y", 4)
    answers = {y.require(t.MD_REQ_ID): (y.get(t.MD_REQ_REJ_REASON), y.get(t.TEXT)) for y in books.rejects}
    assert answers["CS8260:sXlXex"] == ("0", "INVALID_REQUEST: Expected numeric symbolId, but got CS8260")
    assert answers["bad-depth"] == ("5", "INVALID_REQUEST: MarketDepth should be either 0 or 1")
    reason, text = answers["snapshot-only"]
    assert reason == "4" and text is not None and text.startswith("INVALID_REQUEST: ")
    reason, text = answers["unknown"]
    assert reason == "0" and text is not None and "999" in text
    assert quote_sim.control("/market")["subscriptions"] == []


def test_unsubscribe_stops_the_stream(quote_sim: SimProcess, client: RawQuoteClient) -> None:
    books = ClientBooks()
    start = quote_sim.control("/market")
    quote_sim.control("/market", {"rate": 500})
    client.request("depth-2")
    client.request("spot-2", depth="1")
    books.wait_for(client, "X", 20)
    client.request("depth-2", request_type="2")
    client.request("spot-2", depth="1", request_type="2")
    # X and spot W sent before the unsubscribes were handled may still be on their way: not after this.
    books.barrier(client)
    assert quote_sim.control("/market")["subscriptions"] == []
    assert books.updates == _sent_to_us(quote_sim, start)  # every X sent arrived
    eurusd = books.messages_of[EURUSD]
    # The simulator's churn and re-centring now go to GBPUSD alone; had EURUSD still been subscribed, its
    # W and X would come in between. Counted in messages, not seconds: a loaded machine streams less.
    client.request("depth-5", symbol=GBPUSD)
    books.wait_for(client, "X", 50)
    assert books.updates_of[GBPUSD] == 50
    assert books.messages_of[EURUSD] == eurusd


def test_logout_ends_streams_until_the_client_resubscribes(
    quote_sim: SimProcess, client: RawQuoteClient
) -> None:
    books = ClientBooks()
    quote_sim.control("/market", {"rate": 500})
    client.request("depth-3")
    client.request("spot-3", depth="1")
    books.wait_for(client, "X", 20)
    quote_sim.control("/logout", {"session": "QUOTE", "reason": "maintenance"})
    _wait(lambda: client.logouts >= 1)  # QuickFIX may call onLogout twice for one logout
    _wait(lambda: quote_sim.control("/market")["subscriptions"] == [])
    _wait(lambda: client.logons == 2)  # the initiator logs on again by itself
    books.barrier(client)  # what was on its way before the logout, if it arrived at all
    eurusd = books.messages_of[EURUSD]
    # Nothing resumes by itself: a GBPUSD stream requested on the new session runs meanwhile, and had the
    # EURUSD streams resumed, their W and X would come in between (counted in messages, not seconds).
    client.request("depth-6", symbol=GBPUSD)
    books.wait_for(client, "X", 50)
    assert books.messages_of[EURUSD] == eurusd
    assert quote_sim.control("/market")["subscriptions"] == [
        {"md_req_id": "depth-6", "symbol_id": 2, "depth": True}
    ]

    snapshots = len(books.snapshots)
    client.request("depth-3")
    books.wait_for(client, "W")
    assert len(books.snapshots) == snapshots + 1
    assert len(books.depth[EURUSD]) == 10
    books.wait_for(client, "X", 5)


def test_a_repeated_md_req_id_is_a_resubscribe_with_a_fresh_snapshot(
    quote_sim: SimProcess, client: RawQuoteClient
) -> None:
    books = ClientBooks()
    client.request("depth-4")
    books.wait_for(client, "W")
    client.request("depth-4", symbol="2")
    books.wait_for(client, "W")
    assert [w.require(t.SYMBOL) for w in books.snapshots] == ["1", "2"]
    assert quote_sim.control("/market")["subscriptions"] == [
        {"md_req_id": "depth-4", "symbol_id": 2, "depth": True}
    ]


def _status(sim: SimProcess, path: str, body: dict[str, Any] | None = None) -> int:
    try:
        sim.control(path, body)
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code
    return 200


def test_control_port_refuses_bad_market_requests(quote_sim: SimProcess) -> None:
    assert _status(quote_sim, "/book?symbol_id=999") == 404
    assert _status(quote_sim, "/book") == 400
    for body in ({"rate": -1}, {"rate": "fast"}, {"paused": "yes"}):
        assert _status(quote_sim, "/market", body) == 400
    state = quote_sim.control("/market")
    assert set(state) == {"rate", "paused", "updates_sent", "snapshots_sent", "spot_sent", "subscriptions"}

"""The simulated CSERVER QUOTE port, run in its own process (QuickFIX keys acceptor sessions by CompIDs,
which QUOTE and TRADE share).

It streams market data as cTrader does (reference sections 2.1-2.4): MarketDataRequest (V) for spot
(264=1: W with bid/ask prices only, another W at every top-of-book change) or depth (264=0: a W snapshot
of every book entry, then X incrementals of New/Delete entries); 35=Y for what cTrader refuses. The books
follow the venue's quotes, which the parent process (TRADE port, venue) forwards over the pipe, so the
streamed top of book is where the venue fills. A publisher thread adds size churn at `md_rate` X per
second. SecurityListRequest (x) is answered as on TRADE.

Messages are built from FIX text parsed with the dictionary (about 5 us for an X) rather than with
setField/Group calls (about 13 us): measured on a 2-vCPU VM the port then sustains about 40 000 X/s
to one client instead of about 28 000. While paused (control port) no market data leaves at all; requests
are still answered (a V gets its snapshot, a refused one its Y).

Pipe protocol (parent -> child): "stop"; ("logout", reason, sender_comp_id or None: every account);
("quotes", [(symbol_id, bid, ask), ...]); ("call", number, name, args) answered with (number, True, result)
or (number, False, text) (control port requests, see quote_link.py).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from multiprocessing.connection import Connection
from typing import Any

import quickfix as fix

from fixadapter.connectors.fix import tags as t
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.connectors.fix.settings import resolve_path
from fixadapter.connectors.fix.wire import SOH, Fields, WireError
from fixadapter.sim.acceptor import CServerApplication, acceptor_settings
from fixadapter.sim.config import SimConfig
from fixadapter.sim.instruments import security_list
from fixadapter.sim.listening import start_listening
from fixadapter.sim.market_feed import (
    ASK,
    BID,
    SIDE_NAME,
    Change,
    MarketFeed,
    group_text,
    incremental_entries,
    snapshot_entries,
    spot_entries,
)
from fixadapter.sim.prices import DEFAULT_SYMBOLS, SymbolSpec
from fixadapter.sim.tls_port import tls_port_for
from fixadapter.sim.unknown_sessions import UnknownSessionLogs

log = logging.getLogger("fixadapter.sim.quote")

SUBSCRIBE = "1"
UNSUBSCRIBE = "2"
DEPTH = "0"
SPOT = "1"
IDLE_SECONDS = 0.02  # publisher poll while nothing is due (paused, rate 0, no depth subscription)
MAX_SLEEP_SECONDS = 0.05  # so a rate change or a pause takes effect quickly
# Header prefix for messages built from text; the session fills 49/56/34/52 and recomputes 9 and 10.
_HEADER = f"8=FIX.4.4{SOH}9=0{SOH}35="
_TRAILER = f"10=000{SOH}"


class RequestRejected(Exception):
    """A MarketDataRequest cTrader answers with 35=Y (281 reason, 58 text)."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text


@dataclass(frozen=True)
class Subscription:
    md_req_id: str
    session_key: str
    session_id: fix.SessionID
    symbol_ids: tuple[int, ...]
    depth: bool


class QuoteServer:
    """The QUOTE acceptor, the depth books and the publisher thread.

    One lock covers book changes, the subscription registry and every market-data send, so a client
    never gets an X for a symbol before that subscription's W, and the wire order is the book order.
    """

    def __init__(self, config: SimConfig, symbols: tuple[SymbolSpec, ...] = DEFAULT_SYMBOLS) -> None:
        self.config = config
        self.symbols = symbols
        self.feed = MarketFeed(symbols, levels=config.md_levels, seed=config.seed)
        self.app = CServerApplication(config, SessionKind.QUOTE, self.handle, on_logout=self._drop_session)
        # Parsing our own text with the dictionary is the cheapest way to build a message with groups.
        self._dictionary = fix.DataDictionary(str(resolve_path(config.dictionary)))
        self._acceptor: fix.ThreadedSocketAcceptor | None = None
        self.port = config.quote_port  # the bound one once started (config 0: any free port)
        self.tls = tls_port_for(config, SessionKind.QUOTE)
        self._lock = threading.RLock()
        self._ended_sessions: queue.SimpleQueue[str] = queue.SimpleQueue()  # see _drop_session
        self._subscriptions: dict[tuple[str, str], Subscription] = {}
        self._depth_streams: dict[int, dict[str, fix.SessionID]] = {}
        self._spot_streams: dict[int, dict[str, fix.SessionID]] = {}
        self._depth_symbols: list[int] = []
        self._pending: dict[int, tuple[Decimal, Decimal]] = {}  # venue quotes held while paused
        self.rate = config.md_rate
        self.paused = False
        self.updates_sent = 0
        self.snapshots_sent = 0
        self.spot_sent = 0
        self._pace_epoch = time.monotonic()
        self._paced = 0  # updates emitted since _pace_epoch
        self._generation = 0  # bumped whenever pacing restarts, so a running batch stops
        self._stop = threading.Event()
        self._publisher = threading.Thread(target=self._run_publisher, name="sim-md-publisher", daemon=True)

    def start(self) -> None:
        self._logs = UnknownSessionLogs("QUOTE")  # says which CompIDs it turned away
        acceptor = fix.ThreadedSocketAcceptor(
            self.app,
            fix.MemoryStoreFactory(),
            acceptor_settings(self.config, SessionKind.QUOTE),
            self._logs,
        )
        self._acceptor = acceptor
        self.port = start_listening(acceptor.start, self.config.host, "QUOTE port")
        if self.tls is not None:
            self.tls.start(self.port)
        self._publisher.start()

    def stop(self) -> None:
        self._stop.set()
        if self._publisher.is_alive():
            self._publisher.join(2)
        if self.tls is not None:
            self.tls.stop()
        if self._acceptor is not None:
            self._acceptor.stop()

    # -- requests -----------------------------------------------------------------------------

    def handle(self, msg_type: str, raw: str, session_id: fix.SessionID) -> None:
        fields = Fields.parse(raw)
        if msg_type == "V":
            self._market_data_request(fields, session_id)
            return
        if msg_type == "x":
            body, groups = security_list(fields, self.symbols)
            self.app.send("y", body, groups, session_id)
            return
        self.app.send(
            "j",
            [
                (t.REF_MSG_TYPE, msg_type),
                (t.BUSINESS_REJECT_REASON, "3"),
                (t.TEXT, f"INVALID_REQUEST: {msg_type} is not supported on QUOTE"),
            ],
            session_id=session_id,
        )

    def _market_data_request(self, fields: Fields, session_id: fix.SessionID) -> None:
        md_req_id = fields.require(t.MD_REQ_ID)
        key = (session_id.toString(), md_req_id)
        try:
            request_type, symbol_ids, depth = self._read_request(fields)
        except RequestRejected as exc:
            self._send_text(
                "Y",
                f"{t.TEXT}={exc.text}{SOH}{t.MD_REQ_ID}={md_req_id}{SOH}{t.MD_REQ_REJ_REASON}={exc.reason}{SOH}",
                session_id,
            )
            return
        with self._held():
            if request_type == UNSUBSCRIBE:
                # [INF] an unknown id on unsubscribe is ignored: cTrader documents no answer for it.
                if self._subscriptions.pop(key, None) is not None:
                    self._rebuild_streams()
                return
            # [INF] cTrader does not document a duplicate MDReqID while it is active; treated as a
            # resubscribe: the new request replaces the old one and a fresh snapshot follows.
            subscription = Subscription(md_req_id, key[0], session_id, symbol_ids, depth)
            self._subscriptions[key] = subscription
            self._rebuild_streams()
            for symbol_id in symbol_ids:  # under the lock: no X for this symbol can overtake its W
                self._send_snapshot(symbol_id, depth, session_id)

    def _read_request(self, fields: Fields) -> tuple[str, tuple[int, ...], bool]:
        request_type = fields.get(t.SUBSCRIPTION_REQUEST_TYPE) or ""
        if request_type not in (SUBSCRIBE, UNSUBSCRIBE):
            # [INF] text in cTrader's style; the RoE documents only reason 4 for this case.
            raise RequestRejected(
                "4",
                f"INVALID_REQUEST: SubscriptionRequestType should be either 1 or 2, but got {request_type}",
            )
        market_depth = fields.get(t.MARKET_DEPTH) or ""
        if market_depth not in (DEPTH, SPOT):
            raise RequestRejected("5", "INVALID_REQUEST: MarketDepth should be either 0 or 1")
        try:
            symbols = [
                entry.get(t.SYMBOL) or "" for entry in fields.group(t.NO_RELATED_SYM, frozenset({t.SYMBOL}))
            ]
        except WireError as exc:
            raise RequestRejected("0", f"INVALID_REQUEST: {exc}") from exc
        if not symbols:
            raise RequestRejected("0", "INVALID_REQUEST: Expected numeric symbolId, but got ")
        symbol_ids: list[int] = []
        for symbol in symbols:
            if not (symbol.isascii() and symbol.isdigit()):
                raise RequestRejected("0", f"INVALID_REQUEST: Expected numeric symbolId, but got {symbol}")
            if not self.feed.has(int(symbol)):
                # [INF] cTrader's answer for a numeric id it does not list is not documented.
                raise RequestRejected("0", f"INVALID_REQUEST: Symbol with id {symbol} not found")
            symbol_ids.append(int(symbol))
        return request_type, tuple(dict.fromkeys(symbol_ids)), market_depth == DEPTH

    def _drop_session(self, session_id: fix.SessionID) -> None:
        """Logout or disconnect ends every subscription of the session; the client must resubscribe.

        QuickFIX calls this holding the session's mutex, which sendToTarget also takes: waiting for
        self._lock here would deadlock with a publisher that holds it while sending. So the session is
        only queued; the next holder of the lock ends its subscriptions before it sends anything (and a
        new logon of the session always comes after its disconnect, so after the queueing).
        """
        self._ended_sessions.put(session_id.toString())

    @contextlib.contextmanager
    def _held(self) -> Iterator[None]:
        """The lock, with the subscriptions of ended sessions dropped first."""
        with self._lock:
            if not self._ended_sessions.empty():
                self._reap_ended_sessions()
            yield

    def _reap_ended_sessions(self) -> None:
        ended: set[str] = set()
        while not self._ended_sessions.empty():
            ended.add(self._ended_sessions.get_nowait())
        dropped = [key for key in self._subscriptions if key[0] in ended]
        for key in dropped:
            del self._subscriptions[key]
        self._rebuild_streams()
        if dropped:
            log.info("QUOTE: %d subscription(s) ended with the session", len(dropped))

    def _rebuild_streams(self) -> None:
        depth: dict[int, dict[str, fix.SessionID]] = {}
        spot: dict[int, dict[str, fix.SessionID]] = {}
        for subscription in self._subscriptions.values():
            streams = depth if subscription.depth else spot
            for symbol_id in subscription.symbol_ids:
                streams.setdefault(symbol_id, {})[subscription.session_key] = subscription.session_id
        self._depth_streams, self._spot_streams = depth, spot
        self._depth_symbols = sorted(depth)

    # -- market data out ----------------------------------------------------------------------

    def _send_text(self, msg_type: str, body: str, session_id: fix.SessionID) -> bool:
        message = fix.Message(f"{_HEADER}{msg_type}{SOH}{body}{_TRAILER}", self._dictionary, False)
        try:
            return bool(fix.Session.sendToTarget(message, session_id))
        except fix.SessionNotFound:
            return False

    def _send_snapshot(self, symbol_id: int, depth: bool, session_id: fix.SessionID) -> None:
        book = self.feed.book(symbol_id)
        entries = snapshot_entries(book) if depth else spot_entries(book.bid, book.ask)
        # cTrader's W carries no 262: clients route by 55.
        if self._send_text(
            "W", f"{t.SYMBOL}={symbol_id}{SOH}{group_text(t.NO_MD_ENTRIES, entries)}", session_id
        ):
            if depth:
                self.snapshots_sent += 1
            else:
                self.spot_sent += 1

    def _send_changes(self, symbol_id: int, changes: list[Change]) -> None:
        sessions = self._depth_streams.get(symbol_id)
        if not sessions or not changes:
            return
        body = group_text(t.NO_MD_ENTRIES, incremental_entries(symbol_id, changes))
        for session_id in sessions.values():
            if self._send_text("X", body, session_id):
                self.updates_sent += 1

    def _apply_quote(self, symbol_id: int, bid: Decimal, ask: Decimal) -> None:
        changes = self.feed.set_quote(symbol_id, bid, ask)
        if not changes:
            return
        self._send_changes(symbol_id, changes)
        for session_id in self._spot_streams.get(symbol_id, {}).values():
            self._send_snapshot(symbol_id, False, session_id)

    def on_quotes(self, quotes: list[tuple[int, str, str]]) -> None:
        """Venue quotes from the parent: re-centre the books, spot W for each changed top."""
        with self._held():
            for symbol_id, bid, ask in quotes:
                if not self.feed.has(symbol_id):
                    continue
                if self.paused:
                    self._pending[symbol_id] = (Decimal(bid), Decimal(ask))
                else:
                    self._apply_quote(symbol_id, Decimal(bid), Decimal(ask))

    # -- the publisher: paced by due count against a monotonic clock -----------------------------

    def _run_publisher(self) -> None:
        while not self._stop.is_set():
            try:
                self._publish_due()
            except Exception:
                log.exception("market-data publisher step failed (continuing)")
                self._stop.wait(IDLE_SECONDS)

    def _publish_due(self) -> None:
        """Send the updates due by now (rate x elapsed - sent), each under the lock, then wait for the next.

        Counting against a monotonic clock keeps the average rate exact whatever one send costs; a
        backlog beyond one second (a rate above what this machine sends) is dropped, not burst out.
        """
        with self._held():
            rate = self.rate
            if rate <= 0 or self.paused or not self._depth_symbols:
                self._restart_pacing()
                wait = IDLE_SECONDS
                due = 0
            else:
                elapsed = time.monotonic() - self._pace_epoch
                due = int(elapsed * rate) - self._paced
                if due > rate:
                    self._pace_epoch += (due - rate) / rate
                    due = rate
                wait = min((self._paced + 1) / rate - elapsed, MAX_SLEEP_SECONDS)
            generation = self._generation
        if due <= 0:
            self._stop.wait(max(wait, 0.0))
            return
        for _ in range(due):
            with self._lock:  # _held() inlined: this loop is the hot path
                if not self._ended_sessions.empty():
                    self._reap_ended_sessions()
                if generation != self._generation or not self._depth_symbols:
                    return  # rate changed, paused, resumed or unsubscribed meanwhile
                symbol_id = self._depth_symbols[self._paced % len(self._depth_symbols)]
                self._send_changes(symbol_id, self.feed.churn(symbol_id))
                self._paced += 1

    def _restart_pacing(self) -> None:
        self._pace_epoch = time.monotonic()
        self._paced = 0
        self._generation += 1

    # -- control (through the parent's control port) ----------------------------------------------

    def book_state(self, symbol_id: int) -> dict[str, Any]:
        with self._held():
            book = self.feed.book(symbol_id)
            return {
                "symbol_id": symbol_id,
                "entries": [
                    {
                        "id": str(entry_id),
                        "side": SIDE_NAME[entry.side],
                        "price": format(entry.price, "f"),
                        "size": format(entry.size, "f"),
                    }
                    for entry_id, entry in book.entries.items()
                ],
                "bids": [[format(p, "f"), format(s, "f")] for p, s in book.levels(BID)],
                "asks": [[format(p, "f"), format(s, "f")] for p, s in book.levels(ASK)],
            }

    def market_state(self) -> dict[str, Any]:
        with self._held():
            return {
                "rate": self.rate,
                "paused": self.paused,
                "updates_sent": self.updates_sent,
                "snapshots_sent": self.snapshots_sent,
                "spot_sent": self.spot_sent,
                "subscriptions": [
                    {"md_req_id": s.md_req_id, "symbol_id": symbol_id, "depth": s.depth}
                    for s in self._subscriptions.values()
                    for symbol_id in s.symbol_ids
                ],
            }

    def set_market(self, rate: int | None = None, paused: bool | None = None) -> dict[str, Any]:
        with self._held():
            if rate is not None:
                if rate < 0:
                    raise ValueError(f"rate must not be negative, was {rate}")
                self.rate = rate
                self._restart_pacing()
            if paused is not None and paused != self.paused:
                self.paused = paused
                self._restart_pacing()
                if not paused:
                    pending, self._pending = self._pending, {}
                    for symbol_id, (bid, ask) in pending.items():
                        self._apply_quote(symbol_id, bid, ask)
        return self.market_state()

    def drop_tls(self) -> int:
        if self.tls is None:
            raise ValueError("QUOTE has no TLS port")
        return self.tls.drop()

    def logged_on(self) -> dict[str, bool]:
        """Account name -> whether it has a QUOTE session logged on."""
        return {account.name: self.app.logged_on(account) for account in self.app.accounts.values()}

    def force_logout(self, reason: str, sender_comp_id: str | None) -> None:
        """A Logout to that account's QUOTE sessions (None: every account's); its streams end with them."""
        if sender_comp_id is None:
            self.app.force_logout(reason)
            return
        account = self.app.accounts.get(sender_comp_id)
        if account is None:
            log.warning("QUOTE: logout for SenderCompID %r, which no account has", sender_comp_id)
            return
        self.app.force_logout(reason, account)

    def call(self, name: str, args: dict[str, Any]) -> Any:
        calls: dict[str, Callable[..., Any]] = {
            "book": self.book_state,
            "market": self.market_state,
            "set_market": self.set_market,
            "drop_tls": self.drop_tls,
            "tls_connections": lambda: self.tls.connections if self.tls is not None else None,
            "logged_on": self.logged_on,
        }
        return calls[name](**args)


def run_quote_process(config: SimConfig, parent: Connection) -> None:
    """Child-process entry: serve until the parent says stop or dies (its pipe closes)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    server = QuoteServer(config)
    server.start()
    parent.send(("ready", server.port, server.tls.port if server.tls is not None else None))
    try:
        while True:
            command = parent.recv()
            if command == "stop":
                break
            try:
                _dispatch(server, command, parent)
            except (EOFError, OSError):
                raise
            except Exception:  # one bad command must not take the QUOTE port down
                log.exception("QUOTE: command from the parent failed")
    except (EOFError, OSError):
        log.info("simulator parent is gone: stopping the QUOTE port")
    server.stop()


def _dispatch(server: QuoteServer, command: Any, parent: Connection) -> None:
    if not isinstance(command, tuple) or not command:
        log.warning("QUOTE: unknown command from the parent: %r", command)
        return
    if command[0] == "quotes":
        server.on_quotes(command[1])
    elif command[0] == "logout":
        server.force_logout(command[1], command[2] if len(command) > 2 else None)
    elif command[0] == "call":
        _, number, name, args = command
        try:
            parent.send((number, True, server.call(name, args)))
        except KeyError as exc:
            parent.send((number, False, ("not_found", f"not found: {exc.args[0]}")))
        except (ValueError, TypeError) as exc:
            parent.send((number, False, ("bad_request", str(exc))))
        except Exception as exc:  # answered, so the control port never waits for a timeout
            log.exception("QUOTE: control request %s failed", name)
            parent.send((number, False, ("error", f"{type(exc).__name__}: {exc}")))

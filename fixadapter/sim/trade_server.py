"""The simulated CSERVER TRADE port: D, F, G, H, AF, AN and x answered as cTrader answers them.

It serves every configured account as one cTrader server does: each account has a desk (its venue: its
orders, positions and id-disjoint order ids) and its connections; a request is answered from the desk of
the account whose SenderCompID sent it, and reports go to that account's connections only. Every desk
trades on the same instruments and prices.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import quickfix as fix

from fixadapter.connectors.fix import tags as t
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.connectors.fix.wire import (
    Fields,
    WireError,
    format_decimal,
    format_utc,
    parse_utc,
    to_decimal,
)
from fixadapter.sim.acceptor import (
    CServerApplication,
    Pair,
    RepeatingGroup,
    acceptor_settings,
    client_comp_id,
)
from fixadapter.sim.config import SimAccount, SimConfig
from fixadapter.sim.instruments import security_list
from fixadapter.sim.listening import start_listening
from fixadapter.sim.prices import Quote, RandomWalk
from fixadapter.sim.tls_port import tls_port_for
from fixadapter.sim.trade_front import SLOTS, TradeFront
from fixadapter.sim.venue import (
    CancelRefused,
    ExecKind,
    Execution,
    NotFound,
    OrderKind,
    PlaceRequest,
    Side,
    Venue,
    VenueOrder,
    VenueStatus,
)

log = logging.getLogger("fixadapter.sim.trade")

EXEC_TYPE = {
    ExecKind.NEW: "0",
    ExecKind.TRADE: "F",
    ExecKind.CANCELLED: "4",
    ExecKind.REPLACED: "5",
    ExecKind.REJECTED: "8",
    ExecKind.EXPIRED: "C",
    ExecKind.STATUS: "I",
}
ORD_STATUS = {
    VenueStatus.NEW: "0",
    VenueStatus.PARTIALLY_FILLED: "1",
    VenueStatus.FILLED: "2",
    VenueStatus.CANCELLED: "4",
    VenueStatus.REJECTED: "8",
    VenueStatus.EXPIRED: "C",
}
SIDE = {"1": Side.BUY, "2": Side.SELL}
SIDE_CODE = {Side.BUY: "1", Side.SELL: "2"}
ORD_TYPE = {"1": OrderKind.MARKET, "2": OrderKind.LIMIT, "3": OrderKind.STOP}
# A stop-limit reaches FIX only as an order the Open API placed: its reports carry FIX 4.4's StopLimit
# (the dictionary has it), while a D with OrdType 4 is still refused (ORD_TYPE), as cTrader FIX has none.
ORD_TYPE_CODE = {kind: code for code, kind in ORD_TYPE.items()} | {OrderKind.STOP_LIMIT: "4"}


class BadRequest(ValueError):
    """A request cTrader would refuse with this `CODE:text`."""


@dataclass
class Faults:
    """Test scenarios switched on through the control port, each for one account's messages."""

    extra_tag: tuple[int, str] | None = None
    drop_reports: int = 0  # the venue acts but the next N execution reports never leave
    ignore_requests: int = 0  # the next N application messages are lost before the venue sees them
    # Another acceptor's ways of refusing what it does not take (they name our message by RefSeqNum only):
    session_reject_next: set[str] = field(default_factory=set)  # the next of each type gets a Reject (3)
    refuse: dict[str, str] = field(default_factory=dict)  # type -> text: each answered by j without 379
    silent: set[str] = field(default_factory=set)  # types never answered while set
    # The same two knobs on the Open API front (set together with the FIX ones by /scenario).
    openapi_drop_events: int = 0
    openapi_ignore_requests: int = 0


@dataclass
class Desk:
    """One account at the TRADE port: its credentials, its venue (orders, positions) and its faults."""

    account: SimAccount
    venue: Venue
    faults: Faults = field(default_factory=Faults)


def execution_report(execution: Execution, *, mass_status: tuple[str, int] | None = None) -> list[Pair]:
    """The one ER builder: only the tags cTrader sends (no ExecID, no LastPx)."""
    order = execution.order
    body: list[Pair] = []
    if mass_status is None:
        body.append((t.CL_ORD_ID, execution.request_id))
    exec_type = EXEC_TYPE[execution.kind]
    if execution.kind is ExecKind.STATUS and order.status is VenueStatus.NEW and mass_status is None:
        exec_type = "0"  # an H answer for a working order looks like the New ER in cTrader's example
    body += [
        (t.CUM_QTY, format_decimal(order.cum_qty)),
        (t.ORDER_ID, str(order.order_id)),
        (t.ORDER_QTY, format_decimal(order.quantity)),
        (t.ORD_STATUS, ORD_STATUS[order.status]),
        (t.ORD_TYPE, ORD_TYPE_CODE[order.kind]),
        (t.SIDE, SIDE_CODE[order.side]),
        (t.SYMBOL, str(order.symbol_id)),
        (t.TIME_IN_FORCE, _time_in_force(order)),
        (t.TRANSACT_TIME, format_utc(order.transact_time)),
        (t.EXEC_TYPE, exec_type),
        (t.LEAVES_QTY, format_decimal(order.leaves_qty)),
    ]
    optional: list[tuple[int, object]] = [
        (t.AVG_PX, order.avg_px if order.cum_qty > 0 else None),
        (t.LAST_QTY, execution.last_qty),
        (t.ORIG_CL_ORD_ID, execution.orig_request_id),
        (t.PRICE, order.price),
        (t.STOP_PX, order.stop_price),
        (t.EXPIRE_TIME, order.expire_time),
        (t.TEXT, execution.text),
        (t.ORD_REJ_REASON, "0" if execution.kind is ExecKind.REJECTED else None),
        (t.POS_MAINT_RPT_ID, order.position_id or None),
        (t.DESIGNATION, order.label),
    ]
    body += [(tag, _text(value)) for tag, value in optional if value is not None]
    if mass_status is not None:
        body += [(t.MASS_STATUS_REQ_ID, mass_status[0]), (t.TOT_NUM_REPORTS, str(mass_status[1]))]
    return body


def _text(value: object) -> str:
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, datetime):
        return format_utc(value, millis=False)
    return str(value)


def _time_in_force(order: VenueOrder) -> str:
    if order.kind is OrderKind.MARKET:
        return "3"
    return "6" if order.expire_time is not None else "1"


def _symbol_id(fields: Fields) -> int:
    symbol = fields.require(t.SYMBOL)
    if not symbol.isdigit():
        raise BadRequest(f"INVALID_REQUEST: Expected numeric symbolId, but got {symbol}")
    return int(symbol)


def _optional_int(fields: Fields, tag: int, name: str) -> int | None:
    value = fields.get(tag)
    if value is None:
        return None
    if not value.isdigit():
        raise BadRequest(f"INVALID_REQUEST: {name} must be numeric, got {value}")
    return int(value)


def _side(code: str) -> Side:
    side = SIDE.get(code)
    if side is None:
        raise BadRequest(f"INVALID_REQUEST: Side {code} is not supported (1 buy, 2 sell)")
    return side


def place_request(fields: Fields) -> PlaceRequest:
    kind = ORD_TYPE.get(fields.require(t.ORD_TYPE))
    if kind is None:
        raise BadRequest(f"INVALID_REQUEST: OrdType {fields.get(t.ORD_TYPE)} is not supported")
    return PlaceRequest(
        cl_ord_id=fields.require(t.CL_ORD_ID),
        symbol_id=_symbol_id(fields),
        side=_side(fields.require(t.SIDE)),
        kind=kind,
        quantity=to_decimal(fields.require(t.ORDER_QTY)) or Decimal(0),
        price=to_decimal(fields.get(t.PRICE)),
        stop_price=to_decimal(fields.get(t.STOP_PX)),
        expire_time=parse_utc(fields.get(t.EXPIRE_TIME)),
        position_id=_optional_int(fields, t.POS_MAINT_RPT_ID, "PosMaintRptID"),
        label=fields.get(t.DESIGNATION),
    )


class TradeServer:
    """Owns the TRADE acceptor, the accounts' venues and the thread that moves prices and executes orders.

    `venues` holds one venue per served account (config.served_accounts, in order), all on one price
    source; each account's desk has its own faults (control port).
    """

    def __init__(self, config: SimConfig, venues: list[Venue]) -> None:
        accounts = config.served_accounts
        if len(venues) != len(accounts):
            raise ValueError(f"{len(accounts)} account(s) served but {len(venues)} venue(s) given")
        self.config = config
        self.desks = {
            account.name: Desk(account, venue) for account, venue in zip(accounts, venues, strict=True)
        }
        self._prices = venues[0].prices
        self._desk_by_comp_id = {desk.account.sender_comp_id: desk for desk in self.desks.values()}
        self.freeze_prices = False  # the one market stands still (control port)
        self.app = CServerApplication(config, SessionKind.TRADE, self.handle)
        self._acceptor: fix.ThreadedSocketAcceptor | None = None
        self.port = config.trade_port  # the bound one once started (config 0: any free port)
        # The public port (see trade_front.py); it refuses a SenderCompID no account has.
        self.front = TradeFront(config.host, config.trade_port, frozenset(self._desk_by_comp_id))
        self.tls = tls_port_for(config, SessionKind.TRADE)
        # Held from a venue call until its reports are sent, by every thread (QuickFIX, clock, control),
        # so reports leave in the order the venue produced them, as cTrader's do.
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._clock_thread = threading.Thread(target=self._run_clock, name="sim-clock", daemon=True)
        # Every quote change goes here (the runner forwards it to the QUOTE process's depth books).
        self.on_quotes: Callable[[list[Quote]], None] | None = None
        # Every venue execution of an account, whatever caused it, goes to each of these too (called under
        # the lock, in venue order): the Open API front sends them as ProtoOAExecutionEvents.
        self.execution_listeners: list[Callable[[Desk, list[Execution]], None]] = []
        self._handlers: dict[str, Callable[[Desk, Fields], None]] = {
            "D": self._new_order,
            "F": self._cancel,
            "G": self._replace,
            "H": self._status,
            "AF": self._mass_status,
            "AN": self._positions,
            "x": self._security_list,
        }

    def desk(self, name: str | None = None) -> Desk:
        """The desk of account `name`, the first account's when None (KeyError naming those served)."""
        if name is None:
            return next(iter(self.desks.values()))
        try:
            return self.desks[name]
        except KeyError:
            raise KeyError(f"no account {name!r} (served: {', '.join(self.desks)})") from None

    @property
    def prices(self) -> RandomWalk:
        """The one market every account trades on."""
        return self._prices

    def start(self) -> None:
        settings = acceptor_settings(self.config, SessionKind.TRADE, port=0, slots=SLOTS)
        acceptor = fix.ThreadedSocketAcceptor(self.app, fix.MemoryStoreFactory(), settings)
        self._acceptor = acceptor
        self.front.start(start_listening(acceptor.start, "127.0.0.1", "TRADE acceptor"))
        self.port = self.front.port
        if self.tls is not None:
            self.tls.start(self.port)
        self._clock_thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.tls is not None:
            self.tls.stop()
        self.front.stop()
        if self._acceptor is not None:
            self._acceptor.stop()
        for desk in self.desks.values():
            desk.venue.close()

    def drop_tls(self) -> int:
        if self.tls is None:
            raise ValueError("TRADE has no TLS port")
        return self.tls.drop()

    def handle(self, msg_type: str, raw: str, session_id: fix.SessionID) -> None:
        desk = self._desk_by_comp_id.get(client_comp_id(session_id))
        if desk is None:  # the acceptor has sessions for the accounts only; a logon was needed
            log.error("TRADE: a %s from %s, which no account has", msg_type, session_id.toString())
            return
        with self._lock:
            faults = desk.faults
            if faults.ignore_requests > 0:
                faults.ignore_requests -= 1
                log.info("fault: a %s never reached the venue", msg_type)
                return
            refusing = faults.session_reject_next or faults.refuse or faults.silent
            if refusing and self._refused_by_fault(desk, msg_type, Fields.parse(raw)):
                return
            self._handle(desk, msg_type, raw)

    def _send(
        self, desk: Desk, msg_type: str, body: list[Pair], groups: list[RepeatingGroup] | None = None
    ) -> None:
        """To every connection of the desk's account (cTrader copies each report to all of them)."""
        self.app.send(msg_type, body, groups or (), account=desk.account)

    def _refused_by_fault(self, desk: Desk, msg_type: str, fields: Fields) -> bool:
        """The faults that refuse or swallow a request the way other FIX acceptors do (control port)."""
        faults = desk.faults
        seq_num = fields.require(t.MSG_SEQ_NUM)
        if msg_type in faults.session_reject_next:
            faults.session_reject_next.discard(msg_type)
            text = "Value is incorrect (out of range) for this tag, field=40"
            body = [(t.REF_SEQ_NUM, seq_num), (t.REF_TAG_ID, "40"), (t.REF_MSG_TYPE, msg_type)]
            self._send(desk, "3", [*body, (t.SESSION_REJECT_REASON, "5"), (t.TEXT, text)])
        elif msg_type in faults.refuse:
            body = [(t.REF_SEQ_NUM, seq_num), (t.REF_MSG_TYPE, msg_type), (t.BUSINESS_REJECT_REASON, "3")]
            self._send(desk, "j", [*body, (t.TEXT, faults.refuse[msg_type])])
        elif msg_type in faults.silent:
            log.info("fault: a %s is left unanswered", msg_type)
        else:
            return False
        return True

    def _handle(self, desk: Desk, msg_type: str, raw: str) -> None:
        handler = self._handlers.get(msg_type)
        if handler is None:
            self._send(
                desk,
                "j",
                [
                    (t.REF_MSG_TYPE, msg_type),
                    (t.BUSINESS_REJECT_REASON, "3"),
                    (t.TEXT, f"INVALID_REQUEST: {msg_type} is not supported on TRADE"),
                ],
            )
            return
        handler(desk, Fields.parse(raw))

    # -- senders ------------------------------------------------------------------------------

    @property
    def lock(self) -> AbstractContextManager[bool]:
        """Held around a venue call and the sending of its executions, by every front (FIX, Open API)."""
        return self._lock

    def send_executions(self, desk: Desk, executions: list[Execution]) -> None:
        """The executions to the account's FIX connections as ERs, and to every execution listener."""
        for listener in self.execution_listeners:
            try:
                listener(desk, executions)
            except Exception:
                log.exception("an execution listener failed (the FIX front goes on)")
        faults = desk.faults
        for execution in executions:
            if faults.drop_reports > 0:
                faults.drop_reports -= 1
                log.info("fault: dropped the %s report of order %s", execution.kind, execution.order.order_id)
                continue
            body = execution_report(execution)
            if faults.extra_tag is not None:
                body.append((faults.extra_tag[0], faults.extra_tag[1]))
                faults.extra_tag = None
            self._send(desk, "8", body)

    def _business_reject(self, desk: Desk, ref_id: str, text: str) -> None:
        self._send(
            desk,
            "j",
            [(t.BUSINESS_REJECT_REF_ID, ref_id), (t.BUSINESS_REJECT_REASON, "0"), (t.TEXT, text)],
        )

    def _answer(self, desk: Desk, result: list[Execution] | NotFound | CancelRefused) -> None:
        if isinstance(result, NotFound):
            self._business_reject(desk, result.request_id, result.text)
        elif isinstance(result, CancelRefused):
            order = result.order
            self._send(
                desk,
                "9",
                [
                    (t.CL_ORD_ID, result.request_id),
                    (t.ORDER_ID, str(order.order_id)),
                    (t.ORD_STATUS, ORD_STATUS[order.status]),
                    (t.ORIG_CL_ORD_ID, order.cl_ord_id),
                    (t.TEXT, result.text),
                    (t.CXL_REJ_RESPONSE_TO, str(result.response_to)),
                ],
            )
        else:
            self.send_executions(desk, result)

    # -- requests -----------------------------------------------------------------------------

    def _new_order(self, desk: Desk, fields: Fields) -> None:
        try:
            request = place_request(fields)
        except (BadRequest, WireError) as exc:
            self._business_reject(desk, fields.get(t.CL_ORD_ID) or "", str(exc))
            return
        self.send_executions(desk, desk.venue.place(request, datetime.now(UTC)))

    def _cancel(self, desk: Desk, fields: Fields) -> None:
        try:
            order_id = _optional_int(fields, t.ORDER_ID, "OrderID")
        except BadRequest as exc:
            self._business_reject(desk, fields.require(t.CL_ORD_ID), str(exc))
            return
        self._answer(
            desk,
            desk.venue.cancel(
                fields.require(t.CL_ORD_ID), fields.require(t.ORIG_CL_ORD_ID), order_id, datetime.now(UTC)
            ),
        )

    def _replace(self, desk: Desk, fields: Fields) -> None:
        request_id = fields.require(t.CL_ORD_ID)
        try:
            order_id = _optional_int(fields, t.ORDER_ID, "OrderID")
            result = desk.venue.replace(
                request_id,
                fields.require(t.ORIG_CL_ORD_ID),
                order_id,
                to_decimal(fields.require(t.ORDER_QTY)) or Decimal(0),
                to_decimal(fields.get(t.PRICE)),
                to_decimal(fields.get(t.STOP_PX)),
                parse_utc(fields.get(t.EXPIRE_TIME)),
                datetime.now(UTC),
            )
        except (BadRequest, WireError) as exc:
            self._business_reject(desk, request_id, str(exc))
            return
        self._answer(desk, result)

    def _status(self, desk: Desk, fields: Fields) -> None:
        result = desk.venue.status(fields.require(t.CL_ORD_ID), datetime.now(UTC))
        if isinstance(result, NotFound):
            self._business_reject(desk, result.request_id, result.text)
        else:
            self.send_executions(desk, [result])

    def _mass_status(self, desk: Desk, fields: Fields) -> None:
        request_id = fields.require(t.MASS_STATUS_REQ_ID)
        if fields.get(t.MASS_STATUS_REQ_TYPE) != "7":
            self._business_reject(desk, request_id, "INVALID_REQUEST: only MassStatusReqType=7 is supported")
            return
        created_before = parse_utc(fields.get(t.ISSUE_DATE))
        orders = [
            o for o in desk.venue.working_orders() if created_before is None or o.created_at < created_before
        ]
        if not orders:
            self._business_reject(desk, request_id, "ORDER_NOT_FOUND:No working orders")
            return
        for order in orders:
            report = Execution(kind=ExecKind.STATUS, order=order, request_id=order.cl_ord_id)
            self._send(desk, "8", execution_report(report, mass_status=(request_id, len(orders))))

    def _positions(self, desk: Desk, fields: Fields) -> None:
        request_id = fields.require(t.POS_REQ_ID)
        wanted = fields.get(t.POS_MAINT_RPT_ID)
        positions = [p for p in desk.venue.positions() if wanted is None or str(p.position_id) == wanted]
        if not positions:
            self._send(
                desk,
                "AP",
                [(t.POS_REQ_ID, request_id), (t.TOTAL_NUM_POS_REPORTS, "0"), (t.POS_REQ_RESULT, "2")],
            )
            return
        for position in positions:
            long = position.side is Side.BUY
            volume = format_decimal(position.volume)
            self._send(
                desk,
                "AP",
                [
                    (t.SYMBOL, str(position.symbol_id)),
                    (t.POS_REQ_ID, request_id),
                    (t.POS_MAINT_RPT_ID, str(position.position_id)),
                    (t.TOTAL_NUM_POS_REPORTS, str(len(positions))),
                    (t.POS_REQ_RESULT, "0"),
                    (t.SETTL_PRICE, format_decimal(position.entry_price)),
                ],
                [
                    (
                        t.NO_POSITIONS,
                        t.LONG_QTY,
                        [[(t.LONG_QTY, volume if long else "0"), (t.SHORT_QTY, "0" if long else volume)]],
                    )
                ],
            )

    def _security_list(self, desk: Desk, fields: Fields) -> None:
        body, groups = security_list(fields, desk.venue.symbols())
        self._send(desk, "y", body, groups)

    # -- the clock: prices, triggers, expiries, fills in parts --------------------------------

    def _run_clock(self) -> None:
        tick = self.config.tick_interval_ms / 1000
        fill_every = self.config.fill_interval_ms / 1000
        next_fill = 0.0
        elapsed = 0.0
        step = min(tick, fill_every)
        while not self._stop.wait(step):
            elapsed += step
            try:
                if elapsed >= tick:
                    elapsed = 0.0
                    self._tick()
                next_fill += step
                if next_fill >= fill_every:
                    next_fill = 0.0
                    self._advance_parts()
            except Exception:
                log.exception("simulator clock step failed (continuing)")

    def _tick(self) -> None:
        with self._lock:
            self._tick_locked()

    def _tick_locked(self) -> None:
        now = datetime.now(UTC)
        moved: list[Quote] = []
        for spec in self.prices.symbols():
            if self.freeze_prices:
                quote = self.prices.quote(spec.symbol_id)
            else:
                before = self.prices.quote(spec.symbol_id)
                quote = self.prices.step(spec.symbol_id)
                if quote != before:
                    moved.append(quote)
            self._on_quote(quote, now)
        for desk in self.desks.values():
            self.send_executions(desk, desk.venue.expire_due(now))
        self._publish_quotes(moved)

    def _on_quote(self, quote: Quote, now: datetime) -> None:
        """Every account's resting orders see the one market."""
        for desk in self.desks.values():
            self.send_executions(desk, desk.venue.on_quote(quote, now))

    def set_quote(self, symbol_id: int, bid: Decimal, ask: Decimal) -> None:
        """Pin a price (control port) and execute whatever it crosses, as a market move would."""
        with self._lock:
            quote = self.prices.set_quote(symbol_id, bid, ask)
            self._on_quote(quote, datetime.now(UTC))
            self._publish_quotes([quote])

    def _publish_quotes(self, quotes: list[Quote]) -> None:
        """Hand the moved quotes to the QUOTE port (one call per tick), under the lock: in venue order."""
        if quotes and self.on_quotes is not None:
            try:
                self.on_quotes(quotes)
            except Exception:
                log.exception("forwarding quotes to the QUOTE port failed")

    def _advance_parts(self) -> None:
        with self._lock:
            now = datetime.now(UTC)
            for desk in self.desks.values():
                for order in desk.venue.working_orders():
                    if order.under_execution:
                        self.send_executions(desk, desk.venue.advance(order.order_id, now))

"""The FIX-free core of the cTrader (CSERVER) simulator: orders, matching, hedged positions, persistence.

The QuickFIX acceptor translates each request (D, F, G, H) into one call here and each result into FIX
messages: an `Execution` becomes an ExecutionReport (8), `NotFound` a BusinessMessageReject (j) and
`CancelRefused` an OrderCancelReject (9). Behaviour follows `ctrader-fix.md` §2.5 to 2.17:

* Market orders execute at once at the ask (buy) / bid (sell), or in parts through `advance` while the
  order is "under execution" (a cancel is then refused). Limit and stop orders rest until a quote crosses
  them, they expire at `expire_time` (GTD), and only they can be replaced.
* The account is hedged: every order belongs to a position (id allocated at acceptance when none is given).
  An opposite-side order with a position id reduces that position; without one it opens a new (hedge)
  position.
* With a `state_path`, every mutating call commits to sqlite (WAL) before it returns. The acceptor sends its
  answer only afterwards, so a SIGKILL never loses anything a client was told, and a new `Venue` on the same
  file resumes orders, positions and id counters. The file must be used with the same symbol catalogue and
  by one live `Venue` at a time.

Average prices (order `avg_px`, position `entry_price`) are volume-weighted and rounded half-even to one
digit more than the symbol's digits: a blend of prices is usually not on the price grid, and one extra digit
keeps it informative while bounded. An order's VWAP is computed from its exact `notional`, so many partial
fills never accumulate rounding.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, localcontext
from pathlib import Path

from fixadapter.model.enums import Side
from fixadapter.sim.prices import Quote, RandomWalk, SymbolSpec
from fixadapter.sim.records import (
    ZERO,
    CancelRefused,
    ExecKind,
    Execution,
    IdCounters,
    NotFound,
    OrderKind,
    PlaceRequest,
    VenueOrder,
    VenuePosition,
    VenueStatus,
    from_json,
    open_database,
    to_json,
)

__all__ = [
    "CancelRefused",
    "ExecKind",
    "Execution",
    "NotFound",
    "OrderKind",
    "PlaceRequest",
    "Side",
    "Venue",
    "VenueOrder",
    "VenuePosition",
    "VenueStatus",
]

FIRST_ORDER_ID = 5123456
FIRST_POSITION_ID = 47888800
VOLUME_STEP = Decimal("0.01")
# Far above any real order; keeps every Decimal operation exact within the arithmetic context below.
MAX_VOLUME_ADJUSTED_EXPONENT = 11
MAX_PRICE_ADJUSTED_EXPONENT = 9
_ARITHMETIC_PRECISION = 48
UNDER_EXECUTION_TEXT = "Order is under execution"
CANCEL_RESPONSE_TO_CANCEL = 1
CANCEL_RESPONSE_TO_REPLACE = 2


class Venue:
    """The simulated cTrader account: all public methods are serialised by one re-entrant lock."""

    def __init__(
        self,
        prices: RandomWalk,
        state_path: Path | None = None,
        partial_fill_parts: int = 1,
        shared_ids: IdCounters | None = None,
    ) -> None:
        """`shared_ids`: the server's, when it serves several accounts (their ids never collide)."""
        if partial_fill_parts < 1:
            raise ValueError(f"partial_fill_parts must be at least 1, was {partial_fill_parts}")
        self._prices = prices
        self._parts = partial_fill_parts
        self._lock = threading.RLock()
        self._orders: dict[int, VenueOrder] = {}
        self._positions: dict[int, VenuePosition] = {}
        self._working: set[int] = set()  # ids of NEW/PARTIALLY_FILLED orders: the book each quote scans
        self._next_ids = {"order_id": FIRST_ORDER_ID, "position_id": FIRST_POSITION_ID}
        self._shared_ids = shared_ids
        self._dirty_orders: set[int] = set()
        self._dirty_positions: set[int] = set()
        self._closed = False
        self._db = open_database(state_path) if state_path is not None else None
        if self._db is not None:
            self._load()
        if shared_ids is not None:
            for name, next_id in self._next_ids.items():
                shared_ids.reserve(name, next_id)

    # ---- requests -------------------------------------------------------------------------------------

    def place(self, req: PlaceRequest, now: datetime) -> list[Execution]:
        """Accept a new order (NEW, then TRADE if it executes at once) or reject it (`CODE:text`)."""
        with self._mutation(now):
            error = self._placement_error(req, now)
            if error is not None:
                return [self._execution(ExecKind.REJECTED, self._store_rejected(req, now), text=error)]
            order = self._store_accepted(req, now)
            executions = [self._execution(ExecKind.NEW, order)]
            if not order.under_execution:
                executions += self._match(order, self._prices.quote(order.symbol_id), now)
            return executions

    def advance(self, order_id: int, now: datetime) -> list[Execution]:
        """Execute the next part of a market order in parts; the last part takes the remainder."""
        with self._mutation(now):
            order = self._orders.get(order_id)
            if order is None or not order.is_working or not order.under_execution:
                return []
            quantity = _next_part(order.leaves_qty, order.fill_parts_left)
            order.fill_parts_left -= 1
            price = _market_price(order.side, self._prices.quote(order.symbol_id))
            return [self._fill(order, quantity, price, now)]

    def cancel(
        self, request_id: str, orig_cl_ord_id: str, order_id: int | None, now: datetime
    ) -> list[Execution] | NotFound | CancelRefused:
        """Cancel a working order (F), found by order id when given, else by original or current ClOrdID."""
        with self._mutation(now):
            order = self._target(request_id, orig_cl_ord_id, order_id)
            if isinstance(order, NotFound):
                return order
            if order.kind is OrderKind.MARKET:
                return CancelRefused(
                    request_id, dataclasses.replace(order), UNDER_EXECUTION_TEXT, CANCEL_RESPONSE_TO_CANCEL
                )
            self._finish(order, VenueStatus.CANCELLED, now)
            order.last_request_id = request_id
            return [self._execution(ExecKind.CANCELLED, order, orig_request_id=order.cl_ord_id)]

    def replace(
        self,
        request_id: str,
        orig_cl_ord_id: str,
        order_id: int | None,
        quantity: Decimal,
        price: Decimal | None,
        stop_price: Decimal | None,
        expire_time: datetime | None,
        now: datetime,
    ) -> list[Execution] | NotFound | CancelRefused:
        """Amend a working limit/stop order (G); `quantity` is the new total and None keeps a field as it is.

        A replace that makes the order marketable is followed by its TRADE.
        """
        with self._mutation(now):
            order = self._target(request_id, orig_cl_ord_id, order_id)
            if isinstance(order, NotFound):
                return order
            amendment = _Amendment(quantity, price, stop_price, expire_time)
            error = self._replace_error(order, amendment, now)
            if error is not None:
                snapshot = dataclasses.replace(order)
                return CancelRefused(request_id, snapshot, error, CANCEL_RESPONSE_TO_REPLACE)
            self._amend(order, amendment, self._spec(order.symbol_id), now)
            order.last_request_id = request_id
            executions = [self._execution(ExecKind.REPLACED, order)]
            return executions + self._match(order, self._prices.quote(order.symbol_id), now)

    def status(self, cl_ord_id: str, now: datetime) -> Execution | NotFound:
        """Current state of an order in any state (H), found by its original or current ClOrdID."""
        _require_utc(now)
        with self._lock:
            order = self._find_by_request_id(cl_ord_id, include_finished=True)
            if order is None:
                return NotFound(cl_ord_id, _not_found_by_cl_ord_id(cl_ord_id))
            return self._execution(ExecKind.STATUS, order, request_id=cl_ord_id)

    # ---- venue events ---------------------------------------------------------------------------------

    def on_quote(self, quote: Quote, now: datetime) -> list[Execution]:
        """Fill every resting limit/stop order of the quote's symbol that the quote crosses, by order id."""
        with self._mutation(now):
            executions: list[Execution] = []
            for order in self._sorted_working():
                if order.symbol_id == quote.symbol_id and order.kind is not OrderKind.MARKET:
                    executions += self._match(order, quote, now)
            return executions

    def expire_due(self, now: datetime) -> list[Execution]:
        """Expire working GTD orders whose expire_time has come."""
        with self._mutation(now):
            due = [o for o in self._sorted_working() if o.expire_time is not None and o.expire_time <= now]
            for order in due:
                self._finish(order, VenueStatus.EXPIRED, now)
            return [self._execution(ExecKind.EXPIRED, order) for order in due]

    def fill_part(self, order_id: int, quantity: Decimal, now: datetime) -> list[Execution]:
        """Scenario control: fill part of a resting limit/stop order now, at the price it would execute at.

        Real venues fill pending orders partially when liquidity is thin; the matcher itself always fills
        completely. `quantity` is capped to the leaves quantity; a non-working or market order gives [].
        """
        if not _is_valid_volume(quantity):
            raise ValueError(f"quantity must be a positive multiple of {VOLUME_STEP}, was {quantity}")
        with self._mutation(now):
            order = self._orders.get(order_id)
            if order is None or not order.is_working or order.kind is OrderKind.MARKET:
                return []
            price = _execution_price(order, self._prices.quote(order.symbol_id), crossing_required=False)
            if price is None:
                return []
            return [self._fill(order, min(quantity, order.leaves_qty), price, now)]

    def cancel_remainder(self, order_id: int, now: datetime, text: str | None = None) -> list[Execution]:
        """Scenario control: cancel the unfilled rest of a market order under execution (IOC rest, 39=4)."""
        with self._mutation(now):
            order = self._orders.get(order_id)
            if order is None or not order.is_working or not order.under_execution:
                return []
            self._finish(order, VenueStatus.CANCELLED, now)
            return [self._execution(ExecKind.CANCELLED, order, text=text)]

    # ---- queries --------------------------------------------------------------------------------------

    def working_orders(self) -> list[VenueOrder]:
        """Copies of the NEW/PARTIALLY_FILLED orders, by order id (what a mass status AF reports)."""
        with self._lock:
            return [dataclasses.replace(order) for order in self._sorted_working()]

    def order(self, order_id: int) -> VenueOrder | None:
        with self._lock:
            order = self._orders.get(order_id)
            return dataclasses.replace(order) if order is not None else None

    def positions(self) -> list[VenuePosition]:
        """Open positions by position id (what a RequestForPositions AN reports)."""
        with self._lock:
            return [self._positions[pid] for pid in sorted(self._positions)]

    def position(self, position_id: int) -> VenuePosition | None:
        """An open position, or None (never opened, or closed)."""
        with self._lock:
            return self._positions.get(position_id)

    def quote(self, symbol_id: int) -> Quote:
        return self._prices.quote(symbol_id)

    @property
    def prices(self) -> RandomWalk:
        return self._prices

    def set_partial_fill_parts(self, parts: int) -> None:
        """Market orders placed from now on execute in this many parts (a scenario switch)."""
        if parts < 1:
            raise ValueError(f"partial_fill_parts must be at least 1, was {parts}")
        with self._lock:
            self._parts = parts

    def all_orders(self) -> list[VenueOrder]:
        with self._lock:
            return [dataclasses.replace(self._orders[i]) for i in sorted(self._orders)]

    def symbols(self) -> tuple[SymbolSpec, ...]:
        return self._prices.symbols()

    def close(self) -> None:
        """Close the state file; further mutating calls raise RuntimeError. Safe to call twice."""
        with self._lock:
            self._closed = True
            if self._db is not None:
                self._db.close()
                self._db = None

    # ---- validation -----------------------------------------------------------------------------------

    def _placement_error(self, req: PlaceRequest, now: datetime) -> str | None:
        """The first reason to reject a D, as cTrader-like `CODE:description` text, or None."""
        spec = self._prices.spec(req.symbol_id)
        if spec is None:
            return f"SYMBOL_NOT_FOUND:Symbol with id {req.symbol_id} is not found."
        return (
            _volume_error(req.quantity, spec)
            or _price_fields_error(req.kind, req.price, req.stop_price, spec)
            or _expiry_error(req.kind, req.expire_time, now)
            or self._position_error(req)
            or self._duplicate_error(req.cl_ord_id)
        )

    def _position_error(self, req: PlaceRequest) -> str | None:
        """A named position must be open on the same symbol, and an opposite order must not exceed it.

        Closing more than the open volume is undocumented at cTrader (§2.17); refusing it is the safe choice.
        """
        if req.position_id is None:
            return None
        position = self._positions.get(req.position_id)
        if position is None or position.symbol_id != req.symbol_id:
            return f"POSITION_NOT_FOUND:Position with id {req.position_id} is not found."
        return _close_volume_error(position, req.side, req.quantity)

    def _duplicate_error(self, cl_ord_id: str) -> str | None:
        if self._find_by_request_id(cl_ord_id, include_finished=False) is not None:
            return f"INVALID_REQUEST:Order with clientOrderId={cl_ord_id} already exists."
        return None

    def _replace_error(self, order: VenueOrder, amendment: _Amendment, now: datetime) -> str | None:
        """The first reason to refuse a G on this working order, or None."""
        if order.kind is OrderKind.MARKET:
            return "INVALID_REQUEST:Only pending (limit or stop) orders can be amended."
        spec = self._spec(order.symbol_id)
        error = _volume_error(amendment.quantity, spec) or _expiry_error(
            order.kind, amendment.expire_time, now
        )
        if error is not None:
            return error
        if amendment.quantity <= order.cum_qty:
            return (
                f"TRADING_BAD_VOLUME:New volume {amendment.quantity} must be above "
                f"the filled volume {order.cum_qty}."
            )
        price = amendment.price if amendment.price is not None else order.price
        stop_price = amendment.stop_price if amendment.stop_price is not None else order.stop_price
        error = _price_fields_error(order.kind, price, stop_price, spec)
        position = self._positions.get(order.position_id)
        if error is None and position is not None:
            error = _close_volume_error(position, order.side, amendment.quantity - order.cum_qty)
        return error

    # ---- order book -----------------------------------------------------------------------------------

    def _store_rejected(self, req: PlaceRequest, now: datetime) -> VenueOrder:
        """Record a rejected D under a fresh order id, so H can still report it."""
        order = _order_from_request(req, self._allocate("order_id"), req.position_id or 0, now)
        order.status = VenueStatus.REJECTED
        self._add(order)
        return order

    def _store_accepted(self, req: PlaceRequest, now: datetime) -> VenueOrder:
        """Allocate ids (a new position id too when none is named, even for pending orders) and book it."""
        order_id = self._allocate("order_id")
        position_id = req.position_id if req.position_id is not None else self._allocate("position_id")
        order = _order_from_request(req, order_id, position_id, now)
        spec = self._spec(req.symbol_id)
        order.price = _quantize_optional(order.price, spec)
        order.stop_price = _quantize_optional(order.stop_price, spec)
        if order.kind is OrderKind.MARKET and self._parts > 1:
            order.fill_parts_left = self._parts
        self._add(order)
        return order

    def _match(self, order: VenueOrder, quote: Quote, now: datetime) -> list[Execution]:
        """Fill the whole leaves quantity if the quote crosses the order."""
        price = _execution_price(order, quote, crossing_required=True)
        if price is None or not order.is_working:
            return []
        return [self._fill(order, order.leaves_qty, price, now)]

    def _fill(self, order: VenueOrder, quantity: Decimal, price: Decimal, now: datetime) -> Execution:
        """Apply one fill to the order and its position, returning the TRADE."""
        digits = self._spec(order.symbol_id).digits
        with localcontext(prec=_ARITHMETIC_PRECISION):
            order.cum_qty += quantity
            order.notional += quantity * price
            order.avg_px = _round_average(order.notional / order.cum_qty, digits)
        order.transact_time = now
        if order.cum_qty >= order.quantity:
            self._finish(order, VenueStatus.FILLED, now)
        else:
            order.status = VenueStatus.PARTIALLY_FILLED
            self._dirty_orders.add(order.order_id)
        self._apply_to_position(order, quantity, price, digits)
        return self._execution(ExecKind.TRADE, order, last_qty=quantity, last_px=price)

    def _apply_to_position(self, order: VenueOrder, quantity: Decimal, price: Decimal, digits: int) -> None:
        """Open, increase, reduce or close the order's position (hedged model, §2.17)."""
        current = self._positions.get(order.position_id)
        if current is None:
            updated: VenuePosition | None = VenuePosition(
                order.position_id, order.symbol_id, order.side, quantity, price
            )
        elif current.side is order.side:
            updated = _increase(current, quantity, price, digits)
        else:
            updated = _reduce(current, quantity, price)
        if updated is None:
            del self._positions[order.position_id]
        else:
            self._positions[order.position_id] = updated
        self._dirty_positions.add(order.position_id)

    def _amend(self, order: VenueOrder, amendment: _Amendment, spec: SymbolSpec, now: datetime) -> None:
        order.quantity = amendment.quantity
        if amendment.price is not None:
            order.price = spec.quantize(amendment.price)
        if amendment.stop_price is not None:
            order.stop_price = spec.quantize(amendment.stop_price)
        if amendment.expire_time is not None:
            order.expire_time = amendment.expire_time
        order.transact_time = now
        self._dirty_orders.add(order.order_id)

    def _finish(self, order: VenueOrder, status: VenueStatus, now: datetime) -> None:
        """Move an order to a terminal status: it leaves the book and stops executing."""
        order.status = status
        order.fill_parts_left = 0
        order.transact_time = now
        self._working.discard(order.order_id)
        self._dirty_orders.add(order.order_id)

    def _execution(
        self,
        kind: ExecKind,
        order: VenueOrder,
        *,
        request_id: str | None = None,
        orig_request_id: str | None = None,
        last_qty: Decimal | None = None,
        last_px: Decimal | None = None,
        text: str | None = None,
    ) -> Execution:
        """Snapshot the order into an Execution; tag 11 defaults to the order's current ClOrdID."""
        return Execution(
            kind=kind,
            order=dataclasses.replace(order),
            request_id=request_id if request_id is not None else order.last_request_id,
            orig_request_id=orig_request_id,
            last_qty=last_qty,
            last_px=last_px,
            text=text,
        )

    # ---- lookups and ids ------------------------------------------------------------------------------

    def _target(self, request_id: str, orig_cl_ord_id: str, order_id: int | None) -> VenueOrder | NotFound:
        """The working order an F/G refers to; the order id wins when given (cTrader's preferred way)."""
        if order_id is not None:
            order = self._orders.get(order_id)
            text = f"ORDER_NOT_FOUND:Order with orderId:{order_id} isn't found"
        else:
            order = self._find_by_request_id(orig_cl_ord_id, include_finished=False)
            text = _not_found_by_cl_ord_id(orig_cl_ord_id)
        if order is None or not order.is_working:
            return NotFound(request_id, text)
        return order

    def _find_by_request_id(self, request_id: str, *, include_finished: bool) -> VenueOrder | None:
        """The order whose original or current ClOrdID is request_id: a working one first, else the latest.

        Only status requests (H) look through finished orders, the one search that grows with history.
        """
        sources = (self._sorted_working(), self._orders.values())
        for orders in sources if include_finished else sources[:1]:
            matches = [order for order in orders if request_id in (order.cl_ord_id, order.last_request_id)]
            if matches:
                return max(matches, key=lambda order: order.order_id)
        return None

    def _add(self, order: VenueOrder) -> None:
        self._orders[order.order_id] = order
        if order.is_working:
            self._working.add(order.order_id)
        self._dirty_orders.add(order.order_id)

    def _sorted_working(self) -> list[VenueOrder]:
        return [self._orders[order_id] for order_id in sorted(self._working)]

    def _allocate(self, id_name: str) -> int:
        """The next "order_id" or "position_id"; ids are never reused, even for rejected orders."""
        allocated = self._next_ids[id_name]
        if self._shared_ids is not None:
            allocated = self._shared_ids.allocate(id_name, allocated)
        self._next_ids[id_name] = allocated + 1
        return allocated

    def _spec(self, symbol_id: int) -> SymbolSpec:
        spec = self._prices.spec(symbol_id)
        if spec is None:
            raise KeyError(f"symbol id {symbol_id} is not in the catalogue the state file was written with")
        return spec

    # ---- persistence ----------------------------------------------------------------------------------

    @contextmanager
    def _mutation(self, now: datetime) -> Iterator[None]:
        """Serialise a mutating call and commit its changes before it returns.

        If the call or the commit fails, in-memory state is reloaded from the file, so memory never runs
        ahead of what was committed (without a file there is nothing to reload: such failures are bugs).
        """
        _require_utc(now)
        with self._lock:
            if self._closed:
                raise RuntimeError("the venue is closed")
            try:
                yield
                self._flush()
            except BaseException:
                self._dirty_orders.clear()
                self._dirty_positions.clear()
                self._load()
                raise

    def _flush(self) -> None:
        """Write the changed orders, positions and the id counters in one transaction."""
        if self._db is not None and (self._dirty_orders or self._dirty_positions):
            with self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO orders (order_id, data) VALUES (?, ?)",
                    [(oid, to_json(self._orders[oid])) for oid in sorted(self._dirty_orders)],
                )
                self._write_positions(self._db)
                self._db.executemany(
                    "INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)", self._next_ids.items()
                )
        self._dirty_orders.clear()
        self._dirty_positions.clear()

    def _write_positions(self, db: sqlite3.Connection) -> None:
        """Upsert open positions, delete closed ones."""
        for position_id in sorted(self._dirty_positions):
            position = self._positions.get(position_id)
            if position is None:
                db.execute("DELETE FROM positions WHERE position_id = ?", (position_id,))
            else:
                db.execute(
                    "INSERT OR REPLACE INTO positions (position_id, data) VALUES (?, ?)",
                    (position_id, to_json(position)),
                )

    def _load(self) -> None:
        """Replace the in-memory state with the committed state of the file."""
        if self._db is None:
            return
        self._orders.clear()
        self._positions.clear()
        self._working.clear()
        for (data,) in self._db.execute("SELECT data FROM orders ORDER BY order_id"):
            self._add(from_json(VenueOrder, data))
        for (data,) in self._db.execute("SELECT data FROM positions ORDER BY position_id"):
            position = from_json(VenuePosition, data)
            self._positions[position.position_id] = position
        self._next_ids = {"order_id": FIRST_ORDER_ID, "position_id": FIRST_POSITION_ID}
        self._next_ids.update(self._db.execute("SELECT name, value FROM counters"))
        self._dirty_orders.clear()


@dataclass(frozen=True)
class _Amendment:
    """The fields of a G; None keeps the order's current value."""

    quantity: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    expire_time: datetime | None


# ---- pure helpers ---------------------------------------------------------------------------------------


def _require_utc(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")


def _is_valid_volume(quantity: Decimal) -> bool:
    if not quantity.is_finite() or quantity <= 0 or quantity.adjusted() > MAX_VOLUME_ADJUSTED_EXPONENT:
        return False
    with localcontext(prec=_ARITHMETIC_PRECISION):
        return quantity == quantity.quantize(VOLUME_STEP)


def _volume_error(quantity: Decimal, spec: SymbolSpec) -> str | None:
    """Volumes are units with a precision of 0.01 (tag 38, §2.5), at least the symbol's minimum and in its
    steps ([INF] cTrader's code for a bad volume is Open API's TRADING_BAD_VOLUME)."""
    if not _is_valid_volume(quantity):
        return f"TRADING_BAD_VOLUME:Order volume {quantity} must be a positive multiple of {VOLUME_STEP}."
    if quantity < spec.min_volume:
        return (
            f"TRADING_BAD_VOLUME:Order volume {quantity} is less than the minimum volume "
            f"{spec.min_volume} of {spec.name}."
        )
    with localcontext(prec=_ARITHMETIC_PRECISION):
        if quantity % spec.volume_step != 0:
            return (
                f"TRADING_BAD_VOLUME:Order volume {quantity} is not a multiple of the volume step "
                f"{spec.volume_step} of {spec.name}."
            )
    return None


def _price_fields_error(
    kind: OrderKind, price: Decimal | None, stop_price: Decimal | None, spec: SymbolSpec
) -> str | None:
    """Limit needs a price (44), stop a stop price (99), market neither; no stop-limit exists at cTrader."""
    fields = (("price", price, kind is OrderKind.LIMIT), ("stop price", stop_price, kind is OrderKind.STOP))
    for name, value, needed in fields:
        if value is None:
            if needed:
                return f"INVALID_REQUEST:A {kind} order requires a {name}."
            continue
        if not needed:
            return f"INVALID_REQUEST:A {kind} order can't have a {name}."
        if not _is_valid_price(value, spec):
            return f"INVALID_REQUEST:The {name} {value} is not a valid positive price."
    return None


def _is_valid_price(value: Decimal, spec: SymbolSpec) -> bool:
    return value.is_finite() and value.adjusted() <= MAX_PRICE_ADJUSTED_EXPONENT and spec.quantize(value) > 0


def _expiry_error(kind: OrderKind, expire_time: datetime | None, now: datetime) -> str | None:
    """Only pending orders can be GTD (126), and the expiry must be a future UTC time."""
    if expire_time is None:
        return None
    if kind is OrderKind.MARKET:
        return "INVALID_REQUEST:A market order can't have an expiration time."
    if expire_time.tzinfo is None or expire_time.utcoffset() is None:
        return "INVALID_REQUEST:Expiration time must be a UTC timestamp."
    if expire_time <= now:
        return f"INVALID_REQUEST:Expiration time {expire_time.isoformat()} is in the past."
    return None


def _close_volume_error(position: VenuePosition, side: Side, quantity: Decimal) -> str | None:
    if side is not position.side and quantity > position.volume:
        return (
            f"TRADING_BAD_VOLUME:Order volume {quantity} exceeds the volume {position.volume} "
            f"of position {position.position_id}."
        )
    return None


def _not_found_by_cl_ord_id(cl_ord_id: str) -> str:
    return f"ORDER_NOT_FOUND:Order with clientOrderId={cl_ord_id} not found."


def _order_from_request(req: PlaceRequest, order_id: int, position_id: int, now: datetime) -> VenueOrder:
    return VenueOrder(
        order_id=order_id,
        cl_ord_id=req.cl_ord_id,
        symbol_id=req.symbol_id,
        side=req.side,
        kind=req.kind,
        quantity=req.quantity,
        price=req.price,
        stop_price=req.stop_price,
        expire_time=req.expire_time,
        position_id=position_id,
        label=req.label,
        status=VenueStatus.NEW,
        cum_qty=ZERO,
        avg_px=None,
        created_at=now,
        transact_time=now,
        last_request_id=req.cl_ord_id,
    )


def _quantize_optional(price: Decimal | None, spec: SymbolSpec) -> Decimal | None:
    return spec.quantize(price) if price is not None else None


def _market_price(side: Side, quote: Quote) -> Decimal:
    """Buys execute at the ask, sells at the bid."""
    return quote.ask if side is Side.BUY else quote.bid


def _execution_price(order: VenueOrder, quote: Quote, *, crossing_required: bool) -> Decimal | None:
    """The price the order executes at against quote, or None when a required crossing is missing.

    A buy limit executes when ask <= price and a sell limit when bid >= price, at the limit price. A buy
    stop triggers when ask >= stop price and a sell stop when bid <= stop price, at that quote.
    """
    buy = order.side is Side.BUY
    if order.kind is OrderKind.LIMIT and order.price is not None:
        crossed = quote.ask <= order.price if buy else quote.bid >= order.price
        return order.price if crossed or not crossing_required else None
    if order.kind is OrderKind.STOP and order.stop_price is not None:
        crossed = quote.ask >= order.stop_price if buy else quote.bid <= order.stop_price
        return _market_price(order.side, quote) if crossed or not crossing_required else None
    return _market_price(order.side, quote) if order.kind is OrderKind.MARKET else None


def _next_part(leaves: Decimal, parts_left: int) -> Decimal:
    """An equal share of the leaves in 0.01 steps (at least 0.01); the last part takes the remainder."""
    if parts_left <= 1:
        return leaves
    share = (leaves / parts_left).quantize(VOLUME_STEP, rounding=ROUND_DOWN)
    return min(max(share, VOLUME_STEP), leaves)


def _round_average(value: Decimal, digits: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-(digits + 1)), rounding=ROUND_HALF_EVEN)


def _increase(position: VenuePosition, quantity: Decimal, price: Decimal, digits: int) -> VenuePosition:
    with localcontext(prec=_ARITHMETIC_PRECISION):
        volume = position.volume + quantity
        entry = _round_average((position.entry_price * position.volume + price * quantity) / volume, digits)
    return dataclasses.replace(position, volume=volume, entry_price=entry)


def _reduce(position: VenuePosition, quantity: Decimal, price: Decimal) -> VenuePosition | None:
    """Reduce by an opposite fill (entry unchanged); None when closed.

    Placement refuses to close more than the open volume, but a resting order can outlive part of its
    position; its excess then opens the opposite side under the same id (the orphan-order hazard of §5 #9).
    """
    if quantity < position.volume:
        return dataclasses.replace(position, volume=position.volume - quantity)
    if quantity == position.volume:
        return None
    return dataclasses.replace(
        position, side=position.side.opposite, volume=quantity - position.volume, entry_price=price
    )


# ---- sqlite storage -------------------------------------------------------------------------------------

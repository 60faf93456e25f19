"""The FIX-free core of the cTrader (CSERVER) simulator: one account's orders, fills and positions.

The QuickFIX acceptor translates each request (D, F, G, H) into one call here and each result into FIX
messages: an `Execution` becomes an ExecutionReport (8), `NotFound` a BusinessMessageReject (j) and
`CancelRefused` an OrderCancelReject (9). Behaviour follows `ctrader-fix.md` §2.5 to 2.17:

* Market orders execute at once at the ask (buy) / bid (sell), or in parts through `advance` while the
  order is "under execution" (a cancel is then refused). Limit and stop orders rest until a quote crosses
  them, they expire at `expire_time` (GTD), and only they can be replaced.
* A stop-limit (Open API only: cTrader FIX has none) rests until its stop triggers as a stop's would; from
  then on it is a limit at its limit price under the same order id, filled when the trigger quote or a
  later one crosses that price. A quote that gaps past the limit triggers it and leaves it resting.
* Every fill costs the commission of the venue's `CommissionRule` (none without one), kept on its deal.
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

`Venue` holds the lock and sequences each call; the parts live beside it: refusals in `order_rules`,
crossing prices in `matching`, orders in `order_book`, positions in `hedging`, ids in `venue_ids` and the
state file in `venue_state`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal, localcontext
from pathlib import Path

from fixadapter.model.enums import Side
from fixadapter.sim.commission import CommissionRule
from fixadapter.sim.hedging import HedgedPositions
from fixadapter.sim.matching import execution_price, market_price, next_part, round_average, stop_reached
from fixadapter.sim.order_book import OrderBook, execution, order_from_request, quantize_optional
from fixadapter.sim.order_rules import (
    ARITHMETIC_PRECISION,
    NOT_AMENDABLE_TEXT,
    VOLUME_STEP,
    Amendment,
    amendment_error,
    duplicate_error,
    is_valid_volume,
    not_found_by_cl_ord_id,
    position_error,
    request_error,
    require_utc,
    symbol_not_found,
)
from fixadapter.sim.prices import Quote, RandomWalk, SymbolSpec
from fixadapter.sim.records import (
    ZERO,
    CancelRefused,
    DealStatus,
    ExecKind,
    Execution,
    IdCounters,
    NotFound,
    OrderKind,
    PlaceRequest,
    VenueDeal,
    VenueOrder,
    VenuePosition,
    VenueStatus,
)
from fixadapter.sim.venue_ids import FIRST_ORDER_ID, FIRST_POSITION_ID, IdAllocator
from fixadapter.sim.venue_state import VenueStateFile

__all__ = [
    "FIRST_ORDER_ID",
    "FIRST_POSITION_ID",
    "CancelRefused",
    "ExecKind",
    "Execution",
    "NotFound",
    "OrderKind",
    "PlaceRequest",
    "Side",
    "Venue",
    "VenueDeal",
    "VenueOrder",
    "VenuePosition",
    "VenueStatus",
]

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
        commission: CommissionRule | None = None,
    ) -> None:
        """`shared_ids`: the server's, when it serves several accounts (their ids never collide);
        `commission`: what each fill costs (None: nothing)."""
        if partial_fill_parts < 1:
            raise ValueError(f"partial_fill_parts must be at least 1, was {partial_fill_parts}")
        self._prices = prices
        self._parts = partial_fill_parts
        self._commission = commission
        self._lock = threading.RLock()
        self._book = OrderBook()
        self._positions = HedgedPositions()
        self._deals: dict[int, VenueDeal] = {}
        self._new_deals: list[VenueDeal] = []
        self._ids = IdAllocator(shared_ids)
        self._closed = False
        self._state = VenueStateFile(state_path) if state_path is not None else None
        if self._state is not None:
            self._load()
        self._ids.reserve_shared()

    # ---- requests -------------------------------------------------------------------------------------

    def place(self, req: PlaceRequest, now: datetime) -> list[Execution]:
        """Accept a new order (NEW, then TRADE if it executes at once) or reject it (`CODE:text`)."""
        with self._mutation(now):
            error = self._placement_error(req, now)
            if error is not None:
                return [execution(ExecKind.REJECTED, self._store_rejected(req, now), text=error)]
            order = self._store_accepted(req, now)
            executions = [execution(ExecKind.NEW, order)]
            if not order.under_execution:
                executions += self._match(order, self._prices.quote(order.symbol_id), now)
            return executions

    def advance(self, order_id: int, now: datetime) -> list[Execution]:
        """Execute the next part of a market order in parts; the last part takes the remainder."""
        with self._mutation(now):
            order = self._book.get(order_id)
            if order is None or not order.is_working or not order.under_execution:
                return []
            quantity = next_part(order.leaves_qty, order.fill_parts_left)
            order.fill_parts_left -= 1
            price = market_price(order.side, self._prices.quote(order.symbol_id))
            return [self._fill(order, quantity, price, now)]

    def cancel(
        self, request_id: str, orig_cl_ord_id: str, order_id: int | None, now: datetime
    ) -> list[Execution] | NotFound | CancelRefused:
        """Cancel a working order (F), found by order id when given, else by original or current ClOrdID."""
        with self._mutation(now):
            order = self._book.target(request_id, orig_cl_ord_id, order_id)
            if isinstance(order, NotFound):
                return order
            if order.kind is OrderKind.MARKET:
                return CancelRefused(
                    request_id, dataclasses.replace(order), UNDER_EXECUTION_TEXT, CANCEL_RESPONSE_TO_CANCEL
                )
            self._book.finish(order, VenueStatus.CANCELLED, now)
            order.last_request_id = request_id
            return [execution(ExecKind.CANCELLED, order, orig_request_id=order.cl_ord_id)]

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
            order = self._book.target(request_id, orig_cl_ord_id, order_id)
            if isinstance(order, NotFound):
                return order
            amendment = Amendment(quantity, price, stop_price, expire_time)
            error = self._replace_error(order, amendment, now)
            if error is not None:
                snapshot = dataclasses.replace(order)
                return CancelRefused(request_id, snapshot, error, CANCEL_RESPONSE_TO_REPLACE)
            self._book.amend(order, amendment, self._spec(order.symbol_id), now)
            order.last_request_id = request_id
            executions = [execution(ExecKind.REPLACED, order)]
            return executions + self._match(order, self._prices.quote(order.symbol_id), now)

    def status(self, cl_ord_id: str, now: datetime) -> Execution | NotFound:
        """Current state of an order in any state (H), found by its original or current ClOrdID."""
        require_utc(now)
        with self._lock:
            order = self._book.find_by_request_id(cl_ord_id, include_finished=True)
            if order is None:
                return NotFound(cl_ord_id, not_found_by_cl_ord_id(cl_ord_id))
            return execution(ExecKind.STATUS, order, request_id=cl_ord_id)

    # ---- venue events ---------------------------------------------------------------------------------

    def on_quote(self, quote: Quote, now: datetime) -> list[Execution]:
        """Fill every resting limit/stop order of the quote's symbol that the quote crosses, by order id;
        then close every position of the symbol whose stop loss or take profit the quote crosses."""
        with self._mutation(now):
            executions: list[Execution] = []
            for order in self._book.working():
                if order.symbol_id == quote.symbol_id and order.kind is not OrderKind.MARKET:
                    executions += self._match(order, quote, now)
            for position in self._positions.by_id():
                if position.symbol_id == quote.symbol_id:
                    executions += self._protect(position, quote, now)
            return executions

    def set_protection(
        self,
        position_id: int,
        stop_loss: Decimal | None,
        take_profit: Decimal | None,
        trailing_stop_loss: bool,
        now: datetime,
    ) -> VenuePosition | None:
        """Replace an open position's stop loss and take profit (None removes one); None if not open.

        A trailing stop keeps its distance from the current closing price (bid for a long, ask for a short).
        """
        with self._mutation(now):
            position = self._positions.get(position_id)
            if position is None:
                return None
            spec = self._spec(position.symbol_id)
            stop_loss = quantize_optional(stop_loss, spec)
            distance = None
            if trailing_stop_loss and stop_loss is not None:
                distance = abs(
                    market_price(position.side.opposite, self._prices.quote(spec.symbol_id)) - stop_loss
                )
            updated = dataclasses.replace(
                position,
                stop_loss=stop_loss,
                take_profit=quantize_optional(take_profit, spec),
                trailing_stop_loss=distance is not None,
                trailing_distance=distance,
            )
            self._positions.set_protection(updated)
            return updated

    def expire_due(self, now: datetime) -> list[Execution]:
        """Expire working GTD orders whose expire_time has come."""
        with self._mutation(now):
            due = [o for o in self._book.working() if o.expire_time is not None and o.expire_time <= now]
            for order in due:
                self._book.finish(order, VenueStatus.EXPIRED, now)
            return [execution(ExecKind.EXPIRED, order) for order in due]

    def fill_part(self, order_id: int, quantity: Decimal, now: datetime) -> list[Execution]:
        """Scenario control: fill part of a resting limit/stop order now, at the price it would execute at.

        Real venues fill pending orders partially when liquidity is thin; the matcher itself always fills
        completely. `quantity` is capped to the leaves quantity; a non-working or market order gives [].
        """
        if not is_valid_volume(quantity):
            raise ValueError(f"quantity must be a positive multiple of {VOLUME_STEP}, was {quantity}")
        with self._mutation(now):
            order = self._book.get(order_id)
            if order is None or not order.is_working or order.kind is OrderKind.MARKET:
                return []
            price = execution_price(order, self._prices.quote(order.symbol_id), crossing_required=False)
            if price is None:
                return []
            return [self._fill(order, min(quantity, order.leaves_qty), price, now)]

    def cancel_remainder(self, order_id: int, now: datetime, text: str | None = None) -> list[Execution]:
        """Scenario control: cancel the unfilled rest of a market order under execution (IOC rest, 39=4)."""
        with self._mutation(now):
            order = self._book.get(order_id)
            if order is None or not order.is_working or not order.under_execution:
                return []
            self._book.finish(order, VenueStatus.CANCELLED, now)
            return [execution(ExecKind.CANCELLED, order, text=text)]

    # ---- queries --------------------------------------------------------------------------------------

    def working_orders(self) -> list[VenueOrder]:
        """Copies of the NEW/PARTIALLY_FILLED orders, by order id (what a mass status AF reports)."""
        with self._lock:
            return [dataclasses.replace(order) for order in self._book.working()]

    def order(self, order_id: int) -> VenueOrder | None:
        with self._lock:
            order = self._book.get(order_id)
            return dataclasses.replace(order) if order is not None else None

    def set_order_protection(
        self,
        order_id: int,
        stop_loss: Decimal | None,
        take_profit: Decimal | None,
        relative_stop_loss: Decimal | None,
        relative_take_profit: Decimal | None,
        trailing_stop_loss: bool,
        now: datetime,
    ) -> VenueOrder | None:
        """Set a working order's protection (None: none), put on its position when it fills; None if the
        order is not working."""
        with self._mutation(now):
            order = self._book.get(order_id)
            if order is None or not order.is_working:
                return None
            spec = self._spec(order.symbol_id)
            order.stop_loss = quantize_optional(stop_loss, spec)
            order.relative_stop_loss = relative_stop_loss
            order.take_profit = quantize_optional(take_profit, spec)
            order.relative_take_profit = relative_take_profit
            order.trailing_stop_loss = trailing_stop_loss
            self._book.touch(order)
            return dataclasses.replace(order)

    def deals(self) -> list[VenueDeal]:
        """Every deal (fill) by deal id."""
        with self._lock:
            return [self._deals[deal_id] for deal_id in sorted(self._deals)]

    def positions(self) -> list[VenuePosition]:
        """Open positions by position id (what a RequestForPositions AN reports)."""
        with self._lock:
            return self._positions.by_id()

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
            return [dataclasses.replace(order) for order in self._book.by_id()]

    def symbols(self) -> tuple[SymbolSpec, ...]:
        return self._prices.symbols()

    def close(self) -> None:
        """Close the state file; further mutating calls raise RuntimeError. Safe to call twice."""
        with self._lock:
            self._closed = True
            if self._state is not None:
                self._state.close()
                self._state = None

    # ---- validation -----------------------------------------------------------------------------------

    def _placement_error(self, req: PlaceRequest, now: datetime) -> str | None:
        """The first reason to reject a D, as cTrader-like `CODE:description` text, or None."""
        spec = self._prices.spec(req.symbol_id)
        if spec is None:
            return symbol_not_found(req.symbol_id)
        return (
            request_error(req, spec, now) or self._position_error(req) or self._duplicate_error(req.cl_ord_id)
        )

    def _position_error(self, req: PlaceRequest) -> str | None:
        position = self._positions.get(req.position_id) if req.position_id is not None else None
        return position_error(req, position)

    def _duplicate_error(self, cl_ord_id: str) -> str | None:
        if self._book.find_by_request_id(cl_ord_id, include_finished=False) is not None:
            return duplicate_error(cl_ord_id)
        return None

    def _replace_error(self, order: VenueOrder, amendment: Amendment, now: datetime) -> str | None:
        """The first reason to refuse a G on this working order, or None."""
        if order.kind is OrderKind.MARKET:
            return NOT_AMENDABLE_TEXT
        spec = self._spec(order.symbol_id)
        return amendment_error(order, amendment, spec, self._positions.get(order.position_id), now)

    # ---- booking and filling --------------------------------------------------------------------------

    def _store_rejected(self, req: PlaceRequest, now: datetime) -> VenueOrder:
        """Record a rejected D under a fresh order id, so H can still report it."""
        order = order_from_request(req, self._ids.allocate("order_id"), req.position_id or 0, now)
        order.status = VenueStatus.REJECTED
        self._book.add(order)
        return order

    def _store_accepted(self, req: PlaceRequest, now: datetime, *, in_parts: bool = True) -> VenueOrder:
        """Allocate ids (a new position id too when none is named, even for pending orders) and book it."""
        order_id = self._ids.allocate("order_id")
        position_id = req.position_id if req.position_id is not None else self._ids.allocate("position_id")
        order = order_from_request(req, order_id, position_id, now)
        spec = self._spec(req.symbol_id)
        order.price = quantize_optional(order.price, spec)
        order.stop_price = quantize_optional(order.stop_price, spec)
        if order.kind is OrderKind.MARKET and self._parts > 1 and in_parts:
            order.fill_parts_left = self._parts
        self._book.add(order)
        return order

    def _match(self, order: VenueOrder, quote: Quote, now: datetime) -> list[Execution]:
        """Trigger a stop-limit whose stop the quote reaches; fill the whole leaves quantity if the quote
        crosses the order."""
        if order.kind is OrderKind.STOP_LIMIT and not order.triggered and stop_reached(order, quote):
            order.triggered = True
            self._book.touch(order)
        price = execution_price(order, quote, crossing_required=True)
        if price is None or not order.is_working:
            return []
        return [self._fill(order, order.leaves_qty, price, now)]

    def _fill(
        self,
        order: VenueOrder,
        quantity: Decimal,
        price: Decimal,
        now: datetime,
        *,
        server_event: bool = False,
    ) -> Execution:
        """Apply one fill to the order and its position, returning the TRADE."""
        spec = self._spec(order.symbol_id)
        digits = spec.digits
        with localcontext(prec=ARITHMETIC_PRECISION):
            order.cum_qty += quantity
            order.notional += quantity * price
            order.avg_px = round_average(order.notional / order.cum_qty, digits)
        order.transact_time = now
        if order.cum_qty >= order.quantity:
            self._book.finish(order, VenueStatus.FILLED, now)
        else:
            order.status = VenueStatus.PARTIALLY_FILLED
            self._book.touch(order)
        before, after = self._positions.apply_fill(order, quantity, price, digits, now)
        closing = before is not None and before.side is not order.side
        deal = VenueDeal(
            deal_id=self._ids.allocate("deal_id"),
            order_id=order.order_id,
            position_id=order.position_id,
            symbol_id=order.symbol_id,
            side=order.side,
            volume=order.quantity,
            filled_volume=quantity,
            price=price,
            created_at=order.created_at,
            executed_at=now,
            status=DealStatus.FILLED if order.status is VenueStatus.FILLED else DealStatus.PARTIALLY_FILLED,
            closed_entry_price=before.entry_price if closing and before is not None else None,
            closed_volume=min(quantity, before.volume) if closing and before is not None else None,
            commission=self._commission.charge(spec, quantity, price) if self._commission else ZERO,
        )
        self._deals[deal.deal_id] = deal
        self._new_deals.append(deal)
        return execution(
            ExecKind.TRADE,
            order,
            last_qty=quantity,
            last_px=price,
            deal=deal,
            position=after,
            server_event=server_event,
        )

    def _protect(self, position: VenuePosition, quote: Quote, now: datetime) -> list[Execution]:
        """Close `position` with a market order if the quote crosses its stop loss or take profit; move a
        trailing stop loss behind a price that went the position's way."""
        long = position.side is Side.BUY
        price = market_price(position.side.opposite, quote)
        stop, take = position.stop_loss, position.take_profit
        stopped = stop is not None and (price <= stop if long else price >= stop)
        taken = take is not None and (price >= take if long else price <= take)
        if not stopped and not taken:
            if position.trailing_stop_loss and position.trailing_distance is not None and stop is not None:
                trailed = price - position.trailing_distance if long else price + position.trailing_distance
                if (trailed > stop) if long else (trailed < stop):
                    self._positions.set_protection(dataclasses.replace(position, stop_loss=trailed))
            return []
        reason = "SL" if stopped else "TP"
        request = PlaceRequest(
            cl_ord_id=f"{reason}-{position.position_id}",  # a position closes once
            symbol_id=position.symbol_id,
            side=position.side.opposite,
            kind=OrderKind.MARKET,
            quantity=position.volume,
            position_id=position.position_id,
            label=position.label,
            closing=True,
        )
        order = self._store_accepted(request, now, in_parts=False)
        return [
            execution(ExecKind.NEW, order, server_event=True),
            self._fill(order, order.leaves_qty, price, now, server_event=True),
        ]

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
        require_utc(now)
        with self._lock:
            if self._closed:
                raise RuntimeError("the venue is closed")
            try:
                yield
                self._flush()
            except BaseException:
                self._book.forget_changes()
                self._positions.forget_changes()
                self._new_deals = []
                self._load()
                raise

    def _flush(self) -> None:
        """Write the changed orders, positions and the id counters in one transaction."""
        changed = self._book.has_changes() or self._positions.has_changes() or self._new_deals
        if self._state is not None and changed:
            self._state.commit(
                self._book.changes(), self._positions.changes(), self._ids.counters(), self._new_deals
            )
        self._book.forget_changes()
        self._positions.forget_changes()
        self._new_deals = []

    def _load(self) -> None:
        """Replace the in-memory state with the committed state of the file."""
        if self._state is None:
            return
        saved = self._state.load()
        self._book.restore(saved.orders)
        self._positions.restore(saved.positions)
        self._deals = {deal.deal_id: deal for deal in saved.deals}
        self._ids.restore(saved.counters)

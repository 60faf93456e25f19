"""The simulated venue's orders: every order it ever took, the working ones apart, and how F/G/H find them.

The working set is what each quote scans, so it stays small however long the history grows; the changed
set is what the next commit writes to the state file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from fixadapter.sim.order_rules import Amendment, not_found_by_cl_ord_id
from fixadapter.sim.prices import SymbolSpec
from fixadapter.sim.records import (
    ZERO,
    ExecKind,
    Execution,
    NotFound,
    PlaceRequest,
    VenueDeal,
    VenueOrder,
    VenuePosition,
    VenueStatus,
)


class OrderBook:
    """Orders by id; the working ones (NEW/PARTIALLY_FILLED) are also indexed for matching and lookups."""

    def __init__(self) -> None:
        self._orders: dict[int, VenueOrder] = {}
        self._working: set[int] = set()
        self._changed: set[int] = set()

    def get(self, order_id: int) -> VenueOrder | None:
        return self._orders.get(order_id)

    def add(self, order: VenueOrder) -> None:
        self._orders[order.order_id] = order
        if order.is_working:
            self._working.add(order.order_id)
        self._changed.add(order.order_id)

    def touch(self, order: VenueOrder) -> None:
        """Mark an order changed in place (still working) for the next commit."""
        self._changed.add(order.order_id)

    def finish(self, order: VenueOrder, status: VenueStatus, now: datetime) -> None:
        """Move an order to a terminal status: it leaves the book and stops executing."""
        order.status = status
        order.fill_parts_left = 0
        order.transact_time = now
        self._working.discard(order.order_id)
        self._changed.add(order.order_id)

    def amend(self, order: VenueOrder, amendment: Amendment, spec: SymbolSpec, now: datetime) -> None:
        order.quantity = amendment.quantity
        if amendment.price is not None:
            order.price = spec.quantize(amendment.price)
        if amendment.stop_price is not None:
            order.stop_price = spec.quantize(amendment.stop_price)
        if amendment.expire_time is not None:
            order.expire_time = amendment.expire_time
        order.transact_time = now
        self._changed.add(order.order_id)

    def working(self) -> list[VenueOrder]:
        """The working orders by order id (the order quotes and expiries are applied in)."""
        return [self._orders[order_id] for order_id in sorted(self._working)]

    def by_id(self) -> list[VenueOrder]:
        return [self._orders[order_id] for order_id in sorted(self._orders)]

    def target(self, request_id: str, orig_cl_ord_id: str, order_id: int | None) -> VenueOrder | NotFound:
        """The working order an F/G refers to; the order id wins when given (cTrader's preferred way)."""
        if order_id is not None:
            order = self._orders.get(order_id)
            text = f"ORDER_NOT_FOUND:Order with orderId:{order_id} isn't found"
        else:
            order = self.find_by_request_id(orig_cl_ord_id, include_finished=False)
            text = not_found_by_cl_ord_id(orig_cl_ord_id)
        if order is None or not order.is_working:
            return NotFound(request_id, text)
        return order

    def find_by_request_id(self, request_id: str, *, include_finished: bool) -> VenueOrder | None:
        """The order whose original or current ClOrdID is request_id: a working one first, else the latest.

        Only status requests (H) look through finished orders, the one search that grows with history.
        """
        sources = (self.working(), self._orders.values())
        for orders in sources if include_finished else sources[:1]:
            matches = [order for order in orders if request_id in (order.cl_ord_id, order.last_request_id)]
            if matches:
                return max(matches, key=lambda order: order.order_id)
        return None

    def changes(self) -> list[VenueOrder]:
        """The orders changed since the last commit, by order id."""
        return [self._orders[order_id] for order_id in sorted(self._changed)]

    def has_changes(self) -> bool:
        return bool(self._changed)

    def forget_changes(self) -> None:
        self._changed.clear()

    def restore(self, orders: Iterable[VenueOrder]) -> None:
        """Replace every order with those committed to the state file."""
        self._orders.clear()
        self._working.clear()
        for order in orders:
            self.add(order)
        self._changed.clear()


def order_from_request(req: PlaceRequest, order_id: int, position_id: int, now: datetime) -> VenueOrder:
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
        comment=req.comment,
        stop_loss=req.stop_loss,
        take_profit=req.take_profit,
        relative_stop_loss=req.relative_stop_loss,
        relative_take_profit=req.relative_take_profit,
        trailing_stop_loss=req.trailing_stop_loss,
        closing=req.closing,
        status=VenueStatus.NEW,
        cum_qty=ZERO,
        avg_px=None,
        created_at=now,
        transact_time=now,
        last_request_id=req.cl_ord_id,
    )


def quantize_optional(price: Decimal | None, spec: SymbolSpec) -> Decimal | None:
    return spec.quantize(price) if price is not None else None


def execution(
    kind: ExecKind,
    order: VenueOrder,
    *,
    request_id: str | None = None,
    orig_request_id: str | None = None,
    last_qty: Decimal | None = None,
    last_px: Decimal | None = None,
    text: str | None = None,
    deal: VenueDeal | None = None,
    position: VenuePosition | None = None,
    server_event: bool = False,
) -> Execution:
    """Snapshot the order into an Execution, so later changes never reach a report already handed out.

    Tag 11 defaults to the order's current ClOrdID.
    """
    return Execution(
        kind=kind,
        order=dataclasses.replace(order),
        request_id=request_id if request_id is not None else order.last_request_id,
        orig_request_id=orig_request_id,
        last_qty=last_qty,
        last_px=last_px,
        text=text,
        deal=deal,
        position=position,
        server_event=server_event,
    )

"""Position operations in: close a position (whole or in part) and amend its stop loss / take profit.

Both need the account's connector to have them (capabilities.close_position, .position_protection): one
without is refused here, naming the connector, before anything is stored. Both need the position open as
far as the engine knows (the venue's list after each logon and check, with the fills since on top).

A close is an order of this adapter: the closing market order (opposite side, the position's id) is
stored PENDING_NEW before the connector is asked, so its execution reports change it like any order's,
its fills move the position, and a retry with the same id gets it back instead of closing twice. An
amendment is not stored as a request: it changes no order. The venue's answer (a live PositionProtection,
also sent when the venue moves a trailing stop) is where the position stands: it is kept on the
position, stored and published with the positions.
"""

from __future__ import annotations

import logging
from typing import cast

from fixadapter.connectors.base import PositionConnector, TradeConnector
from fixadapter.engine.capability_check import close_refusal, protection_refusal
from fixadapter.engine.fanout import EventFanout
from fixadapter.engine.identity import order_terms
from fixadapter.engine.instruments import Catalog
from fixadapter.engine.known_orders import KnownOrders
from fixadapter.engine.order_entry import OrderEntry
from fixadapter.engine.position_keeper import PositionKeeper
from fixadapter.engine.readiness import Readiness
from fixadapter.engine.recorder import Recorder
from fixadapter.engine.store_thread import StoreThread
from fixadapter.errors import OrderNotFound, OrderRejected, SessionError
from fixadapter.metrics import Metrics
from fixadapter.model.enums import OrderEventKind, OrderStatus, OrderType, PositionSide, Side
from fixadapter.model.ids import IdAllocator
from fixadapter.model.orders import Order, OrderEvent, Position, PositionClose, PositionProtectionChange
from fixadapter.model.reports import PositionProtection
from fixadapter.model.requests import AmendPositionProtection, ClosePosition
from fixadapter.store.repository import OrderStore

log = logging.getLogger("fixadapter.engine")


class PositionEntry:
    def __init__(
        self,
        *,
        store: OrderStore,
        db: StoreThread,
        connector: TradeConnector,
        ids: IdAllocator,
        catalog: Catalog,
        known: KnownOrders,
        readiness: Readiness,
        recorder: Recorder,
        positions: PositionKeeper,
        entry: OrderEntry,
        fanout: EventFanout,
        metrics: Metrics,
    ) -> None:
        self._store = store
        self._db = db
        self._connector = connector
        self._ids = ids
        self._catalog = catalog
        self._known = known
        self._readiness = readiness
        self._recorder = recorder
        self._positions = positions
        self._entry = entry
        self._fanout = fanout
        self._metrics = metrics
        # The venue's last word on each position's protection (answers and its own changes).
        self.protection: dict[str, PositionProtection] = {}

    def _refuse(self, refusal: str | None) -> None:
        if refusal is not None:
            self._metrics.order_rejects.labels("adapter", "UNSUPPORTED").inc()
            raise OrderRejected(refusal)

    def _open_position(self, position_id: str) -> Position:
        for position in self._positions.all():
            if position.position_id == position_id:
                return position
        raise OrderNotFound(
            f"no open position {position_id} on this account (as of the venue's last list and the fills "
            "since); refresh the positions and try again"
        )

    async def close(self, request: ClosePosition) -> Order:
        """Store the closing order, then ask the connector to close; a retry with the same request_id gets
        that order back."""
        self._refuse(close_refusal(self._connector.capabilities))
        cl_ord_id = request.request_id or self._ids.next("X")
        existing = await self._known.get(cl_ord_id)
        if existing is not None:
            return self._same_close(existing, request)
        self._known.check_unused("ClOrdID", cl_ord_id)
        await self._readiness.wait()
        position = self._open_position(request.position_id)
        if request.quantity is not None and request.quantity > position.quantity:
            raise OrderRejected(
                f"quantity {request.quantity} is more than position {position.position_id} holds "
                f"({position.quantity}); leave quantity out to close all of it"
            )
        instrument = self._catalog.by_id(position.symbol_id)
        order = Order(
            cl_ord_id=cl_ord_id,
            symbol_id=position.symbol_id,
            symbol=instrument.name if instrument is not None else str(position.symbol_id),
            side=Side.SELL if position.side is PositionSide.LONG else Side.BUY,
            order_type=OrderType.MARKET,
            quantity=request.quantity or position.quantity,
            position_id=position.position_id,
            strategy=request.strategy,
        )
        self._known.track(order)
        try:
            if not await self._db.run(self._store.insert_order, order, order_terms(order)):
                raise OrderRejected(f"ClOrdID {cl_ord_id} collides with an existing order")
        except OrderRejected:
            self._known.track(order.moved_to(OrderStatus.REJECTED))
            raise
        self._known.remember(order)
        self._fanout.publish(OrderEvent(kind=OrderEventKind.SUBMITTED, order=order))
        close = PositionClose(
            cl_ord_id=cl_ord_id,
            position_id=position.position_id,
            symbol_id=position.symbol_id,
            side=order.side,
            quantity=order.quantity,
            whole=request.quantity is None or request.quantity == position.quantity,
        )
        self._recorder.sent(cl_ord_id)
        try:
            await cast(PositionConnector, self._connector).close_position(close)
        except SessionError as exc:
            return await self._entry.reject_unsent(order, str(exc))
        self._metrics.orders_submitted.inc()
        return order

    @staticmethod
    def _same_close(existing: Order, request: ClosePosition) -> Order:
        same = existing.position_id == request.position_id and existing.order_type is OrderType.MARKET
        if same and (request.quantity is None or request.quantity == existing.quantity):
            return existing
        raise OrderRejected(
            f"request id {existing.cl_ord_id} was used for another order; give the close a new request_id "
            "(the same id is only for retrying the same close)"
        )

    async def amend_protection(self, request: AmendPositionProtection) -> PositionProtectionChange:
        """Ask the venue to set the position's stop loss and take profit (None removes); its answer comes
        as a live PositionProtection, or a refusal."""
        self._refuse(protection_refusal(self._connector.capabilities))
        await self._readiness.wait()
        position = self._open_position(request.position_id)
        request_id = request.request_id or self._ids.next("P")
        self._known.check_unused("request id", request_id)
        change = PositionProtectionChange(
            request_id=request_id,
            position_id=position.position_id,
            stop_loss=request.stop_loss,
            take_profit=request.take_profit,
            trailing_stop_loss=request.trailing_stop_loss,
        )
        try:
            await cast(PositionConnector, self._connector).amend_position_protection(change)
        except SessionError as exc:
            raise OrderRejected(f"protection of position {position.position_id} not sent: {exc}") from exc
        return change

    async def on_protection(self, report: PositionProtection) -> None:
        """The venue's protection of a position (an answer, or its own change such as a trailing stop):
        kept on the position (stored, and published as a positions event) and as the last answer."""
        await self._positions.protect(report)
        self.protection[report.position_id] = report
        log.info(
            "position %s protection: stop loss %s%s, take profit %s (request %s)",
            report.position_id,
            report.stop_loss,
            " trailing" if report.trailing_stop_loss else "",
            report.take_profit,
            report.request_id,
        )

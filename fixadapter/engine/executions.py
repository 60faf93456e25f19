"""Venue execution reports applied to orders: the one path by which the venue's word changes an order.

Live reports, status answers and reconciliation's views all come here. A report seen before is dropped,
one that names an order but cannot be about it is refused (counted, alarmed), and so is a fill past
what the order has or was asked to have. A status answer is the venue's current view: a local state
that contradicts it is corrected, not ignored. An order the venue has and the store does not is adopted.
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal

from fixadapter.engine.identity import foreign_report, shown
from fixadapter.engine.inbox import Inbox
from fixadapter.engine.instruments import Catalog
from fixadapter.engine.known_orders import KnownOrders
from fixadapter.engine.position_keeper import PositionKeeper
from fixadapter.engine.recorder import Recorder
from fixadapter.engine.store_thread import StoreThread
from fixadapter.errors import ClientIdInUse, InvalidTransition
from fixadapter.metrics import Metrics
from fixadapter.model.corrections import contradiction, corrected
from fixadapter.model.enums import ExecKind, OrderEventKind, OrderType, Side
from fixadapter.model.orders import Order
from fixadapter.model.reconciliation import OrderStatusReport
from fixadapter.model.reports import ExecutionReport
from fixadapter.model.transitions import apply_execution, impossible_fill
from fixadapter.store.repository import OrderStore

log = logging.getLogger("fixadapter.engine")


class Executions:
    def __init__(
        self,
        *,
        store: OrderStore,
        db: StoreThread,
        known: KnownOrders,
        recorder: Recorder,
        positions: PositionKeeper,
        catalog: Catalog,
        inbox: Inbox,
        metrics: Metrics,
    ) -> None:
        self._store = store
        self._db = db
        self._known = known
        self._recorder = recorder
        self._positions = positions
        self._catalog = catalog
        self._inbox = inbox
        self._metrics = metrics

    async def on_execution(self, report: ExecutionReport, arrived: int | None) -> None:
        """A live execution report, in arrival order."""
        order = await self._known.find(report.cl_ord_id, report.order_id)
        if order is None:
            self._metrics.unmatched_reports.labels("execution_report").inc()
            log.warning(
                "execution report for no known order (ClOrdID %s, OrderID %s)",
                shown(report.cl_ord_id),
                shown(report.order_id),
            )
            return
        if self._foreign(order, report):
            return
        if arrived is not None:
            self._known.mark_live(order.cl_ord_id, arrived)
        await self.apply_report(order, report, arrived)

    def _foreign(self, order: Order, report: ExecutionReport) -> bool:
        """True (counted, alarmed) for a report that names `order` but cannot be about it."""
        owner = self._known.request(report.orig_cl_ord_id or "")
        foreign = foreign_report(order, report, owner.cl_ord_id if owner else None)
        if foreign is None:
            return False
        self._metrics.unmatched_reports.labels("mismatched_report").inc()
        key = shown(report.cl_ord_id or report.order_id)
        self._metrics.alarms.raise_alarm("mismatched_report", key, f"{foreign}: applied to no order")
        return True

    async def apply_report(self, order: Order, report: ExecutionReport, arrived: int | None = None) -> Order:
        """The one path by which a venue execution report changes an order (live and reconciliation)."""
        async with self._known.lock(order.cl_ord_id):
            return await self._apply_locked(self._known.latest(order), report, arrived)

    async def _apply_locked(self, order: Order, report: ExecutionReport, arrived: int | None) -> Order:
        unseen = self._recorder.unseen(report)
        if unseen is None:
            self._metrics.duplicate_reports.inc()
            return order
        report = unseen
        if self._refused_fill(order, report, self._most(order, report)):
            return order
        try:
            applied = apply_execution(order, report)
        except InvalidTransition as exc:
            self._metrics.invalid_transitions.inc()
            log.warning("ignored a report that contradicts the order's state: %s", exc)
            return order
        if applied is None:
            if report.kind is not ExecKind.STATUS:
                self._metrics.duplicate_reports.inc()
            return order
        record = self._recorder.record
        recorded = await record(applied.order, applied.kind, report, report.dedupe_key, applied.fill)
        if recorded and applied.fill is not None:
            await self._positions.fill(applied.order, applied.fill, arrived)
        return applied.order

    def _refused_fill(self, order: Order, report: ExecutionReport, most: Decimal) -> bool:
        """True (counted, alarmed, nothing stored) when `report` fills `order` in a way that cannot be."""
        refused = impossible_fill(order, report, most)
        if refused is None:
            return False
        reason, text = refused
        self._metrics.impossible_fills.labels(reason).inc()
        kind = "overfill" if reason == "overfill" else "impossible_fill"
        self._metrics.alarms.raise_alarm(kind, order.cl_ord_id, text)
        return True

    def _most(self, order: Order, report: ExecutionReport) -> Decimal:
        """The largest quantity the order has or was asked to have (a replace may have raised it)."""
        most = order.quantity
        if report.kind is ExecKind.REPLACED and report.quantity is not None:
            most = max(most, report.quantity)
        request = self._known.request(order.pending_request_id or "")
        if request is not None and request.quantity is not None:
            most = max(most, request.quantity)
        return most

    async def apply_status_answer(self, order: Order, answer: OrderStatusReport) -> bool:
        """The venue's answer about one order, applied after every live event that arrived before it;
        False when it is about no order of ours (counted, alarmed). An answer older than a live report
        applied since is not applied: the live report is the newer word of the venue."""
        await self._inbox.handled_through(answer.arrived)
        current = self._known.latest(order)
        if self._foreign(current, answer.report):
            return False
        await self.apply_venue_view(current, answer.report, answer.arrived)
        return True

    async def apply_venue_view(
        self, order: Order, report: ExecutionReport, arrived: int | None = None
    ) -> Order:
        """A status answer (reconciliation, status query): the venue's current view is the authority, so a
        local state that contradicts it is corrected (counted, alarmed) instead of ignored.

        An answer that arrived (`arrived`) before a live report applied since is not applied: the live
        report is the venue's newer word (a mass status listing an order partly filled, then its last
        fill, must not take the order back to partly filled)."""
        async with self._known.lock(order.cl_ord_id):
            current = self._known.latest(order)
            if arrived is not None and self._known.live_mark(order.cl_ord_id) > arrived:
                log.debug("status answer for %s is older than a live report applied since", order.cl_ord_id)
                return current
            why = contradiction(current, report)
            if why is None:
                return await self._apply_locked(current, report, arrived)
            # The venue's view is the authority, but not past its own quantity: that is no state to adopt.
            most = max(self._most(current, report), report.quantity or Decimal(0))
            if self._refused_fill(current, report, most):
                return current
            fixed, fill = corrected(current, report, why)
            self._metrics.reconcile_corrections.inc()
            self._metrics.alarms.raise_alarm("reconcile_corrected", current.cl_ord_id, why)
            key = f"corrected:{time.time_ns()}:{report.dedupe_key}"[:255]
            record = self._recorder.record
            if await record(fixed, OrderEventKind.RECONCILED, report, key, fill, reason=why) and fill:
                await self._positions.fill(fixed, fill, arrived)
            return fixed

    async def adopt_external(self, report: ExecutionReport) -> Order:
        """An order the venue has and the store does not (placed elsewhere): keep it, visibly."""
        instrument = self._catalog.by_id(report.symbol_id or 0)
        order = Order(
            cl_ord_id=report.orig_cl_ord_id or report.cl_ord_id or f"venue-{report.order_id}",
            order_id=report.order_id,
            symbol_id=report.symbol_id or 0,
            symbol=instrument.name if instrument else str(report.symbol_id),
            side=report.side or Side.BUY,
            order_type=report.order_type or OrderType.LIMIT,
            quantity=report.quantity or report.leaves_qty or Decimal(0),
            price=report.price,
            stop_price=report.stop_price,
            position_id=report.position_id,
            label=report.label,
            status=report.status,
            cum_qty=report.cum_qty or Decimal(0),
            avg_px=report.avg_px,
            reason="not placed through this adapter; adopted from the venue",
        )
        try:
            inserted = await self._db.run(self._store.insert_order, order)
        except ClientIdInUse as exc:  # its id names one of ours: kept under the venue's id instead
            log.warning("venue order %s adopted as venue-%s: %s", report.order_id, report.order_id, exc)
            order = order.model_copy(update={"cl_ord_id": f"venue-{report.order_id}"})
            inserted = await self._db.run(self._store.insert_order, order)
        if inserted:
            await self._recorder.record(order, OrderEventKind.RECONCILED, report, report.dedupe_key)
        return order

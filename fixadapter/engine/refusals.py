"""The venue's refusals: a cancel/replace refused restores its order; a new order refused ends REJECTED.

A refused request frees the order for the next one. The state it goes back to is the venue's when the
refusal names one, the state before the request otherwise, and working when that is not known (the
order was flagged unknown). A refusal about no order of ours is counted and logged, and changes nothing.
"""

from __future__ import annotations

import logging

from fixadapter.engine.known_orders import KnownOrders, never_acknowledged
from fixadapter.engine.recorder import Recorder
from fixadapter.errors import InvalidTransition
from fixadapter.metrics import Metrics
from fixadapter.model.enums import IN_FLIGHT_STATUSES, OrderEventKind, OrderStatus, RequestKind, VenueRequest
from fixadapter.model.orders import Order
from fixadapter.model.reports import BusinessReject, CancelRejected, RequestRefused
from fixadapter.model.transitions import reason_code

log = logging.getLogger("fixadapter.engine")


class Refusals:
    def __init__(self, known: KnownOrders, recorder: Recorder, metrics: Metrics) -> None:
        self._known = known
        self._recorder = recorder
        self._metrics = metrics

    async def refuse_request(
        self, order: Order, request_id: str, venue_status: OrderStatus | None, text: str | None
    ) -> None:
        """Restore `order` after its cancel/replace `request_id` was refused (the caller holds its lock)."""
        request = await self._known.load_request(request_id)
        replace = request is not None and request.kind is RequestKind.REPLACE
        if order.is_done:
            target = order.status
        elif venue_status is not None and venue_status not in IN_FLIGHT_STATUSES:
            target = venue_status
        elif order.status is OrderStatus.UNKNOWN:  # the state before is not known: refused means working
            target = OrderStatus.PARTIALLY_FILLED if order.cum_qty > 0 else OrderStatus.NEW
        else:
            target = order.previous_status or OrderStatus.NEW
        try:
            restored = order.moved_to(target, pending_request_id=None)
        except InvalidTransition as exc:
            self._metrics.invalid_transitions.inc()
            log.warning("cannot roll back after a refused request: %s", exc)
            return
        kind = OrderEventKind.REPLACE_REJECTED if replace else OrderEventKind.CANCEL_REJECTED
        self._metrics.order_rejects.labels("venue", reason_code(text)).inc()
        await self._recorder.record(
            restored, kind, None, f"refused:{request_id}", reason=text or "refused by the venue"
        )

    async def on_cancel_rejected(self, reject: CancelRejected) -> None:
        order = await self._known.find(reject.request_id, reject.order_id)
        if order is None:
            self._metrics.unmatched_reports.labels("cancel_reject").inc()
            log.warning("cancel reject for no known order: %s", reject.text)
            return
        async with self._known.lock(order.cl_ord_id):
            order = self._known.latest(order)
            await self.refuse_request(order, reject.request_id, reject.status, reject.text)

    async def on_business_reject(self, reject: BusinessReject) -> None:
        ref = reject.ref_id or ""
        order = await self._known.find(ref, None)
        if order is None:
            self._metrics.unmatched_reports.labels("business_reject").inc()
            log.warning("business reject for unknown reference %r: %s", ref, reject.text)
            return
        async with self._known.lock(order.cl_ord_id):
            order = self._known.latest(order)
            if ref != order.cl_ord_id:
                await self.refuse_request(order, ref, None, reject.text)
                return
            # (One answering our status query is kept by the connector: the venue has never seen it.)
            if never_acknowledged(order):
                rejected = order.moved_to(OrderStatus.REJECTED, reason=reject.text or "rejected by the venue")
                await self._recorder.record(rejected, OrderEventKind.REJECTED, None, f"reject:{ref}")

    async def on_request_refused(self, refused: RequestRefused) -> None:
        """A refusal tied by the connector to our request: the waiting query fails with the venue's reason,
        a new order (or a position's closing order) ends REJECTED, a cancel/replace is refused and its order
        restored; a refused protection change is logged and counted (it changed nothing)."""
        if refused.request is VenueRequest.AMEND_POSITION_PROTECTION:
            self._metrics.order_rejects.labels("venue", reason_code(refused.text)).inc()
            log.warning("the venue refused protection change %s: %s", refused.request_id, refused.text)
            return
        order = await self._known.find(refused.request_id, None)
        if order is None:
            self._metrics.unmatched_reports.labels("request_refused").inc()
            log.warning(
                "refusal of %s, an order this adapter does not know: %s", refused.request_id, refused.text
            )
            return
        async with self._known.lock(order.cl_ord_id):
            order = self._known.latest(order)
            if refused.request not in (VenueRequest.NEW_ORDER, VenueRequest.CLOSE_POSITION):
                if order.pending_request_id == refused.request_id:
                    await self.refuse_request(order, refused.request_id, None, refused.text)
                return
            if order.status not in (OrderStatus.PENDING_NEW, OrderStatus.UNKNOWN):
                log.warning("%s is already %s; ignored: %s", order.cl_ord_id, order.status, refused.text)
                return
            rejected = order.moved_to(OrderStatus.REJECTED, reason=refused.text)
            key = f"refused:{refused.request_id}"
            await self._recorder.record(rejected, OrderEventKind.REJECTED, None, key)

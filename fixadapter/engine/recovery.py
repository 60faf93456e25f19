"""Orders whose fate only the venue can settle, as the in-flight watch and reconciliation find them.

A cancel/replace never answered is decided from the venue's current view of the order; an order stored
but never sent (we crashed in between) is sent now if still young enough, rejected otherwise; an order
the venue no longer knows is closed; one the venue is silent about for too long is flagged unknown.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from fixadapter.config import OrdersConfig
from fixadapter.engine.known_orders import KnownOrders, never_acknowledged
from fixadapter.engine.order_entry import OrderEntry
from fixadapter.engine.recorder import Recorder
from fixadapter.engine.refusals import Refusals
from fixadapter.errors import SessionError
from fixadapter.metrics import Metrics
from fixadapter.model.enums import IN_FLIGHT_STATUSES, OrderEventKind, OrderStatus
from fixadapter.model.reports import ExecutionReport
from fixadapter.model.transitions import replace_took_effect

log = logging.getLogger("fixadapter.engine")


class Recovery:
    def __init__(
        self,
        *,
        config: OrdersConfig,
        known: KnownOrders,
        recorder: Recorder,
        refusals: Refusals,
        entry: OrderEntry,
        metrics: Metrics,
    ) -> None:
        self._config = config
        self._known = known
        self._recorder = recorder
        self._refusals = refusals
        self._entry = entry
        self._metrics = metrics

    async def settle_lost_request(self, cl_ord_id: str, venue: ExecutionReport | None, why: str) -> None:
        """A cancel/replace that was never answered, decided from the venue's current view of the order."""
        async with self._known.lock(cl_ord_id):
            order = await self._known.get(cl_ord_id)
            if order is None or order.pending_request_id is None:
                return
            request_id = order.pending_request_id
            request = await self._known.load_request(request_id)
            if venue is not None and request is not None and replace_took_effect(request, venue):
                terms = {
                    "quantity": venue.quantity,
                    "price": venue.price or order.price,
                    "stop_price": venue.stop_price or order.stop_price,
                }
                replaced = order.moved_to(venue.status, pending_request_id=None, **terms)
                key = f"replaced:{request_id}"
                await self._recorder.record(replaced, OrderEventKind.REPLACED, venue, key)
                return
            await self._refusals.refuse_request(order, request_id, venue.status if venue else None, why)

    async def send_unreceived(self, cl_ord_id: str, text: str | None, sent: bool = False) -> None:
        """A stored order the venue has never seen (we crashed between store and send): send it now, once,
        if it is still young enough to be wanted; otherwise reject it, saying so. One whose request was
        `sent` (and never answered) is rejected, never sent again: the venue may yet have it."""
        async with self._known.lock(cl_ord_id):
            order = await self._known.get(cl_ord_id)
            if order is None or not never_acknowledged(order):
                return
            if sent:
                why = f"sent and never answered, and the venue does not list it ({text or 'unknown to it'})"
                await self._entry.reject_unanswered_locked(order, why)
                return
            age = (datetime.now(UTC) - order.created_at).total_seconds()
            limit = self._config.resend_unreceived_within_seconds
            if age > limit:
                why = f"never reached the venue ({text or 'unknown to it'}); {age:.0f}s old, limit {limit:g}s"
                await self._entry.reject_unsent_locked(order, why)
                return
            log.warning("%s was stored but never reached the venue (%s): sending it now", cl_ord_id, text)
            try:
                await self._entry.send_when_ready(order)
            except SessionError as exc:
                await self._entry.reject_unsent_locked(order, str(exc))

    async def close_unknown(self, cl_ord_id: str, text: str | None, sent: bool = False) -> None:
        """An acknowledged order the venue no longer knows cannot be working: close it, saying why."""
        unacknowledged = await self._known.get(cl_ord_id)
        if unacknowledged is not None and never_acknowledged(unacknowledged):
            return await self.send_unreceived(cl_ord_id, text, sent)
        async with self._known.lock(cl_ord_id):
            order = await self._known.get(cl_ord_id)
            if order is None or order.is_done or never_acknowledged(order):
                return
            closed = order.moved_to(
                OrderStatus.CANCELLED,
                pending_request_id=None,
                reason=f"the venue no longer knows this order: {text or 'no reason given'}",
            )
            await self._recorder.record(closed, OrderEventKind.CANCELLED, None, f"unknown:{cl_ord_id}")

    async def flag_unknown(self, cl_ord_id: str, silent_for: float) -> None:
        """No answer from the venue for too long (no report, none to status queries): say so, visibly.
        The order stays open (the kill switch still cancels it) and any later answer resolves it."""
        async with self._known.lock(cl_ord_id):
            order = await self._known.get(cl_ord_id)
            if order is None or order.status not in IN_FLIGHT_STATUSES:
                return
            why = (
                f"no answer from the venue for {silent_for:.0f}s while {order.status} (no report, none to "
                "status queries): its state at the venue is unknown; it is still asked for, and the kill "
                "switch still cancels it; check it with the broker"
            )
            flagged = order.moved_to(OrderStatus.UNKNOWN, reason=why)
            key = f"flagged-unknown:{cl_ord_id}:{time.time_ns()}"[:255]
            self._metrics.alarms.raise_alarm("unknown_order", cl_ord_id, why)  # up when consumers hear of it
            await self._recorder.record(flagged, OrderEventKind.UNKNOWN, None, key, reason=why)

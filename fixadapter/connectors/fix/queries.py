"""FIX questions and their answers: AF/AN/x/H/F-without-order sent here, their answers gathered here.

The venue answers a request with one or several messages (one ER per working order, one AP per
position) announcing the total in each (TotNumReports); a question completes when that many have
arrived. cTrader's BusinessMessageReject (j) with reason 0 means "none" for a mass status or positions
request and "not found" for a status request; any other reason, or a refusal tied back by RefSeqNum
(RequestRefused), is a refusal with the venue's reason.

Every report the venue sends passes `take` first, on the event loop's thread and in arrival order: an
answer is kept here and never reaches the engine's inbox. A question whose key is still open is refused
(RequestAlreadyOpen), never silently replaced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from fixadapter.connectors.base import RequestAlreadyOpen
from fixadapter.errors import OrderRejected, SessionNotReady, VenueRefused
from fixadapter.model.enums import Channel, ExecKind, PositionSide, SessionState, VenueRequest
from fixadapter.model.orders import Order, Position
from fixadapter.model.reconciliation import (
    MassStatus,
    OrderStatusAnswer,
    OrderStatusReport,
    OrderUnknown,
    PositionsReport,
    arrival_mark,
)
from fixadapter.model.reports import (
    BusinessReject,
    CancelRejected,
    ConnectionStatus,
    ExecutionReport,
    Instrument,
    PositionReport,
    RequestRefused,
    SecurityListReport,
    VenueReport,
)

log = logging.getLogger("fixadapter.fix")
T = TypeVar("T")
Send = Callable[[], None]

# The key a refused request of each kind waits under.
_REFUSED_PREFIX = {
    VenueRequest.STATUS: "status:",
    VenueRequest.MASS_STATUS: "mass:",
    VenueRequest.POSITIONS: "positions:",
    VenueRequest.INSTRUMENTS: "instruments:",
}


@dataclass
class Collection(Generic[T]):
    """The messages answering one request; complete when `total` have arrived (or `finish`)."""

    future: asyncio.Future[list[T]]
    items: list[T] = field(default_factory=list)
    arrived: int = 0  # arrival_mark() when it completed

    def add(self, item: T, total: int | None) -> None:
        self.items.append(item)
        if total is not None and len(self.items) >= total:
            self.finish()

    def finish(self) -> None:
        if not self.future.done():
            self.arrived = arrival_mark()
            self.future.set_result(self.items)

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


class PendingRequests:
    """Open questions by key. A key already open is refused; the entry leaves when its answer is taken."""

    def __init__(self) -> None:
        self._open: dict[str, Collection[object]] = {}

    def open(self, key: str) -> Collection[object]:
        if key in self._open:
            raise RequestAlreadyOpen(f"request {key} is already waiting for its answer; not sent again")
        collection: Collection[object] = Collection(asyncio.get_running_loop().create_future())
        self._open[key] = collection
        collection.future.add_done_callback(lambda _f: self._close(key, collection))
        return collection

    def _close(self, key: str, collection: Collection[object]) -> None:
        if self._open.get(key) is collection:
            del self._open[key]

    def get(self, key: str) -> Collection[object] | None:
        return self._open.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self._open

    def __len__(self) -> int:
        return len(self._open)

    def fail_all(self, error: BaseException) -> None:
        for collection in list(self._open.values()):
            collection.fail(error)


def positions_from(reports: list[PositionReport]) -> tuple[Position, ...]:
    """Position reports (AP) -> positions; the 'no open positions' answer gives none."""
    positions = []
    for report in reports:
        if report.no_positions or report.position_id is None:
            continue
        long = report.long_qty > 0
        positions.append(
            Position(
                position_id=report.position_id,
                symbol_id=report.symbol_id or 0,
                side=PositionSide.LONG if long else PositionSide.SHORT,
                quantity=report.long_qty if long else report.short_qty,
                entry_price=report.entry_price,
                stop_loss=report.stop_loss,
                take_profit=report.take_profit,
            )
        )
    return tuple(positions)


class FixQueries:
    """The questions of one TRADE session: each sends its request through `send` and awaits its answer."""

    def __init__(self) -> None:
        self.pending = PendingRequests()
        self._status_by_venue_id: dict[str, str] = {}  # OrderID -> ClOrdID of an order asked for

    # -- asking -------------------------------------------------------------------------------

    async def ask(self, key: str, send: Send) -> Collection[object]:
        """Send one request and wait for its complete answer (the caller bounds the wait)."""
        answer = self.pending.open(key)
        try:
            send()
            await answer.future
            return answer
        finally:
            answer.future.cancel()  # a no-op once answered; otherwise it closes the request

    async def instruments(self, request_id: str, send: Send) -> list[Instrument]:
        answer = await self.ask(f"instruments:{request_id}", send)
        reports = [r for r in answer.items if isinstance(r, SecurityListReport)]
        if reports and not any(report.ok for report in reports):
            raise VenueRefused(
                "the venue refused the security list request (its answer lists no instruments)"
            )
        return [i for report in reports if report.ok for i in report.instruments]

    async def mass_status(self, request_id: str, send: Send) -> MassStatus:
        answer = await self.ask(f"mass:{request_id}", send)
        orders = tuple(r for r in answer.items if isinstance(r, ExecutionReport))
        return MassStatus(orders=orders, arrived=answer.arrived)

    async def positions(self, request_id: str, send: Send) -> PositionsReport:
        answer = await self.ask(f"positions:{request_id}", send)
        reports = [r for r in answer.items if isinstance(r, PositionReport)]
        return PositionsReport(positions=positions_from(reports), arrived=answer.arrived)

    async def order_status(self, order: Order, send: Send) -> OrderStatusAnswer:
        """The venue's view of `order` (any report about it while asked is its answer)."""
        venue_id = order.order_id
        if venue_id is not None:
            self._status_by_venue_id[venue_id] = order.cl_ord_id
        try:
            answer = await self.ask(f"status:{order.cl_ord_id}", send)
        finally:
            if venue_id is not None and self._status_by_venue_id.get(venue_id) == order.cl_ord_id:
                del self._status_by_venue_id[venue_id]
        (item,) = answer.items
        if isinstance(item, ExecutionReport):
            return OrderStatusReport(report=item, arrived=answer.arrived)
        text = item.text if isinstance(item, BusinessReject) else None
        return OrderUnknown(cl_ord_id=order.cl_ord_id, text=text, arrived=answer.arrived)

    async def cancel_unknown(self, request_id: str, send: Send) -> ExecutionReport:
        answer = await self.ask(f"cancel:{request_id}", send)
        (item,) = answer.items
        if not isinstance(item, ExecutionReport):
            raise TypeError(f"a cancel is answered by an execution report, not {type(item).__name__}")
        return item

    def is_asking_status(self, cl_ord_id: str) -> bool:
        return f"status:{cl_ord_id}" in self.pending

    # -- answers ------------------------------------------------------------------------------

    def take(self, report: VenueReport) -> bool:
        """True when `report` answers an open question (kept here); False: a live event for the engine."""
        if isinstance(report, ExecutionReport):
            return self._execution(report)
        if isinstance(report, BusinessReject):
            return self._business_reject(report)
        if isinstance(report, RequestRefused):
            return self._refused(report)
        if isinstance(report, CancelRejected):
            return self._cancel_rejected(report)
        if isinstance(report, PositionReport | SecurityListReport):
            self._listed(report)
            return True
        if isinstance(report, ConnectionStatus):
            self._session(report)
        return False

    def _session(self, status: ConnectionStatus) -> None:
        if status.channel is Channel.TRADING and status.state is not SessionState.LOGGED_ON:
            self.pending.fail_all(
                SessionNotReady(f"TRADE logged out{': ' + status.text if status.text else ''}")
            )

    def _cancel_rejected(self, reject: CancelRejected) -> bool:
        untracked = self.pending.get(f"cancel:{reject.request_id}")
        if untracked is None:
            return False
        untracked.fail(OrderRejected(f"the venue refused the cancel: {reject.text}"))
        return True

    def _execution(self, report: ExecutionReport) -> bool:
        if report.mass_status_id is not None:
            collection = self.pending.get(f"mass:{report.mass_status_id}")
            if collection is not None:
                collection.add(report, report.total_reports)
                return True
        untracked = self.pending.get(f"cancel:{report.cl_ord_id}")
        if untracked is not None:
            untracked.add(report, 1)
            return True
        waiter = self._status_waiter(report)
        if waiter is None:
            return False
        if report.kind is not ExecKind.STATUS:
            # cTrader answers H for a working order with an ER that looks like its acknowledgement.
            report = report.model_copy(update={"kind": ExecKind.STATUS})
        waiter.add(report, 1)
        return True

    def _status_waiter(self, report: ExecutionReport) -> Collection[object] | None:
        for cl_ord_id in (report.cl_ord_id, report.orig_cl_ord_id):
            if cl_ord_id:
                waiter = self.pending.get(f"status:{cl_ord_id}")
                if waiter is not None:
                    return waiter
        asked = self._status_by_venue_id.get(report.order_id)
        return self.pending.get(f"status:{asked}") if asked is not None else None

    def _business_reject(self, reject: BusinessReject) -> bool:
        ref = reject.ref_id or ""
        for prefix, what in (("mass:", "mass status"), ("positions:", "positions")):
            collection = self.pending.get(prefix + ref)
            if collection is None:
                continue
            if reject.reason != 0:  # cTrader's "none" is reason 0 (Other)
                collection.fail(VenueRefused(f"the venue refused the {what} request: {reject.text}"))
            else:
                collection.finish()  # cTrader's way of saying "no working orders" / "no positions"
            return True
        untracked = self.pending.get(f"cancel:{ref}")
        if untracked is not None:
            untracked.fail(OrderRejected(f"the venue refused the cancel: {reject.text}"))
            return True
        waiter = self.pending.get(f"status:{ref}")
        if waiter is not None:
            waiter.add(reject, 1)  # the venue does not know the order
            return True
        return False

    def _refused(self, refused: RequestRefused) -> bool:
        prefix = _REFUSED_PREFIX.get(refused.request)
        if prefix is not None:
            collection = self.pending.get(prefix + refused.request_id)
            if collection is not None:
                collection.fail(VenueRefused(refused.text))
            else:
                log.warning("refusal of a finished %s request: %s", refused.request.value, refused.text)
            return True
        untracked = self.pending.get(f"cancel:{refused.request_id}")
        if untracked is not None:
            untracked.fail(OrderRejected(refused.text))
            return True
        return False

    def _listed(self, report: PositionReport | SecurityListReport) -> None:
        if isinstance(report, SecurityListReport):
            instruments = self.pending.get(f"instruments:{report.request_id}")
            if instruments is not None:
                instruments.add(report, 1)
            return
        collection = self.pending.get(f"positions:{report.request_id}")
        if collection is None:
            log.debug("position report for a finished request %s", report.request_id)
        elif report.no_positions:
            collection.finish()
        else:
            collection.add(report, report.total_reports)

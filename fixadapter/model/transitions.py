"""How one venue report changes one order: a pure function, shared by live and reconciliation paths."""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from fixadapter.model.enums import ExecKind, OrderEventKind, OrderStatus, RequestKind
from fixadapter.model.orders import Fill, Order, OrderRequest, utc_now
from fixadapter.model.reports import ExecutionReport

PRICE_PLACES = Decimal("1e-10")

# What a status report (H / mass status answer, reconciliation) means when it moves an order.
_STATUS_EVENT: dict[OrderStatus, OrderEventKind] = {
    OrderStatus.NEW: OrderEventKind.ACCEPTED,
    OrderStatus.PARTIALLY_FILLED: OrderEventKind.PARTIALLY_FILLED,
    OrderStatus.FILLED: OrderEventKind.FILLED,
    OrderStatus.CANCELLED: OrderEventKind.CANCELLED,
    OrderStatus.REJECTED: OrderEventKind.REJECTED,
    OrderStatus.EXPIRED: OrderEventKind.EXPIRED,
}
_KIND_EVENT: dict[ExecKind, OrderEventKind] = {
    ExecKind.ACCEPTED: OrderEventKind.ACCEPTED,
    ExecKind.CANCELLED: OrderEventKind.CANCELLED,
    ExecKind.REPLACED: OrderEventKind.REPLACED,
    ExecKind.REJECTED: OrderEventKind.REJECTED,
    ExecKind.EXPIRED: OrderEventKind.EXPIRED,
}


_FINISHING_WITH_FILL: dict[OrderStatus, OrderEventKind] = {
    OrderStatus.CANCELLED: OrderEventKind.CANCELLED,
    OrderStatus.EXPIRED: OrderEventKind.EXPIRED,
}
_AWAITING_ANSWER = (OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE)
_WORKING = (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


class Applied(NamedTuple):
    order: Order
    kind: OrderEventKind
    fill: Fill | None


def apply_execution(order: Order, report: ExecutionReport) -> Applied | None:
    """Move `order` by `report`; None when the report changes nothing (a duplicate or a stale echo).

    Fills are derived from the increase of CumQty, so a report seen twice under two different keys
    still cannot fill twice. Raises InvalidTransition for a report that contradicts the order's state.
    """
    fill = _fill_from(order, report)
    if report.kind is ExecKind.STATUS and order.status in _AWAITING_ANSWER and report.status in _WORKING:
        if fill is None:
            return None  # still working: the cancel/replace answer (or its timeout) decides
        report = report.model_copy(update={"status": order.status})  # the fill, and still awaiting
    changes: dict[str, object] = {"order_id": report.order_id or order.order_id}
    if report.position_id:
        changes["position_id"] = report.position_id
    if fill is not None:
        changes["cum_qty"] = report.cum_qty
        changes["avg_px"] = report.avg_px if report.avg_px is not None else fill.price
    if report.kind is ExecKind.REPLACED:
        changes.update(_replaced_terms(order, report))
    if report.kind in (ExecKind.CANCELLED, ExecKind.REPLACED) or report.status in (
        OrderStatus.FILLED,
        OrderStatus.CANCELLED,
        OrderStatus.EXPIRED,
    ):
        changes["pending_request_id"] = None
    if report.kind is ExecKind.REJECTED or report.status is OrderStatus.REJECTED:
        changes["reason"] = report.text or "rejected by the venue without a reason"
    kind = _event_kind(order, report, fill)
    if kind is None:
        return None
    return Applied(order.moved_to(report.status, **changes), kind, fill)


def _event_kind(order: Order, report: ExecutionReport, fill: Fill | None) -> OrderEventKind | None:
    if fill is not None:
        if report.status in _FINISHING_WITH_FILL:  # e.g. an IOC's rest cancelled in the same report
            return _FINISHING_WITH_FILL[report.status]
        if report.kind is ExecKind.REPLACED:
            return OrderEventKind.REPLACED
        done = report.status is OrderStatus.FILLED
        return OrderEventKind.FILLED if done else OrderEventKind.PARTIALLY_FILLED
    if report.kind is ExecKind.REPLACED:
        unchanged = all(getattr(order, k) == v for k, v in _replaced_terms(order, report).items())
        if unchanged and report.status == order.status and order.pending_request_id is None:
            return None  # the same replace reported again
        return OrderEventKind.REPLACED
    if report.status == order.status:
        return None
    if report.kind in (ExecKind.STATUS, ExecKind.TRADE):
        return _STATUS_EVENT.get(report.status)
    return _KIND_EVENT.get(report.kind)


def _replaced_terms(order: Order, report: ExecutionReport) -> dict[str, object]:
    return {
        "quantity": report.quantity if report.quantity is not None else order.quantity,
        "price": report.price if report.price is not None else order.price,
        "stop_price": report.stop_price if report.stop_price is not None else order.stop_price,
        "expire_time": report.expire_time if report.expire_time is not None else order.expire_time,
    }


def impossible_fill(order: Order, report: ExecutionReport, most: Decimal) -> tuple[str, str] | None:
    """(reason, text) when `report` fills `order` in a way that cannot be ours: more than `most` (the
    largest quantity the order has or was asked to have) or on the other side; None otherwise."""
    if report.cum_qty is None or report.cum_qty <= order.cum_qty:
        return None  # no new quantity: nothing filled (a lower CumQty is a stale echo, a no-op)
    if report.cum_qty > most:
        return "overfill", (
            f"the venue reports CumQty {report.cum_qty} (LeavesQty {report.leaves_qty}) on order "
            f"{order.cl_ord_id} of {most}: an overfill, not applied; compare with the venue's records"
        )
    if report.side is not None and report.side is not order.side:
        return "side", (
            f"the venue reports a {report.side} fill of {report.cum_qty} on {order.side} order "
            f"{order.cl_ord_id}: not applied; compare with the venue's records"
        )
    return None


def _fill_from(order: Order, report: ExecutionReport) -> Fill | None:
    if report.cum_qty is None or report.cum_qty <= order.cum_qty:
        return None
    quantity = report.cum_qty - order.cum_qty
    # The deal's own price when the report is that one deal (its quantity is the whole increase).
    own = report.last_px is not None and report.last_qty == quantity
    price = report.last_px if own and report.last_px is not None else _last_price(order, report, quantity)
    return Fill(
        fill_id=report.dedupe_key,
        cl_ord_id=order.cl_ord_id,
        order_id=report.order_id,
        symbol_id=order.symbol_id,
        side=order.side,
        quantity=quantity,
        price=price,
        time=report.transact_time or utc_now(),
        commission=report.commission if own else None,
        swap=report.swap if own else None,
    )


def _last_price(order: Order, report: ExecutionReport, quantity: Decimal) -> Decimal:
    """Price of the newest quantity: the change of the notional (AvgPx x CumQty) over the quantity added."""
    if report.avg_px is None:
        return report.price or order.price or order.stop_price or Decimal(0)
    before = (order.avg_px or Decimal(0)) * order.cum_qty
    after = report.avg_px * (report.cum_qty or Decimal(0))
    return ((after - before) / quantity).quantize(PRICE_PLACES).normalize()


def replace_took_effect(request: OrderRequest, venue: ExecutionReport) -> bool:
    if request.kind is not RequestKind.REPLACE or venue.quantity != request.quantity:
        return False
    price_ok = request.price is None or venue.price == request.price
    return price_ok and (request.stop_price is None or venue.stop_price == request.stop_price)


def reason_code(text: str | None) -> str:
    if not text:
        return "UNSPECIFIED"
    head = text.split(":", 1)[0].strip()
    return head if head.replace("_", "").isalnum() and head.isupper() else "OTHER"


def event_reason(kind: OrderEventKind, order: Order) -> str | None:
    return order.reason if kind is OrderEventKind.REJECTED else None

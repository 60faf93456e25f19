"""The venue's answer to "what is this order now?" overriding ours: reconciliation's correction path.

Live reports keep the strict transition table (a report out of order must not move an order back). A
status answer after a reconnect is different: it is the venue's current view, and a local state that
contradicts it (wrongly final, or filled ahead of the venue) is what must give way, visibly.
"""

from __future__ import annotations

from decimal import Decimal

from fixadapter.model.enums import DONE_STATUSES
from fixadapter.model.orders import TRANSITIONS, Fill, Order, utc_now
from fixadapter.model.reports import ExecutionReport

PRICE_PLACES = Decimal("1e-10")


def contradiction(order: Order, report: ExecutionReport) -> str | None:
    """What the venue's status answer contradicts in `order`, in words; None if the live path may apply it."""
    behind = report.cum_qty is not None and report.cum_qty < order.cum_qty
    illegal = report.status != order.status and report.status not in TRANSITIONS[order.status]
    if not (behind or illegal):
        return None
    venue_qty = report.cum_qty if report.cum_qty is not None else order.cum_qty
    return (
        f"corrected to the venue's view: was {order.status} with {order.cum_qty} filled here, "
        f"the venue has it {report.status} with {venue_qty} filled"
    )


def corrected(order: Order, report: ExecutionReport, why: str) -> tuple[Order, Fill | None]:
    """`order` in the venue's state and quantities (no transition table), and any fill we missed."""
    cum_qty = report.cum_qty if report.cum_qty is not None else order.cum_qty
    fill = _missed_fill(order, report, cum_qty)
    changes: dict[str, object] = {
        "status": report.status,
        "previous_status": order.status,
        "order_id": report.order_id or order.order_id,
        "cum_qty": cum_qty,
        "avg_px": (report.avg_px if report.avg_px is not None else order.avg_px) if cum_qty > 0 else None,
        "quantity": report.quantity if report.quantity is not None else order.quantity,
        "price": report.price if report.price is not None else order.price,
        "stop_price": report.stop_price if report.stop_price is not None else order.stop_price,
        "pending_request_id": None,
        "reason": why,
        "updated_at": utc_now(),
    }
    if report.status in DONE_STATUSES and report.text:
        changes["reason"] = f"{why}: {report.text}"
    return order.model_copy(update=changes), fill


def _missed_fill(order: Order, report: ExecutionReport, cum_qty: Decimal) -> Fill | None:
    """The quantity the venue filled that we never heard of, priced by the change of AvgPx x CumQty."""
    quantity = cum_qty - order.cum_qty
    if quantity <= 0:
        return None
    if report.avg_px is None:
        price = report.price or order.price or order.stop_price or Decimal(0)
    else:
        before = (order.avg_px or Decimal(0)) * order.cum_qty
        price = ((report.avg_px * cum_qty - before) / quantity).quantize(PRICE_PLACES).normalize()
    return Fill(
        fill_id=f"corrected:{report.dedupe_key}",
        cl_ord_id=order.cl_ord_id,
        order_id=report.order_id,
        symbol_id=order.symbol_id,
        side=order.side,
        quantity=quantity,
        price=price,
        time=report.transact_time or utc_now(),
    )

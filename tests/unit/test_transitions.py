"""Specification of `apply_execution`: how one venue report moves one order, fills included.

cTrader sends no LastPx and no ExecID: a fill is the increase of CumQty (14), its price the change
of the AvgPx (6) notional over that increase (ctrader-fix.md §2.6).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from fixadapter.errors import InvalidTransition
from fixadapter.model.enums import ExecKind, OrderEventKind, OrderStatus, OrderType
from fixadapter.model.reports import ExecutionReport
from fixadapter.model.transitions import apply_execution
from tests.unit.conftest import T0, make_order, make_report

D = Decimal
S = OrderStatus


def fill_report(
    status: OrderStatus, cum_qty: str, avg_px: str, kind: ExecKind = ExecKind.TRADE
) -> ExecutionReport:
    return make_report(kind=kind, status=status, cum_qty=D(cum_qty), avg_px=D(avg_px))


def test_apply_execution_accepted_report_moves_pending_new_to_new() -> None:
    applied = apply_execution(make_order(), make_report())

    assert applied is not None
    assert applied.kind is OrderEventKind.ACCEPTED
    assert applied.fill is None
    assert applied.order.status is S.NEW
    assert applied.order.order_id == "101"
    assert applied.order.position_id == "721"


def test_apply_execution_full_fill_gives_one_fill_with_quantity_and_price() -> None:
    order = make_order(status=S.NEW, order_id="101")

    applied = apply_execution(order, fill_report(S.FILLED, "10000", "1.0674"))

    assert applied is not None
    assert applied.kind is OrderEventKind.FILLED
    assert applied.fill is not None
    assert (applied.fill.quantity, applied.fill.price) == (D("10000"), D("1.0674"))
    assert applied.fill.time == T0
    assert applied.order.status is S.FILLED
    assert (applied.order.cum_qty, applied.order.avg_px) == (D("10000"), D("1.0674"))
    assert applied.order.leaves_qty == 0


def test_apply_execution_fill_on_unacknowledged_order_fills_it() -> None:
    applied = apply_execution(make_order(), fill_report(S.FILLED, "10000", "1.0674"))

    assert applied is not None
    assert applied.order.status is S.FILLED
    assert applied.fill is not None


def test_apply_execution_two_partial_fills_price_the_second_from_avg_px_change() -> None:
    order = make_order(status=S.NEW)

    first = apply_execution(order, fill_report(S.PARTIALLY_FILLED, "4000", "1.1"))
    assert first is not None
    second = apply_execution(first.order, fill_report(S.FILLED, "10000", "1.106"))

    assert first.kind is OrderEventKind.PARTIALLY_FILLED
    assert first.fill is not None
    assert (first.fill.quantity, first.fill.price) == (D("4000"), D("1.1"))
    assert second is not None
    assert second.kind is OrderEventKind.FILLED
    assert second.fill is not None
    assert (second.fill.quantity, second.fill.price) == (D("6000"), D("1.11"))
    assert second.order.avg_px == D("1.106")


def test_apply_execution_same_report_twice_gives_none_the_second_time() -> None:
    report = fill_report(S.FILLED, "10000", "1.0674")
    applied = apply_execution(make_order(status=S.NEW), report)
    assert applied is not None

    assert apply_execution(applied.order, report) is None


def test_apply_execution_same_partial_report_twice_fills_once() -> None:
    report = fill_report(S.PARTIALLY_FILLED, "4000", "1.1")
    applied = apply_execution(make_order(status=S.NEW), report)
    assert applied is not None

    assert apply_execution(applied.order, report) is None


def test_apply_execution_same_quantity_under_another_key_does_not_fill_again() -> None:
    applied = apply_execution(make_order(status=S.NEW), fill_report(S.FILLED, "10000", "1.0674"))
    assert applied is not None
    echo = make_report(kind=ExecKind.STATUS, status=S.FILLED, cum_qty=D("10000"), dedupe_key="other")

    assert apply_execution(applied.order, echo) is None


def test_apply_execution_stale_partial_report_after_filled_raises_invalid_transition() -> None:
    filled = make_order(status=S.FILLED, cum_qty=D("10000"), avg_px=D("1.106"))

    with pytest.raises(InvalidTransition):
        apply_execution(filled, fill_report(S.PARTIALLY_FILLED, "4000", "1.1"))


def test_apply_execution_replace_report_updates_terms_and_clears_pending_request() -> None:
    order = make_order(order_type=OrderType.LIMIT, price=D("1.08"), status=S.NEW, order_id="629").moved_to(
        S.PENDING_REPLACE, pending_request_id="rpl-1"
    )
    report = make_report(
        kind=ExecKind.REPLACED,
        status=S.NEW,
        order_id="629",
        cl_ord_id="rpl-1",
        quantity=D("5000"),
        price=D("1.1"),
    )

    applied = apply_execution(order, report)

    assert applied is not None
    assert applied.kind is OrderEventKind.REPLACED
    assert applied.order.status is S.NEW
    assert (applied.order.quantity, applied.order.price) == (D("5000"), D("1.1"))
    assert applied.order.pending_request_id is None


def test_apply_execution_replace_report_keeps_terms_it_does_not_mention() -> None:
    expiry = T0 + timedelta(days=1)
    order = make_order(
        order_type=OrderType.LIMIT, price=D("1.08"), expire_time=expiry, status=S.PENDING_REPLACE
    )
    report = make_report(kind=ExecKind.REPLACED, status=S.NEW, quantity=D("20000"))

    applied = apply_execution(order, report)

    assert applied is not None
    assert (applied.order.quantity, applied.order.price) == (D("20000"), D("1.08"))
    assert applied.order.expire_time == expiry


def test_apply_execution_cancel_report_moves_pending_cancel_to_cancelled() -> None:
    order = make_order(status=S.NEW, order_id="641").moved_to(S.PENDING_CANCEL, pending_request_id="cxl-1")
    report = make_report(
        kind=ExecKind.CANCELLED, status=S.CANCELLED, order_id="641", cl_ord_id="cxl-1", orig_cl_ord_id="ord-1"
    )

    applied = apply_execution(order, report)

    assert applied is not None
    assert applied.kind is OrderEventKind.CANCELLED
    assert applied.order.status is S.CANCELLED
    assert applied.order.pending_request_id is None
    assert applied.fill is None


def test_apply_execution_cancel_of_ioc_rest_after_partial_fill_keeps_the_fill() -> None:
    order = make_order(status=S.PARTIALLY_FILLED, cum_qty=D("4000"), avg_px=D("1.1"))
    report = make_report(kind=ExecKind.CANCELLED, status=S.CANCELLED, cum_qty=D("4000"), avg_px=D("1.1"))

    applied = apply_execution(order, report)

    assert applied is not None
    assert applied.kind is OrderEventKind.CANCELLED
    assert applied.fill is None
    assert applied.order.cum_qty == D("4000")


def test_apply_execution_status_report_with_higher_cum_qty_yields_a_fill() -> None:
    order = make_order(status=S.NEW)
    report = fill_report(S.PARTIALLY_FILLED, "4000", "1.1", kind=ExecKind.STATUS)

    applied = apply_execution(order, report)

    assert applied is not None
    assert applied.kind is OrderEventKind.PARTIALLY_FILLED
    assert applied.fill is not None
    assert (applied.fill.quantity, applied.fill.price) == (D("4000"), D("1.1"))
    assert applied.order.status is S.PARTIALLY_FILLED


def test_apply_execution_status_report_with_same_state_changes_nothing() -> None:
    order = make_order(status=S.NEW)

    assert apply_execution(order, make_report(kind=ExecKind.STATUS, status=S.NEW)) is None


def test_apply_execution_status_report_of_pending_order_accepts_it() -> None:
    applied = apply_execution(make_order(), make_report(kind=ExecKind.STATUS, status=S.NEW))

    assert applied is not None
    assert applied.kind is OrderEventKind.ACCEPTED
    assert applied.order.status is S.NEW


def test_apply_execution_reject_report_sets_reason() -> None:
    report = make_report(kind=ExecKind.REJECTED, status=S.REJECTED, text="NOT_ENOUGH_MONEY: margin")

    applied = apply_execution(make_order(), report)

    assert applied is not None
    assert applied.kind is OrderEventKind.REJECTED
    assert applied.order.status is S.REJECTED
    assert applied.order.reason == "NOT_ENOUGH_MONEY: margin"


def test_apply_execution_reject_report_without_text_still_gives_a_reason() -> None:
    applied = apply_execution(make_order(), make_report(kind=ExecKind.REJECTED, status=S.REJECTED))

    assert applied is not None
    assert applied.order.reason


def test_apply_execution_expired_report_moves_new_to_expired() -> None:
    report = make_report(kind=ExecKind.EXPIRED, status=S.EXPIRED)

    applied = apply_execution(make_order(status=S.NEW, pending_request_id=None), report)

    assert applied is not None
    assert applied.kind is OrderEventKind.EXPIRED
    assert applied.order.status is S.EXPIRED


def test_the_same_replace_reported_twice_changes_the_order_once() -> None:
    pending = make_order(
        status=OrderStatus.PENDING_REPLACE,
        order_type="limit",
        price=D("1.1"),
        pending_request_id="r1",
        order_id="101",
    )
    replaced = make_report(kind=ExecKind.REPLACED, cl_ord_id="r1", quantity=D("20000"), price=D("1.2"))

    first = apply_execution(pending, replaced)

    assert first is not None and first.order.quantity == 20000
    assert apply_execution(first.order, replaced) is None

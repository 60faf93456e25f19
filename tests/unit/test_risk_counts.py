"""Specification of the counters the risk engine reads: open orders per strategy, kept incrementally,
and the orders-per-second sliding window."""

from __future__ import annotations

import pytest

from fixadapter.model.enums import OrderStatus
from fixadapter.risk import OpenOrders, OpenOrderTracker, SlidingWindow, strategy_of
from tests.unit.conftest import make_order


def test_an_order_counts_against_its_strategy_else_its_label_else_unattributed() -> None:
    assert strategy_of(make_order(strategy="momo", label="x")) == "momo"
    assert strategy_of(make_order(label="carry")) == "carry"
    assert strategy_of(make_order()) == ""


def test_a_snapshot_counts_only_open_orders() -> None:
    orders = [
        make_order(cl_ord_id="a", strategy="momo"),
        make_order(cl_ord_id="b", strategy="momo", status=OrderStatus.NEW),
        make_order(cl_ord_id="c", strategy="carry", status=OrderStatus.FILLED),
    ]

    counts = OpenOrders.of(orders)

    assert (counts.total, counts.for_strategy("momo"), counts.for_strategy("carry")) == (2, 2, 0)


def test_the_tracker_counts_each_open_order_once_and_forgets_done_ones() -> None:
    tracker = OpenOrderTracker([make_order(cl_ord_id="a", strategy="momo")])
    accepted = make_order(cl_ord_id="a", strategy="momo", status=OrderStatus.NEW)

    tracker.update(accepted)
    tracker.update(make_order(cl_ord_id="b", strategy="carry"))
    assert (tracker.total, tracker.for_strategy("momo"), tracker.for_strategy("carry")) == (2, 1, 1)

    tracker.update(accepted.moved_to(OrderStatus.FILLED))
    assert (tracker.total, tracker.for_strategy("momo")) == (1, 0)


def test_the_tracker_can_count_an_order_against_a_strategy_the_caller_names() -> None:
    tracker = OpenOrderTracker()

    tracker.update(make_order(cl_ord_id="a", label="x"), strategy="stream-7")

    assert (tracker.for_strategy("stream-7"), tracker.for_strategy("x")) == (1, 0)


def test_the_sliding_window_admits_limit_requests_per_window_exactly() -> None:
    window = SlidingWindow(limit=2, window=1.0)
    for now in (5.0, 5.2):
        assert window.allows(now)
        window.record(now)

    assert not window.allows(5.999)
    assert window.allows(6.0)


@pytest.mark.parametrize(("limit", "window"), [(0, 1.0), (1, 0.0)])
def test_the_sliding_window_refuses_a_meaningless_setting(limit: int, window: float) -> None:
    with pytest.raises(ValueError, match="limit >= 1 and window > 0"):
        SlidingWindow(limit, window)

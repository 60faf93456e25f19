"""The soak's invariants catch what they are for: an order doubled at the venue, lost on the way, in a
state the venue contradicts, or whose final state its strategy never heard; and a clean run passes."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixadapter.model.enums import OrderEventKind, OrderStatus
from fixadapter.model.requests import NewOrder
from fixadapter.queue.schema import OrderUpdate
from soak.checks import StoredOrder, check_orders, secrets_in_files, task_failures, violation_kinds
from soak.desk import Quote, Trader

from .conftest import make_order


@pytest.fixture
def trader() -> Iterator[Trader]:
    trader = Trader("alpha", "redis://127.0.0.1:1/0", "soak-test", random.Random(1), Quote())
    yield trader
    asyncio.run(trader.close())


def submitted(trader: Trader, cl_ord_id: str) -> None:
    trader.submitted[cl_ord_id] = NewOrder(
        cl_ord_id=cl_ord_id, symbol="EURUSD", side="buy", order_type="market", quantity=1000
    )


def told(trader: Trader, cl_ord_id: str, status: OrderStatus) -> None:
    order = make_order(cl_ord_id=cl_ord_id, strategy=trader.name, status=status)
    trader.client.orders[cl_ord_id] = OrderUpdate(event=OrderEventKind.FILLED, order=order)


def stored(cl_ord_id: str, status: str, strategy: str = "alpha") -> StoredOrder:
    return StoredOrder(cl_ord_id, strategy, status, "1", None)


def venue(cl_ord_id: str, status: str, order_id: str = "1") -> dict[str, str]:
    return {"cl_ord_id": cl_ord_id, "status": status, "order_id": order_id}


def test_a_run_where_store_venue_and_strategy_agree_has_no_violation(trader: Trader):
    submitted(trader, "a1")
    told(trader, "a1", OrderStatus.FILLED)
    verdict = check_orders([trader], {"a1": stored("a1", "filled")}, [venue("a1", "filled")])
    assert verdict.violations == [] and verdict.orders == 1


def test_two_venue_orders_for_one_clordid_are_counted_doubled(trader: Trader):
    submitted(trader, "a1")
    told(trader, "a1", OrderStatus.FILLED)
    verdict = check_orders(
        [trader], {"a1": stored("a1", "filled")}, [venue("a1", "filled"), venue("a1", "filled", "2")]
    )
    assert verdict.doubled == ["a1"]
    assert "a1: 2 orders at the venue (doubled)" in verdict.violations


def test_an_acknowledged_submit_neither_stored_nor_refused_is_lost(trader: Trader):
    submitted(trader, "a1")
    verdict = check_orders([trader], {}, [])
    assert verdict.lost == ["a1"]


def test_a_stored_live_order_missing_at_the_venue_is_lost_but_a_rejected_one_is_not(trader: Trader):
    for cl_ord_id, status in (("a1", "cancelled"), ("a2", "rejected")):
        submitted(trader, cl_ord_id)
        told(trader, cl_ord_id, OrderStatus(status))
    verdict = check_orders([trader], {"a1": stored("a1", "cancelled"), "a2": stored("a2", "rejected")}, [])
    assert verdict.lost == ["a1"]


def test_a_store_state_the_venue_contradicts_names_the_order_and_both_states(trader: Trader):
    submitted(trader, "a1")
    told(trader, "a1", OrderStatus.CANCELLED)
    verdict = check_orders([trader], {"a1": stored("a1", "cancelled")}, [venue("a1", "filled")])
    assert verdict.violations == ["a1: store says cancelled, venue says filled"]


def test_a_final_state_the_strategy_never_heard_is_a_violation(trader: Trader):
    submitted(trader, "a1")
    told(trader, "a1", OrderStatus.NEW)
    verdict = check_orders([trader], {"a1": stored("a1", "filled")}, [venue("a1", "filled")])
    assert verdict.violations == ["a1: alpha was last told new, the store says filled"]


def test_an_order_left_open_after_settling_is_a_violation(trader: Trader):
    submitted(trader, "a1")
    told(trader, "a1", OrderStatus.NEW)
    verdict = check_orders([trader], {"a1": stored("a1", "new")}, [venue("a1", "new")])
    assert verdict.violations == ["a1: still new in the store after settling"]


def test_a_secret_in_clear_in_any_file_is_found_and_named(tmp_path: Path):
    (tmp_path / "fixlog").mkdir()
    (tmp_path / "fixlog" / "trade.log").write_text("35=A\x01554=hunter2\x01")
    (tmp_path / "daemon.log").write_text("554=******")
    assert secrets_in_files(tmp_path, {"FIX password": "hunter2"}) == [
        "FIX password in clear in fixlog/trade.log"
    ]


def test_an_order_adopted_from_the_venue_under_a_clordid_of_our_own_is_matched_by_venue_id(trader: Trader):
    """The adapter stores a venue order it does not know as venue-<id>: one venue order, two store rows."""
    submitted(trader, "a1")
    told(trader, "a1", OrderStatus.CANCELLED)
    store = {
        "a1": StoredOrder("a1", "alpha", "cancelled", "77", None),
        "venue-77": StoredOrder("venue-77", None, "filled", "77", None),
    }
    verdict = check_orders([trader], store, [{"cl_ord_id": "a1", "order_id": 77, "status": "filled"}])
    assert verdict.doubled == ["venue-77"]
    assert verdict.violations == [
        "a1: store says cancelled, venue says filled",
        "venue-77: venue order 77 is in the store twice (also as a1)",
    ]


def test_task_failures_are_counted_by_task_name_from_every_daemon_run():
    log = (
        "2026-12-06 07:07:16,213 ERROR   fixadapter.tasks: task reconcile failed: StoreError('x')\n"
        "2026-12-06 07:08:16,213 ERROR   fixadapter.tasks: task positions-refresh-3 failed: StoreError('y')\n"
        "2026-12-06 07:09:16,213 ERROR   fixadapter.tasks: task reconcile failed: StoreError('z')\n"
    )
    assert task_failures(log) == {"reconcile": 2, "positions-refresh": 1}


def test_an_event_a_strategy_receives_twice_or_out_of_order_is_a_violation(trader: Trader):
    trader.seqs.extend([1, 2, 2, 5, 4])
    verdict = check_orders([trader], {}, [])
    assert verdict.violations == [
        "alpha received 1 events twice (seq [2])",
        "alpha received events out of order 1 times ([(5, 4)])",
    ]


def test_violations_are_grouped_by_what_differs_without_their_ids():
    kinds = violation_kinds(
        [
            "71d16f8b3a8347178ac3e91a: still pending_new in the store after settling",
            "1a2db8a371a646219eb73d11: still pending_new in the store after settling",
            "venue-5123725: store says cancelled, venue says filled",
            "daemon RSS peaked at 900 MiB > 800 MiB",
        ]
    )
    assert kinds == {
        "still pending_new in the store after settling": 2,
        "store says cancelled, venue says filled": 1,
        "daemon RSS peaked at N MiB > N MiB": 1,
    }

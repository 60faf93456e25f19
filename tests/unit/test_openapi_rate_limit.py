"""Request shaping for one Open API connection (reference 1.7), on an injected clock: never more than 50
requests, nor more than 5 historical ones, in any window; orders are taken ahead of queries when both wait;
the budget in use can be read for a metric."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from fixadapter.connectors.openapi.outgoing import OutgoingQueue, Priority, priority_of
from fixadapter.connectors.openapi.rate_limit import (
    HISTORICAL_PAYLOAD_TYPES,
    Budget,
    RateLimiter,
    SlidingWindow,
    is_historical,
)
from fixadapter.protocols.openapi.generated import OpenApiModelMessages_pb2 as model


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass(eq=False)
class Item:
    name: str
    priority: Priority = Priority.QUERY
    historical: bool = False


def send_as_fast_as_allowed(
    limiter: RateLimiter, clock: FakeClock, historical: list[bool], step: float = 0.001
) -> list[tuple[float, bool]]:
    """Send each request the moment the limiter allows it (jumping the clock to that moment)."""
    sent = []
    for kind in historical:
        wait = limiter.wait(kind)
        if wait > 0:
            clock.now += wait
        assert limiter.wait(kind) == 0.0
        limiter.record(kind)
        sent.append((clock.now, kind))
        clock.now += step
    return sent


def most_in_any_window(times: list[float], window: float) -> int:
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


def test_the_defaults_are_the_servers_limits_per_connection() -> None:
    budget = RateLimiter().budget()
    assert (budget.overall_limit, budget.historical_limit) == (50, 5)


def test_fifty_requests_go_at_once_and_the_fifty_first_waits_for_the_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(window=1.0, clock=clock)
    for _ in range(50):
        assert limiter.wait(historical=False) == 0.0
        limiter.record(historical=False)
    assert limiter.wait(historical=False) == pytest.approx(1.0)
    clock.now += 0.4
    assert limiter.wait(historical=False) == pytest.approx(0.6)
    clock.now += 0.6
    assert limiter.wait(historical=False) == 0.0


def test_a_burst_of_500_never_exceeds_50_in_any_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(window=1.0, clock=clock)
    sent = send_as_fast_as_allowed(limiter, clock, [False] * 500)
    times = [t for t, _ in sent]
    assert most_in_any_window(times, 1.0) == 50
    assert times[-1] - times[0] < 10.5  # and it does go at the budget's pace, not slower


def test_historical_requests_never_exceed_5_in_any_window_and_count_in_the_overall_budget() -> None:
    clock = FakeClock()
    limiter = RateLimiter(window=1.0, clock=clock)
    kinds = [index % 3 == 0 for index in range(600)]  # a third historical
    sent = send_as_fast_as_allowed(limiter, clock, kinds)
    historical = [t for t, kind in sent if kind]
    assert most_in_any_window(historical, 1.0) == 5
    assert most_in_any_window([t for t, _ in sent], 1.0) <= 50


def test_a_full_historical_budget_does_not_hold_back_other_requests() -> None:
    clock = FakeClock()
    limiter = RateLimiter(window=1.0, clock=clock)
    for _ in range(5):
        limiter.record(historical=True)
    assert limiter.wait(historical=True) == pytest.approx(1.0)
    assert limiter.wait(historical=False) == 0.0


def test_the_budget_in_use_is_what_the_window_holds() -> None:
    clock = FakeClock()
    limiter = RateLimiter(window=1.0, clock=clock)
    for kind in (False, True, False):
        limiter.record(kind)
        clock.now += 0.3
    assert limiter.budget() == Budget(3, 50, 1, 5)
    clock.now += 0.2  # the first has left the window (sent 1.1 s ago)
    assert limiter.budget() == Budget(2, 50, 1, 5)
    clock.now += 10
    assert limiter.budget() == Budget(0, 50, 0, 5)


def test_the_default_window_leaves_a_margin_for_jitter() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    times = [t for t, _ in send_as_fast_as_allowed(limiter, clock, [False] * 200)]
    assert most_in_any_window(times, 1.05) <= 50  # bunched by up to 50 ms on the way, still within 50/s


def test_historical_requests_are_the_time_range_queries_of_the_reference() -> None:
    assert is_historical(model.PROTO_OA_GET_TRENDBARS_REQ)
    assert is_historical(model.PROTO_OA_GET_TICKDATA_REQ)
    assert is_historical(model.PROTO_OA_DEAL_LIST_REQ)
    assert is_historical(model.PROTO_OA_CASH_FLOW_HISTORY_LIST_REQ)
    assert is_historical(model.PROTO_OA_ORDER_LIST_REQ)
    assert not is_historical(model.PROTO_OA_NEW_ORDER_REQ)
    assert not is_historical(model.PROTO_OA_RECONCILE_REQ)
    assert len(HISTORICAL_PAYLOAD_TYPES) == 7


def test_a_window_must_allow_something() -> None:
    with pytest.raises(ValueError, match="limit >= 1"):
        SlidingWindow(0, 1.0)


# --- the outgoing queue: orders first


def test_orders_are_new_cancel_amend_amend_sltp_and_close() -> None:
    for payload_type in (
        model.PROTO_OA_NEW_ORDER_REQ,
        model.PROTO_OA_CANCEL_ORDER_REQ,
        model.PROTO_OA_AMEND_ORDER_REQ,
        model.PROTO_OA_AMEND_POSITION_SLTP_REQ,
        model.PROTO_OA_CLOSE_POSITION_REQ,
    ):
        assert priority_of(payload_type) is Priority.ORDER
    assert priority_of(model.PROTO_OA_SYMBOLS_LIST_REQ) is Priority.QUERY
    assert priority_of(model.PROTO_OA_APPLICATION_AUTH_REQ) is Priority.QUERY


def test_an_order_queued_after_queries_is_taken_before_them() -> None:
    queue: OutgoingQueue[Item] = OutgoingQueue()
    limiter = RateLimiter(clock=FakeClock())
    for name in ("q1", "q2", "q3"):
        queue.put(Item(name))
    queue.put(Item("order", Priority.ORDER))
    taken = []
    while len(queue):
        item, _ = queue.pick(limiter)
        assert item is not None
        taken.append(item.name)
    assert taken == ["order", "q1", "q2", "q3"]


def test_when_the_budget_is_spent_nothing_is_taken_and_the_wait_is_told() -> None:
    clock = FakeClock()
    limiter = RateLimiter(overall=2, window=1.0, clock=clock)
    queue: OutgoingQueue[Item] = OutgoingQueue()
    for name in ("q1", "q2", "q3"):
        queue.put(Item(name))
    assert queue.pick(limiter)[0] is not None
    limiter.record(False)
    clock.now += 0.25
    assert queue.pick(limiter)[0] is not None
    limiter.record(False)
    queue.put(Item("order", Priority.ORDER))  # arrives while the queries wait for the budget
    item, wait = queue.pick(limiter)
    assert item is None
    assert wait == pytest.approx(0.75)
    clock.now += 0.75
    item, _ = queue.pick(limiter)
    assert item is not None
    assert item.name == "order"


def test_a_historical_request_waiting_for_its_budget_lets_the_queries_behind_it_go() -> None:
    clock = FakeClock()
    limiter = RateLimiter(historical=1, window=1.0, clock=clock)
    limiter.record(historical=True)
    queue: OutgoingQueue[Item] = OutgoingQueue()
    queue.put(Item("trendbars", historical=True))
    queue.put(Item("symbols"))
    item, _ = queue.pick(limiter)
    assert item is not None
    assert item.name == "symbols"
    item, wait = queue.pick(limiter)
    assert item is None
    assert wait == pytest.approx(1.0)


def test_an_empty_queue_has_nothing_to_wait_for() -> None:
    assert OutgoingQueue[Item]().pick(RateLimiter(clock=FakeClock())) == (None, None)


def test_a_request_taken_out_of_the_queue_is_never_picked() -> None:
    queue: OutgoingQueue[Item] = OutgoingQueue()
    first, second = Item("first"), Item("second")
    queue.put(first)
    queue.put(second)
    assert queue.ahead_of(second) == 1
    assert queue.remove(first)
    assert not queue.remove(first)
    assert queue.drain() == [second]
    assert len(queue) == 0

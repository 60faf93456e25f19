"""Status queries to a venue that does not answer: capped in flight, backing off per order.

Under overload the adapter once sent 37k status queries in 2.5 minutes. Here the venue is a connector
that records what is sent and never answers; the in-flight watch is driven round by round with its
clock given, so what is counted is sends per round, never time.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from fixadapter.config import OrdersConfig
from fixadapter.engine.inflight import StatusSchedule, check_in_flight, query
from fixadapter.engine.orders import OrderEngine
from fixadapter.engine.venue_queries import VenueQueries
from fixadapter.errors import RequestStillQueued, SessionNotReady
from fixadapter.metrics import Metrics
from fixadapter.model.reconciliation import OrderStatusReport
from fixadapter.store.repository import OrderStore

from .conftest import T0, make_order, make_report
from .quiet_connector import QuietConnector

ORDERS = 200
CAP = 20


class UnansweringConnector(QuietConnector):
    """A venue that takes every message and never answers; it notes the status queries in flight at each."""


async def settle() -> None:
    """Let every task run to the point where it waits (nothing here waits on time or I/O)."""
    for _ in range(10):
        await asyncio.sleep(0)


def test_at_most_the_cap_of_status_queries_is_in_flight_and_the_rest_wait_their_turn():
    asyncio.run(cap_scenario())


async def cap_scenario() -> None:
    connector = UnansweringConnector()
    metrics = Metrics()
    queries = VenueQueries(connector, metrics, max_status=CAP)
    connector.in_flight = lambda: queries.status_queries_in_flight
    orders = [make_order(cl_ord_id=f"o{i}") for i in range(ORDERS)]
    asks = [asyncio.create_task(queries.status(order, timeout=3600)) for order in orders]
    try:
        await settle()
        assert len(connector.status_sent) == CAP
        assert metrics.value("fixadapter_order_status_queries_waiting") == ORDERS - CAP
        assert all(queries.is_asking_status(f"o{i}") for i in range(ORDERS))
        first = connector.status_sent[0]
        answer = make_report(cl_ord_id=first, kind="status")
        reply = OrderStatusReport(report=answer)
        connector.answer(f"status:{first}", reply)
        await settle()
        assert len(connector.status_sent) == CAP + 1  # one answered: one more asked, never more
        assert connector.most_in_flight == CAP
        assert await asks[0] == reply
    finally:
        for ask in asks:
            ask.cancel()
        await asyncio.gather(*asks, return_exceptions=True)


def test_unanswered_orders_are_asked_again_less_and_less_often(tmp_path: Path):
    asyncio.run(backoff_scenario(tmp_path))


async def backoff_scenario(tmp_path: Path) -> None:
    store = OrderStore(f"sqlite:///{tmp_path / 'adapter.db'}")
    store.create_schema()
    for i in range(ORDERS):
        assert store.insert_order(make_order(cl_ord_id=f"o{i}", quantity=Decimal(1000), updated_at=T0))
    connector = UnansweringConnector()
    # The engine's own watch waits an hour before asking: the rounds below are driven by the test.
    config = OrdersConfig(inflight_timeout_seconds=3600, max_status_queries=CAP)
    engine = OrderEngine(store, connector, Metrics(), config)
    connector.in_flight = lambda: engine.queries.status_queries_in_flight
    await engine.start()
    timeout = 1 / 64  # each unanswered query gives up after about 16 ms (binary fractions: exact sums)
    schedule = StatusSchedule(first=timeout, cap=64 * timeout)
    sent_per_round: list[int] = []
    try:
        for round_number in range(1, 81):  # 40 timeouts of silence, in rounds of half a timeout
            elapsed = round_number * timeout / 2
            before = len(connector.status_sent)
            await check_in_flight(engine, schedule, timeout, 3600, elapsed, T0 + timedelta(seconds=elapsed))
            await settle()  # the round's queries have started
            while engine.queries.status_queries_open:  # every query of the round has given up
                await asyncio.sleep(0.005)
            sent_per_round.append(len(connector.status_sent) - before)
    finally:
        await engine.stop()
    first_half, second_half = sum(sent_per_round[:40]), sum(sent_per_round[40:])
    assert connector.most_in_flight == CAP
    assert first_half == ORDERS * 5  # asked after 1, 2, 4, 8 and 16 timeouts of silence
    assert second_half == ORDERS  # then after 32: the next would be after 64
    assert first_half + second_half < ORDERS * 40 / 6  # asking every timeout would have sent 8000


def test_a_schedule_doubles_up_to_its_cap_and_starts_again_for_an_order_that_waits_again():
    schedule = StatusSchedule(first=1, cap=4)
    asked_at = [t for t in range(0, 20) if schedule.due("a", t) and schedule.asked("a", t)]
    assert asked_at == [0, 1, 3, 7, 11, 15, 19]
    schedule.keep_only(set())
    assert schedule.due("a", 19) and schedule.asked("a", 19) == 1


class _Refusing:
    """Venue queries that refuse every status question with `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def status(self, _order: object, _timeout: float) -> None:
        raise self.error


def test_an_order_still_queued_behind_the_rate_limit_is_asked_about_again_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A burst behind the Open API's rate limit would otherwise log a warning per order on every round."""
    order = make_order()
    still_queued = SimpleNamespace(queries=_Refusing(RequestStillQueued(f"{order.cl_ord_id}: still queued")))
    session_down = SimpleNamespace(queries=_Refusing(SessionNotReady("TRADE is not logged on")))

    with caplog.at_level(logging.DEBUG, logger="fixadapter.inflight"):
        asyncio.run(query(still_queued, order, 1.0))  # type: ignore[arg-type]
        asyncio.run(query(session_down, order, 1.0))  # type: ignore[arg-type]

    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    down = f"status query for {order.cl_ord_id} failed (TRADE is not logged on); asked again later"
    assert warnings == [down]
    assert any("still queued" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)

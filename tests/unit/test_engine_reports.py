"""Specification of how the engine takes venue reports: identity, impossible fills, dedupe, the store.

The engine runs on its own loop with a connector that sends nothing (the venue is played by the test
through `deliver`), and a real store: SQLite, and PostgreSQL when FIXADAPTER_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from fixadapter.config import OrdersConfig
from fixadapter.connectors.fix import codec
from fixadapter.connectors.fix.wire import Fields
from fixadapter.engine.orders import OrderEngine
from fixadapter.errors import ClientIdInUse, OrderRejected, StoreError
from fixadapter.metrics import Metrics
from fixadapter.model.enums import ExecKind, OrderEventKind, OrderStatus, OrderType, Side, TimeInForce
from fixadapter.model.orders import Order, OrderEvent, OrderRequest
from fixadapter.model.reconciliation import arrival_mark
from fixadapter.model.reports import ExecutionReport, Instrument
from fixadapter.model.requests import CancelOrder, NewOrder, ReplaceOrder
from fixadapter.store.repository import OrderStore
from tests.unit.conftest import make_order, make_report
from tests.unit.quiet_connector import QuietConnector

D = Decimal
S = OrderStatus
EURUSD = Instrument(symbol_id=1, name="EURUSD", digits=5)


class SilentVenue(QuietConnector):
    """A TradeConnector that hands nothing to a venue: the test delivers the venue's answers itself."""


class FlakyStore(OrderStore):
    """A store whose executions fail as in an outage while `down` is set; each failure is signalled."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.down = False
        self.failures = 0
        self.failed_twice = threading.Event()

    def record_execution(self, *args: Any, **kwargs: Any) -> int | None:
        if self.down:
            self.failures += 1
            if self.failures >= 2:
                self.failed_twice.set()
            raise StoreError("database error: OperationalError: connection refused")
        return super().record_execution(*args, **kwargs)


Scenario = Callable[[OrderEngine], Awaitable[None]]


def run(store: OrderStore, scenario: Scenario, *orders: Order) -> Metrics:
    """Start an engine over `store` holding `orders`, ready as after a logon, run `scenario`, stop it."""
    metrics = Metrics()

    async def main() -> None:
        store.create_schema()
        for order in orders:
            assert store.insert_order(order)
        engine = OrderEngine(store, SilentVenue(), metrics, OrdersConfig(inflight_timeout_seconds=600))
        await engine.start()
        engine.catalog.replace([EURUSD])
        engine.mark_ready()
        try:
            await scenario(engine)
        finally:
            await engine.stop()

    asyncio.run(main())
    return metrics


async def next_event(events: AsyncIterator[OrderEvent], cl_ord_id: str) -> OrderEvent:
    async with asyncio.timeout(10):
        async for event in events:
            if event.order.cl_ord_id == cl_ord_id:
                return event
    raise AssertionError("the event stream ended")


def resting(cl_ord_id: str, order_id: str, **changes: Any) -> Order:
    """A working 10000 limit buy the venue acknowledged as `order_id`."""
    values: dict[str, Any] = {
        "cl_ord_id": cl_ord_id,
        "order_id": order_id,
        "order_type": OrderType.LIMIT,
        "price": D("1.08"),
        "status": S.NEW,
        "previous_status": S.PENDING_NEW,
    }
    return make_order(**{**values, **changes})


def fill(cl_ord_id: str, order_id: str, cum_qty: str, key: str, **changes: Any) -> ExecutionReport:
    done = D(cum_qty) >= D(10000)
    values: dict[str, Any] = {
        "kind": ExecKind.TRADE,
        "status": S.FILLED if done else S.PARTIALLY_FILLED,
        "order_id": order_id,
        "cl_ord_id": cl_ord_id,
        "cum_qty": D(cum_qty),
        "leaves_qty": max(D(10000) - D(cum_qty), D(0)),
        "last_qty": D(cum_qty),
        "avg_px": D("1.08"),
        "side": Side.BUY,
        "dedupe_key": key,
    }
    return make_report(**{**values, **changes})


# -- item 3: a venue answer only ever touches the order it belongs to -----------------------------


def test_a_report_whose_order_id_contradicts_the_order_its_cl_ord_id_names_is_not_applied_and_alarms(
    sqlite_url: str,
):
    store = OrderStore(sqlite_url)

    async def scenario(engine: OrderEngine) -> None:
        events = engine.events()
        foreign = make_report(
            kind=ExecKind.CANCELLED, status=S.CANCELLED, order_id="202", cl_ord_id="A", orig_cl_ord_id="B"
        )
        engine.deliver(foreign)
        engine.deliver(fill("B", "202", "10000", key="fill-b"))
        assert (await next_event(events, "B")).order.status is S.FILLED
        assert (await engine.get_order("A")).status is S.NEW  # type: ignore[union-attr]
        alarms = engine.metrics.alarms.active("mismatched_report")
        assert len(alarms) == 1 and "A" in alarms[0].text and "202" in alarms[0].text
        assert not alarms[0].blocking

    metrics = run(store, scenario, resting("A", "101"), resting("B", "202"))
    sample = metrics.value
    assert sample("fixadapter_unmatched_reports_total", {"kind": "mismatched_report"}) == 1
    assert [row["event"] for row in store.executions("A")] == []
    store.close()


def test_a_report_naming_a_cancel_request_id_is_applied_to_the_order_that_request_belongs_to(
    sqlite_url: str,
):
    store = OrderStore(sqlite_url)

    async def scenario(engine: OrderEngine) -> None:
        events = engine.events()
        asked = await engine.cancel(CancelOrder(cl_ord_id="A", request_id="cxl-A"))
        assert asked.status is S.PENDING_CANCEL
        engine.deliver(
            make_report(
                kind=ExecKind.CANCELLED,
                status=S.CANCELLED,
                order_id="101",
                cl_ord_id="cxl-A",
                orig_cl_ord_id="A",
            )
        )
        event = await next_event(events, "A")
        while event.kind is not OrderEventKind.CANCELLED:
            event = await next_event(events, "A")
        assert event.order.status is S.CANCELLED

    metrics = run(store, scenario, resting("A", "101"))
    assert not metrics.alarms.active("mismatched_report")
    store.close()


@pytest.mark.parametrize("action", ["cancel", "replace"])
def test_a_request_id_equal_to_another_orders_cl_ord_id_is_refused_and_nothing_is_sent(
    sqlite_url: str, action: str
):
    store = OrderStore(sqlite_url)

    async def scenario(engine: OrderEngine) -> None:
        with pytest.raises(ClientIdInUse, match="request id A is already used by order A"):
            if action == "cancel":
                await engine.cancel(CancelOrder(cl_ord_id="B", request_id="A"))
            else:
                await engine.replace(ReplaceOrder(cl_ord_id="B", quantity=20000, request_id="A"))
        assert (await engine.get_order("B")).status is S.NEW  # type: ignore[union-attr]
        assert engine._connector.sent == []  # type: ignore[attr-defined]

    run(store, scenario, resting("A", "101"), resting("B", "202"))
    assert store.get_order("B").status is S.NEW  # type: ignore[union-attr]
    store.close()


def test_a_new_orders_cl_ord_id_equal_to_an_earlier_request_id_is_refused(sqlite_url: str):
    store = OrderStore(sqlite_url)

    async def scenario(engine: OrderEngine) -> None:
        await engine.cancel(CancelOrder(cl_ord_id="A", request_id="cxl-1"))
        with pytest.raises(ClientIdInUse, match="cxl-1"):
            await engine.submit(
                NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=10000, cl_ord_id="cxl-1")
            )
        assert await engine.get_order("cxl-1") is None

    run(store, scenario, resting("A", "101"))
    store.close()


def test_the_store_refuses_a_client_id_used_before_whatever_it_was_used_for(store_url: str):
    store = OrderStore(store_url)
    store.create_schema()
    try:
        assert store.insert_order(resting("A", "101"))
        order_b = resting("B", "202")
        assert store.insert_order(order_b)
        pending = order_b.moved_to(S.PENDING_CANCEL, pending_request_id="A")
        with pytest.raises(ClientIdInUse, match="order A"):
            store.insert_request(OrderRequest(request_id="A", cl_ord_id="B", kind="cancel"), pending)
        pending = order_b.moved_to(S.PENDING_CANCEL, pending_request_id="cxl-B")
        store.insert_request(OrderRequest(request_id="cxl-B", cl_ord_id="B", kind="cancel"), pending)
        with pytest.raises(ClientIdInUse, match="cancel of order B"):
            store.insert_order(resting("cxl-B", "303"))
        with pytest.raises(ClientIdInUse):
            store.insert_request(OrderRequest(request_id="cxl-B", cl_ord_id="A", kind="cancel"), pending)
        assert store.get_order("B").pending_request_id == "cxl-B"  # type: ignore[union-attr]
        assert store.get_order("cxl-B") is None
        assert store.get_request("cxl-B").cl_ord_id == "B"  # type: ignore[union-attr]
    finally:
        store.close()


# -- item 14 (order half): a reused ClOrdID -----------------------------------------------------


def test_a_reused_cl_ord_id_with_the_same_terms_returns_the_order_and_with_other_terms_is_refused(
    sqlite_url: str,
):
    store = OrderStore(sqlite_url)
    terms: dict[str, Any] = {
        "symbol": "EURUSD",
        "side": "buy",
        "order_type": "limit",
        "price": "1.08",
        "quantity": 10000,
        "cl_ord_id": "S-1",
        "strategy": "alpha",
    }

    async def scenario(engine: OrderEngine) -> None:
        first = await engine.submit(NewOrder(**terms))
        again = await engine.submit(NewOrder(**{**terms, "symbol": "eurusd"}))
        assert again.cl_ord_id == first.cl_ord_id and again.created_at == first.created_at
        reused = "ClOrdID S-1 was used for a different order: quantity 10000 vs 20000"
        with pytest.raises(OrderRejected, match=reused):
            await engine.submit(NewOrder(**{**terms, "quantity": 20000}))
        with pytest.raises(OrderRejected, match="S-1 is taken by another strategy"):  # never named
            await engine.submit(NewOrder(**{**terms, "strategy": "beta"}))
        with pytest.raises(OrderRejected, match="side buy vs sell"):
            await engine.submit(NewOrder(**{**terms, "side": "sell"}))
        assert engine._connector.sent == [("new", "S-1")]  # type: ignore[attr-defined]

    run(store, scenario)
    store.close()


def test_a_retried_submission_after_a_replace_is_still_the_same_order(sqlite_url: str):
    store = OrderStore(sqlite_url)
    request = NewOrder(
        symbol="EURUSD", side="buy", order_type="limit", price="1.08", quantity=10000, cl_ord_id="S-2"
    )

    async def scenario(engine: OrderEngine) -> None:
        events = engine.events()  # subscribed here: the submit's own event comes first
        order = await engine.submit(request)
        engine.deliver(make_report(cl_ord_id="S-2", order_id="909", dedupe_key="ack"))
        assert (await next_event(events, "S-2")).order.status is S.PENDING_NEW
        assert (await next_event(events, "S-2")).order.status is S.NEW
        await engine.replace(ReplaceOrder(cl_ord_id="S-2", quantity=20000, price="1.07", request_id="r1"))
        replaced = make_report(
            kind=ExecKind.REPLACED,
            cl_ord_id="r1",
            orig_cl_ord_id="S-2",
            order_id="909",
            quantity=D(20000),
            price=D("1.07"),
            dedupe_key="replaced",
        )
        engine.deliver(replaced)
        event = await next_event(events, "S-2")
        while event.kind is not OrderEventKind.REPLACED:
            event = await next_event(events, "S-2")
        assert event.order.quantity == 20000
        assert (await engine.submit(request)).cl_ord_id == order.cl_ord_id

    run(store, scenario)
    store.close()


# -- item 6: impossible fills -------------------------------------------------------------------


def test_an_overfill_is_refused_counted_alarmed_and_never_stored(sqlite_url: str):
    store = OrderStore(sqlite_url)

    async def scenario(engine: OrderEngine) -> None:
        events = engine.events()
        engine.deliver(fill("A", "101", "50000", key="over"))
        engine.deliver(fill("A", "101", "4000", key="part"))
        event = await next_event(events, "A")
        assert event.kind is OrderEventKind.PARTIALLY_FILLED and event.order.cum_qty == 4000
        alarms = engine.metrics.alarms.active("overfill")
        assert [a.key for a in alarms] == ["A"]
        assert "50000" in alarms[0].text and "10000" in alarms[0].text
        assert not alarms[0].blocking

    metrics = run(store, scenario, resting("A", "101"))
    sample = metrics.value
    assert sample("fixadapter_impossible_fills_total", {"reason": "overfill"}) == 1
    assert [row["dedupe_key"] for row in store.executions("A")] == ["part"]
    store.close()


def test_a_status_answer_that_overfills_is_not_adopted_by_reconciliation_and_alarms(sqlite_url: str):
    """The venue is the authority after a reconnect, but not past its own order quantity."""
    store = OrderStore(sqlite_url)

    async def scenario(engine: OrderEngine) -> None:
        local = await engine.get_order("A")
        assert local is not None
        answer = fill("A", "101", "50000", key="status-over", kind=ExecKind.STATUS, quantity=D(10000))
        after = await engine.apply_venue_view(local, answer)
        assert after.status is S.CANCELLED and after.cum_qty == 0
        assert [a.key for a in engine.metrics.alarms.active("overfill")] == ["A"]
        assert engine.metrics.alarms.active("reconcile_corrected") == []

    metrics = run(store, scenario, resting("A", "101", status=S.CANCELLED, previous_status=S.NEW))
    assert metrics.value("fixadapter_impossible_fills_total", {"reason": "overfill"}) == 1
    assert store.executions("A") == []
    store.close()


def test_a_mass_status_older_than_a_live_fill_applied_since_does_not_take_the_order_back(sqlite_url: str):
    """Reconciliation lists an order partly filled; its last fill arrives live before the list is applied:
    the list is the older word of the venue and the order stays filled."""
    store = OrderStore(sqlite_url)

    async def scenario(engine: OrderEngine) -> None:
        events = engine.events()
        listed_at = arrival_mark()  # the mass status arrives first ...
        engine.deliver(fill("A", "101", "10000", key="fix:9", last_qty=D(7000)))  # ... then the last fill
        assert (await next_event(events, "A")).order.status is S.FILLED
        local = await engine.get_order("A")
        assert local is not None
        listed = fill("A", "101", "3000", key="status-old", kind=ExecKind.STATUS, quantity=D(10000))
        after = await engine.apply_venue_view(local, listed, listed_at)
        assert after.status is S.FILLED and after.cum_qty == 10000
        assert engine.metrics.alarms.active("reconcile_corrected") == []

    partly = resting("A", "101", status=S.PARTIALLY_FILLED, cum_qty=D(3000), avg_px=D("1.08"))
    metrics = run(store, scenario, partly)
    assert metrics.value("fixadapter_reconciliation_corrections_total") == 0
    order = store.get_order("A")
    assert order is not None and order.status is S.FILLED and order.cum_qty == 10000
    store.close()


def test_a_fill_on_the_other_side_is_refused_and_alarmed(sqlite_url: str):
    store = OrderStore(sqlite_url)

    async def scenario(engine: OrderEngine) -> None:
        events = engine.events()
        engine.deliver(fill("A", "101", "10000", key="sell", side=Side.SELL))
        engine.deliver(fill("A", "101", "10000", key="buy"))
        assert (await next_event(events, "A")).fill.quantity == 10000  # type: ignore[union-attr]
        assert [a.key for a in engine.metrics.alarms.active("impossible_fill")] == ["A"]

    metrics = run(store, scenario, resting("A", "101"))
    assert metrics.value("fixadapter_impossible_fills_total", {"reason": "side"}) == 1
    assert [row["dedupe_key"] for row in store.executions("A")] == ["buy"]
    store.close()


def test_a_replace_that_raised_the_quantity_lets_fills_reach_the_new_quantity(sqlite_url: str):
    store = OrderStore(sqlite_url)

    async def scenario(engine: OrderEngine) -> None:
        events = engine.events()
        await engine.replace(ReplaceOrder(cl_ord_id="A", quantity=20000, price="1.07", request_id="r1"))
        engine.deliver(fill("A", "101", "15000", key="f", status=S.PENDING_REPLACE, leaves_qty=D(5000)))
        event = await next_event(events, "A")
        while event.fill is None:
            event = await next_event(events, "A")
        assert event.order.cum_qty == 15000
        assert not engine.metrics.alarms.active("overfill")

    run(store, scenario, resting("A", "101"))
    store.close()


# -- item 19: a duplicate key with different content ----------------------------------------------


def test_the_same_report_twice_is_deduped_but_a_reused_exec_id_with_other_fills_is_applied_and_alarmed(
    sqlite_url: str,
):
    store = OrderStore(sqlite_url)

    async def scenario(engine: OrderEngine) -> None:
        events = engine.events()
        first = fill("A", "101", "3000", key="fix:7")
        engine.deliver(first)
        engine.deliver(first)
        engine.deliver(fill("A", "101", "8000", key="fix:7", last_qty=D(5000)))
        assert (await next_event(events, "A")).order.cum_qty == 3000
        second = await next_event(events, "A")
        assert second.order.cum_qty == 8000 and second.fill.quantity == 5000  # type: ignore[union-attr]
        alarms = engine.metrics.alarms.active("dedupe_conflict")
        assert len(alarms) == 1 and "fix:7" in alarms[0].text

    metrics = run(store, scenario, resting("A", "101"))
    sample = metrics.value
    assert sample("fixadapter_deduplication_conflicts_total") == 1
    assert sample("fixadapter_duplicate_execution_reports_total") == 1
    keys = [row["dedupe_key"] for row in store.executions("A")]
    assert keys[0] == "fix:7" and keys[1].startswith("fix:7#") and len(keys) == 2
    store.close()


def test_after_a_restart_a_reused_exec_id_with_other_fills_is_still_applied(sqlite_url: str):
    store = OrderStore(sqlite_url)

    async def first_life(engine: OrderEngine) -> None:
        events = engine.events()
        engine.deliver(fill("A", "101", "3000", key="fix:1"))
        assert (await next_event(events, "A")).order.cum_qty == 3000

    async def second_life(engine: OrderEngine) -> None:
        events = engine.events()
        engine.deliver(fill("A", "101", "3000", key="fix:1"))  # the same report again: nothing
        engine.deliver(fill("B", "202", "10000", key="fix:1"))  # a restarted venue's ExecID 1
        event = await next_event(events, "B")
        assert event.order.status is S.FILLED
        assert len(engine.metrics.alarms.active("dedupe_conflict")) == 1

    run(store, first_life, resting("A", "101"), resting("B", "202"))
    metrics = run(store, second_life)
    assert metrics.value("fixadapter_deduplication_conflicts_total") == 1
    assert len(store.executions("A")) == 1 and len(store.executions("B")) == 1
    store.close()


# -- item 7: a report the store can never take, and a store that is down ---------------------------


async def raised(engine: OrderEngine, alarm: str) -> None:
    """Reports about different orders are handled side by side: wait for the other order's outcome."""
    async with asyncio.timeout(10):
        while not engine.metrics.alarms.active(alarm):
            await asyncio.sleep(0.01)


def test_a_report_with_a_10kb_order_id_is_set_aside_and_the_next_report_is_applied(store_url: str):
    store = OrderStore(store_url)
    store.create_schema()
    absurd = "9" * 10_000

    async def scenario(engine: OrderEngine) -> None:
        events = engine.events()
        engine.deliver(fill("A", absurd, "10000", key="absurd", raw="8=FIX.4.4\x0137=" + absurd))
        engine.deliver(fill("B", "202", "10000", key="fine"))
        assert (await next_event(events, "B")).order.status is S.FILLED  # not held up by A's
        await raised(engine, "report_set_aside")
        alarms = engine.metrics.alarms.active("report_set_aside")
        assert len(alarms) == 1 and not alarms[0].blocking
        assert "order_id" in alarms[0].text
        assert engine.ready

    metrics = run(store, scenario, make_order(cl_ord_id="A"), resting("B", "202"))
    assert metrics.value("fixadapter_reports_set_aside_total") == 1
    (aside,) = store.reports_set_aside()
    assert aside["raw"].endswith(absurd) and "order_id" in aside["error"]
    assert aside["report_type"] == "ExecutionReport"
    assert store.get_order("A").status is S.PENDING_NEW  # type: ignore[union-attr]
    store.close()


def test_while_the_store_is_down_the_head_report_waits_with_a_blocking_alarm_cleared_when_stored(
    sqlite_url: str,
):
    store = FlakyStore(sqlite_url)

    async def scenario(engine: OrderEngine) -> None:
        engine.store_outage_alarm_seconds = 0.0
        events = engine.events()
        store.down = True
        engine.deliver(fill("A", "101", "10000", key="f-a"))
        await asyncio.to_thread(store.failed_twice.wait, 10)
        (alarm,) = engine.metrics.alarms.active("store_unavailable")
        assert alarm.blocking and "OperationalError" in alarm.text
        assert engine.metrics.alarms.blocking() == [alarm]  # what makes /readyz 503
        store.down = False
        assert (await next_event(events, "A")).order.status is S.FILLED
        engine.deliver(fill("B", "202", "10000", key="f-b"))
        assert (await next_event(events, "B")).order.status is S.FILLED
        assert not engine.metrics.alarms.active("store_unavailable")

    run(store, scenario, resting("A", "101"), resting("B", "202"))
    store.close()


def er_with_exec_id(seq: int, exec_id: str, cl_ord_id: str, order_id: str, cum_qty: int) -> ExecutionReport:
    """A venue's fill report carrying ExecID (17), decoded by the FIX codec as it comes off the wire."""
    status, leaves = ("2", 0) if cum_qty == 10000 else ("1", 10000 - cum_qty)
    raw = (
        f"8=FIX.4.4|9=200|35=8|34={seq}|49=CSERVER|50=TRADE|52=20250101-10:00:{seq:02d}.000|56=desk|"
        f"6=1.08|11={cl_ord_id}|14={cum_qty}|17={exec_id}|31=1.08|32={cum_qty}|37={order_id}|38=10000|"
        f"39={status}|40=2|44=1.08|54=1|55=1|59=1|60=20250101-10:00:00.000|150=F|151={leaves}|10=000|"
    )
    return codec.decode_execution_report(Fields.parse(raw), raw)


def test_a_venue_whose_exec_ids_restarted_has_both_fills_applied_and_the_resent_one_deduped(sqlite_url: str):
    store = OrderStore(sqlite_url)

    async def scenario(engine: OrderEngine) -> None:
        events = engine.events()
        engine.deliver(er_with_exec_id(10, "1", "A", "101", 3000))
        engine.deliver(er_with_exec_id(11, "1", "A", "101", 3000))  # the same report, resent
        engine.deliver(er_with_exec_id(1, "1", "B", "202", 10000))  # after the venue restarted
        assert (await next_event(events, "A")).order.cum_qty == 3000
        assert (await next_event(events, "B")).order.status is S.FILLED
        assert [a.key for a in engine.metrics.alarms.active("dedupe_conflict")] == ["fix:1"]

    metrics = run(store, scenario, resting("A", "101"), resting("B", "202"))
    sample = metrics.value
    assert sample("fixadapter_deduplication_conflicts_total") == 1
    assert sample("fixadapter_duplicate_execution_reports_total") == 1
    assert store.get_order("A").cum_qty == 3000  # type: ignore[union-attr]
    store.close()


@pytest.mark.postgres
def test_a_report_postgresql_cannot_take_is_set_aside_even_with_its_nul_and_the_next_is_applied(
    postgresql_url: str,
):
    store = OrderStore(postgresql_url)
    store.create_schema()

    async def scenario(engine: OrderEngine) -> None:
        events = engine.events()
        engine.deliver(fill("A", "101", "10000", key="nul", text="bad\x00text", raw="58=bad\x00text"))
        engine.deliver(fill("B", "202", "10000", key="fine"))
        assert (await next_event(events, "B")).order.status is S.FILLED
        await raised(engine, "report_set_aside")
        assert len(engine.metrics.alarms.active("report_set_aside")) == 1

    run(store, scenario, resting("A", "101"), resting("B", "202"))
    (aside,) = store.reports_set_aside()
    assert aside["raw"] == "58=bad\\x00text" and "NUL" in aside["error"]
    assert store.get_order("A").status is S.NEW  # type: ignore[union-attr]
    store.close()


def test_a_venue_order_whose_id_names_one_of_our_requests_is_adopted_under_the_venues_id(
    sqlite_url: str,
):
    store = OrderStore(sqlite_url)

    async def scenario(engine: OrderEngine) -> None:
        await engine.cancel(CancelOrder(cl_ord_id="A", request_id="cxl-A"))
        elsewhere = make_report(cl_ord_id=None, orig_cl_ord_id="cxl-A", order_id="999", dedupe_key="x")
        adopted = await engine.adopt_external(elsewhere)
        assert adopted.cl_ord_id == "venue-999"
        assert (await engine.get_order("A")).pending_request_id == "cxl-A"  # type: ignore[union-attr]

    run(store, scenario, resting("A", "101"))
    assert store.get_order("venue-999").order_id == "999"  # type: ignore[union-attr]
    store.close()


def test_an_absurd_venue_id_is_shown_cut_short_in_alarms(sqlite_url: str):
    store = OrderStore(sqlite_url)
    absurd = "7" * 10_000

    async def scenario(engine: OrderEngine) -> None:
        events = engine.events()
        engine.deliver(fill("A", absurd, "10000", key=absurd))
        engine.deliver(fill("B", "202", "10000", key="fine"))
        await next_event(events, "B")
        (alarm,) = engine.metrics.alarms.active("mismatched_report")
        assert len(alarm.key) < 100 and len(alarm.text) < 400
        assert "7777777777" in alarm.text and "10000 characters" in alarm.text

    run(store, scenario, resting("A", "101"), resting("B", "202"))
    store.close()


def test_an_id_asked_for_by_a_new_order_and_a_cancel_at_once_is_taken_by_one_only(store_url: str):
    store = OrderStore(store_url)

    async def scenario(engine: OrderEngine) -> None:
        new = NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=10000, cl_ord_id="X")
        results = await asyncio.gather(
            engine.submit(new),
            engine.cancel(CancelOrder(cl_ord_id="A", request_id="X")),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, ClientIdInUse)]
        assert len(refused) == 1, results
        assert len([r for r in results if isinstance(r, Order)]) == 1

    run(store, scenario, resting("A", "101"))
    usage = store.client_id_usage("X")
    assert usage in {("order", "X"), ("cancel", "A")}
    assert (store.get_order("X") is None) == (usage == ("cancel", "A"))
    store.close()


def test_a_new_order_is_stored_and_sent_without_looking_its_id_up_in_the_store_first(sqlite_url: str):
    store = OrderStore(sqlite_url)
    request = NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=10000, cl_ord_id="N-1")

    async def scenario(engine: OrderEngine) -> None:
        await engine.submit(request)
        assert engine._connector.sent == [("new", "N-1")]  # type: ignore[attr-defined]

    metrics = run(store, scenario)
    store.close()
    assert metrics.value("fixadapter_store_seconds_count", {"operation": "insert_order"}) == 1
    assert metrics.value("fixadapter_store_seconds_count", {"operation": "get_order"}) is None


def test_a_retry_of_an_order_only_the_store_has_gets_it_back_though_a_check_would_now_refuse_it(
    sqlite_url: str,
):
    """A redelivered command after a restart finds its filled order, even when its expiry is now past."""
    store = OrderStore(sqlite_url)
    expired = datetime.now(UTC) - timedelta(hours=1)
    old = make_order(
        cl_ord_id="OLD-1",
        order_type=OrderType.LIMIT,
        price=Decimal("1.08"),
        time_in_force=TimeInForce.GOOD_TILL_DATE,
        expire_time=expired,
        status=OrderStatus.FILLED,
    )
    retry = NewOrder(
        symbol="EURUSD",
        side="buy",
        order_type="limit",
        price="1.08",
        quantity=10000,
        time_in_force="good_till_date",
        expire_time=expired,
        cl_ord_id="OLD-1",
    )

    async def scenario(engine: OrderEngine) -> None:
        again = await engine.submit(retry)
        assert (again.cl_ord_id, again.status) == ("OLD-1", OrderStatus.FILLED)
        with pytest.raises(OrderRejected, match="already past"):
            await engine.submit(retry.model_copy(update={"cl_ord_id": "NEW-1"}))
        assert engine._connector.sent == []  # type: ignore[attr-defined]

    run(store, scenario, old)
    store.close()


class DownForOneOrder(FlakyStore):
    """Executions of order `cl_ord_id` fail as in an outage while `down` is set; every other order's land
    (a database refusing one table's writes, a lock held on one row)."""

    def __init__(self, url: str, cl_ord_id: str) -> None:
        super().__init__(url)
        self.cl_ord_id = cl_ord_id

    def record_execution(self, order: Order, *args: Any, **kwargs: Any) -> int | None:
        if order.cl_ord_id != self.cl_ord_id:
            return OrderStore.record_execution(self, order, *args, **kwargs)
        return super().record_execution(order, *args, **kwargs)


def test_the_store_alarm_stays_while_any_report_waits_even_when_another_order_s_report_lands(
    sqlite_url: str,
):
    """Reports about different orders are handled side by side: B's landing must not clear the alarm A's
    report raised while A's still waits for the database (it did: any report's end cleared it)."""
    store = DownForOneOrder(sqlite_url, "A")

    async def scenario(engine: OrderEngine) -> None:
        engine.store_outage_alarm_seconds = 0.0
        events = engine.events()
        store.down = True
        # Fills on positions of their own: each in its order's lane, side by side.
        engine.deliver(fill("A", "101", "10000", key="f-a", position_id="1001"))
        await asyncio.to_thread(store.failed_twice.wait, 10)
        assert engine.metrics.alarms.active("store_unavailable")
        engine.deliver(fill("B", "202", "10000", key="f-b", position_id="1002"))
        assert (await next_event(events, "B")).order.status is S.FILLED
        await handled_all_but(engine, 1)  # B's handling has ended, alarm bookkeeping included
        assert engine.metrics.alarms.active("store_unavailable"), "cleared while A's report still waits"
        assert engine.metrics.alarms.blocking()  # /readyz still 503
        store.down = False
        assert (await next_event(events, "A")).order.status is S.FILLED
        await handled_all_but(engine, 0)
        assert not engine.metrics.alarms.active("store_unavailable")

    run(store, scenario, resting("A", "101"), resting("B", "202"))
    store.close()


async def handled_all_but(engine: OrderEngine, waiting: int) -> None:
    """Until only `waiting` reports are taken and not yet handled (a handler's end runs after the event
    it published reaches the test)."""
    async with asyncio.timeout(10):
        while len(engine._inbox._handling) > waiting:
            await asyncio.sleep(0.01)

"""TRADE session end to end: the adapter in this process, the CSERVER simulator in another, real sockets."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from fixadapter.api import Adapter
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.errors import OrderRejected, SessionNotReady
from fixadapter.model.enums import OrderEventKind, OrderStatus, PositionSide, SessionState
from fixadapter.model.orders import OrderEvent
from fixadapter.model.reports import ConnectionStatus
from fixadapter.model.requests import NewOrder, ReplaceOrder
from fixadapter.sim.process import SimProcess

from .conftest import ConfigFactory, SimFactory

EURUSD = 1
FAR_BELOW = Decimal("0.90000")
WAIT_SECONDS = 30.0  # a condition ends the wait; this only bounds a broken one (2 shared CI cores)


def market(side: str = "buy", quantity: int = 10000, **extra: object) -> NewOrder:
    return NewOrder(symbol="EURUSD", side=side, order_type="market", quantity=quantity, **extra)


def limit(price: Decimal, side: str = "buy", quantity: int = 10000) -> NewOrder:
    return NewOrder(symbol="EURUSD", side=side, order_type="limit", quantity=quantity, price=price)


async def events_of(
    adapter: Adapter, cl_ord_id: str, until: OrderStatus, timeout: float = 10
) -> list[OrderEvent]:
    seen: list[OrderEvent] = []
    queue = adapter.engine.subscribe()
    try:
        async with asyncio.timeout(timeout):
            while not seen or seen[-1].order.status is not until:
                event = await queue.get()
                if event.order.cl_ord_id == cl_ord_id:
                    seen.append(event)
    finally:
        adapter.engine.unsubscribe(queue)
    return seen


def test_logon_with_good_credentials_becomes_ready_with_instruments(
    sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        async with Adapter(make_config(sim)) as adapter:
            await adapter.wait_ready(10)
            assert adapter.ready
            assert "EURUSD" in {i.name for i in adapter.instruments()}
            sample = adapter.metrics.value
            assert sample("fixadapter_logons_total", {"session": "TRADE"}) == 1
            assert sample("fixadapter_logons_total", {"session": "QUOTE"}) == 1

    asyncio.run(scenario())


def test_logon_with_wrong_password_is_refused_with_ctrader_reason(
    sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        statuses: list[ConnectionStatus] = []
        wrong = make_config(sim, password="wrong-password")  # noqa: S106
        async with Adapter(wrong) as adapter:
            adapter.on_session(statuses.append)
            with pytest.raises(SessionNotReady, match="RET_INVALID_DATA"):
                await adapter.wait_ready(3)
            sample = adapter.metrics.value
            assert sample("fixadapter_logon_failures_total", {"session": "TRADE"}) >= 1
        refused = [s for s in statuses if s.state is SessionState.LOGGED_OUT and s.text]
        assert refused and refused[0].text == (
            "InternalError: RET_INVALID_DATA (the login or the password is wrong: check account.username and "
            "the password)"
        )

    asyncio.run(scenario())


def test_trade_logon_on_quote_port_is_refused_with_target_sub_id_reason(
    sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        quote, trade = sim.session_port(SessionKind.QUOTE), sim.session_port(SessionKind.TRADE)
        swapped = make_config(sim, quote_port=trade, trade_port=quote)
        async with Adapter(swapped) as adapter:
            with pytest.raises(SessionNotReady) as refused:
                await adapter.wait_ready(3)
        assert "TargetSubID is assigned with the unexpected value 'TRADE', expected 'QUOTE'" in str(
            refused.value
        )

    asyncio.run(scenario())


def test_market_order_is_accepted_filled_persisted_and_opens_a_position(
    sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        async with Adapter(make_config(sim)) as adapter:
            await adapter.wait_ready(10)
            order = await adapter.submit(market(label="spec-market"))
            events = await events_of(adapter, order.cl_ord_id, OrderStatus.FILLED)
            assert [e.kind for e in events] == [OrderEventKind.ACCEPTED, OrderEventKind.FILLED]
            filled = events[-1]
            assert filled.fill is not None and filled.fill.quantity == 10000
            assert filled.order.avg_px == filled.fill.price
            assert filled.order.position_id is not None
            stored = adapter.engine.store.executions(order.cl_ord_id)
            assert [row["event"] for row in stored] == ["accepted", "filled"]
            positions = {p.position_id: p for p in await adapter.positions(refresh=True)}
            assert positions[filled.order.position_id].quantity == 10000
            assert positions[filled.order.position_id].side is PositionSide.LONG

    asyncio.run(scenario())


def test_limit_order_rests_then_is_replaced_then_cancelled(sim: SimProcess, make_config: ConfigFactory):
    async def scenario() -> None:
        async with Adapter(make_config(sim)) as adapter:
            await adapter.wait_ready(10)
            order = await adapter.submit(limit(FAR_BELOW))
            resting = await adapter.wait_for(order.cl_ord_id, "new")
            assert resting.order_id is not None
            await adapter.replace(
                ReplaceOrder(cl_ord_id=order.cl_ord_id, quantity=20000, price=Decimal("0.91"))
            )
            replaced = await events_of(adapter, order.cl_ord_id, OrderStatus.NEW)
            assert replaced[-1].kind is OrderEventKind.REPLACED
            assert (replaced[-1].order.quantity, replaced[-1].order.price) == (20000, Decimal("0.91"))
            await adapter.cancel(order.cl_ord_id)
            cancelled = await adapter.wait_for(order.cl_ord_id)
            assert cancelled.status is OrderStatus.CANCELLED
            venue = {o["cl_ord_id"]: o for o in sim.control("/state")["orders"]}
            assert venue[order.cl_ord_id]["status"] == "cancelled"
            assert Decimal(venue[order.cl_ord_id]["quantity"]) == 20000

    asyncio.run(scenario())


def test_limit_order_fills_when_the_price_crosses_it(sim: SimProcess, make_config: ConfigFactory):
    async def scenario() -> None:
        async with Adapter(make_config(sim)) as adapter:
            await adapter.wait_ready(WAIT_SECONDS)
            sim.control("/scenario", {"freeze_prices": True})
            order = await adapter.submit(limit(Decimal("1.05000")))
            await adapter.wait_for(order.cl_ord_id, "new", timeout=WAIT_SECONDS)
            venue = {o["cl_ord_id"]: o["status"] for o in sim.control("/state")["orders"]}
            assert venue[order.cl_ord_id] == "new"  # below the market (about 1.0835): it rests
            sim.control("/quote", {"symbol_id": EURUSD, "bid": "1.04980", "ask": "1.04990"})
            filled = await adapter.wait_for(order.cl_ord_id, timeout=WAIT_SECONDS)
            assert filled.status is OrderStatus.FILLED
            assert filled.avg_px == Decimal("1.05")

    asyncio.run(scenario())


def test_cancel_of_an_order_the_venue_does_not_know_is_rejected_with_its_reason(
    sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        async with Adapter(make_config(sim)) as adapter:
            await adapter.wait_ready(10)
            with pytest.raises(OrderRejected) as refused:
                await adapter.cancel("no-such-order-42")
            assert "ORDER_NOT_FOUND:Order with clientOrderId=no-such-order-42 not found." in str(
                refused.value
            )

    asyncio.run(scenario())


def test_cancel_of_a_market_order_under_execution_is_refused_and_it_still_fills(
    start_sim: SimFactory, make_config: ConfigFactory
):
    sim = start_sim(extra_args=("--partial-fills", "4"))

    async def scenario() -> None:
        async with Adapter(make_config(sim)) as adapter:
            await adapter.wait_ready(10)
            order = await adapter.submit(market(quantity=40000))
            await adapter.wait_for(order.cl_ord_id, "new", "partially_filled")
            await adapter.cancel(order.cl_ord_id)
            events = await events_of(adapter, order.cl_ord_id, OrderStatus.FILLED)
            refused = [e for e in events if e.kind is OrderEventKind.CANCEL_REJECTED]
            assert refused and refused[0].reason == "Order is under execution"
            fills = [e.fill.quantity for e in events if e.fill is not None]
            assert sum(fills) + (40000 - sum(fills)) == 40000 and len(fills) >= 1
            final = await adapter.order(order.cl_ord_id)
            assert final is not None and final.cum_qty == 40000

    asyncio.run(scenario())


def test_partial_close_of_a_hedged_position_reduces_it_and_an_opposite_order_without_id_hedges(
    sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        async with Adapter(make_config(sim)) as adapter:
            await adapter.wait_ready(10)
            opened = await adapter.wait_for((await adapter.submit(market(quantity=10000))).cl_ord_id)
            position_id = opened.position_id
            assert position_id is not None
            close = await adapter.submit(market(side="sell", quantity=4000, position_id=position_id))
            closing = await adapter.wait_for(close.cl_ord_id)
            assert closing.status is OrderStatus.FILLED and closing.position_id == position_id
            hedge = await adapter.wait_for(
                (await adapter.submit(market(side="sell", quantity=3000))).cl_ord_id
            )
            positions = {p.position_id: p for p in await adapter.positions(refresh=True)}
            assert (
                positions[position_id].quantity == 6000 and positions[position_id].side is PositionSide.LONG
            )
            assert positions[hedge.position_id].side is PositionSide.SHORT  # a hedge, not a close
            assert positions[hedge.position_id].quantity == 3000

    asyncio.run(scenario())


def test_after_a_reconnect_mass_status_and_positions_reconcile_before_orders_resume(
    sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        async with Adapter(make_config(sim)) as adapter:
            await adapter.wait_ready(10)
            resting = await adapter.submit(limit(FAR_BELOW))
            await adapter.wait_for(resting.cl_ord_id, "new")
            filled = await adapter.wait_for((await adapter.submit(market())).cl_ord_id)
            sim.control("/logout", {"session": "TRADE", "reason": "maintenance"})
            await asyncio.sleep(0.2)
            await adapter.wait_ready(15)
            sample = adapter.metrics.value
            assert sample("fixadapter_reconciliations_total", {"outcome": "done"}) == 2
            assert sample("fixadapter_logons_total", {"session": "TRADE"}) == 2
            assert sample("fixadapter_logon_failures_total", {"session": "TRADE"}) is None, (
                "a logout is not a refusal"
            )
            still = await adapter.order(resting.cl_ord_id)
            assert still is not None and still.status is OrderStatus.NEW
            assert filled.position_id in {p.position_id for p in await adapter.positions()}
            after = await adapter.wait_for((await adapter.submit(market())).cl_ord_id)
            assert after.status is OrderStatus.FILLED

    asyncio.run(scenario())


def test_restarted_adapter_recovers_open_orders_from_the_store_and_can_cancel_them(
    sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        config = make_config(sim)
        async with Adapter(config) as first:
            await first.wait_ready(10)
            order = await first.submit(limit(FAR_BELOW))
            await first.wait_for(order.cl_ord_id, "new")
        async with Adapter(config) as second:
            await second.wait_ready(10)
            recovered = await second.order(order.cl_ord_id)
            assert recovered is not None and recovered.status is OrderStatus.NEW
            await second.cancel(order.cl_ord_id)
            assert (await second.wait_for(order.cl_ord_id)).status is OrderStatus.CANCELLED

    asyncio.run(scenario())


def test_a_retried_submission_with_the_same_cl_ord_id_makes_one_order(
    sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        async with Adapter(make_config(sim)) as adapter:
            await adapter.wait_ready(10)
            request = market(cl_ord_id="strategy-7-0001")
            first = await adapter.submit(request)
            again = await adapter.submit(request)
            assert again.cl_ord_id == first.cl_ord_id
            await adapter.wait_for(first.cl_ord_id)
            venue = [o for o in sim.control("/state")["orders"] if o["cl_ord_id"] == "strategy-7-0001"]
            assert len(venue) == 1

    asyncio.run(scenario())

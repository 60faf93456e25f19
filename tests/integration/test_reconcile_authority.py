"""After a reconnect the venue is the authority: reconciliation corrects a local state that contradicts it.

The store is forced wrong while the adapter is stopped (as a crash, a bug or a hand edit would leave it);
the next logon's reconciliation must move the order to what the venue says, say so, and let the kill
switch act on what the venue has working.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from fixadapter.api import Adapter
from fixadapter.config import AdapterConfig
from fixadapter.model.enums import OrderStatus
from fixadapter.model.orders import Order
from fixadapter.model.requests import NewOrder
from fixadapter.sim.process import SimProcess
from fixadapter.store.repository import OrderStore

from .conftest import ConfigFactory


async def place_resting_order(config: AdapterConfig) -> Order:
    async with Adapter(config) as adapter:
        await adapter.wait_ready(10)
        order = await adapter.submit(
            NewOrder(symbol="EURUSD", side="buy", order_type="limit", quantity=10000, price="0.9")
        )
        return await adapter.wait_for(order.cl_ord_id, "new")


def force_in_store(config: AdapterConfig, order: Order, **wrong: Any) -> None:
    """What a crash or a bug could leave: a state the venue never reported, written behind the engine."""
    store = OrderStore(config.store.url)
    try:
        forced = order.model_copy(update=wrong)
        assert store.record_execution(forced, "forced", None, None, f"forced:{order.cl_ord_id}") is not None
    finally:
        store.close()


def venue_status(sim: SimProcess, cl_ord_id: str) -> str:
    orders = sim.control("/state")["orders"]
    return next(o["status"] for o in orders if o["cl_ord_id"] == cl_ord_id)


def test_an_order_wrongly_cancelled_locally_is_reopened_by_reconciliation_and_the_kill_switch_cancels_it(
    sim: SimProcess, make_config: ConfigFactory
):
    config = make_config(sim)

    async def scenario() -> None:
        order = await place_resting_order(config)
        force_in_store(config, order, status=OrderStatus.CANCELLED)
        async with Adapter(config) as adapter:
            await adapter.wait_ready(10)
            reopened = await adapter.order(order.cl_ord_id)
            assert reopened is not None and reopened.status is OrderStatus.NEW
            assert order.cl_ord_id in [o.cl_ord_id for o in adapter.engine.open_orders()]
            events = adapter.engine.store.executions(order.cl_ord_id)
            assert events[-1]["event"] == "reconciled"
            assert "cancelled" in events[-1]["text"] and "new" in events[-1]["text"]
            alarm = adapter.metrics.alarms.active("reconcile_corrected")
            assert [a.key for a in alarm] == [order.cl_ord_id]
            assert not alarm[0].blocking
            sample = adapter.metrics.value
            assert sample("fixadapter_reconciliation_corrections_total") == 1

            _, sweep = await adapter.engage_kill_switch("test", "a reopened order must be cancelled")
            assert sweep.sent == [order.cl_ord_id]
            cancelled = await adapter.wait_for(order.cl_ord_id)
            assert cancelled.status is OrderStatus.CANCELLED
        assert venue_status(sim, order.cl_ord_id) == "cancelled"

    asyncio.run(scenario())


def test_a_local_fill_ahead_of_the_venue_is_corrected_to_the_venues_quantities(
    sim: SimProcess, make_config: ConfigFactory
):
    config = make_config(sim)

    async def scenario() -> None:
        filled = await place_resting_order(config)
        partly = await place_resting_order(config)
        force_in_store(
            config, filled, status=OrderStatus.FILLED, cum_qty=Decimal(10000), avg_px=Decimal("0.9")
        )
        force_in_store(
            config, partly, status=OrderStatus.PARTIALLY_FILLED, cum_qty=Decimal(4000), avg_px=Decimal("0.9")
        )
        async with Adapter(config) as adapter:
            await adapter.wait_ready(10)
            for cl_ord_id in (filled.cl_ord_id, partly.cl_ord_id):
                corrected = await adapter.order(cl_ord_id)
                assert corrected is not None
                assert (corrected.status, corrected.cum_qty, corrected.avg_px) == (OrderStatus.NEW, 0, None)
                assert adapter.metrics.alarms.is_active("reconcile_corrected", cl_ord_id)
            reasons = [adapter.engine.store.executions(filled.cl_ord_id)[-1]["text"]]
            assert "filled" in reasons[0] and "10000" in reasons[0]
        assert venue_status(sim, filled.cl_ord_id) == "new"

    asyncio.run(scenario())

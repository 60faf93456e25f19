"""Pre-trade risk over the queue: each rule refuses with its name and the values it compared; the kill
switch cancels working orders and blocks new ones until released."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from fixadapter.client import StrategyClient
from fixadapter.daemon.service import Daemon
from fixadapter.model.enums import OrderStatus
from fixadapter.model.requests import NewOrder
from fixadapter.queue.schema import CommandRejected, OrderUpdate
from fixadapter.sim.process import SimProcess
from tests.integration.test_daemon_queue import daemon_config, started

RISK = {
    "max_open_orders": 3,
    "symbols": {
        "EURUSD": {"max_quantity": 100000, "collar_percent": 1},
        "GBPUSD": {"max_notional": 50000},
    },
    "strategies": {
        "narrow": {"allowed_symbols": ["EURUSD"]},
        "capped": {"max_open_orders": 1},
        "fast": {"max_orders_per_second": 2},
    },
}
SPOT = {"subscriptions": [{"symbol": "EURUSD"}, {"symbol": "GBPUSD"}]}


def order(symbol: str, quantity: int, price: str | None = None) -> NewOrder:
    if price is None:
        return NewOrder(symbol=symbol, side="buy", order_type="market", quantity=quantity)
    return NewOrder(symbol=symbol, side="buy", order_type="limit", quantity=quantity, price=Decimal(price))


async def outcome(client: StrategyClient, request: NewOrder) -> OrderUpdate | CommandRejected:
    cl_ord_id = await client.submit(request)
    async for event in client.events():
        if isinstance(event, CommandRejected) and event.cl_ord_id == cl_ord_id:
            return event
        if isinstance(event, OrderUpdate) and event.order.cl_ord_id == cl_ord_id and event.seq is not None:
            return event  # the venue's first answer
    raise AssertionError("events() ended")


async def refused(client: StrategyClient, request: NewOrder) -> CommandRejected:
    result = await asyncio.wait_for(outcome(client, request), 15)
    assert isinstance(result, CommandRejected), f"expected a refusal, got {result}"
    return result


async def accepted(client: StrategyClient, request: NewOrder) -> OrderUpdate:
    result = await asyncio.wait_for(outcome(client, request), 15)
    assert isinstance(result, OrderUpdate), f"expected the venue's answer, got {result}"
    assert result.order.status is not OrderStatus.REJECTED, result.order.reason
    return result


async def wait_for_quotes(daemon: Daemon, *symbols: str) -> None:
    async with asyncio.timeout(15):
        while any(daemon.adapter.quote(symbol) is None for symbol in symbols):
            await asyncio.sleep(0.05)


def test_each_risk_rule_refuses_with_its_name_and_the_values_it_compared(sim: SimProcess, tmp_path: Path):
    async def scenario() -> None:
        daemon = await started(daemon_config(sim, tmp_path, risk=RISK, market_data=SPOT))
        try:
            await wait_for_quotes(daemon, "EURUSD", "GBPUSD")
            async with (
                daemon.client("free") as free,
                daemon.client("narrow") as narrow,
                daemon.client("capped") as capped,
                daemon.client("fast") as fast,
            ):
                big = await refused(free, order("EURUSD", 200000))
                assert (big.rule, big.values["quantity"], big.values["limit"]) == (
                    "max_quantity",
                    "200000",
                    "100000",
                )

                costly = await refused(free, order("GBPUSD", 50000))  # 50,000 x ~1.27 > 50,000
                assert costly.rule == "max_notional" and Decimal(costly.values["notional"]) > 50000
                await accepted(free, order("GBPUSD", 30000))

                far = await refused(free, order("EURUSD", 10000, "1.20000"))  # ~10% above the mid
                assert far.rule == "price_collar" and Decimal(far.values["off_percent"]) > 1
                assert "price 1.2" in far.reason and "from mid" in far.reason

                elsewhere = await refused(narrow, order("GBPUSD", 1000))
                assert elsewhere.rule == "allowed_symbols" and elsewhere.values["strategy"] == "narrow"
                await accepted(narrow, order("EURUSD", 1000))

                results = [await asyncio.wait_for(outcome(fast, order("EURUSD", 1000)), 15) for _ in range(3)]
                assert [type(r).__name__ for r in results] == [
                    "OrderUpdate",
                    "OrderUpdate",
                    "CommandRejected",
                ]
                assert isinstance(results[2], CommandRejected) and results[2].rule == "max_orders_per_second"

                await accepted(capped, order("AUDUSD", 1000, "0.50000"))  # rests far below the market
                second = await refused(capped, order("AUDUSD", 1000, "0.50000"))
                assert second.rule == "max_open_orders_per_strategy"

                await accepted(free, order("AUDUSD", 1000, "0.50000"))
                await accepted(free, order("AUDUSD", 1000, "0.50000"))  # three open orders in all now
                full = await refused(free, order("AUDUSD", 1000, "0.50000"))
                assert full.rule == "max_open_orders" and full.values["limit"] == "3"

            rejects = daemon.adapter.metrics.order_rejects
            assert rejects.labels("risk", "max_quantity")._value.get() == 1
        finally:
            await daemon.stop()

    asyncio.run(scenario())


def test_the_kill_switch_cancels_working_orders_blocks_new_ones_and_release_lets_them_through(
    sim: SimProcess, tmp_path: Path
):
    async def scenario() -> None:
        daemon = await started(daemon_config(sim, tmp_path))
        try:
            async with daemon.client("momo") as client:
                resting = [await accepted(client, order("EURUSD", 1000, "1.00000")) for _ in range(2)]
                state, sweep = await daemon.adapter.engage_kill_switch("ops", "runaway strategy")
                assert state.engaged and sorted(sweep.sent) == sorted(r.order.cl_ord_id for r in resting)
                for update in resting:
                    final = await asyncio.wait_for(client.final_state(update.order.cl_ord_id), 15)
                    assert isinstance(final, OrderUpdate) and final.order.status is OrderStatus.CANCELLED

                blocked = await refused(client, order("EURUSD", 1000))
                assert blocked.rule == "kill_switch" and blocked.values["engaged_by"] == "ops"
                assert "runaway strategy" in blocked.reason

                await daemon.adapter.release_kill_switch("ops", "fixed")
                filled = await accepted(client, order("EURUSD", 1000))
                assert filled.order.strategy == "momo"
        finally:
            await daemon.stop()

    asyncio.run(scenario())

"""Strategies trade through Redis Streams: the order is filled and its events come back on the strategy's
stream; a command delivered twice makes one order."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from fixadapter.client import StrategyClient
from fixadapter.config import AdapterConfig
from fixadapter.model.enums import OrderStatus
from fixadapter.queue.redis_streams import RedisClientTransport
from fixadapter.queue.schema import OrderUpdate, SubmitCommand, encode
from fixadapter.queue.transport import ORDERS, POSITIONS
from fixadapter.sim.process import SimProcess
from tests.integration.test_daemon_queue import daemon_config, market, started


def redis_daemon(
    sim: SimProcess,
    tmp_path: Path,
    redis_url: str,
    prefix: str,
    strategies: tuple[str, ...] = ("momo", "other"),
) -> AdapterConfig:
    config = daemon_config(sim, tmp_path)
    queue = {
        "kind": "redis",
        "redis_url": redis_url,
        "prefix": prefix,
        "consumer": "test",
        "strategies": strategies,
    }
    return config.model_copy(
        update={
            "daemon": config.daemon.model_copy(update={"queue": config.daemon.queue.model_validate(queue)})
        }
    )


def test_an_order_through_redis_streams_is_filled_and_its_events_come_back_on_the_strategy_stream(
    sim: SimProcess, tmp_path: Path, redis_url: str, queue_prefix: str
):
    async def scenario() -> None:
        daemon = await started(redis_daemon(sim, tmp_path, redis_url, queue_prefix))
        try:
            async with StrategyClient.redis(redis_url, "momo", queue_prefix) as client:
                cl_ord_id = await client.submit(market(25000))
                final = await asyncio.wait_for(client.final_state(cl_ord_id), 15)
            assert isinstance(final, OrderUpdate) and final.order.status is OrderStatus.FILLED
            assert final.order.cum_qty == Decimal(25000) and final.fill is not None
            async with StrategyClient.redis(redis_url, "other", queue_prefix) as bystander:
                bystander.cursor = {ORDERS: "0", POSITIONS: "0"}  # everything ever published to it
                seen = await bystander._transport.read_events("other", bystander.cursor, 0.2)
                assert [r for r in seen if r.stream == ORDERS] == [], (
                    "another strategy got momo's order events"
                )
        finally:
            await daemon.stop()

    asyncio.run(scenario())


def test_a_command_delivered_twice_through_redis_makes_one_order(
    sim: SimProcess, tmp_path: Path, redis_url: str, queue_prefix: str
):
    async def scenario() -> None:
        daemon = await started(redis_daemon(sim, tmp_path, redis_url, queue_prefix))
        try:
            command = encode(SubmitCommand(id="twice-1", strategy="momo", order=market()))
            async with StrategyClient.redis(redis_url, "momo", queue_prefix) as client:
                raw = RedisClientTransport(redis_url, queue_prefix)
                await raw.send_command("momo", command)
                await raw.send_command("momo", command)
                await raw.close()
                final = await asyncio.wait_for(client.final_state("twice-1"), 15)
                assert isinstance(final, OrderUpdate) and final.order.status is OrderStatus.FILLED
                async with asyncio.timeout(10):
                    while await daemon.source.backlog():
                        await asyncio.sleep(0.05)
            assert [o.cl_ord_id for o in await daemon.adapter.orders()].count("twice-1") == 1
        finally:
            await daemon.stop()
        assert [o["cl_ord_id"] for o in sim.control("/state")["orders"]].count("twice-1") == 1

    asyncio.run(scenario())

"""Strategies trade through the daemon's in-process queue: commands in, every order change out."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

from fixadapter.config import AdapterConfig, build_config
from fixadapter.daemon.service import Daemon
from fixadapter.model.enums import OrderEventKind, OrderStatus
from fixadapter.model.requests import NewOrder
from fixadapter.queue.schema import CommandRejected, OrderUpdate, SubmitCommand, encode
from fixadapter.sim.process import SimProcess


def daemon_config(sim: SimProcess, tmp_path: Path, **sections: Any) -> AdapterConfig:
    return build_config(
        {
            "account": sim.adapter_settings(),
            "store": {"url": f"sqlite:///{tmp_path / 'daemon.db'}"},
            "orders": {"ready_timeout_seconds": 15, "reconcile_timeout_seconds": 5},
            "daemon": {"http": {"enabled": False}},
            **sections,
        },
        environ={},
    )


def market(quantity: int = 10000, symbol: str = "EURUSD") -> NewOrder:
    return NewOrder(symbol=symbol, side="buy", order_type="market", quantity=quantity)


def limit(price: str, quantity: int = 10000, symbol: str = "EURUSD") -> NewOrder:
    return NewOrder(symbol=symbol, side="buy", order_type="limit", quantity=quantity, price=Decimal(price))


async def started(config: AdapterConfig) -> Daemon:
    daemon = Daemon(config)
    await daemon.start()
    await daemon.adapter.wait_ready(15)
    return daemon


def test_an_order_sent_over_the_queue_is_filled_and_every_change_comes_back_in_order(
    sim: SimProcess, tmp_path: Path
):
    async def scenario() -> None:
        daemon = await started(daemon_config(sim, tmp_path))
        try:
            async with daemon.client("momo") as client:
                cl_ord_id = await client.submit(market())
                final = await asyncio.wait_for(client.final_state(cl_ord_id), 15)
                assert isinstance(final, OrderUpdate)
                assert final.order.status is OrderStatus.FILLED and final.order.strategy == "momo"
                assert final.fill is not None and final.fill.quantity == Decimal(10000)
                seqs = [u.seq for u in client.orders.values() if u.seq is not None]
                assert seqs == sorted(seqs)
            stored = await daemon.adapter.order(cl_ord_id)
            assert stored is not None and stored.status is OrderStatus.FILLED
        finally:
            await daemon.stop()

    asyncio.run(scenario())


def test_a_command_delivered_twice_makes_one_order(sim: SimProcess, tmp_path: Path):
    async def scenario() -> None:
        daemon = await started(daemon_config(sim, tmp_path))
        try:
            assert daemon.memory is not None
            command = SubmitCommand(id="dup-1", strategy="momo", order=market())
            async with daemon.client("momo") as client:
                transport = daemon.memory.client()
                await transport.send_command("momo", encode(command))
                await transport.send_command("momo", encode(command))
                final = await asyncio.wait_for(client.final_state("dup-1"), 15)
                assert isinstance(final, OrderUpdate) and final.order.status is OrderStatus.FILLED
                await asyncio.sleep(0.5)  # the second delivery has been handled too
                assert await daemon.source.backlog() == 0
            ours = [o for o in await daemon.adapter.orders() if o.cl_ord_id == "dup-1"]
            assert len(ours) == 1
        finally:
            await daemon.stop()
        at_venue = [o for o in sim.control("/state")["orders"] if o["cl_ord_id"] == "dup-1"]
        assert len(at_venue) == 1

    asyncio.run(scenario())


def test_an_invalid_command_is_refused_with_its_reason_and_does_not_block_the_queue(
    sim: SimProcess, tmp_path: Path
):
    async def scenario() -> None:
        daemon = await started(daemon_config(sim, tmp_path))
        try:
            assert daemon.memory is not None
            async with daemon.client("momo") as client:
                transport = daemon.memory.client()
                await transport.send_command(
                    "momo",
                    b'{"v": 1, "type": "submit", "id": "bad-1", "strategy": "momo",'
                    b' "order": {"symbol": "EURUSD", "side": "buy"}}',
                )
                await transport.send_command(
                    "momo", b'{"v": 99, "type": "cancel", "id": "bad-2", "strategy": "momo"}'
                )
                await transport.send_command("momo", b"not json at all")
                cl_ord_id = await client.submit(market())
                final = await asyncio.wait_for(client.final_state(cl_ord_id), 15)
                assert isinstance(final, OrderUpdate) and final.order.status is OrderStatus.FILLED
                refusals: list[CommandRejected] = []
                async for event in client.events(from_start=True):
                    if isinstance(event, CommandRejected):
                        refusals.append(event)
                    if isinstance(event, OrderUpdate) and event.order.cl_ord_id == cl_ord_id:
                        break
                assert [r.command_id for r in refusals] == ["bad-1", "bad-2", None]
                assert "order_type" in refusals[0].reason
                assert "unsupported schema version 99" in refusals[1].reason
                assert "not JSON" in refusals[2].reason, "a refusal goes to the stream that carried it"
            assert daemon.adapter.metrics.queue_commands.labels("unknown", "invalid")._value.get() == 1
        finally:
            await daemon.stop()

    asyncio.run(scenario())


def test_a_strategy_cannot_cancel_another_strategys_order(sim: SimProcess, tmp_path: Path):
    async def scenario() -> None:
        daemon = await started(daemon_config(sim, tmp_path))
        try:
            async with daemon.client("alpha") as alpha, daemon.client("beta") as beta:
                resting = await alpha.submit(limit("1.00000"))
                async for event in alpha.events():
                    if isinstance(event, OrderUpdate) and event.event is OrderEventKind.ACCEPTED:
                        break
                command_id = await beta.cancel(resting)
                async for event in beta.events():
                    if isinstance(event, CommandRejected):
                        assert event.command_id == command_id
                        assert "strategy beta has no order" in event.reason
                        break
                await alpha.cancel(resting)
                final = await asyncio.wait_for(alpha.final_state(resting), 15)
                assert isinstance(final, OrderUpdate) and final.order.status is OrderStatus.CANCELLED
        finally:
            await daemon.stop()

    asyncio.run(scenario())


def test_a_reader_that_stops_early_leaves_the_rest_of_the_batch_for_the_next(sim: SimProcess, tmp_path: Path):
    async def scenario() -> None:
        daemon = await started(daemon_config(sim, tmp_path))
        try:
            async with daemon.client("momo") as client:
                first = await client.submit(market())
                second = await client.submit(market())
                await asyncio.sleep(1.0)  # both filled: their events arrive in one read
                final = await asyncio.wait_for(client.final_state(first), 15)
                assert isinstance(final, OrderUpdate) and final.order.status is OrderStatus.FILLED
                later = await asyncio.wait_for(client.final_state(second), 15)
                assert isinstance(later, OrderUpdate) and later.order.status is OrderStatus.FILLED
                kinds = [u.event for u in client.orders.values()]
                assert kinds == [OrderEventKind.FILLED, OrderEventKind.FILLED]
        finally:
            await daemon.stop()

    asyncio.run(scenario())

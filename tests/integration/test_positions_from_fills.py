"""Positions kept from fills against the simulator: no positions download per fill, and what the adapter
holds after opening, adding to, reducing and closing hedged positions is what the venue has."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal

from fixadapter.api import Adapter
from fixadapter.model.enums import OrderStatus, PositionSide
from fixadapter.model.orders import Order, Position
from fixadapter.model.requests import NewOrder
from fixadapter.sim.process import SimProcess

from .conftest import ConfigFactory

DEADLINE = 20


def market(side: str, quantity: int, position_id: str | None = None) -> NewOrder:
    return NewOrder(
        symbol="EURUSD", side=side, order_type="market", quantity=quantity, position_id=position_id
    )


def terms(positions: Sequence[Position]) -> dict[str, tuple[PositionSide, Decimal, Decimal | None]]:
    return {p.position_id: (p.side, p.quantity, p.entry_price) for p in positions}


def venue_terms(sim: SimProcess) -> dict[str, tuple[PositionSide, Decimal, Decimal | None]]:
    return {
        str(p["position_id"]): (
            PositionSide.LONG if p["side"] == "buy" else PositionSide.SHORT,
            Decimal(p["volume"]),
            Decimal(p["entry_price"]),
        )
        for p in sim.control("/state")["positions"]
    }


def test_30_fills_send_no_positions_request_beyond_the_logons_and_the_positions_held_equal_the_venues(
    sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        async with Adapter(make_config(sim)) as adapter:
            published: asyncio.Queue[list[Position]] = asyncio.Queue()
            adapter.on_positions(lambda positions: published.put_nowait(list(positions)))
            await adapter.wait_ready(10)
            sent = adapter.metrics.value
            after_logon = sent("fixadapter_messages_sent_total", {"session": "TRADE", "message_type": "AN"})
            assert after_logon == 1

            async def fill(request: NewOrder) -> Order:
                order = await adapter.submit(request)
                done = await adapter.wait_for(order.cl_ord_id, timeout=DEADLINE)
                assert done.status is OrderStatus.FILLED, done.reason
                assert done.position_id is not None
                return done

            opened = [await fill(market("buy" if i % 2 else "sell", 10000 * (i + 1))) for i in range(10)]
            fills = 10
            for i, order in enumerate(opened):
                same = order.side.value
                other = "sell" if same == "buy" else "buy"
                position = order.position_id
                await fill(market(same, 5000, position))  # adds: the entry is the weighted average
                if i < 3:
                    await fill(market(other, order.quantity + 5000, position))  # closes it
                elif i < 6:
                    await fill(market(other, 2000, position))  # reduces it
                else:
                    await fill(market(same, 1000, position))  # adds again
                fills += 2
            assert fills == 30

            venue = venue_terms(sim)
            async with asyncio.timeout(DEADLINE):  # the last fill's positions event
                while terms(await published.get()) != venue:
                    pass
            assert sent("fixadapter_messages_sent_total", {"session": "TRADE", "message_type": "AN"}) == 1
            held = terms(await adapter.positions())  # from the store
            assert held == venue and len(held) == 7
            assert terms(await adapter.positions(refresh=True)) == held  # the venue's own answer
            assert sent("fixadapter_messages_sent_total", {"session": "TRADE", "message_type": "AN"}) == 2

    asyncio.run(scenario())


def test_positions_are_checked_with_the_venue_on_the_configured_timer(
    sim: SimProcess, make_config: ConfigFactory
):
    config = make_config(sim)
    config = config.model_copy(
        update={"orders": config.orders.model_copy(update={"positions_refresh_seconds": 0.3})}
    )

    async def scenario() -> None:
        async with Adapter(config) as adapter:
            published: asyncio.Queue[list[Position]] = asyncio.Queue()
            adapter.on_positions(lambda positions: published.put_nowait(list(positions)))
            await adapter.wait_ready(10)
            opened = await adapter.wait_for((await adapter.submit(market("buy", 10000))).cl_ord_id)
            sent = adapter.metrics.value
            async with asyncio.timeout(DEADLINE):  # no order meanwhile: only the timer asks the venue
                while (
                    sent("fixadapter_messages_sent_total", {"session": "TRADE", "message_type": "AN"}) or 0
                ) < 3:
                    await published.get()
            assert opened.position_id in terms(await adapter.positions())

    asyncio.run(scenario())

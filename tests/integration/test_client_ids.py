"""One id, one thing: a ClOrdID or request id used before is refused, so no venue answer moves another order.

Two strategies trade through one adapter against the simulator; B names its cancel (or replace) with
A's live ClOrdID. Before ids were unique, the venue's answer to B's cancel was applied to A's order
(A told it was cancelled while it stayed working) and the kill switch then missed A.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from fixadapter.api import Adapter
from fixadapter.errors import ClientIdInUse, OrderRejected
from fixadapter.model.enums import OrderStatus
from fixadapter.model.orders import Order
from fixadapter.model.requests import CancelOrder, NewOrder, ReplaceOrder
from fixadapter.sim.process import SimProcess

from .conftest import ConfigFactory

FAR_BELOW = Decimal("0.90000")


def venue_statuses(sim: SimProcess) -> dict[str, str]:
    return {o["cl_ord_id"]: o["status"] for o in sim.control("/state")["orders"]}


async def resting(adapter: Adapter, strategy: str) -> Order:
    order = await adapter.submit(
        NewOrder(
            symbol="EURUSD",
            side="buy",
            order_type="limit",
            quantity=10000,
            price=FAR_BELOW,
            strategy=strategy,
        )
    )
    return await adapter.wait_for(order.cl_ord_id, "new")


def test_a_cancel_or_replace_named_with_another_orders_cl_ord_id_is_refused_and_the_kill_switch_cancels_both(
    sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        async with Adapter(make_config(sim)) as adapter:
            await adapter.wait_ready(10)
            a = await resting(adapter, "A")
            b = await resting(adapter, "B")

            taken = f"request id {a.cl_ord_id} is already used by order {a.cl_ord_id}"
            with pytest.raises(ClientIdInUse, match=taken):
                await adapter.cancel(CancelOrder(cl_ord_id=b.cl_ord_id, request_id=a.cl_ord_id))
            with pytest.raises(ClientIdInUse, match=taken):
                await adapter.replace(
                    ReplaceOrder(
                        cl_ord_id=b.cl_ord_id, quantity=20000, price=FAR_BELOW, request_id=a.cl_ord_id
                    )
                )

            assert (await adapter.order(a.cl_ord_id)).status is OrderStatus.NEW  # type: ignore[union-attr]
            assert (await adapter.order(b.cl_ord_id)).status is OrderStatus.NEW  # type: ignore[union-attr]
            assert venue_statuses(sim)[a.cl_ord_id] == venue_statuses(sim)[b.cl_ord_id] == "new"

            _, sweep = await adapter.engage_kill_switch("test", "both strategies' orders must go")
            assert sorted(sweep.sent) == sorted([a.cl_ord_id, b.cl_ord_id])
            for order in (a, b):
                assert (await adapter.wait_for(order.cl_ord_id)).status is OrderStatus.CANCELLED
        venue = venue_statuses(sim)
        assert venue[a.cl_ord_id] == venue[b.cl_ord_id] == "cancelled"

    asyncio.run(scenario())


def test_a_new_order_named_with_an_earlier_request_id_or_a_reused_cl_ord_id_with_other_terms_is_refused(
    sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        async with Adapter(make_config(sim)) as adapter:
            await adapter.wait_ready(10)
            a = await resting(adapter, "A")
            await adapter.cancel(CancelOrder(cl_ord_id=a.cl_ord_id, request_id="A-cancel-1"))
            await adapter.wait_for(a.cl_ord_id)

            with pytest.raises(ClientIdInUse, match="ClOrdID A-cancel-1 is already used by the cancel of"):
                await adapter.submit(
                    NewOrder(
                        symbol="EURUSD",
                        side="buy",
                        order_type="market",
                        quantity=10000,
                        cl_ord_id="A-cancel-1",
                    )
                )
            again = NewOrder(
                symbol="EURUSD",
                side="buy",
                order_type="limit",
                quantity=20000,
                price=FAR_BELOW,
                strategy="A",
                cl_ord_id=a.cl_ord_id,
            )
            with pytest.raises(OrderRejected, match="used for a different order: quantity 10000 vs 20000"):
                await adapter.submit(again)
        venue = venue_statuses(sim)
        assert "A-cancel-1" not in venue and len(venue) == 1

    asyncio.run(scenario())

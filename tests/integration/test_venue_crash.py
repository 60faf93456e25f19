"""The simulator dies (SIGKILL) with orders in flight and comes back: nothing lost, nothing sent twice."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from fixadapter.api import Adapter
from fixadapter.model.enums import OrderStatus
from fixadapter.model.orders import Order
from fixadapter.model.requests import NewOrder

from .conftest import ConfigFactory, SimFactory

VENUE_STATUS = {
    "new": OrderStatus.NEW,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "cancelled": OrderStatus.CANCELLED,
    "rejected": OrderStatus.REJECTED,
    "expired": OrderStatus.EXPIRED,
}


def settled(order: Order | None) -> bool:
    """Final, or a limit order resting far from the market (it cannot fill in this test)."""
    if order is None:
        return False
    return order.is_done or (order.order_type == "limit" and order.status is OrderStatus.NEW)


def order_mix(batch: int) -> list[NewOrder]:
    orders = []
    for n in range(6):
        if n % 2:
            orders.append(
                NewOrder(
                    symbol="EURUSD",
                    side="buy",
                    order_type="market",
                    quantity=30000,
                    label=f"crash-{batch}-{n}",
                )
            )
        else:
            orders.append(
                NewOrder(
                    symbol="GBPUSD",
                    side="sell",
                    order_type="limit",
                    quantity=10000,
                    price=Decimal("1.50000"),
                    label=f"crash-{batch}-{n}",
                )
            )
    return orders


async def settle(adapter: Adapter, cl_ord_ids: list[str], timeout: float = 30) -> dict[str, Order]:
    orders: dict[str, Order | None] = {}
    try:
        async with asyncio.timeout(timeout):
            while True:
                orders = {c: await adapter.order(c) for c in cl_ord_ids}
                if all(settled(o) for o in orders.values()):
                    return orders  # type: ignore[return-value]
                await asyncio.sleep(0.1)
    except TimeoutError:
        unsettled = {
            c: (o.order_type, o.status.value, str(o.cum_qty)) if o else None for c, o in orders.items()
        }
        unsettled = {c: v for c, v in unsettled.items() if not settled(orders[c])}
        raise AssertionError(
            f"not settled after {timeout}s: {unsettled}; ready={adapter.ready} ({adapter.readiness()})"
        ) from None


def test_venue_killed_with_orders_in_flight_every_order_ends_in_its_true_state_once(
    start_sim: SimFactory, make_config: ConfigFactory
):
    sim = start_sim(extra_args=("--partial-fills", "3", "--tick-ms", "50"))

    async def scenario() -> None:
        # Over TLS the forwarder backs off while the venue is down (doubling up to tls_retry_max_seconds);
        # capped here so the reconnect, not the backoff, is what the settle below waits for.
        config = make_config(sim, tls_retry_max_seconds=2)
        # Orders wait for the venue to come back: a bound only a broken adapter reaches, even on a loaded VM.
        config = config.model_copy(
            update={"orders": config.orders.model_copy(update={"ready_timeout_seconds": 60})}
        )
        async with Adapter(config) as adapter:
            await adapter.wait_ready(10)
            first = [await adapter.submit(request) for request in order_mix(1)]
            sim.kill()  # answers, fills in parts and some of the orders themselves are still on the wire
            during = [asyncio.create_task(adapter.submit(r)) for r in order_mix(2)]
            async with asyncio.timeout(30):  # the adapter sees the venue gone (how soon is load's to say)
                while adapter.ready:
                    await asyncio.sleep(0.05)
            sim.start()
            second = await asyncio.gather(*during)
            ours = await settle(adapter, [o.cl_ord_id for o in first + second])

        venue_orders = sim.control("/state")["orders"]
        by_id: dict[str, list[dict[str, str]]] = {}
        for venue_order in venue_orders:
            by_id.setdefault(venue_order["cl_ord_id"], []).append(venue_order)
        assert all(len(copies) == 1 for copies in by_id.values()), "an order reached the venue twice"
        assert set(by_id) <= set(ours), "the venue holds an order the adapter does not know"
        for cl_ord_id, order in ours.items():
            if cl_ord_id not in by_id:
                assert order.status is OrderStatus.REJECTED and "ORDER_NOT_FOUND" in (order.reason or "")
                continue
            venue_order = by_id[cl_ord_id][0]
            assert order.status is VENUE_STATUS[venue_order["status"]], cl_ord_id
            assert order.cum_qty == Decimal(venue_order["cum_qty"]), cl_ord_id
        resumed = [ours[o.cl_ord_id] for o in second]
        assert all(o.status is not OrderStatus.REJECTED for o in resumed), (
            "orders held during the outage are sent"
        )

    asyncio.run(scenario())

"""`fixadapter order`: send one order through the Python API and print its events until it is done."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from fixadapter.api import Adapter
from fixadapter.config import AdapterConfig
from fixadapter.model.orders import OrderEvent
from fixadapter.model.requests import NewOrder

REQUEST_FIELDS = ("symbol", "side", "order_type", "quantity", "price", "stop_price", "position_id", "label")


def describe(event: OrderEvent) -> str:
    order = event.order
    parts = [
        f"{event.kind.value:<17}",
        order.cl_ord_id,
        f"{order.side.value} {order.quantity} {order.symbol}",
        f"status={order.status.value}",
        f"filled={order.cum_qty}",
    ]
    if event.fill is not None:
        parts.append(f"fill {event.fill.quantity}@{event.fill.price}")
    if order.position_id:
        parts.append(f"position={order.position_id}")
    if event.reason:
        parts.append(f"reason: {event.reason}")
    return "  ".join(parts)


async def send_and_watch(config: AdapterConfig, fields: dict[str, Any], watch_seconds: float) -> int:
    request = NewOrder(**{k: v for k, v in fields.items() if k in REQUEST_FIELDS})
    async with Adapter(config) as adapter:
        print(
            f"waiting for logon and reconciliation at {config.account.host}:{config.account.trade_port}",
            file=sys.stderr,
        )
        await adapter.wait_ready()
        queue = adapter.engine.subscribe()
        order = await adapter.submit(request)
        try:
            async with asyncio.timeout(watch_seconds):
                while True:
                    event = await queue.get()
                    if event.order.cl_ord_id != order.cl_ord_id:
                        continue
                    print(describe(event), flush=True)
                    if event.order.is_done or (
                        event.order.status.value == "new" and request.order_type != "market"
                    ):
                        break
        except TimeoutError:
            print(f"no final state after {watch_seconds:g}s; the order stays in the store", file=sys.stderr)
            return 1
        finally:
            adapter.engine.unsubscribe(queue)
    return 0 if not order.is_done or order.status.value != "rejected" else 1

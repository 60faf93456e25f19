"""`fixadapter order`: send one order through the Python API and print its events until it is done."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from fixadapter.api import Adapter
from fixadapter.config import AdapterConfig
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.engine.capability_check import order_refusal
from fixadapter.errors import OrderRejected
from fixadapter.model.enums import OrderStatus, OrderType
from fixadapter.model.orders import OrderEvent
from fixadapter.model.requests import ORDER_TERMS, NewOrder

REQUEST_FIELDS = ("symbol", *ORDER_TERMS)


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


def _settled(event: OrderEvent, request: NewOrder) -> bool:
    """Done, or a pending order now resting at the venue (watching it further is the blotter's job)."""
    resting = request.order_type is not OrderType.MARKET and event.order.status is OrderStatus.NEW
    return event.order.is_done or resting


def order_request(fields: dict[str, Any]) -> NewOrder:
    """The order the command line asks for (its other options, such as --config, left out)."""
    return NewOrder(**{k: v for k, v in fields.items() if k in REQUEST_FIELDS})


async def send_and_watch(
    config: AdapterConfig, fields: dict[str, Any], watch_seconds: float, account: str | None = None
) -> int:
    """Exit code 0 when the order filled or rests, 1 when rejected, cancelled, expired or still unknown."""
    request = order_request(fields)
    async with Adapter(config, account=account) as adapter:
        refusal = order_refusal(request, adapter.connector.capabilities)
        if refusal is not None:  # said now, not after waiting for logon and reconciliation
            raise OrderRejected(refusal)
        entry = config.account(adapter.account)
        if entry.fix is not None:
            where = entry.fix.endpoint(SessionKind.TRADE)
        else:
            where = entry.openapi.endpoint if entry.openapi is not None else "?"
        print(f"waiting for logon and reconciliation at {where}", file=sys.stderr)
        await adapter.wait_ready()
        queue = adapter.engine.subscribe()
        try:
            order = await adapter.submit(request)
            async with asyncio.timeout(watch_seconds):
                while True:
                    event = await queue.get()
                    if event.order.cl_ord_id != order.cl_ord_id:
                        continue
                    print(describe(event), flush=True)
                    if _settled(event, request):
                        break
        except TimeoutError:
            print(f"no final state after {watch_seconds:g}s; the order stays in the store", file=sys.stderr)
            return 1
        finally:
            adapter.engine.unsubscribe(queue)
    return 0 if event.order.status in (OrderStatus.FILLED, OrderStatus.NEW) else 1

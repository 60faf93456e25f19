"""`fixadapter order`: send one order through the Python API and print its events until it is done."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from fixadapter.api import Adapter
from fixadapter.cli_support import EXIT_TIMEOUT
from fixadapter.config import AdapterConfig
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.engine.capability_check import order_refusal
from fixadapter.errors import OrderRejected, SubscriptionTimeout
from fixadapter.model.enums import OrderStatus, OrderType
from fixadapter.model.orders import OrderEvent
from fixadapter.model.requests import ORDER_TERMS, NewOrder

REQUEST_FIELDS = ("symbol", *ORDER_TERMS)
QUOTE_POLL_SECONDS = 0.05


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


async def wait_first_quote(adapter: Adapter, symbol: str, seconds: float) -> None:
    """Until the symbol has a quote (a depth book's top or a spot quote), subscribing to its spot stream if
    nothing is subscribed yet, so a risk rule that prices the order (max_notional, the collar) has one.
    SubscriptionTimeout when none comes within `seconds`; nothing when the connector has no market data."""
    if adapter.market is None:
        return
    deadline = time.monotonic() + seconds
    subscribed = False
    while True:
        if adapter.book(symbol) is not None or adapter.quote(symbol) is not None:
            return
        if not subscribed:  # UnknownSymbol (with close matches) or SubscriptionRejected say why not
            await adapter.subscribe(symbol, depth=False, wait=False)
            subscribed = True
        if time.monotonic() >= deadline:
            raise SubscriptionTimeout(
                f"no quote for {symbol} within {seconds:g}s, so the order was not sent (a risk rule may "
                "need one to price it); check the QUOTE session, or wait longer with --quote-wait-seconds"
            )
        await asyncio.sleep(QUOTE_POLL_SECONDS)


async def send_and_watch(
    config: AdapterConfig,
    fields: dict[str, Any],
    watch_seconds: float,
    account: str | None = None,
    quote_wait_seconds: float = 10.0,
) -> int:
    """Exit code 0 when the order filled or rests, 1 when rejected, cancelled or expired, 3 when its final
    state did not come in time (the order stays in the store)."""
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
        if quote_wait_seconds > 0:
            print(f"waiting for the first quote of {request.symbol}", file=sys.stderr)
            await wait_first_quote(adapter, request.symbol, quote_wait_seconds)
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
            return EXIT_TIMEOUT
        finally:
            adapter.engine.unsubscribe(queue)
    return 0 if event.order.status in (OrderStatus.FILLED, OrderStatus.NEW) else 1

"""The strategies: Redis clients placing market and limit orders, cancelling and replacing at a steady
pace through every fault, and keeping what they were told.

A submit counts as acknowledged once Redis took the command (XADD answered); a lost answer is sent again
with the same ClOrdID, which the daemon turns into the same order. Events are read without end; a Redis
outage is waited out and reading resumes at the saved cursor.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TypeVar

from redis.exceptions import RedisError

from fixadapter.client import StrategyClient
from fixadapter.model.enums import OrderStatus, OrderType
from fixadapter.model.requests import NewOrder
from fixadapter.queue.schema import OrderUpdate

T = TypeVar("T")
RETRY_SECONDS = 0.25
WORKING = frozenset({OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED})
TICK = Decimal("0.00001")


class Quote:
    """The last EURUSD mid the venue showed (limit prices are set around it)."""

    def __init__(self) -> None:
        self.mid = Decimal("1.08350")


class Trader:
    def __init__(self, name: str, redis_url: str, prefix: str, rng: random.Random, quote: Quote) -> None:
        self.name = name
        self.client = StrategyClient.redis(redis_url, name, prefix)
        self.rng = rng
        self.quote = quote
        self.submitted: dict[str, NewOrder] = {}  # acknowledged submits
        self.sent = Counter[str]()
        self.redis_errors = 0
        self.seqs: list[int] = []  # of the order events received, in the order received

    async def retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """`call()` until Redis answers it (an outage is a fault the soak made; it ends)."""
        while True:
            try:
                return await call()
            except (RedisError, OSError):
                self.redis_errors += 1
                await asyncio.sleep(RETRY_SECONDS)

    async def start(self) -> None:
        await self.retrying(self.client.start)

    async def close(self) -> None:
        await self.client.close()

    async def read_events(self) -> None:
        """Read this strategy's events forever; the client keeps the latest update of each order, and the
        store's sequence numbers are kept to show an event delivered twice or out of order."""
        while True:
            try:
                async for event in self.client.events():
                    if isinstance(event, OrderUpdate) and event.seq is not None:
                        self.seqs.append(event.seq)
            except (RedisError, OSError):
                self.redis_errors += 1
                await asyncio.sleep(RETRY_SECONDS)

    def working_limits(self) -> list[str]:
        return [
            cl_ord_id
            for cl_ord_id, update in self.client.orders.items()
            if update.order.status in WORKING and update.order.order_type is OrderType.LIMIT
        ]

    def _quantity(self) -> int:
        return self.rng.randrange(1, 11) * 1000

    def _limit_price(self, side: str) -> Decimal:
        offset = TICK * self.rng.randrange(0, 40)
        return (self.quote.mid - offset if side == "buy" else self.quote.mid + offset).quantize(TICK)

    def new_order(self) -> NewOrder:
        side = self.rng.choice(("buy", "sell"))
        cl_ord_id = self.client.new_id()
        if self.rng.random() < 0.55:
            return NewOrder(
                cl_ord_id=cl_ord_id,
                symbol="EURUSD",
                side=side,
                order_type="market",
                quantity=self._quantity(),
            )
        return NewOrder(
            cl_ord_id=cl_ord_id,
            symbol="EURUSD",
            side=side,
            order_type="limit",
            quantity=self._quantity(),
            price=self._limit_price(side),
        )

    async def submit(self, order: NewOrder) -> str:
        cl_ord_id = await self.retrying(lambda: self.client.submit(order))
        self.submitted[cl_ord_id] = order
        self.sent["submit"] += 1
        return cl_ord_id

    async def step(self) -> None:
        """One action: mostly new orders, else a cancel or a replace of a working limit order."""
        roll = self.rng.random()
        working = self.working_limits()
        if roll < 0.2 and working:
            target = self.rng.choice(working)
            await self.retrying(lambda: self.client.cancel(target))
            self.sent["cancel"] += 1
        elif roll < 0.35 and working:
            target = self.rng.choice(working)
            side = self.client.orders[target].order.side
            quantity, price = self._quantity(), self._limit_price(side)
            await self.retrying(lambda: self.client.replace(target, quantity, price=price))
            self.sent["replace"] += 1
        else:
            await self.submit(self.new_order())

    async def trade(self, stop: asyncio.Event, pace_seconds: float) -> None:
        while not stop.is_set():
            await self.step()
            with_jitter = pace_seconds * (0.5 + self.rng.random())
            try:
                await asyncio.wait_for(stop.wait(), with_jitter)
            except TimeoutError:
                continue

    async def cancel_working(self) -> int:
        """Cancel every order this strategy still sees working (the end of the run)."""
        working = [
            cl_ord_id for cl_ord_id, update in self.client.orders.items() if update.order.status in WORKING
        ]
        for cl_ord_id in working:
            await self.retrying(functools.partial(self.client.cancel, cl_ord_id))
        return len(working)

"""The demo's sample strategy, trading EURUSD and GBPUSD through the daemon's queue.

It buys both at market, rests a limit order below the market, replaces it and cancels it, sends two orders
that the demo's risk limits refuse (2,000,000 EURUSD, over `max_quantity`; a GBPUSD limit 3 % from the
market, outside `collar_percent`), closes part of each position and opens a hedge. It uses nothing but the
StrategyClient: commands go over the queue, answers come back as events, and the prices it quotes come
from its own fills (it reads no market data). Steps are spread over `duration` seconds.

Loaded by the daemon (`daemon.strategies: [{name: sample, entry: "fixadapter.strategies.sample:run"}]`)
it runs the same way; without risk limits the venue simply takes the two orders meant to be refused
(the collar one is then cancelled).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TypeVar

from fixadapter.client import StrategyClient
from fixadapter.engine.tasks import cancel_and_wait
from fixadapter.model.enums import OrderEventKind, OrderStatus
from fixadapter.model.requests import NewOrder
from fixadapter.queue.schema import CommandRejected, OrderUpdate

STRATEGY = "sample"
WAIT_SECONDS = 15.0
PRICE_STEP = Decimal("0.00001")  # EURUSD and GBPUSD are quoted with 5 digits
WORKING = (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)

log = logging.getLogger("fixadapter.strategies.sample")
Say = Callable[[str], None]
Outcome = OrderUpdate | CommandRejected
T = TypeVar("T")


class StrategyFailed(RuntimeError):
    """The venue or the daemon did not answer in time (the message says what was awaited)."""


class _Events:
    """One task reads the client's events for the whole run; steps wait for what it has seen.

    Nothing breaks out of `client.events()`: one reader notes every event in order, and steps check
    `client.orders`, `client.final()` and what this reader noted instead of reading events themselves.
    """

    def __init__(self, client: StrategyClient) -> None:
        self.client = client
        self.kinds: dict[str, list[OrderEventKind]] = {}  # every event kind of each order, in order
        self.refusals: dict[str, CommandRejected] = {}  # by command id
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._read(), name="sample-events")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def _read(self) -> None:
        async for event in self.client.events():
            if isinstance(event, OrderUpdate):
                self.kinds.setdefault(event.order.cl_ord_id, []).append(event.event)
            elif isinstance(event, CommandRejected) and event.command_id:
                self.refusals[event.command_id] = event
            async with self._changed:
                self._changed.notify_all()

    async def until(self, what: str, found: Callable[[], T | None]) -> T:
        """Wait until `found()` returns something (checked after every event)."""
        try:
            async with asyncio.timeout(WAIT_SECONDS), self._changed:
                while not (result := found()):
                    await self._changed.wait()
                return result
        except TimeoutError:
            raise StrategyFailed(f"no answer after {WAIT_SECONDS:g}s: {what}") from None


def _price(reference: Decimal, factor: str) -> Decimal:
    return (reference * Decimal(factor)).quantize(PRICE_STEP, rounding=ROUND_HALF_EVEN)


def _outcome(final: Outcome) -> str:
    if isinstance(final, CommandRejected):
        rule = f"{final.rule}: " if final.rule else ""
        return f"refused: {rule}{final.reason}"
    order = final.order
    text = f"{order.status.value}"
    if order.cum_qty:
        text += f" {order.cum_qty} at {order.avg_px}"
    if final.reason:
        text += f" ({final.reason})"
    return text


class _Run:
    def __init__(self, client: StrategyClient, events: _Events, say: Say) -> None:
        self.client = client
        self.events = events
        self.say = say
        self.last_price: dict[str, Decimal] = {}  # symbol -> the last fill's price
        self.position: dict[str, str] = {}  # symbol -> the position its first buy opened
        self.resting: str | None = None

    async def _final(self, cl_ord_id: str, what: str) -> Outcome:
        return await self.events.until(what, lambda: self.client.final(cl_ord_id))

    async def market(self, side: str, quantity: int, symbol: str, position_id: str | None = None) -> Outcome:
        what = f"market {side} {quantity:,} {symbol}"
        cl_ord_id = await self.client.submit(
            NewOrder(
                symbol=symbol,
                side=side,
                order_type="market",
                quantity=quantity,
                position_id=position_id,
                label=STRATEGY,
            )
        )
        final = await self._final(cl_ord_id, what)
        if isinstance(final, OrderUpdate) and final.order.avg_px is not None:
            self.last_price[symbol] = final.order.avg_px
            if final.order.position_id and position_id is None:
                self.position.setdefault(symbol, final.order.position_id)
        self.say(f"{what}: {_outcome(final)}")
        return final

    async def limit(self, side: str, quantity: int, symbol: str, price: Decimal) -> Outcome:
        """Submit a limit order; returns its first settled state (working, done or refused)."""
        cl_ord_id = await self.client.submit(
            NewOrder(
                symbol=symbol, side=side, order_type="limit", quantity=quantity, price=price, label=STRATEGY
            )
        )

        def settled() -> Outcome | None:
            update = self.client.orders.get(cl_ord_id)
            if update is not None and update.order.status in WORKING:
                return update
            return self.client.final(cl_ord_id)

        return await self.events.until(f"limit {side} {quantity:,} {symbol} at {price}", settled)

    # -- the steps, in order -------------------------------------------------------------------------

    async def buy_eurusd(self) -> None:
        await self.market("buy", 10_000, "EURUSD")

    async def buy_gbpusd(self) -> None:
        await self.market("buy", 20_000, "GBPUSD")

    async def rest_limit(self) -> None:
        reference = self.last_price.get("EURUSD")
        if reference is None:
            self.say("no EURUSD fill to price a limit order from: skipping the resting order")
            return
        price = _price(reference, "0.995")
        state = await self.limit("buy", 20_000, "EURUSD", price)
        if isinstance(state, OrderUpdate) and state.order.status in WORKING:
            self.resting = state.order.cl_ord_id
            self.say(f"limit buy 20,000 EURUSD at {price} (0.5 % below the market) rests at the venue")
        else:
            self.say(f"limit buy 20,000 EURUSD at {price}: {_outcome(state)}")

    async def over_max_quantity(self) -> None:
        final = await self.market("buy", 2_000_000, "EURUSD")
        if isinstance(final, OrderUpdate) and final.order.position_id:
            # No max_quantity configured: the venue filled it, so close it again.
            await self.market("sell", 2_000_000, "EURUSD", final.order.position_id)

    async def replace_limit(self) -> None:
        if self.resting is None or "EURUSD" not in self.last_price:
            self.say("nothing resting to replace")
            return
        cl_ord_id = self.resting
        price = _price(self.last_price["EURUSD"], "0.996")
        seen = len(self.events.kinds.get(cl_ord_id, []))
        command_id = await self.client.replace(cl_ord_id, 25_000, price=price)
        answers = (OrderEventKind.REPLACED, OrderEventKind.REPLACE_REJECTED)

        def answered() -> str | None:
            refusal = self.events.refusals.get(command_id)
            if refusal is not None:
                return f"refused: {refusal.reason}"
            kinds = self.events.kinds.get(cl_ord_id, [])[seen:]
            done = self.client.final(cl_ord_id)
            for kind in kinds:
                if kind in answers:
                    return kind.value
            return _outcome(done) if done is not None else None

        answer = await self.events.until(f"replace of {cl_ord_id}", answered)
        self.say(f"replace the resting order with 25,000 at {price}: {answer}")

    async def outside_collar(self) -> None:
        reference = self.last_price.get("GBPUSD")
        if reference is None:
            self.say("no GBPUSD fill to price a limit order from: skipping the collar test")
            return
        price = _price(reference, "0.97")
        state = await self.limit("buy", 10_000, "GBPUSD", price)
        self.say(f"limit buy 10,000 GBPUSD at {price} (3 % below the market): {_outcome(state)}")
        if isinstance(state, OrderUpdate) and state.order.status in WORKING:
            await self.client.cancel(state.order.cl_ord_id)  # no collar configured: take it back
            await self._final(state.order.cl_ord_id, "cancel of the GBPUSD limit order")

    async def cancel_limit(self) -> None:
        if self.resting is None:
            self.say("nothing resting to cancel")
            return
        cl_ord_id, self.resting = self.resting, None
        command_id = await self.client.cancel(cl_ord_id)

        def answered() -> Outcome | None:
            return self.events.refusals.get(command_id) or self.client.final(cl_ord_id)

        final: Outcome = await self.events.until(f"cancel of {cl_ord_id}", answered)
        self.say(f"cancel the resting order: {_outcome(final)}")

    async def close_eurusd(self) -> None:
        position_id = self.position.get("EURUSD")
        if position_id is None:
            self.say("no EURUSD position to close")
            return
        await self.market("sell", 4_000, "EURUSD", position_id)

    async def close_gbpusd(self) -> None:
        position_id = self.position.get("GBPUSD")
        if position_id is None:
            self.say("no GBPUSD position to close")
            return
        await self.market("sell", 5_000, "GBPUSD", position_id)

    async def hedge_eurusd(self) -> None:
        await self.market("sell", 15_000, "EURUSD")  # no position id: a hedged account opens a short

    def steps(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        return [
            ("market buy 10,000 EURUSD", self.buy_eurusd),
            ("market buy 20,000 GBPUSD", self.buy_gbpusd),
            ("limit buy 20,000 EURUSD 0.5 % below the market: it rests", self.rest_limit),
            ("market buy 2,000,000 EURUSD: over the max_quantity limit", self.over_max_quantity),
            ("replace the resting order: 25,000, 0.4 % below", self.replace_limit),
            ("limit buy GBPUSD 3 % below the market: outside the price collar", self.outside_collar),
            ("cancel the resting order", self.cancel_limit),
            ("sell 4,000 EURUSD against its position: a partial close", self.close_eurusd),
            ("sell 5,000 GBPUSD against its position", self.close_gbpusd),
            ("sell 15,000 EURUSD with no position: opens a short beside the long", self.hedge_eurusd),
        ]


def _log_line(text: str) -> None:
    log.info("%s", text)


async def run(client: StrategyClient, duration: float = 20.0, say: Say = _log_line) -> None:
    """Trade the steps above, spread evenly over about `duration` seconds; returns when all are done.

    `say` gets a line before each step and one with its outcome (the demo shows them in its blotter).
    Raises StrategyFailed when an answer does not come within WAIT_SECONDS.
    """
    events = _Events(client)
    events.start()
    trader = _Run(client, events, say)
    steps = trader.steps()
    gap = max(duration, 0.0) / len(steps)
    started = time.monotonic()
    try:
        for number, (title, step) in enumerate(steps):
            await asyncio.sleep(max(0.0, started + number * gap - time.monotonic()))
            say(f"step {number + 1}/{len(steps)}: {title}")
            await step()
        await asyncio.sleep(max(0.0, started + duration - time.monotonic()))
    finally:
        await events.stop()

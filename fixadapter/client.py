"""What a strategy uses to trade through the daemon: submit, cancel, replace, and its events.

    async with StrategyClient.redis("redis://127.0.0.1:6379/0", strategy="momo") as client:
        cl_ord_id = await client.submit(NewOrder(symbol="EURUSD", side="buy", order_type="market",
                                                 quantity=10000))
        final = await client.final_state(cl_ord_id)  # takes no event from the loop below
        async for event in client.events():  # every event since the client started
            ...

Commands are fire-and-forget onto the queue: the answer comes as events (`order` updates, or a
`command_rejected` naming the reason and, for a risk limit, the rule and values). Every command gets a
fresh id and every order a ClOrdID before it leaves, so resending a command after a timeout can never make
a second order. Events are read from where the client started (`start()`, or the first command of a client
never started; or from the start of the stream with `from_start=True`), so an answer published between
`submit()` and the first `events()` iteration is not lost; `cursor` can be saved and given back to resume
after a restart. `events()` loops take events one after another (a loop that stops leaves the rest for the
next); `final_state()` and `final()` only look, so a later `events()` loop still gets every event they saw.
A daemon trading several accounts needs each command to name one: the client's `account`, or the one given
to a call.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections import deque
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from types import TracebackType

from fixadapter.model.enums import DONE_STATUSES
from fixadapter.model.requests import (
    ACCOUNT_PATTERN,
    STRATEGY_PATTERN,
    AmendPositionProtection,
    ClosePosition,
    NewOrder,
)
from fixadapter.queue.memory import MemoryQueue
from fixadapter.queue.schema import (
    MAX_COMMAND_BYTES,
    AmendPositionProtectionCommand,
    CancelCommand,
    ClosePositionCommand,
    CommandRejected,
    OrderUpdate,
    PositionsUpdate,
    ReplaceCommand,
    SubmitCommand,
    decode_event,
    encode,
)
from fixadapter.queue.transport import ORDERS, POSITIONS, ClientTransport

Event = OrderUpdate | CommandRejected | PositionsUpdate
POLL_SECONDS = 1.0
# Events read (by final_state, or an events() loop's read) and not yet taken by an events() loop: a client
# that only ever calls final_state keeps the newest this many, the oldest dropped with a warning.
KEPT_EVENTS = 100_000
log = logging.getLogger("fixadapter.client")


class StrategyClient:
    def __init__(
        self,
        transport: ClientTransport,
        strategy: str,
        cursor: dict[str, str] | None = None,
        account: str | None = None,
    ) -> None:
        """`account`: what commands are for unless a call names another (None: the daemon's only one)."""
        if not re.fullmatch(STRATEGY_PATTERN, strategy):
            raise ValueError(
                f"strategy name {strategy!r} is not allowed: 1 to 50 letters, digits, '.', '_' or '-'"
            )
        if account is not None and not re.fullmatch(ACCOUNT_PATTERN, account):
            raise ValueError(f"account name {account!r} is not allowed: a-z, then up to 31 of a-z, 0-9, '_'")
        self._transport = transport
        self.strategy = strategy
        self.account = account
        self.cursor: dict[str, str] = dict(cursor or {ORDERS: "$", POSITIONS: "$"})
        self.orders: dict[str, OrderUpdate] = {}  # the latest update of each order seen, by ClOrdID
        self.refused: dict[str, CommandRejected] = {}  # refused submits, by ClOrdID
        # Read from the transport, noted, and not yet taken by an events() loop (final_state only looks).
        self._buffer: deque[Event] = deque(maxlen=KEPT_EVENTS)
        self._dropped = 0
        self._reading = asyncio.Lock()  # one read of the transport at a time: the cursor is shared

    @classmethod
    def redis(
        cls, url: str, strategy: str, prefix: str = "fixadapter", account: str | None = None
    ) -> StrategyClient:
        from fixadapter.queue.redis_streams import RedisClientTransport

        return cls(RedisClientTransport(url, prefix), strategy, account=account)

    @classmethod
    def in_process(cls, queue: MemoryQueue, strategy: str, account: str | None = None) -> StrategyClient:
        return cls(queue.client(), strategy, account=account)

    async def __aenter__(self) -> StrategyClient:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Fix where events are read from now, before the first command: no answer can slip past."""
        if "$" in self.cursor.values():
            async with self._reading:
                if "$" in self.cursor.values():
                    await self._read(0)

    async def _read(self, timeout: float) -> None:
        """One read of the transport (the caller holds `_reading`): every event noted, then kept for
        events()."""
        for record in await self._transport.read_events(self.strategy, self.cursor, timeout):
            event = decode_event(record.data)
            self._note(event)
            if len(self._buffer) == KEPT_EVENTS:
                self._dropped += 1
                if self._dropped == 1:
                    log.warning(
                        "strategy %s: %d events read and never taken by an events() loop; dropping the "
                        "oldest (final_state and final still see every one)",
                        self.strategy,
                        KEPT_EVENTS,
                    )
            self._buffer.append(event)

    async def close(self) -> None:
        await self._transport.close()

    def new_id(self) -> str:
        return uuid.uuid4().hex[:24]

    async def submit(self, order: NewOrder, account: str | None = None) -> str:
        """Queue a new order; returns its ClOrdID (the order's own, or one made here)."""
        cl_ord_id = order.cl_ord_id or self.new_id()
        command = SubmitCommand(
            id=cl_ord_id,
            strategy=self.strategy,
            account=account or self.account,
            order=order.model_copy(update={"cl_ord_id": cl_ord_id, "strategy": self.strategy}),
        )
        await self._send(encode(command))
        return cl_ord_id

    async def cancel(self, cl_ord_id: str, request_id: str | None = None, account: str | None = None) -> str:
        """Queue a cancel; returns the command id (a refusal names it)."""
        command = CancelCommand(
            id=self.new_id(),
            strategy=self.strategy,
            account=account or self.account,
            cl_ord_id=cl_ord_id,
            request_id=request_id,
        )
        await self._send(encode(command))
        return command.id

    async def replace(
        self,
        cl_ord_id: str,
        quantity: Decimal | int | str,
        price: Decimal | str | None = None,
        stop_price: Decimal | str | None = None,
        expire_time: datetime | None = None,
        account: str | None = None,
    ) -> str:
        command = ReplaceCommand.model_validate(
            {
                "id": self.new_id(),
                "strategy": self.strategy,
                "account": account or self.account,
                "cl_ord_id": cl_ord_id,
                "quantity": quantity,
                "price": price,
                "stop_price": stop_price,
                "expire_time": expire_time,
            }
        )
        await self._send(encode(command))
        return command.id

    async def close_position(self, request: ClosePosition, account: str | None = None) -> str:
        """Queue a close of a position (whole when `request.quantity` is None); returns the closing order's
        ClOrdID (the request's request_id, or one made here), whose events follow like any order's."""
        cl_ord_id = request.request_id or self.new_id()
        command = ClosePositionCommand(
            id=cl_ord_id,
            strategy=self.strategy,
            account=account or self.account,
            position_id=request.position_id,
            quantity=request.quantity,
            request_id=cl_ord_id,
        )
        await self._send(encode(command))
        return cl_ord_id

    async def amend_position_protection(
        self, request: AmendPositionProtection, account: str | None = None
    ) -> str:
        """Queue a change of a position's stop loss and take profit (None removes one); returns the
        command id (a refusal names it)."""
        command = AmendPositionProtectionCommand(
            id=self.new_id(),
            strategy=self.strategy,
            account=account or self.account,
            position_id=request.position_id,
            stop_loss=request.stop_loss,
            take_profit=request.take_profit,
            trailing_stop_loss=request.trailing_stop_loss,
            request_id=request.request_id,
        )
        await self._send(encode(command))
        return command.id

    async def _send(self, data: bytes) -> None:
        if len(data) > MAX_COMMAND_BYTES:
            raise ValueError(
                f"command is {len(data)} bytes; the daemon refuses over {MAX_COMMAND_BYTES}: send less"
            )
        await self.start()  # a client used without `async with`: the answers are read from here on
        await self._transport.send_command(self.strategy, data)

    async def events(self, from_start: bool = False) -> AsyncIterator[Event]:
        """Every event for this strategy (and positions), in order, until the caller stops iterating."""
        if from_start:
            async with self._reading:
                self.cursor = {ORDERS: "0", POSITIONS: "0"}
                self._buffer.clear()
        while True:
            if not self._buffer:
                async with self._reading:
                    if not self._buffer:
                        await self._read(POLL_SECONDS)
            while self._buffer:
                # Taken off before it is yielded: a caller that stops iterating leaves the rest for the next.
                yield self._buffer.popleft()

    def _note(self, event: Event) -> None:
        if isinstance(event, OrderUpdate):
            self.orders[event.order.cl_ord_id] = event
        elif isinstance(event, CommandRejected) and event.command_type == "submit" and event.cl_ord_id:
            self.refused[event.cl_ord_id] = event

    def final(self, cl_ord_id: str) -> OrderUpdate | CommandRejected | None:
        """The order's final update or its submit's refusal, if already seen."""
        update = self.orders.get(cl_ord_id)
        if update is not None and update.order.status in DONE_STATUSES:
            return update
        return self.refused.get(cl_ord_id)

    async def final_state(self, cl_ord_id: str) -> OrderUpdate | CommandRejected:
        """Wait for the order's final update or its submit's refusal (wrap it in a timeout). It takes no
        event: what it reads stays for events(), which yields it next."""
        while True:
            seen = self.final(cl_ord_id)
            if seen is not None:
                return seen
            async with self._reading:
                if self.final(cl_ord_id) is None:
                    await self._read(POLL_SECONDS)

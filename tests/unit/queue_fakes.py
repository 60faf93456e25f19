"""A command source and an event sink for driving the command dispatcher in unit tests, without Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from types import SimpleNamespace
from typing import Any

from fixadapter.queue.schema import decode_event
from fixadapter.queue.transport import Delivery
from fixadapter.store.repository import OrderStore


class Commands:
    """A command source handing out `commands` in order (entry ids 1-0, 2-0, ...), then waiting for more
    (add()) as a queue does; a new iteration (a restarted dispatcher) hands out again those not
    acknowledged."""

    def __init__(self, *commands: bytes, strategy: str = "momo") -> None:
        self.strategy = strategy
        self.queued = [
            Delivery(entry_id=f"{n}-0", data=data, strategy=strategy) for n, data in enumerate(commands, 1)
        ]
        self.acked: list[str] = []
        self.all_acked = asyncio.Event()
        self._more = asyncio.Event()

    def add(self, data: bytes) -> None:
        """One more command, behind those queued."""
        number = len(self.queued) + 1
        self.queued.append(Delivery(entry_id=f"{number}-0", data=data, strategy=self.strategy))
        self.all_acked.clear()
        self._more.set()

    async def deliveries(self) -> AsyncGenerator[Delivery, None]:
        index = 0
        while True:
            while index < len(self.queued):
                delivery = self.queued[index]
                index += 1
                if delivery.entry_id not in self.acked:
                    yield delivery
            self._more.clear()
            await self._more.wait()

    async def ack(self, delivery: Delivery) -> None:
        self.acked.append(delivery.entry_id)
        if len(self.acked) == len(self.queued):
            self.all_acked.set()


class Published:
    """An event sink keeping what it was asked to publish, decoded."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    async def publish(self, strategy: str, data: bytes, seq: int | None) -> None:
        self.events.append(decode_event(data))


def engine_on(store: OrderStore) -> SimpleNamespace:
    """What the dispatcher asks of an account's engine besides orders: its readiness and command ids, kept
    in `store` (a thread of their own stands in for the store thread)."""

    async def first_use_of_command(strategy: str, command_id: str, digest: str) -> bool:
        return await asyncio.to_thread(store.first_use_of_command, strategy, command_id, digest)

    return SimpleNamespace(store=store, first_use_of_command=first_use_of_command, ready=True)

"""The in-process transport: strategies loaded in the daemon's process (and the tests) use the same
commands and events as over Redis, without a server.

One `MemoryQueue` is shared by the daemon (`source`, `sink`) and its clients (`client()`). Events are kept
per stream in a bounded history so a client that starts reading "from 0" after an event was published
still sees it, like a Redis stream. A client sends as the strategy it was made for (in-process code is
trusted: any well-formed strategy name is taken, `daemon.queue.strategies` is for Redis). Everything
runs on one event loop; nothing here is thread-safe.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from dataclasses import replace

from fixadapter.queue.transport import ORDERS, POSITIONS, Delivery, EventRecord, Published

HISTORY = 100_000


class MemoryQueue:
    def __init__(self, history: int = HISTORY) -> None:
        self._commands: asyncio.Queue[Delivery] = asyncio.Queue()
        self._unacked: dict[str, Delivery] = {}
        self._ids = itertools.count(1)
        self._history = history
        self._streams: dict[str, deque[EventRecord]] = {}
        self._changed = asyncio.Condition()
        self._closed = False
        self.source = _Source(self)
        self.sink = _Sink(self)

    def client(self) -> MemoryClientTransport:
        return MemoryClientTransport(self)

    # -- used by the three views --------------------------------------------------------------------

    def _next_id(self) -> str:
        return f"{next(self._ids)}-0"

    async def _append(self, key: str, stream: str, data: bytes) -> None:
        records = self._streams.setdefault(key, deque(maxlen=self._history))
        records.append(EventRecord(stream=stream, entry_id=self._next_id(), data=data))
        async with self._changed:
            self._changed.notify_all()

    def _after(self, key: str, entry_id: str) -> list[EventRecord]:
        after = _number(entry_id)
        newer = []
        for record in reversed(self._streams.get(key, ())):  # newest first: O(new), not O(history)
            if _number(record.entry_id) <= after:
                break
            newer.append(record)
        newer.reverse()
        return newer

    def _last_id(self, key: str) -> str:
        records = self._streams.get(key)
        return records[-1].entry_id if records else "0-0"


def _number(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


def _orders_key(strategy: str) -> str:
    return f"{ORDERS}:{strategy}"


class _Source:
    def __init__(self, queue: MemoryQueue) -> None:
        self._queue = queue

    async def start(self) -> None:
        return None

    async def deliveries(self) -> AsyncGenerator[Delivery, None]:
        queue = self._queue
        for taken in list(queue._unacked.values()):  # an abandoned iteration's: hand them out again
            if queue._closed:
                return
            yield replace(taken, redelivered=True)
        while not queue._closed:
            delivery = await queue._commands.get()
            if delivery.entry_id == "":  # close() wakes the reader with an empty marker
                return
            queue._unacked[delivery.entry_id] = delivery
            yield delivery

    async def ack(self, delivery: Delivery) -> None:
        self._queue._unacked.pop(delivery.entry_id, None)

    async def backlog(self) -> int:
        return self._queue._commands.qsize() + len(self._queue._unacked)

    async def close(self) -> None:
        self._queue._closed = True
        self._queue._commands.put_nowait(Delivery(entry_id="", data=b"", strategy=""))


class _Sink:
    def __init__(self, queue: MemoryQueue) -> None:
        self._queue = queue

    async def start(self) -> None:
        return None

    async def published_seq(self) -> int | None:
        return None  # nothing outlives the process: no replay

    async def start_tracking(self, seq: int) -> None:
        return None

    async def publish(self, strategy: str, data: bytes, seq: int | None) -> None:
        await self._queue._append(_orders_key(strategy), ORDERS, data)

    async def publish_many(self, events: Sequence[Published]) -> None:
        for strategy, data, _ in events:
            await self._queue._append(_orders_key(strategy), ORDERS, data)

    async def publish_positions(self, data: bytes) -> None:
        await self._queue._append(POSITIONS, POSITIONS, data)

    async def close(self) -> None:
        return None


class MemoryClientTransport:
    def __init__(self, queue: MemoryQueue) -> None:
        self._queue = queue

    async def send_command(self, strategy: str, data: bytes) -> None:
        queue = self._queue
        queue._commands.put_nowait(Delivery(entry_id=queue._next_id(), data=data, strategy=strategy))

    async def read_events(self, strategy: str, cursor: dict[str, str], timeout: float) -> list[EventRecord]:
        queue = self._queue
        keys = {ORDERS: _orders_key(strategy), POSITIONS: POSITIONS}
        for name, key in keys.items():
            if cursor.get(name, "$") == "$":
                cursor[name] = queue._last_id(key)

        def ready() -> list[EventRecord]:
            found = [r for name, key in keys.items() for r in queue._after(key, cursor[name])]
            return sorted(found, key=lambda record: _number(record.entry_id))

        records = ready()
        if not records and timeout > 0:
            async with queue._changed:
                try:
                    await asyncio.wait_for(queue._changed.wait_for(lambda: bool(ready())), timeout)
                except TimeoutError:
                    return []
            records = ready()
        for record in records:
            cursor[record.stream] = record.entry_id
        return records

    async def close(self) -> None:
        return None

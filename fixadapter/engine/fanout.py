"""Hands order events and position snapshots to every consumer: queues, callbacks and iterators.

A consumer that raises is logged and counted, never allowed to stop the engine or starve the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TypeVar

from fixadapter.metrics import Metrics
from fixadapter.model.orders import OrderEvent, Position

T = TypeVar("T")

log = logging.getLogger("fixadapter.engine")

EventCallback = Callable[[OrderEvent], None]
PositionsCallback = Callable[[Sequence[Position]], None]


class EventFanout:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._queues: list[asyncio.Queue[OrderEvent]] = []
        self._callbacks: list[EventCallback] = []
        self._position_callbacks: list[PositionsCallback] = []

    def on_event(self, callback: EventCallback) -> None:
        self._callbacks.append(callback)

    def on_positions(self, callback: PositionsCallback) -> None:
        """Called with the venue's whole list after every refresh (after fills and each logon)."""
        self._position_callbacks.append(callback)

    def subscribe(self) -> asyncio.Queue[OrderEvent]:
        """A queue that receives every order event from now on; give it back with unsubscribe()."""
        queue: asyncio.Queue[OrderEvent] = asyncio.Queue()
        self._queues.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[OrderEvent]) -> None:
        if queue in self._queues:
            self._queues.remove(queue)

    def events(self) -> OrderEvents:
        """Every order event from the call on (not from the first iteration: `events = adapter.events()`
        before a submit gets the submit's own events), in order, until the caller stops iterating."""
        return OrderEvents(self)

    def publish(self, event: OrderEvent) -> None:
        for queue in self._queues:
            queue.put_nowait(event)
        for callback in self._callbacks:
            self._call(callback, event, "event_callback")

    def publish_positions(self, positions: Sequence[Position]) -> None:
        for callback in self._position_callbacks:
            self._call(callback, positions, "positions_callback")

    def _call(self, callback: Callable[[T], None], value: T, where: str) -> None:
        try:
            callback(value)
        except Exception:
            self._metrics.callback_errors.labels(where).inc()
            log.exception("an %s raised (ignored)", where.replace("_", " "))


class OrderEvents(AsyncIterator[OrderEvent]):
    """An iterator subscribed when made; it unsubscribes when closed (`aclose()`, the end of an
    `async for` left by break or an exception through `async with contextlib.aclosing(...)`) or dropped."""

    def __init__(self, fanout: EventFanout) -> None:
        self._fanout = fanout
        self._queue: asyncio.Queue[OrderEvent] | None = fanout.subscribe()

    def __aiter__(self) -> OrderEvents:
        return self

    async def __anext__(self) -> OrderEvent:
        if self._queue is None:
            raise StopAsyncIteration
        return await self._queue.get()

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        if self._queue is not None:
            self._fanout.unsubscribe(self._queue)
            self._queue = None

    def __del__(self) -> None:
        self.close()

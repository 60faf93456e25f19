"""Live venue events in arrival order, each stamped with its arrival mark (model/reconciliation.py).

Connector threads hand events over with `deliver` (thread-safe, O(1)); one engine task takes them in
order. A connector's answer to a question carries the mark of its own arrival: `handled_through(mark)`
waits until every event that arrived before that answer has been handled, so an answer is never applied
ahead of what the venue said before it.
"""

from __future__ import annotations

import asyncio
from collections import deque

from fixadapter.model.reconciliation import arrival_mark
from fixadapter.model.reports import VenueReport

Arrival = tuple[int, VenueReport]


class Inbox:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._items: deque[Arrival] = deque()
        self._handling: set[int] = set()  # the marks of the events taken and not yet handled
        self._arrived = asyncio.Event()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def deliver(self, report: VenueReport) -> None:
        """Thread-safe: stamped now on the loop's thread, from another thread once it reaches the loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._put(report)
        else:
            loop.call_soon_threadsafe(self._put, report)

    def _put(self, report: VenueReport) -> None:
        self._items.append((arrival_mark(), report))
        self._arrived.set()

    def empty(self) -> bool:
        return not self._items

    async def take(self) -> Arrival:
        """The next event; it counts as being handled until `done(its mark)`."""
        while not self._items:
            self._arrived.clear()
            await self._arrived.wait()
        return self.take_nowait()

    def take_nowait(self) -> Arrival:
        arrival = self._items.popleft()
        self._handling.add(arrival[0])
        return arrival

    def put_back(self, arrivals: list[Arrival]) -> None:
        """Events taken and never handled go back to the front, in arrival order."""
        for arrival in sorted(arrivals, key=lambda taken: taken[0], reverse=True):
            self._handling.discard(arrival[0])
            self._items.appendleft(arrival)
        if arrivals:
            self._arrived.set()

    def done(self, mark: int) -> None:
        """The event taken with `mark` is handled."""
        self._handling.discard(mark)
        oldest = self._oldest()
        still = []
        for waiting_for, waiter in self._waiters:
            if oldest is None or oldest > waiting_for:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                still.append((waiting_for, waiter))
        self._waiters = still

    def _oldest(self) -> int | None:
        queued = self._items[0][0] if self._items else None
        if not self._handling:
            return queued
        handling = min(self._handling)
        return handling if queued is None else min(handling, queued)

    async def handled_through(self, mark: int) -> None:
        """Wait until every event that arrived before `mark` is handled."""
        oldest = self._oldest()
        if oldest is None or oldest > mark:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((mark, waiter))
        try:
            await waiter
        finally:
            if not waiter.done():
                waiter.cancel()
            self._waiters = [(m, w) for m, w in self._waiters if w is not waiter]

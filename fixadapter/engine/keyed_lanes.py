"""Work about different keys handled side by side; the work about one key, one after another.

An item names its keys (lanes): it starts once the last item handed over in each of them has been handled,
so items sharing a key keep their order and nothing ties two keys. An item naming no key is a barrier: it
waits until every item before it is handled and is handled alone. Used for execution reports (keyed by
order, and a fill by its position too: engine/orders.py) and strategy commands (keyed by order or position:
daemon/dispatcher.py): the writes of a burst reach the store thread together and share one commit
(store_thread.py) instead of each waiting for the one before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_IN_FLIGHT = 256
STOP_GRACE_SECONDS = 5.0  # at stop, for the items being handled (a store that is down never takes them)


class KeyedLanes(Generic[T]):
    def __init__(
        self,
        handle: Callable[[T], Awaitable[None]],
        put_back: Callable[[list[T]], None],
        limit: int = MAX_IN_FLIGHT,
    ) -> None:
        """`handle(item)` handles one item (and never raises); `put_back(items)` returns the items handed
        over but never started, in the order they were handed over, at close()."""
        self._handle = handle
        self._put_back = put_back
        self._free = limit  # items that may still be handed over before one in flight is handled
        self._room = asyncio.Event()
        self._room.set()
        self._tails: dict[str, asyncio.Task[None]] = {}  # the last item of each lane in flight
        self._running: dict[asyncio.Task[None], T] = {}
        self._started: set[asyncio.Task[None]] = set()
        self._stopped = False

    async def add(self, lanes: tuple[str, ...] | None, item: T) -> bool:
        """Hand `item` over (True). It starts once the last item handed over in each of its `lanes` has
        been handled; None: a barrier (handled alone, after everything before it). False when the lanes
        stopped taking (stop_taking, close) before there was room: the item is put back, never started."""
        try:
            if lanes is None:
                await self.settle()
            else:
                while self._free <= 0 and not self._stopped:
                    self._room.clear()
                    await self._room.wait()
        except asyncio.CancelledError:  # stopped before it was handed over: not lost
            self._put_back([item])
            raise
        if self._stopped:
            self._put_back([item])
            return False
        if lanes is None:
            await self._handle(item)
            return True
        self._start(lanes, item)
        return True

    def add_now(self, lanes: tuple[str, ...], item: T) -> bool:
        """Hand `item` over without giving up the caller's turn of the loop, if there is room; False (and
        nothing done) when full or stopped. What add() does for an item with lanes, minus the wait."""
        if self._free <= 0 or self._stopped:
            return False
        self._start(lanes, item)
        return True

    def stop_taking(self) -> None:
        """Take no more items: an add() waiting for room ends at once (its item put back), so whoever
        hands items over is never held by lanes that will not move (a store that does not answer)."""
        self._stopped = True
        self._room.set()

    def _start(self, lanes: tuple[str, ...], item: T) -> None:
        self._free -= 1
        previous = {self._tails[lane] for lane in lanes if lane in self._tails}
        task = asyncio.create_task(self._after(previous, item), name="lane")
        for lane in lanes:
            self._tails[lane] = task
        self._running[task] = item
        task.add_done_callback(lambda done: self._finished(lanes, done))

    async def _after(self, previous: set[asyncio.Task[None]], item: T) -> None:
        if previous:
            await asyncio.wait(previous)
        task = asyncio.current_task()
        if task is not None:
            self._started.add(task)
        await self._handle(item)

    def _finished(self, lanes: tuple[str, ...], task: asyncio.Task[None]) -> None:
        self._free += 1
        self._room.set()
        self._running.pop(task, None)
        self._started.discard(task)
        for lane in lanes:
            if self._tails.get(lane) is task:
                del self._tails[lane]

    async def settle(self) -> None:
        """Wait until every item handed over is handled."""
        while self._running:
            await asyncio.wait(set(self._running))

    async def close(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop: the items still waiting for the one before them are put back, in the order handed over;
        those being handled are given `grace` seconds to finish, then cancelled (what they stored stays
        stored: the store's writes are shielded). Cancelled meanwhile, it still cancels and waits for
        them: none goes on after its owner has ended."""
        self.stop_taking()
        waiting = {task: item for task, item in self._running.items() if task not in self._started}
        for task in waiting:
            task.cancel()
        self._put_back(list(waiting.values()))  # _running keeps the order handed over
        running = set(self._running)
        try:
            if running:
                await asyncio.wait(running, timeout=grace)
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.wait(running)  # their ends, not their errors (handle() never raises)
        failed = [t.exception() for t in running if not t.cancelled() and t.exception() is not None]
        if failed:
            raise failed[0]  # type: ignore[misc]

"""Reports about different orders handled side by side; the reports about one order, one after another.

Fills are also kept in arrival order per position (a position's average price depends on the order its
fills are applied in when one crosses zero), so a fill waits for the last report of its order and the
last fill of its position.

A report waits for the store before the next one of its order may start, but nothing ties two orders: the
execution reports of a burst are handled together, so their writes reach the store thread together and
share one commit (store_thread.py). A report that is not known to be about one order in memory (another
kind of report, or an order only the store knows) is a barrier: it waits until every report before it is
handled and is handled alone, as every report used to be.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from fixadapter.engine.inbox import Arrival

MAX_IN_FLIGHT = 256
STOP_GRACE_SECONDS = 5.0  # at stop, for the reports being handled (a store that is down never takes them)


class ReportLanes:
    def __init__(
        self,
        handle: Callable[[Arrival], Awaitable[None]],
        put_back: Callable[[list[Arrival]], None],
        limit: int = MAX_IN_FLIGHT,
    ) -> None:
        """`handle(arrival)` handles one report (and never raises); `put_back(arrivals)` returns reports
        taken but never started to the inbox, for the engine's stop to handle."""
        self._handle = handle
        self._put_back = put_back
        self._room = asyncio.Semaphore(limit)
        self._tails: dict[str, asyncio.Task[None]] = {}  # the last report of each order in flight
        self._running: dict[asyncio.Task[None], Arrival] = {}
        self._started: set[asyncio.Task[None]] = set()

    async def add(self, lanes: tuple[str, ...] | None, arrival: Arrival) -> None:
        """Hand `arrival` over. It starts once the last report handed over in each of its `lanes` has
        been handled (its order's, and a fill's position's too); None: a barrier (handled alone, after
        everything before it)."""
        try:
            if lanes is None:
                await self.settle()
            else:
                await self._room.acquire()
        except asyncio.CancelledError:  # stopped before it was handed over: not lost
            self._put_back([arrival])
            raise
        if lanes is None:
            await self._handle(arrival)
            return
        previous = {self._tails[lane] for lane in lanes if lane in self._tails}
        task = asyncio.create_task(self._after(previous, arrival), name=f"report-{lanes[0]}")
        for lane in lanes:
            self._tails[lane] = task
        self._running[task] = arrival
        task.add_done_callback(lambda done: self._finished(lanes, done))

    async def _after(self, previous: set[asyncio.Task[None]], arrival: Arrival) -> None:
        if previous:
            await asyncio.wait(previous)
        task = asyncio.current_task()
        if task is not None:
            self._started.add(task)
        await self._handle(arrival)

    def _finished(self, lanes: tuple[str, ...], task: asyncio.Task[None]) -> None:
        self._room.release()
        self._running.pop(task, None)
        self._started.discard(task)
        for lane in lanes:
            if self._tails.get(lane) is task:
                del self._tails[lane]

    async def settle(self) -> None:
        """Wait until every report handed over is handled."""
        while self._running:
            await asyncio.wait(set(self._running))

    async def close(self) -> None:
        """Stop: the reports still waiting for the report before them are put back, in arrival order;
        those being handled are given STOP_GRACE_SECONDS to finish, then cancelled like the one report in
        hand always was (what they stored stays stored: the recorder's writes are shielded)."""
        waiting = {task: arrival for task, arrival in self._running.items() if task not in self._started}
        for task in waiting:
            task.cancel()
        self._put_back(sorted(waiting.values(), key=lambda arrival: arrival[0]))
        running = set(self._running)
        if running:
            _, late = await asyncio.wait(running, timeout=STOP_GRACE_SECONDS)
            for task in late:
                task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError):
                await task

"""Order events and positions -> the strategies' streams, in the order the engine produced them.

Every order change is stored before it is published (the engine's rule), with a sequence number. A
transport that remembers the last number it published (Redis: in the same transaction as the event)
lets a restarted daemon publish what the dead one stored but never sent, then carry on live: each
strategy gets every change of its orders, the final one included, once. The in-process transport
remembers nothing and needs nothing replayed.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from fixadapter.crash_points import NO_CRASH, CrashPoint, CrashPoints
from fixadapter.model.orders import OrderEvent, Position
from fixadapter.queue.schema import OrderUpdate, PositionsUpdate, encode
from fixadapter.queue.transport import EventSink

if TYPE_CHECKING:
    from fixadapter.api import Adapter

log = logging.getLogger("fixadapter.queue")
REPLAY_BATCH = 1000
PUBLISH_BATCH = 256  # events that wait together go out in one step, up to this many

Item = OrderEvent | tuple[Position, ...]


class End(enum.Enum):
    """The marker drain() puts after the last item: run() returns when it takes it."""

    END = "end"


END = End.END


class EventRelay:
    def __init__(self, adapter: Adapter, sink: EventSink, crash_points: CrashPoints = NO_CRASH) -> None:
        self._adapter = adapter
        self._sink = sink
        self._metrics = adapter.metrics
        self._crash_points = crash_points
        self._inbox: asyncio.Queue[Item | End] = asyncio.Queue()
        # The last sequence number prepare() replayed (None: not tracked): events up to it were published
        # from the store, so the same events reaching the relay live are not published again.
        self._replayed_through: int | None = None
        self._current: list[Item | End] = []  # taken from the inbox and not yet published
        self._running = False
        self._ended = asyncio.Event()
        adapter.on_event(self._inbox.put_nowait)  # attached before start: nothing the engine does is missed
        adapter.on_positions(self._positions)

    def _positions(self, positions: Sequence[Position]) -> None:
        self._inbox.put_nowait(tuple(positions))

    async def prepare(self) -> None:
        """Before the adapter starts: find where publishing stopped, and replay what was stored after it.

        A transport that has never published (a new Redis) starts from the store's current end, so a
        long history is not flooded into it.
        """
        store = self._adapter.engine.store
        await asyncio.to_thread(store.create_schema)
        published = await self._sink.published_seq()
        if published is None:
            await self._sink.start_tracking(await asyncio.to_thread(store.last_event_seq))
            published = await self._sink.published_seq()
            if published is None:
                return  # the transport keeps nothing: publish from now on
        replayed = 0
        while True:
            events = await asyncio.to_thread(store.events_since, published, REPLAY_BATCH)
            for event in events:
                await self._publish_order(event)
                published = event.seq or published
                replayed += 1
            if len(events) < REPLAY_BATCH:
                break
        self._replayed_through = published
        if replayed:
            log.warning("published %d order events stored before the last stop and not yet sent", replayed)

    async def run(self, progress: Callable[[], None] = lambda: None) -> None:
        """Publish what arrives, in order, until drain() asks to end: what waits together goes out in one
        step (order events as one transaction with the last sequence number). What a publish that raised
        did not send is kept and tried first when the relay is run again (the supervisor restarts it), so
        a failure loses no event."""
        self._running = True
        while True:
            if not self._current:
                self._current = [await self._inbox.get(), *self._waiting()]
                self._metrics.queue_event_backlog.set(self._inbox.qsize())
            while self._current and self._current[0] is not END:
                await self._relay_next()
                progress()
            if self._current:  # END
                self._ended.set()
                return

    def _waiting(self) -> list[Item | End]:
        """What else is in the inbox now (up to a batch), never past END."""
        waiting: list[Item | End] = []
        while len(waiting) < PUBLISH_BATCH - 1 and not self._inbox.empty():
            waiting.append(self._inbox.get_nowait())
            if waiting[-1] is END:
                break
        return waiting

    async def drain(self, timeout: float) -> None:
        """Publish what is still waiting (after the adapter stopped, nothing more arrives): run() goes on
        to the end of its inbox and returns; one publisher, so nothing is sent twice or out of order."""
        async with asyncio.timeout(timeout):
            if self._running:
                self._inbox.put_nowait(END)
                await self._ended.wait()
            else:  # run() never started (a failed start): publish here
                self._current = [*self._current, *self._waiting_all()]
                while self._current and self._current[0] is not END:
                    await self._relay_next()
        self._metrics.queue_event_backlog.set(0)

    def _waiting_all(self) -> list[Item | End]:
        items: list[Item | End] = []
        while not self._inbox.empty():
            item = self._inbox.get_nowait()
            if item is not END:
                items.append(item)
        return items

    async def _relay_next(self) -> None:
        """Publish the head of `_current`: one positions update, or the order events that follow it."""
        head = self._current[0]
        if isinstance(head, tuple):
            update = PositionsUpdate(account=self._adapter.account, positions=list(head))
            await self._sink.publish_positions(encode(update))
            self._metrics.queue_events.labels("positions").inc()
            self._current.pop(0)
            return
        events: list[OrderEvent] = []
        for item in self._current:
            if not isinstance(item, OrderEvent):
                break
            events.append(item)
        replayed = self._replayed_through
        fresh = [e for e in events if e.seq is None or replayed is None or e.seq > replayed]
        published = [
            (e.order.strategy, encode(OrderUpdate.of(e, self._adapter.account)), e.seq)
            for e in fresh
            if e.order.strategy  # placed through the Python API or adopted: no strategy stream
        ]
        if published:
            self._crash_points.hit(CrashPoint.REPORT_STORED_BEFORE_PUBLISH)
            await self._sink.publish_many(published)
            self._metrics.queue_events.labels("order").inc(len(published))
        del self._current[: len(events)]

    async def _publish_order(self, event: OrderEvent) -> None:
        strategy = event.order.strategy
        if not strategy:
            return  # placed through the Python API or adopted from the venue: no strategy stream
        await self._sink.publish(strategy, encode(OrderUpdate.of(event, self._adapter.account)), event.seq)
        self._metrics.queue_events.labels("order").inc()

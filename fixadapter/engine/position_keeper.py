"""Open positions kept from fills as they come, with the venue's list as the authority.

A fill that names its position updates the book (engine/positions.py) without asking the venue; only a
fill naming none asks for the venue's list (a burst coalesced into one request). The venue's list
replaces the book after each logon and on a timer, with fills that arrived after its answer replayed on
top. Each change is stored, then published (a burst of fills as one event).
"""

from __future__ import annotations

import asyncio
import logging

from fixadapter.engine.fanout import EventFanout
from fixadapter.engine.inbox import Inbox
from fixadapter.engine.instruments import Catalog
from fixadapter.engine.positions import PositionBook, PositionFill
from fixadapter.engine.readiness import Readiness
from fixadapter.engine.store_thread import StoreThread
from fixadapter.engine.tasks import TaskGroup
from fixadapter.engine.venue_queries import VenueQueries
from fixadapter.errors import SessionError, SessionNotReady
from fixadapter.model.orders import Fill, Order, Position, utc_now
from fixadapter.model.reconciliation import PositionsReport
from fixadapter.model.reports import PositionProtection
from fixadapter.store.repository import OrderStore

log = logging.getLogger("fixadapter.engine")


class PositionKeeper:
    def __init__(
        self,
        *,
        store: OrderStore,
        db: StoreThread,
        catalog: Catalog,
        fanout: EventFanout,
        queries: VenueQueries,
        readiness: Readiness,
        inbox: Inbox,
        tasks: TaskGroup,
        timeout: float,
    ) -> None:
        self.book = PositionBook()
        self._store = store
        self._db = db
        self._catalog = catalog
        self._fanout = fanout
        self._queries = queries
        self._readiness = readiness
        self._inbox = inbox
        self._tasks = tasks
        self._timeout = timeout
        self._refresh: asyncio.Task[None] | None = None
        self._publish: asyncio.Task[None] | None = None
        # Fills applied to the book whose row is not written yet: a positions event waits for them, so
        # what is published is what the store holds (a reader of the store right after it sees the same).
        self._writing = 0
        self._written = asyncio.Event()

    def all(self) -> list[Position]:
        return self.book.all()

    async def fill(self, order: Order, fill: Fill, arrived: int | None) -> None:
        """Keep the fill's position from the fill itself; only a fill naming no position asks the venue."""
        if not order.position_id:
            self._schedule_refresh()
            return
        instrument = self._catalog.by_id(order.symbol_id)
        change = PositionFill(
            position_id=order.position_id,
            symbol_id=order.symbol_id,
            side=order.side,
            quantity=fill.quantity,
            price=fill.price,
            digits=instrument.digits if instrument else None,
        )
        self._writing += 1
        try:
            updated = self.book.apply(change, arrived)
            await self._db.run(self._store.put_position, change.position_id, updated)
        finally:
            self._writing -= 1
            if not self._writing:
                self._written.set()
        if self._publish is None or self._publish.done():
            self._publish = self._tasks.spawn(self._publish_soon(), name="positions-publish")

    async def protect(self, report: PositionProtection) -> Position | None:
        """A position's protection as the venue now has it: kept, stored and published (None when the
        position is not open here: the venue's next list says where it stands)."""
        changes: dict[str, object] = {
            "stop_loss": report.stop_loss,
            "take_profit": report.take_profit,
            "trailing_stop_loss": report.trailing_stop_loss,
            "updated_at": utc_now(),
        }
        updated = self.book.protect(report.position_id, changes)
        if updated is None:
            return None
        await self._db.run(self._store.put_position, updated.position_id, updated)
        self._fanout.publish_positions(self.book.all())
        return updated

    async def _publish_soon(self) -> None:
        await asyncio.sleep(0.05)  # a burst of fills makes one positions event
        while self._writing:  # never ahead of the store
            self._written.clear()
            await self._written.wait()
        self._fanout.publish_positions(self.book.all())

    async def check_every(self, seconds: float) -> None:
        """Between logons, compare with the venue now and then: a fill missed or misread is corrected."""
        while True:
            await asyncio.sleep(seconds)
            if not self._readiness.ready:
                continue  # the next logon's reconciliation asks anyway
            try:
                await self.refresh()
            except (TimeoutError, SessionNotReady, SessionError) as exc:
                log.warning("positions check with the venue failed (%s); retried in %gs", exc, seconds)

    def _schedule_refresh(self) -> None:
        if self._refresh is None or self._refresh.done():
            self._refresh = self._tasks.spawn(self._refresh_soon(), name="positions-refresh")

    async def _refresh_soon(self) -> None:
        await asyncio.sleep(0.05)  # coalesce a burst of fills into one request
        if not self._readiness.trade_up:
            return
        try:
            await self.refresh()
        except (TimeoutError, SessionNotReady, SessionError) as exc:
            log.warning("positions refresh failed (%s); the next check or logon retries", exc)

    async def refresh(self) -> list[Position]:
        """Ask the venue for its open positions now and store them (the venue is the authority)."""
        answer = await self._queries.positions(self._timeout)
        return await self.save(answer)

    async def save(self, answer: PositionsReport) -> list[Position]:
        """The venue's list (the authority), with any fill that arrived after its answer replayed on top."""
        await self._inbox.handled_through(answer.arrived)
        self.book.venue_answered(answer.arrived)
        positions = list(answer.positions)
        current = self.book.replace(positions)
        await self._db.run(self._store.replace_positions, current)
        self._fanout.publish_positions(current)
        return positions

"""Writes that go to the account's order journal first and reach the SQL store behind the engine's back.

A new order whose ids the engine knows are unused (claims.py) is journaled on the event loop and sent at
once: the store thread inserts it in its own time (`StoreThread.post`, in order with every
other store call, so a read asked for afterwards finds it). At start, before anything reads the store, the
records the store lacks (a crash after the journal write) are applied from the journal.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from fixadapter.engine.store_thread import StoreThread
from fixadapter.errors import StoreError
from fixadapter.model.orders import Order
from fixadapter.model.requests import CommandUse
from fixadapter.store.journal import Journal, JournalBusy, segment_of
from fixadapter.store.repository import OrderStore

log = logging.getLogger("fixadapter.engine")

PROGRESS_EVERY = 10_000  # records applied at start between progress lines


class JournaledOrder(BaseModel):
    """A journal record: a new order, the terms a retry is compared with, the command that placed it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["order"] = "order"
    order: Order
    terms: dict[str, str | None] | None = None
    command: CommandUse | None = None


class Journaling:
    def __init__(self, journal: Journal, store: OrderStore, db: StoreThread) -> None:
        self._journal = journal
        self._store = store
        self._db = db
        self.active = False  # the journal is this process's: new orders may go to it

    async def start(self) -> None:
        """Apply what the store lacks, then open the journal for appending (on the store thread). When
        another process holds it (a running daemon), this one writes every order through the store."""
        try:
            await self._db.run(self._journal.lock)
        except JournalBusy as busy:
            log.warning("%s: this process writes every order through the store instead", busy)
            return
        except OSError as exc:
            raise StoreError(
                f"the order journal in {self._journal.directory} cannot be opened ({exc}): give the "
                "daemon's user that directory, or set store.journal.directory to one it owns"
            ) from exc
        await self._db.run(self._replay)
        self.active = True

    def _replay(self) -> int:
        applied = self._store.journal_position()
        count = 0
        for entry in self._journal.read_after(applied):
            self._apply(entry.payload, entry.position)
            count += 1
            if count % PROGRESS_EVERY == 0:
                log.warning("order journal: %d record(s) applied to the store so far", count)
        if count:
            log.warning(
                "order journal of %s: %d record(s) the store lacked (written before the last stop) applied",
                self._store.account,
                count,
            )
        self._journal.open()
        self._journal.discard_before(self._journal.position)
        return count

    def _apply(self, payload: bytes, position: int) -> None:
        try:
            record = JournaledOrder.model_validate_json(payload)
        except ValidationError as exc:
            raise StoreError(
                f"order journal in {self._journal.directory}: a record at position {position} cannot be read "
                f"({exc.error_count()} error(s), first: {exc.errors()[0]['msg']}); it was written by another "
                "fixadapter version? Apply it with that version, or move the journal aside once the store "
                "is checked"
            ) from exc
        self._store.apply_journaled_order(record.order, record.terms, record.command, position, payload)

    def _discard_before(self, position: int) -> None:
        try:
            self._journal.discard_before(position)
        except OSError as exc:  # kept: a later rotation or start deletes them
            log.warning("order journal: applied segments not deleted (%s); retried at the next rotation", exc)

    def written(self, position: int) -> bool:
        """Whether the store has the record at `position` (any thread)."""
        return self._db.applied >= position

    def new_order(self, order: Order, terms: dict[str, Any], command: CommandUse | None) -> int:
        """Journal a new order and the command placing it (durable when this returns) and have the store
        insert them behind; the record's position."""
        payload = JournaledOrder(order=order, terms=terms, command=command).model_dump_json().encode()
        segment = segment_of(self._journal.position)
        position = self._journal.append(payload)
        self._db.post(position, self._store.apply_journaled_order, order, terms, command, position, payload)
        if segment_of(position) != segment:  # a new segment: the old ones go once applied (after them)
            self._db.submit(self._discard_before, position)
        return position

    def close(self) -> None:
        self.active = False
        self._journal.close()

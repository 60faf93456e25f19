"""Which command ids each strategy has used, and for what, in the store's database.

A command delivered twice (same id, same content) is a redelivery and harmless; the same id for a
different command is a strategy's bug and is refused, never silently taken or ignored. Kept in a table
of its own (`queue_command_ids`, created beside the others, no column added to an existing table) so a
restart does not forget. Synchronous: called from a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import Column, Engine, MetaData, String, Table, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from fixadapter.errors import StoreError
from tests.data.migrations.store_v0.schema import UtcDateTime

T = TypeVar("T")
metadata = MetaData()

command_ids = Table(
    "queue_command_ids",
    metadata,
    Column("strategy", String(64), primary_key=True),
    Column("command_id", String(64), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("first_seen", UtcDateTime, nullable=False),
)


class CommandIds:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self) -> None:
        self._guarded(lambda: metadata.create_all(self._engine))

    def same_or_new(self, strategy: str, command_id: str, digest: str) -> bool:
        """Record `command_id` for `digest` if it is new; False when it was used for another digest."""
        return self._guarded(lambda: self._same_or_new(strategy, command_id, digest))

    def _same_or_new(self, strategy: str, command_id: str, digest: str) -> bool:
        row = {
            "strategy": strategy,
            "command_id": command_id,
            "digest": digest,
            "first_seen": datetime.now(UTC),
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(command_ids), row)
            return True
        except IntegrityError:
            pass  # used before: compare
        table = command_ids.c
        query = select(table.digest).where(table.strategy == strategy, table.command_id == command_id)
        with self._engine.connect() as conn:
            return conn.execute(query).scalar_one() == digest

    @staticmethod
    def _guarded(work: Callable[[], T]) -> T:
        try:
            return work()
        except SQLAlchemyError as exc:
            raise StoreError(f"database error on queue_command_ids: {exc.__class__.__name__}: {exc}") from exc

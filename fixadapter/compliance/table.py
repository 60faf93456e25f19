"""The `fix_messages` table: every captured or imported FIX message and Open API frame, masked and
hash-chained, and its reader.

Rows are append-only. Each belongs to a chain (session, day); `id` order within a chain is the chain order
(see chain.py). `fix_messages_spill` remembers how much of a spill file is already in the table, in the same
transaction as the rows, so a spill is loaded exactly once even across a crash (see spill.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Index,
    Integer,
    Row,
    String,
    Table,
    Text,
    delete,
    select,
)
from sqlalchemy.exc import SQLAlchemyError

from fixadapter.compliance.records import Direction, FixRecord
from fixadapter.errors import StoreError
from fixadapter.store.checks import require_table as require_database_table
from fixadapter.store.checks import table_error
from fixadapter.store.schema import UtcDateTime, metadata

TABLE = "fix_messages"
# Wide enough for every Open API payload type name (ProtoOAGetAccountListByAccessTokenReq); FIX types are 1-2.
MSG_TYPE_LENGTH = 64

fix_messages = Table(
    TABLE,
    metadata,
    # INTEGER on SQLite so it aliases the rowid (autoincrement in insertion order).
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("time", UtcDateTime, nullable=False),
    Column("session", String(64), nullable=False),
    Column("direction", String(3), nullable=False),
    Column("msg_type", String(MSG_TYPE_LENGTH), nullable=False),
    Column("seq_num", BigInteger),
    Column("cl_ord_id", Text),
    Column("orig_cl_ord_id", Text),
    Column("order_id", Text),
    Column("raw", Text, nullable=False),
    Column("day", String(10), nullable=False, doc="UTC date of `time`, YYYY-MM-DD: the chain it belongs to"),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # The chain head (last row of a session's day) is one backward index step; verify walks it in order.
    Index("ix_fix_messages_chain", "session", "day", "id"),
    Index("ix_fix_messages_time", "time", "id"),
    Index("ix_fix_messages_msg_type_time", "msg_type", "time"),
)


def _partial_index(column: str) -> Index:
    """Most rows (market data, heartbeats) carry no order ids: index only the rows that do."""
    indexed = fix_messages.c[column]
    where = indexed.isnot(None)
    return Index(f"ix_fix_messages_{column}", indexed, postgresql_where=where, sqlite_where=where)


_partial_index("cl_ord_id")
_partial_index("orig_cl_ord_id")
_partial_index("order_id")

fix_messages_spill = Table(
    "fix_messages_spill",
    metadata,
    Column("spill_id", String(64), primary_key=True),
    Column("lines_loaded", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

_m = fix_messages.c


class StoredRecord(FixRecord):
    """A row of `fix_messages`: the record as captured or imported, where it sits and its chain link."""

    id: int
    day: date
    prev_hash: str
    hash: str

    def record(self) -> FixRecord:
        """The plain FixRecord (for export or re-import)."""
        return FixRecord.model_construct(**self.model_dump(include=set(FixRecord.model_fields)))


def stored_record(row: Row[Any]) -> StoredRecord:
    """Our own typed rows: built without validating each one again."""
    return StoredRecord.model_construct(
        id=row.id,
        time=row.time,
        session=row.session,
        direction=Direction(row.direction),
        msg_type=row.msg_type,
        seq_num=row.seq_num,
        cl_ord_id=row.cl_ord_id,
        orig_cl_ord_id=row.orig_cl_ord_id,
        order_id=row.order_id,
        raw=row.raw,
        day=date.fromisoformat(row.day),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def store_error(exc: SQLAlchemyError) -> StoreError:
    return table_error(TABLE, exc)


def create_tables(engine: Engine) -> None:
    """Create `fix_messages` and its spill ledger if missing (the writer may use a database of its own)."""
    from fixadapter.store.migrations import COMPLIANCE, ensure_current  # the schema is at head

    try:
        ensure_current(engine, COMPLIANCE)
    except SQLAlchemyError as exc:
        raise store_error(exc) from exc


def require_table(engine: Engine) -> None:
    require_database_table(engine, TABLE, "no FIX message was recorded there")


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (UTC), got {value.isoformat()}")
    return None if value is None else value.astimezone(UTC)


def iter_records(
    engine: Engine,
    *,
    session: str | None = None,
    msg_type: str | None = None,
    cl_ord_id: str | None = None,
    order_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    fetch_rows: int = 1000,
) -> Iterator[StoredRecord]:
    """Stored messages matching every filter given, in time order then arrival order; `start` inclusive,
    `end` exclusive. `cl_ord_id` matches ClOrdID or OrigClOrdID (a cancel names the order in 41).
    Streamed in chunks (a server-side cursor on PostgreSQL), so a whole day stays small in memory."""
    query = select(fix_messages)
    if session is not None:
        query = query.where(_m.session == session)
    if msg_type is not None:
        query = query.where(_m.msg_type == msg_type)
    if cl_ord_id is not None:
        query = query.where((_m.cl_ord_id == cl_ord_id) | (_m.orig_cl_ord_id == cl_ord_id))
    if order_id is not None:
        query = query.where(_m.order_id == order_id)
    begin, finish = _aware(start, "start"), _aware(end, "end")
    if begin is not None:
        query = query.where(_m.time >= begin)
    if finish is not None:
        query = query.where(_m.time < finish)
    query = query.order_by(_m.time, _m.id)
    try:
        with engine.connect() as conn, conn.execution_options(yield_per=fetch_rows).execute(query) as result:
            for row in result:
                yield stored_record(row)
    except SQLAlchemyError as exc:
        raise store_error(exc) from exc


def purge_messages(engine: Engine, before: date, retention_days: float, today: date | None = None) -> int:
    """Delete whole days (whole chains, so the rest still verifies) older than `before`. Refuses a cutoff
    inside the retention period: nothing younger than `retention_days` is ever deleted."""
    today = today or datetime.now(UTC).date()
    oldest_kept = today - timedelta(days=math.ceil(retention_days))
    if before > oldest_kept:
        raise StoreError(
            f"refusing to delete FIX messages from before {before.isoformat()}: the retention period of "
            f"{retention_days:g} days keeps everything from {oldest_kept.isoformat()} on"
        )
    try:
        with engine.begin() as conn:
            return int(conn.execute(delete(fix_messages).where(_m.day < before.isoformat())).rowcount)
    except SQLAlchemyError as exc:
        raise store_error(exc) from exc

"""Frozen copy of fix_messages and fix_messages_spill as fixadapter/compliance/table.py defined them before
schema versions (on the store's metadata: today's `create_schema` made them in the store's database too)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Engine, Index, Integer, String, Table, Text

from tests.data.migrations.store_v0.schema import UtcDateTime, metadata

TABLE = "fix_messages"

fix_messages = Table(
    TABLE,
    metadata,
    # INTEGER on SQLite so it aliases the rowid (autoincrement in insertion order).
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("time", UtcDateTime, nullable=False),
    Column("session", String(64), nullable=False),
    Column("direction", String(3), nullable=False),
    Column("msg_type", String(16), nullable=False),
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


def create_tables(engine: Engine) -> None:
    """What ComplianceWriter(engine) did before schema versions: the two tables, if missing."""
    metadata.create_all(engine, tables=[fix_messages, fix_messages_spill], checkfirst=True)

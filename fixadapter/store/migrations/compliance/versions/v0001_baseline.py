"""baseline: fix_messages and fix_messages_spill as fixadapter made them before schema versions

A frozen copy of those tables. A database made before versions already has them: only what it lacks is
created (a table, or an index added after the database was made), nothing is recreated.

Revision ID: 0001_baseline
Revises:
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Text

from fixadapter.errors import StoreError
from fixadapter.store.migrations import create_missing

revision = "0001_baseline"
down_revision: str | None = None
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

metadata = MetaData()

fix_messages = Table(
    "fix_messages",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("session", String(64), nullable=False),
    Column("direction", String(3), nullable=False),
    Column("msg_type", String(16), nullable=False),
    Column("seq_num", BigInteger),
    Column("cl_ord_id", Text),
    Column("orig_cl_ord_id", Text),
    Column("order_id", Text),
    Column("raw", Text, nullable=False),
    Column("day", String(10), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_fix_messages_chain", "session", "day", "id"),
    Index("ix_fix_messages_time", "time", "id"),
    Index("ix_fix_messages_msg_type_time", "msg_type", "time"),
)
for _column in ("cl_ord_id", "orig_cl_ord_id", "order_id"):
    _indexed = fix_messages.c[_column]
    Index(
        f"ix_fix_messages_{_column}",
        _indexed,
        postgresql_where=_indexed.isnot(None),
        sqlite_where=_indexed.isnot(None),
    )
Table(
    "fix_messages_spill",
    metadata,
    Column("spill_id", String(64), primary_key=True),
    Column("lines_loaded", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


def upgrade() -> None:
    create_missing(op.get_bind(), metadata, "compliance")


def downgrade() -> None:
    raise StoreError("the baseline is the oldest schema: nothing to go back to (restore a backup instead)")

"""baseline: the store as fixadapter made it before schema versions (create_all, one account)

A frozen copy of those tables (decimals are VARCHAR(40) text, times TIMESTAMP WITH TIME ZONE, as the store's
types render them). A database made before versions already has them: only what it lacks is created (a table
or an index added later than the store was made), nothing is recreated, and the revision is recorded.

Revision ID: 0001_baseline
Revises:
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from fixadapter.errors import StoreError
from fixadapter.store.migrations import create_missing

revision = "0001_baseline"
down_revision: str | None = None
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

Decimal40 = String(40)
Time = DateTime(timezone=True)
metadata = MetaData()

Table(
    "orders",
    metadata,
    Column("cl_ord_id", String(64), primary_key=True),
    Column("order_id", String(32), index=True),
    Column("symbol_id", BigInteger, nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("side", String(8), nullable=False),
    Column("order_type", String(8), nullable=False),
    Column("quantity", Decimal40, nullable=False),
    Column("price", Decimal40),
    Column("stop_price", Decimal40),
    Column("expire_time", Time),
    Column("position_id", String(32)),
    Column("label", String(100)),
    Column("strategy", String(64), index=True),
    Column("status", String(20), nullable=False, index=True),
    Column("previous_status", String(20)),
    Column("cum_qty", Decimal40, nullable=False),
    Column("avg_px", Decimal40),
    Column("pending_request_id", String(64)),
    Column("reason", Text),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
)
Table(
    "order_requests",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("cl_ord_id", String(64), ForeignKey("orders.cl_ord_id"), nullable=False, index=True),
    Column("kind", String(8), nullable=False),
    Column("quantity", Decimal40),
    Column("price", Decimal40),
    Column("stop_price", Decimal40),
    Column("expire_time", Time),
    Column("created_at", Time, nullable=False),
)
Table(
    "executions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedupe_key", String(255), nullable=False, unique=True),
    Column("cl_ord_id", String(64), ForeignKey("orders.cl_ord_id"), nullable=False),
    Column("order_id", String(32)),
    Column("event", String(24), nullable=False),
    Column("status", String(20), nullable=False),
    Column("fill_qty", Decimal40),
    Column("fill_price", Decimal40),
    Column("cum_qty", Decimal40),
    Column("avg_px", Decimal40),
    Column("text", Text),
    Column("transact_time", Time),
    Column("received_at", Time, nullable=False),
    Column("raw", Text),
    Index("ix_executions_cl_ord_id", "cl_ord_id", "id"),
)
Table(
    "client_ids",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("cl_ord_id", String(64), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("terms", Text),
    Column("created_at", Time, nullable=False),
)
Table(
    "reports_set_aside",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", Time, nullable=False),
    Column("report_type", String(32), nullable=False),
    Column("dedupe_key", Text),
    Column("raw", Text),
    Column("error", Text, nullable=False),
)
Table(
    "positions",
    metadata,
    Column("position_id", String(32), primary_key=True),
    Column("symbol_id", BigInteger, nullable=False),
    Column("side", String(8), nullable=False),
    Column("quantity", Decimal40, nullable=False),
    Column("entry_price", Decimal40),
    Column("updated_at", Time, nullable=False),
)
Table(
    "instruments",
    metadata,
    Column("symbol_id", BigInteger, primary_key=True),
    Column("name", String(64), nullable=False, index=True),
    Column("digits", Integer, nullable=False),
    Column("updated_at", Time, nullable=False),
)
Table(
    "market_depth",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("symbol_id", BigInteger, nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("time", Time, nullable=False),
    Column("bids", Text, nullable=False),
    Column("asks", Text, nullable=False),
    Column("mid", Decimal40),
    Column("spread_pips", Decimal40),
    Column("microprice", Decimal40),
    Column("imbalance", Float),
    Index("ix_market_depth_symbol_id_time", "symbol_id", "time", "id"),
    Index("ix_market_depth_time", "time", "id"),
)
Table(
    "queue_command_ids",
    metadata,
    Column("strategy", String(64), primary_key=True),
    Column("command_id", String(64), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("first_seen", Time, nullable=False),
)


def upgrade() -> None:
    create_missing(op.get_bind(), metadata, "store")


def downgrade() -> None:
    raise StoreError("the baseline is the oldest schema: nothing to go back to (restore a backup instead)")

"""Tables. Decimals are stored as text and times as UTC so SQLite and PostgreSQL round-trip exactly."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

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
    TypeDecorator,
)
from sqlalchemy.engine import Dialect


class DecimalText(TypeDecorator[Decimal]):
    """Exact decimals on every backend (SQLite would round-trip Numeric through float)."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else format(value, "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; SQLite keeps no zone, so it is re-attached on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

orders = Table(
    "orders",
    metadata,
    Column("cl_ord_id", String(64), primary_key=True),
    Column("order_id", String(32), index=True),
    Column("symbol_id", BigInteger, nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("side", String(8), nullable=False),
    Column("order_type", String(8), nullable=False),
    Column("quantity", DecimalText, nullable=False),
    Column("price", DecimalText),
    Column("stop_price", DecimalText),
    Column("expire_time", UtcDateTime),
    Column("position_id", String(32)),
    Column("label", String(100)),
    Column("strategy", String(64), index=True),
    Column("status", String(20), nullable=False, index=True),
    Column("previous_status", String(20)),
    Column("cum_qty", DecimalText, nullable=False),
    Column("avg_px", DecimalText),
    Column("pending_request_id", String(64)),
    Column("reason", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

order_requests = Table(
    "order_requests",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("cl_ord_id", String(64), ForeignKey("orders.cl_ord_id"), nullable=False, index=True),
    Column("kind", String(8), nullable=False),
    Column("quantity", DecimalText),
    Column("price", DecimalText),
    Column("stop_price", DecimalText),
    Column("expire_time", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
)

executions = Table(
    "executions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedupe_key", String(255), nullable=False, unique=True),
    Column("cl_ord_id", String(64), ForeignKey("orders.cl_ord_id"), nullable=False),
    Column("order_id", String(32)),
    Column("event", String(24), nullable=False),
    Column("status", String(20), nullable=False),
    Column("fill_qty", DecimalText),
    Column("fill_price", DecimalText),
    Column("cum_qty", DecimalText),
    Column("avg_px", DecimalText),
    Column("text", Text),
    Column("transact_time", UtcDateTime),
    Column("received_at", UtcDateTime, nullable=False),
    Column("raw", Text),
    Index("ix_executions_cl_ord_id", "cl_ord_id", "id"),
)

# Every ClOrdID and cancel/replace request id the adapter has used, whatever for: a venue answer names
# only the id, so an id must never name two things. Its primary key makes the claim atomic; `terms` keeps
# a new order's terms as first submitted, so a retry is compared with those and not with replaced ones.
client_ids = Table(
    "client_ids",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("cl_ord_id", String(64), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("terms", Text),
    Column("created_at", UtcDateTime, nullable=False),
)

# Venue reports the store could never take (a value too long or invalid): kept whole with the error, so
# the pipeline goes on and nothing is lost.
reports_set_aside = Table(
    "reports_set_aside",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", UtcDateTime, nullable=False),
    Column("report_type", String(32), nullable=False),
    Column("dedupe_key", Text),
    Column("raw", Text),
    Column("error", Text, nullable=False),
)

positions = Table(
    "positions",
    metadata,
    Column("position_id", String(32), primary_key=True),
    Column("symbol_id", BigInteger, nullable=False),
    Column("side", String(8), nullable=False),
    Column("quantity", DecimalText, nullable=False),
    Column("entry_price", DecimalText),
    Column("updated_at", UtcDateTime, nullable=False),
)

instruments = Table(
    "instruments",
    metadata,
    Column("symbol_id", BigInteger, primary_key=True),
    Column("name", String(64), nullable=False, index=True),
    Column("digits", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Depth snapshots: append-only, read by symbol and time (latest, replay) and purged by time (retention).
# `id` keeps insertion order for equal times; on SQLite it must be INTEGER to alias the rowid.
market_depth = Table(
    "market_depth",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("symbol_id", BigInteger, nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("time", UtcDateTime, nullable=False),
    Column("bids", Text, nullable=False),
    Column("asks", Text, nullable=False),
    Column("mid", DecimalText),
    Column("spread_pips", DecimalText),
    Column("microprice", DecimalText),
    Column("imbalance", Float),
    # `id` in both indexes: PostgreSQL then reads (time, id) order straight off the index, so `latest` is
    # one backward step and a replay streams without sorting (SQLite appends the rowid by itself).
    Index("ix_market_depth_symbol_id_time", "symbol_id", "time", "id"),
    # Retention deletes and cross-symbol replay walk time order without sorting the table.
    Index("ix_market_depth_time", "time", "id"),
)

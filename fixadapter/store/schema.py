"""Tables. Decimals are stored as text and times as UTC so SQLite and PostgreSQL round-trip exactly."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
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

# Every order, request, execution, position, client id, instrument and report set aside belongs to one
# account (the `name` of a configured account): several engines, one per account, share one store, each
# reading and writing only its own rows. A ClOrdID is unique per account, so its keys start with `account`.
# The shape of these tables is versioned by the migrations in fixadapter/store/migrations (revision
# 0002_account added `account`); a change here needs a revision there (test_migrations compares them).
ACCOUNT_LENGTH = 64


def _account() -> Column[str]:
    return Column("account", String(ACCOUNT_LENGTH), nullable=False)


orders = Table(
    "orders",
    metadata,
    _account(),
    Column("cl_ord_id", String(64), nullable=False),
    Column("order_id", String(32)),
    Column("symbol_id", BigInteger, nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("side", String(8), nullable=False),
    Column("order_type", String(16), nullable=False),
    Column("quantity", DecimalText, nullable=False),
    Column("price", DecimalText),
    Column("stop_price", DecimalText),
    Column("expire_time", UtcDateTime),
    Column("position_id", String(32)),
    Column("label", String(100)),
    Column("strategy", String(64)),
    # 0003_order_fields: what the Open API can send with an order (None / false on orders before it).
    Column("time_in_force", String(24)),
    Column("stop_loss", DecimalText),
    Column("take_profit", DecimalText),
    Column("stop_loss_distance", DecimalText),
    Column("take_profit_distance", DecimalText),
    Column("trailing_stop_loss", Boolean, nullable=False, server_default=false()),
    Column("comment", String(512)),
    Column("status", String(20), nullable=False),
    Column("previous_status", String(20)),
    Column("cum_qty", DecimalText, nullable=False),
    Column("avg_px", DecimalText),
    Column("pending_request_id", String(64)),
    Column("reason", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("account", "cl_ord_id", name="pk_orders"),
    Index("ix_orders_order_id", "account", "order_id"),
    Index("ix_orders_strategy", "account", "strategy"),
    Index("ix_orders_status", "account", "status"),
    # Pages of orders, newest first (HTTP /orders), and recovery in creation order.
    Index("ix_orders_created_at", "account", "created_at", "cl_ord_id"),
)

order_requests = Table(
    "order_requests",
    metadata,
    _account(),
    Column("request_id", String(64), nullable=False),
    Column("cl_ord_id", String(64), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("quantity", DecimalText),
    Column("price", DecimalText),
    Column("stop_price", DecimalText),
    Column("expire_time", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("account", "request_id", name="pk_order_requests"),
    ForeignKeyConstraint(
        ["account", "cl_ord_id"], ["orders.account", "orders.cl_ord_id"], name="fk_order_requests_order"
    ),
    Index("ix_order_requests_cl_ord_id", "account", "cl_ord_id"),
)

executions = Table(
    "executions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _account(),
    Column("dedupe_key", String(255), nullable=False),
    Column("cl_ord_id", String(64), nullable=False),
    Column("order_id", String(32)),
    Column("event", String(24), nullable=False),
    Column("status", String(20), nullable=False),
    Column("fill_qty", DecimalText),
    Column("fill_price", DecimalText),
    Column("fill_commission", DecimalText),  # the venue's, deposit currency (negative: charged)
    Column("fill_swap", DecimalText),
    Column("cum_qty", DecimalText),
    Column("avg_px", DecimalText),
    Column("text", Text),
    Column("transact_time", UtcDateTime),
    Column("received_at", UtcDateTime, nullable=False),
    Column("raw", Text),
    UniqueConstraint("account", "dedupe_key", name="uq_executions_dedupe_key"),
    ForeignKeyConstraint(
        ["account", "cl_ord_id"], ["orders.account", "orders.cl_ord_id"], name="fk_executions_order"
    ),
    Index("ix_executions_cl_ord_id", "account", "cl_ord_id", "id"),
    # An account's events in sequence order (the relay's replay and its last sequence number).
    Index("ix_executions_account_id", "account", "id"),
)

# Every ClOrdID and cancel/replace request id the account has used, whatever for: a venue answer names
# only the id, so an id must never name two things. Its primary key makes the claim atomic; `terms` keeps
# a new order's terms as first submitted, so a retry is compared with those and not with replaced ones.
client_ids = Table(
    "client_ids",
    metadata,
    _account(),
    Column("client_id", String(64), nullable=False),
    Column("cl_ord_id", String(64), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("terms", Text),
    Column("created_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("account", "client_id", name="pk_client_ids"),
)

# Venue reports the store could never take (a value too long or invalid): kept whole with the error, so
# the pipeline goes on and nothing is lost.
reports_set_aside = Table(
    "reports_set_aside",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _account(),
    Column("received_at", UtcDateTime, nullable=False),
    Column("report_type", String(32), nullable=False),
    Column("dedupe_key", Text),
    Column("raw", Text),
    Column("error", Text, nullable=False),
)

positions = Table(
    "positions",
    metadata,
    _account(),
    Column("position_id", String(32), nullable=False),
    Column("symbol_id", BigInteger, nullable=False),
    Column("side", String(8), nullable=False),
    Column("quantity", DecimalText, nullable=False),
    Column("entry_price", DecimalText),
    # 0003_order_fields: the position's protection as the venue last said.
    Column("stop_loss", DecimalText),
    Column("take_profit", DecimalText),
    Column("trailing_stop_loss", Boolean, nullable=False, server_default=false()),
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("account", "position_id", name="pk_positions"),
)

# The account's broker's instruments (two accounts may be at two brokers with two symbol lists).
instruments = Table(
    "instruments",
    metadata,
    _account(),
    Column("symbol_id", BigInteger, nullable=False),
    Column("name", String(64), nullable=False, index=True),
    Column("digits", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("account", "symbol_id", name="pk_instruments"),
)

# Which command ids each strategy has used, and for what (OrderStore.first_use_of_command): a strategy's
# command ids are its own whatever account a command names, so this table has no account.
queue_command_ids = Table(
    "queue_command_ids",
    metadata,
    Column("strategy", String(64), primary_key=True),
    Column("command_id", String(64), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("first_seen", UtcDateTime, nullable=False),
)

# How far each account's order journal has been applied (store/journal.py): the position of the last
# record whose writes are in this database, noted in the same transaction as those writes.
journal_positions = Table(
    "journal_positions",
    metadata,
    _account(),
    Column("position", BigInteger, nullable=False),
    PrimaryKeyConstraint("account", name="pk_journal_positions"),
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

# The tables the store's migrations version (fix_messages lives in the compliance history, see
# fixadapter/compliance/table.py, possibly in a database of its own).
STORE_TABLES = (
    orders,
    order_requests,
    executions,
    client_ids,
    reports_set_aside,
    positions,
    instruments,
    queue_command_ids,
    journal_positions,
    market_depth,
)

"""account on every row: orders, requests, executions, client ids, reports set aside, positions, instruments

Several engines (one per account) now share one store. Every row gets the account it belongs to (NOT NULL):
rows written before this revision get the account the store served (`fixadapter db upgrade` passes it:
the config's account name, else `default`). Keys become per account (a ClOrdID, a request id, a client id,
a position id, a symbol id and an execution's dedupe key are unique within their account), the order
foreign keys carry the account, and orders get the created_at index they lacked.

PostgreSQL changes the tables in place (ALTER TABLE). SQLite cannot change a primary key in place, so each
table is rebuilt the way SQLite documents it: the old one renamed aside, the new one created, the rows
copied (ids kept, so event sequence numbers stay), the old one dropped; foreign keys are checked whole
before the transaction commits.

Revision ID: 0002_account
Revises: 0001_baseline
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    inspect,
    literal,
    select,
)

from fixadapter.errors import StoreError
from fixadapter.store.migrations import migration_account, report

revision = "0002_account"
down_revision: str | None = "0001_baseline"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

ACCOUNT_LENGTH = 64
Decimal40 = String(40)
Time = DateTime(timezone=True)
metadata = MetaData()


def _account() -> Column[str]:
    return Column("account", String(ACCOUNT_LENGTH), nullable=False)


# The tables as this revision leaves them (frozen: later revisions change schema.py, not this).
orders = Table(
    "orders",
    metadata,
    _account(),
    Column("cl_ord_id", String(64), nullable=False),
    Column("order_id", String(32)),
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
    Column("strategy", String(64)),
    Column("status", String(20), nullable=False),
    Column("previous_status", String(20)),
    Column("cum_qty", Decimal40, nullable=False),
    Column("avg_px", Decimal40),
    Column("pending_request_id", String(64)),
    Column("reason", Text),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
    PrimaryKeyConstraint("account", "cl_ord_id", name="pk_orders"),
    Index("ix_orders_order_id", "account", "order_id"),
    Index("ix_orders_strategy", "account", "strategy"),
    Index("ix_orders_status", "account", "status"),
    Index("ix_orders_created_at", "account", "created_at", "cl_ord_id"),
)
order_requests = Table(
    "order_requests",
    metadata,
    _account(),
    Column("request_id", String(64), nullable=False),
    Column("cl_ord_id", String(64), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("quantity", Decimal40),
    Column("price", Decimal40),
    Column("stop_price", Decimal40),
    Column("expire_time", Time),
    Column("created_at", Time, nullable=False),
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
    Column("fill_qty", Decimal40),
    Column("fill_price", Decimal40),
    Column("cum_qty", Decimal40),
    Column("avg_px", Decimal40),
    Column("text", Text),
    Column("transact_time", Time),
    Column("received_at", Time, nullable=False),
    Column("raw", Text),
    UniqueConstraint("account", "dedupe_key", name="uq_executions_dedupe_key"),
    ForeignKeyConstraint(
        ["account", "cl_ord_id"], ["orders.account", "orders.cl_ord_id"], name="fk_executions_order"
    ),
    Index("ix_executions_cl_ord_id", "account", "cl_ord_id", "id"),
    Index("ix_executions_account_id", "account", "id"),
)
client_ids = Table(
    "client_ids",
    metadata,
    _account(),
    Column("client_id", String(64), nullable=False),
    Column("cl_ord_id", String(64), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("terms", Text),
    Column("created_at", Time, nullable=False),
    PrimaryKeyConstraint("account", "client_id", name="pk_client_ids"),
)
reports_set_aside = Table(
    "reports_set_aside",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _account(),
    Column("received_at", Time, nullable=False),
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
    Column("quantity", Decimal40, nullable=False),
    Column("entry_price", Decimal40),
    Column("updated_at", Time, nullable=False),
    PrimaryKeyConstraint("account", "position_id", name="pk_positions"),
)
instruments = Table(
    "instruments",
    metadata,
    _account(),
    Column("symbol_id", BigInteger, nullable=False),
    Column("name", String(64), nullable=False, index=True),
    Column("digits", Integer, nullable=False),
    Column("updated_at", Time, nullable=False),
    PrimaryKeyConstraint("account", "symbol_id", name="pk_instruments"),
)

TABLES = (orders, order_requests, executions, client_ids, reports_set_aside, positions, instruments)
# Indexes of the baseline that change their columns (dropped, then made again with the account first).
REPLACED_INDEXES = {
    "orders": ("ix_orders_order_id", "ix_orders_strategy", "ix_orders_status"),
    "order_requests": ("ix_order_requests_cl_ord_id",),
    "executions": ("ix_executions_cl_ord_id",),
}
UNCHANGED_INDEXES = ("ix_instruments_name",)


def _count(bind: Connection, table: Table) -> int:
    return int(bind.execute(select(func.count()).select_from(table)).scalar_one())


def upgrade() -> None:
    account = migration_account()
    if not account or len(account) > ACCOUNT_LENGTH:
        raise StoreError(f"an account name of 1 to {ACCOUNT_LENGTH} characters is needed, got {account!r}")
    bind = op.get_bind()
    report(f"store: rows written so far belong to account {account!r}")
    if bind.dialect.name == "sqlite":
        _rebuild_sqlite(bind, account)
    else:
        _alter_in_place(bind, account)
    for table in TABLES:
        report(f"store: {table.name}: {_count(bind, table)} rows, each with its account")


def _alter_in_place(bind: Connection, account: str) -> None:
    """PostgreSQL: add the column with the account as its default (fills every row), then drop the
    default, and swap keys and indexes for their per-account forms."""
    inspector = inspect(bind)
    _drop_old_keys_and_indexes(bind)
    for table in TABLES:
        column = Column("account", String(ACCOUNT_LENGTH), nullable=False, server_default=account)
        op.add_column(table.name, column)
        op.alter_column(table.name, "account", server_default=None)
        primary = table.primary_key
        if "account" in primary.columns:
            old = inspector.get_pk_constraint(table.name)["name"]
            if old:
                op.drop_constraint(old, table.name, type_="primary")
            op.create_primary_key(str(primary.name), table.name, [c.name for c in primary.columns])
        report(f"store: {table.name}: account added")
    op.create_unique_constraint("uq_executions_dedupe_key", "executions", ["account", "dedupe_key"])
    for child in (order_requests, executions):
        for key in child.foreign_key_constraints:
            op.create_foreign_key(
                str(key.name), child.name, "orders", ["account", "cl_ord_id"], ["account", "cl_ord_id"]
            )
    for table in TABLES:
        for index in sorted(table.indexes, key=lambda index: str(index.name)):
            if index.name not in UNCHANGED_INDEXES:
                op.create_index(str(index.name), table.name, [c.name for c in index.columns])


def _drop_old_keys_and_indexes(bind: Connection) -> None:
    """The baseline's order foreign keys, dedupe key and single-account indexes (names as the database
    chose them for the unnamed ones)."""
    inspector = inspect(bind)
    for child in ("order_requests", "executions"):
        for key in inspector.get_foreign_keys(child):
            if key["referred_table"] == "orders" and key["name"]:
                op.drop_constraint(key["name"], child, type_="foreignkey")
    for unique in inspector.get_unique_constraints("executions"):
        if unique["column_names"] == ["dedupe_key"] and unique["name"]:
            op.drop_constraint(unique["name"], "executions", type_="unique")
    for name, indexes in REPLACED_INDEXES.items():
        for index in indexes:
            op.drop_index(index, table_name=name)


def _rebuild_sqlite(bind: Connection, account: str) -> None:
    """SQLite: rename each table aside (dropping its indexes, whose names are the new ones'), create the
    new tables, copy every row with the account, drop the old tables. Foreign keys are off meanwhile
    (the migration's connection turns them off) and checked whole before commit."""
    inspector = inspect(bind)
    old_columns: dict[str, list[str]] = {}
    for table in TABLES:
        old_columns[table.name] = [column["name"] for column in inspector.get_columns(table.name)]
        for index in inspector.get_indexes(table.name):
            if index["name"]:
                op.drop_index(index["name"], table_name=table.name)
        op.rename_table(table.name, f"_old_{table.name}")
    metadata.create_all(bind, tables=list(TABLES))
    for table in TABLES:  # parents before children
        columns = old_columns[table.name]
        old = Table(f"_old_{table.name}", MetaData(), *(Column(name) for name in columns))
        rows = select(*(old.c[name] for name in columns), literal(account, String(ACCOUNT_LENGTH)))
        bind.execute(table.insert().from_select([*columns, "account"], rows))
        report(f"store: {table.name}: rows copied with their account")
    for table in reversed(TABLES):
        op.drop_table(f"_old_{table.name}")


def downgrade() -> None:
    raise StoreError(
        "0002_account cannot be undone in place (two accounts' rows would collide): restore the backup "
        "taken before the upgrade"
    )

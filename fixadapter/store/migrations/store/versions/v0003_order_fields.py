"""order fields of the Open API: time in force, SL/TP (absolute or relative), trailing stop loss, comment

Positions get their stop loss, take profit and trailing flag too (as the venue last said).

Orders stored before this revision get none of them (NULL, trailing false): they asked for none, and that
is what an order naming none means (the venue's default time in force, no protection, no comment).
order_type is widened to 16 characters for stop_limit.

PostgreSQL adds the columns and widens order_type in place. SQLite cannot change a column's type, so the
orders table is rebuilt (Alembic's batch mode: a new table, rows copied, the old one dropped, indexes made
again); foreign keys are off meanwhile and checked whole before the transaction commits.

Revision ID: 0003_order_fields
Revises: 0002_account
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import Boolean, Column, String, false

from fixadapter.errors import StoreError
from fixadapter.store.migrations import report

revision = "0003_order_fields"
down_revision: str | None = "0002_account"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

Decimal40 = String(40)


def _new_columns() -> list[Column[object]]:
    """The columns this revision adds (frozen: later revisions change schema.py, not this)."""
    return [
        Column("time_in_force", String(24)),
        Column("stop_loss", Decimal40),
        Column("take_profit", Decimal40),
        Column("stop_loss_distance", Decimal40),
        Column("take_profit_distance", Decimal40),
        Column("trailing_stop_loss", Boolean, nullable=False, server_default=false()),
        Column("comment", String(512)),
    ]


def _position_columns() -> list[Column[object]]:
    return [
        Column("stop_loss", Decimal40),
        Column("take_profit", Decimal40),
        Column("trailing_stop_loss", Boolean, nullable=False, server_default=false()),
    ]


def upgrade() -> None:
    with op.batch_alter_table("orders") as orders:
        orders.alter_column("order_type", existing_type=String(8), type_=String(16), existing_nullable=False)
        for column in _new_columns():
            orders.add_column(column)
    for column in _position_columns():  # added in place on both databases: no type changes
        op.add_column("positions", column)
    report("store: positions: stop loss, take profit and trailing stop loss added")
    report("store: orders: time in force, stop loss / take profit, trailing stop loss and comment added")


def downgrade() -> None:
    raise StoreError(
        "0003_order_fields cannot be undone in place (orders using its fields would lose them): restore the "
        "backup taken before the upgrade"
    )

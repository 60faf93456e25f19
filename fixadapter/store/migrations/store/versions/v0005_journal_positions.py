"""journal positions: how far each account's order journal has been applied to this database

The engine appends its writes to a local journal before acting on them and the store is maintained from
it (store/journal.py); this table keeps, per account, the position of the last record applied, written in
the same transaction as the record's rows, so a restart applies exactly what is missing. Stores before
this revision had no journal: the table starts empty.

Revision ID: 0005_journal_positions
Revises: 0004_fill_costs
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import BigInteger, Column, PrimaryKeyConstraint, String

from fixadapter.store.migrations import report

revision = "0005_journal_positions"
down_revision: str | None = "0004_fill_costs"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_table(  # frozen here: later revisions change schema.py
        "journal_positions",
        Column("account", String(64), nullable=False),
        Column("position", BigInteger, nullable=False),
        PrimaryKeyConstraint("account", name="pk_journal_positions"),
    )
    report("store: journal_positions added (how far each account's order journal is applied)")


def downgrade() -> None:
    op.drop_table("journal_positions")

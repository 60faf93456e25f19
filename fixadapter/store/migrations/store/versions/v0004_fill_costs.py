"""fill costs: a fill's commission and swap, as the venue booked them (Open API deals)

cTrader's Open API gives each deal its commission (and a closing deal its swap), in the account's deposit
currency; FIX gives neither. Executions stored before this revision have none (NULL): not zero, unknown.

Revision ID: 0004_fill_costs
Revises: 0003_order_fields
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import Column, String

from fixadapter.errors import StoreError
from fixadapter.store.migrations import report

revision = "0004_fill_costs"
down_revision: str | None = "0003_order_fields"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    for name in ("fill_commission", "fill_swap"):  # frozen here: later revisions change schema.py
        op.add_column("executions", Column(name, String(40)))
    report("store: executions: a fill's commission and swap added (none for fills stored before)")


def downgrade() -> None:
    raise StoreError(
        "0004_fill_costs cannot be undone in place (fills would lose their costs): restore the backup taken "
        "before the upgrade"
    )

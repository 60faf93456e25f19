"""msg_type 64 characters: Open API frames are recorded beside FIX messages, typed by payload type name

`fix_messages.msg_type` held FIX message types (1-2 characters) in VARCHAR(16); an Open API frame's type is
its payload type name (ProtoOAGetAccountListByAccessTokenReq: 37). Widening a VARCHAR on PostgreSQL changes
the catalogue only (no table rewrite, rows and hashes untouched). SQLite does not enforce a VARCHAR length,
so nothing is changed there: rebuilding a large log table for a length it never checks would be all risk.

Revision ID: 0002_msg_type_64
Revises: 0001_baseline
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import String

from fixadapter.errors import StoreError
from fixadapter.store.migrations import report

revision = "0002_msg_type_64"
down_revision: str | None = "0001_baseline"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

MSG_TYPE_LENGTH = 64  # frozen: fixadapter.compliance.table.MSG_TYPE_LENGTH may change in a later revision


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        report("compliance: fix_messages.msg_type needs no change on SQLite (lengths are not enforced)")
        return
    op.alter_column(
        "fix_messages",
        "msg_type",
        existing_type=String(16),
        type_=String(MSG_TYPE_LENGTH),
        existing_nullable=False,
    )
    report(f"compliance: fix_messages.msg_type widened to {MSG_TYPE_LENGTH} characters")


def downgrade() -> None:
    raise StoreError(
        "msg_type cannot be narrowed back: Open API records may not fit (restore a backup instead)"
    )

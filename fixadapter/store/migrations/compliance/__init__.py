"""The compliance record's revisions (fix_messages and its spill ledger): Alembic's env.py and versions/."""

"""The store's revisions (orders, executions, positions, ...): Alembic's env.py and versions/."""

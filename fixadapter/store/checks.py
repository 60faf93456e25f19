"""Database failures said plainly, for every table's reader and writer: what failed, never the statement
(its parameters can be raw FIX messages)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from fixadapter.errors import StoreError


def describe_error(exc: BaseException) -> str:
    """The driver's first line, not SQLAlchemy's statement with its parameters."""
    origin = getattr(exc, "orig", None) or exc
    first = (str(origin).strip().splitlines() or [""])[0]
    return f"{origin.__class__.__name__}: {first}"


def table_error(table: str, exc: SQLAlchemyError) -> StoreError:
    return StoreError(f"database error on {table}: {describe_error(exc)}")


def require_table(engine: Engine, table: str, missing: str) -> None:
    """Fail with a clear message (not an SQL error) when the database or the table is not there."""
    where = engine.url.render_as_string(hide_password=True)
    database = engine.url.database
    if (
        engine.dialect.name == "sqlite"
        and database
        and database != ":memory:"
        and not Path(database).exists()
    ):
        raise StoreError(f"no database at {where}: check --store-url or store.url")
    try:
        found = inspect(engine).has_table(table)
    except SQLAlchemyError as exc:
        raise table_error(table, exc) from exc
    if not found:
        raise StoreError(f"no {table} table at {where}: {missing}")

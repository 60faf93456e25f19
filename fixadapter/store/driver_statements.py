"""The order path's writes, rendered once and run on the database driver's cursor.

SQLAlchemy Core wraps every statement in an execution context (cache key, parameter processing, result
set-up): about 35 µs around a driver call of 8-40 µs, and an order makes four such writes on its way to
the venue and back (bench/order_path.py). A DriverStatement renders a Core statement once per set of
parameter names, converts values with the bind processors Core itself would use (rows read back through
Core are the same), and fails the way Core does: the same SQLAlchemy exception classes (IntegrityError,
DataError, ...), with a connection the driver says is gone invalidated so the pool replaces it.

Only for fixed INSERT and UPDATE statements written in the caller's transaction: reads and anything
built per call stay on Core.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, ResourceClosedError
from sqlalchemy.sql.dml import Update, UpdateBase

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Rendered:
    sql: str
    processors: tuple[tuple[str, Processor], ...]  # each parameter, in the order the driver takes them
    positional: bool
    returns_key: bool  # the statement returns the new row's primary key (RETURNING)
    reads_lastrowid: bool  # the driver's lastrowid is the new row's primary key (SQLite)

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        converted = {
            name: values[name] if process is None else process(values[name])
            for name, process in self.processors
        }
        return tuple(converted.values()) if self.positional else converted


class DriverStatement:
    """One INSERT or UPDATE for one dialect; rendered lazily for each set of parameter names it is given."""

    def __init__(self, statement: UpdateBase, dialect: Dialect) -> None:
        self._statement = statement
        self._dialect = dialect
        self._counts = isinstance(statement, Update)
        self._rendered: dict[tuple[str, ...], _Rendered] = {}

    def execute(self, conn: Connection, values: Mapping[str, Any]) -> int | None:
        """Run in `conn`'s transaction; the new row's primary key for an INSERT, the rows changed for an
        UPDATE."""
        rendered = self._rendered.get(tuple(values))
        if rendered is None:
            rendered = self._rendered[tuple(values)] = self._render(tuple(values))
        parameters = rendered.parameters(values)
        dbapi = self._dialect.loaded_dbapi
        connection = conn.connection.dbapi_connection
        if connection is None:
            raise ResourceClosedError("the database connection was invalidated in this transaction")
        cursor = connection.cursor()
        try:
            cursor.execute(rendered.sql, parameters)
            if rendered.returns_key:
                row = cursor.fetchone()
                return None if row is None else int(row[0])
            if self._counts:
                return int(cursor.rowcount)
            return int(cursor.lastrowid) if rendered.reads_lastrowid else None
        except dbapi.Error as exc:
            gone = self._dialect.is_disconnect(exc, connection, cursor)
            if gone:
                conn.invalidate(exc)
            raise DBAPIError.instance(
                rendered.sql, parameters, exc, dbapi.Error, connection_invalidated=gone, dialect=self._dialect
            ) from exc
        finally:
            cursor.close()

    def _render(self, names: tuple[str, ...]) -> _Rendered:
        compiled: Any = self._statement.compile(dialect=self._dialect, column_keys=list(names))
        if compiled.escaped_bind_names or compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError(f"{self._statement} needs per-call rendering: run it through Core")
        binds = compiled.binds
        order = tuple(compiled.positiontup) if compiled.positional else tuple(binds)
        processors = tuple(
            (name, binds[name].type.dialect_impl(self._dialect).bind_processor(self._dialect))
            for name in order
        )
        missing = [name for name in order if name not in names]
        if missing:
            raise ValueError(f"{self._statement} takes {', '.join(missing)}, which were not given")
        return _Rendered(
            sql=compiled.string,
            processors=processors,
            positional=bool(compiled.positional),
            returns_key=bool(compiled.effective_returning),
            reads_lastrowid=bool(compiled.postfetch_lastrowid),
        )

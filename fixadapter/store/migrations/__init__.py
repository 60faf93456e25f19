"""Versions of the database schema: Alembic, run from code (no alembic.ini, nothing for users to set up).

Two histories, each with its own version table, so each can live in the database that holds its tables:

- `STORE` (`alembic_version`): orders, requests, executions, client ids, reports set aside, positions,
  instruments, command ids and depth snapshots, in `store.url`;
- `COMPLIANCE` (`fix_messages_version`): `fix_messages` and its spill ledger, in the compliance database
  (`<store>-fix.db` beside a SQLite store, else `store.url`).

A database is in one of four states for a history:

- empty (none of its tables): created at head directly (create_all, then stamped), so a new store needs
  no step of its own;
- made before schema versions (its tables, no version table): taken as the baseline revision, never
  recreated; `upgrade` creates what the baseline has and it lacks, stamps it and goes on;
- at head: used as it is;
- behind: the daemon refuses it (`SchemaBehind`, naming `fixadapter db upgrade`); `upgrade` brings it to
  head in place, one transaction per database, taking a lock so two processes never migrate at once.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, Table, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from fixadapter.errors import SchemaBehind, StoreError
from fixadapter.model.requests import DEFAULT_ACCOUNT

HERE = Path(__file__).parent
Progress = Callable[[str], None]
T = TypeVar("T")


@dataclass(frozen=True)
class History:
    """One line of revisions: where its scripts are, its version table, the tables it versions."""

    name: str
    directory: Path
    version_table: str
    baseline: str

    def tables(self) -> tuple[Table, ...]:
        """The tables at head (what an empty database is created with), all on the store's metadata (the
        compliance tables once fixadapter.compliance.table is imported: its writer and `db` import it)."""
        from fixadapter.store.schema import STORE_TABLES, metadata

        if self.name == "store":
            return STORE_TABLES
        names = ("fix_messages", "fix_messages_spill")
        if not all(name in metadata.tables for name in names):
            raise StoreError("the compliance tables are not defined: import fixadapter.compliance.table")
        return tuple(metadata.tables[name] for name in names)

    def head(self) -> str:
        return _head(self.directory)

    def config(self, connection: Connection, account: str, progress: Progress) -> Config:
        """Alembic's configuration, built in code; the connection, the account and where progress goes
        travel as attributes (an `-x account=NAME` from the alembic command line is read too)."""
        config = Config()
        config.set_main_option("script_location", str(self.directory))
        config.attributes.update(connection=connection, history=self, account=account, progress=progress)
        return config


STORE = History("store", HERE / "store", "alembic_version", "0001_baseline")
COMPLIANCE = History("compliance", HERE / "compliance", "fix_messages_version", "0001_baseline")
HISTORIES = (STORE, COMPLIANCE)


@functools.cache
def _head(directory: Path) -> str:
    head = ScriptDirectory(str(directory)).get_current_head()
    if head is None:
        raise StoreError(f"no schema revision in {directory}")
    return head


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands in a history: `revision` None with `tables` means made before versions."""

    history: History
    revision: str | None
    tables: bool

    @property
    def empty(self) -> bool:
        return self.revision is None and not self.tables

    @property
    def at_head(self) -> bool:
        return self.revision == self.history.head()

    def describe(self) -> str:
        if self.empty:
            return "empty"
        if self.revision is None:
            return f"made before schema versions (taken as {self.history.baseline})"
        return self.revision


def _state(conn: Connection, history: History) -> SchemaState:
    revision = MigrationContext.configure(
        conn, opts={"version_table": history.version_table}
    ).get_current_revision()
    present = set(inspect(conn).get_table_names())
    return SchemaState(history, revision, any(t.name in present for t in history.tables()))


def where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _in_memory(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")


_process_lock = threading.Lock()  # engines of one process (one per account) on one database
_LOCK_KEY = 0x66697861646D6967  # "fixadmig": the PostgreSQL advisory lock migrations take


def _sqlite_migration_engine(engine: Engine) -> Engine:
    """A connection of its own for SQLite: BEGIN IMMEDIATE (the write lock first, so two processes
    migrate one at a time and DDL is in the transaction) and foreign keys off while tables are rebuilt
    (checked whole before commit)."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.pool import NullPool

    from fixadapter.private_files import private_dir, private_file, sqlite_path
    from fixadapter.store.sqlite_wal import use_wal

    url = engine.url.render_as_string(hide_password=False)
    database = sqlite_path(url)
    if database is not None:  # 0600 before SQLite makes the file, as the store's own engine does
        private_dir(database.parent)
        private_file(database)
    own = create_engine(url, poolclass=NullPool)

    @event.listens_for(own, "connect")
    def _manual_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA busy_timeout=30000")
        use_wal(dbapi_connection)
        dbapi_connection.execute("PRAGMA foreign_keys=OFF")

    @event.listens_for(own, "begin")
    def _begin_immediate(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return own


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """One transaction holding the migration lock: commits when the block ends without error."""
    with _process_lock:
        if engine.dialect.name == "sqlite" and not _in_memory(engine):
            own = _sqlite_migration_engine(engine)
            try:
                with own.begin() as conn:
                    yield conn
                    _check_foreign_keys(conn)
            finally:
                own.dispose()
            return
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            yield conn


def _check_foreign_keys(conn: Connection) -> None:
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        tables = sorted({str(row[0]) for row in broken})
        raise StoreError(f"the migration would leave rows without their order in {', '.join(tables)}")


def _guarded(engine: Engine, work: Callable[[], T]) -> T:
    try:
        return work()
    except SQLAlchemyError as exc:
        from fixadapter.store.checks import describe_error

        raise StoreError(f"database error at {where(engine)} on its schema: {describe_error(exc)}") from exc


def state(engine: Engine, history: History) -> SchemaState:
    """Where the database at `engine` stands in `history` (read only)."""

    def read() -> SchemaState:
        with engine.connect() as conn:
            return _state(conn, history)

    return _guarded(engine, read)


def _create_at_head(conn: Connection, history: History) -> None:
    tables = history.tables()
    tables[0].metadata.create_all(conn, tables=list(tables))
    MigrationContext.configure(conn, opts={"version_table": history.version_table}).stamp(
        ScriptDirectory(str(history.directory)), history.head()
    )


def ensure_current(engine: Engine, history: History) -> None:
    """For a process about to use the database: create it at head when it is empty, take it as it is when
    at head (a database made before versions when its baseline is the head, stamped), else refuse."""
    head = history.head()
    if state(engine, history).revision == head:
        return  # the common case: no lock, no write

    def check() -> None:
        with _locked(engine) as conn:
            found = _state(conn, history)
            if found.at_head:
                return
            if found.empty:
                _create_at_head(conn, history)
                return
            if found.revision is None and history.baseline == head:
                _stamp(conn, history, head)
                return
            raise behind(engine, found)

    _guarded(engine, check)


def behind(engine: Engine, found: SchemaState) -> SchemaBehind:
    return SchemaBehind(
        f"the {found.history.name} schema at {where(engine)} is {found.describe()}, this fixadapter needs "
        f"{found.history.head()}: back the database up, then run `fixadapter db upgrade --config FILE` "
        "with the daemon's config (or `--store-url URL` for a bare database) and start again"
    )


def _stamp(conn: Connection, history: History, revision: str) -> None:
    MigrationContext.configure(conn, opts={"version_table": history.version_table}).stamp(
        ScriptDirectory(str(history.directory)), revision
    )


def upgrade(
    engine: Engine,
    history: History,
    *,
    account: str = DEFAULT_ACCOUNT,
    progress: Progress = lambda _line: None,
) -> SchemaState:
    """Bring the database to head in place, in one transaction (all or nothing); rows written before a
    revision that adds `account` get `account`. Returns the state it found."""

    def run() -> SchemaState:
        with _locked(engine) as conn:
            found = _state(conn, history)
            progress(f"{history.name} schema at {where(engine)}: {found.describe()}; head {history.head()}")
            if found.at_head:
                progress(f"{history.name} schema is up to date")
            elif found.empty:
                _create_at_head(conn, history)
                progress(f"{history.name} schema created at {history.head()}")
            else:
                if found.revision is None:
                    progress(f"{history.name}: existing tables kept as {history.baseline}")
                command.upgrade(history.config(conn, account, progress), "head")
                progress(f"{history.name} schema upgraded to {history.head()}")
            return found

    return _guarded(engine, run)


def run_env() -> None:
    """The body of each history's env.py: run its migrations on the connection `upgrade` handed over."""
    from alembic import context

    config = context.config
    connection: Connection | None = config.attributes.get("connection")
    if connection is None:
        raise StoreError("fixadapter migrations run through `fixadapter db upgrade`, on its connection")
    history: History = config.attributes["history"]
    progress: Progress = config.attributes.get("progress") or (lambda _line: None)

    docs = {script.revision: script.doc for script in context.script.walk_revisions()}

    def applied(
        ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
    ) -> None:
        revision = step.up_revision_id or ""
        progress(f"{history.name}: applied {revision} ({docs.get(revision, '')})")

    context.configure(
        connection=connection,
        version_table=history.version_table,
        on_version_apply=applied,
    )
    with context.begin_transaction():
        context.run_migrations()


def migration_account() -> str:
    """The account a revision writes on rows that had none: `upgrade(account=...)`, or `-x account=NAME`."""
    from alembic import context

    given = context.get_x_argument(as_dictionary=True).get("account")
    account = given or context.config.attributes.get("account") or DEFAULT_ACCOUNT
    return str(account)


def report(line: str, *, progress: Progress | None = None) -> None:
    """A progress line from inside a revision (to the `upgrade` caller's progress)."""
    from alembic import context

    sink: Progress | None = progress or context.config.attributes.get("progress")
    if sink is not None:
        sink(line)


def create_missing(bind: Connection, metadata: MetaData, label: str) -> None:
    """A baseline's upgrade: create the tables, and the indexes of tables kept, that the database lacks
    (a database made before versions keeps every table and row it has)."""
    present = set(inspect(bind).get_table_names())
    missing = [table for table in metadata.sorted_tables if table.name not in present]
    metadata.create_all(bind, tables=missing)
    for table in missing:
        report(f"{label}: created table {table.name}")
    for table in metadata.sorted_tables:
        if table.name in present:
            indexes = {index["name"] for index in inspect(bind).get_indexes(table.name)}
            for index in sorted(table.indexes, key=lambda index: str(index.name)):
                if index.name not in indexes:
                    index.create(bind)
                    report(f"{label}: created index {index.name}")

"""OrderStore: the only code that talks SQL. Synchronous by design: the engine calls it from one
worker thread, which keeps writes ordered and the event loop free.

An OrderStore serves one account: it writes that account on every row and reads only that account's rows,
so several engines (one per account) share one database without seeing each other's orders, executions,
positions or ids.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Select,
    String,
    Table,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from fixadapter.errors import ClientIdInUse, CommandIdReused, StoreError, UnstorableData
from fixadapter.model.enums import OPEN_STATUSES, OrderEventKind
from fixadapter.model.orders import Fill, Order, OrderEvent, OrderRequest, Position
from fixadapter.model.reports import ExecutionReport, Instrument
from fixadapter.model.requests import DEFAULT_ACCOUNT, CommandUse
from fixadapter.private_files import private_dir, private_file, sqlite_path
from fixadapter.store import migrations, schema
from fixadapter.store.driver_statements import DriverStatement
from fixadapter.store.sqlite_wal import use_wal

log = logging.getLogger("fixadapter.store")
T = TypeVar("T")

STREAM_CHUNK = 10_000  # rows fetched at a time when every id is read at start
_ORDER_COLUMNS = tuple(column.name for column in schema.orders.columns)

# The hot writes as fixed statements with their values passed as parameters: SQLAlchemy compiles each
# once and reuses it, where `.values(**row)` builds, keys and looks up a new statement on every call
# (half the store thread's time per order before this, bench/order_path.py).
_INSERT_ORDER = insert(schema.orders)
_INSERT_REQUEST = insert(schema.order_requests)
_INSERT_EXECUTION = insert(schema.executions)
_UPDATE_ORDER = update(schema.orders).where(
    schema.orders.c.account == bindparam("key_account"),
    schema.orders.c.cl_ord_id == bindparam("key_cl_ord_id"),
)
_INSERT_CLIENT_ID = insert(schema.client_ids)
_INSERT_COMMAND_ID = insert(schema.queue_command_ids)
_ADVANCE_JOURNAL = (
    update(schema.journal_positions)
    .where(
        schema.journal_positions.c.account == bindparam("key_account"),
        schema.journal_positions.c.position < bindparam("below"),
    )
    .values(position=bindparam("new_position"))
)


def _command_row(command: CommandUse) -> dict[str, Any]:
    return {
        "strategy": command.strategy,
        "command_id": command.command_id,
        "digest": command.digest,
        "first_seen": datetime.now(UTC),
    }


def _lengths(table: Table) -> dict[str, int]:
    return {
        column.name: column.type.length
        for column in table.columns
        if isinstance(column.type, String) and column.type.length
    }


# SQLite keeps any length in a VARCHAR; PostgreSQL refuses it. Checked here, both refuse it the same way.
_LENGTHS = {table.name: _lengths(table) for table in (schema.orders, schema.executions)}


def _check_lengths(table: str, row: dict[str, Any]) -> None:
    for name, limit in _LENGTHS[table].items():
        value = row.get(name)
        if isinstance(value, str) and len(value) > limit:
            raise UnstorableData(
                f"{table}.{name} would be {len(value)} characters ({value[:20]!r}...); "
                f"the column holds {limit}"
            )


def _escaped(text: str | None) -> str | None:
    if text is None:
        return None
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _usage(conn: Connection, account: str, client_id: str) -> tuple[str, str] | None:
    """What `client_id` was used for in `account`, (kind, cl_ord_id): an order (kind 'order') or a
    cancel/replace of one. Orders and requests stored before `client_ids` existed are found in their own
    tables."""
    ids = schema.client_ids.c
    query = select(ids.kind, ids.cl_ord_id).where(ids.account == account, ids.client_id == client_id)
    row = conn.execute(query).first()
    if row is None:
        orders = schema.orders.c
        order = select(orders.cl_ord_id).where(orders.account == account, orders.cl_ord_id == client_id)
        if conn.execute(order).first() is not None:
            return "order", client_id
        return _legacy_request(conn, account, client_id)
    return row.kind, row.cl_ord_id


def _legacy_request(conn: Connection, account: str, client_id: str) -> tuple[str, str] | None:
    """(kind, cl_ord_id) of a cancel/replace stored before `client_ids` existed under `client_id`."""
    requests = schema.order_requests.c
    row = conn.execute(
        select(requests.kind, requests.cl_ord_id).where(
            requests.account == account, requests.request_id == client_id
        )
    ).first()
    return None if row is None else (row.kind, row.cl_ord_id)


def _in_use(role: str, client_id: str, usage: tuple[str, str]) -> ClientIdInUse:
    return ClientIdInUse.of(role, client_id, *usage)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL + NORMAL: a commit survives a process crash (SIGKILL); only an OS crash could lose the last one.
    use_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _private_database(path: Path) -> None:
    """0600 before SQLite opens (and so creates) the file: its -wal and -shm take the same mode."""
    private_file(path)


def make_engine(url: str, echo: bool = False, **options: Any) -> Engine:
    """An engine on `url`; a SQLite file is made private (0600) and runs in WAL mode with foreign keys.
    `options` go to create_engine as they are."""
    database = sqlite_path(url)
    if database is not None:
        private_dir(database.parent)
    try:
        engine = create_engine(url, echo=echo, pool_pre_ping=not url.startswith("sqlite"), **options)
    except (SQLAlchemyError, ImportError) as exc:
        raise StoreError(f"cannot use database URL {url.rsplit('@', maxsplit=1)[-1]!r}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        if database is not None:
            event.listen(engine, "do_connect", lambda *_args: _private_database(database))
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _order_row(account: str, order: Order) -> dict[str, Any]:
    row = order.model_dump(include=set(_ORDER_COLUMNS))
    for key in ("side", "order_type", "time_in_force", "status", "previous_status"):
        value = row.get(key)
        row[key] = None if value is None else str(value)
    row["account"] = account
    return row


M = TypeVar("M", bound=BaseModel)


def _claim_row(account: str, order: Order, terms: dict[str, Any] | None) -> dict[str, Any]:
    """A new order's claim on its ClOrdID, with the terms a retry is compared with."""
    return {
        "account": account,
        "client_id": order.cl_ord_id,
        "cl_ord_id": order.cl_ord_id,
        "kind": "order",
        "terms": None if terms is None else json.dumps(terms, sort_keys=True),
        "created_at": order.created_at,
    }


def _model(model: type[M], values: dict[str, Any]) -> M:
    """A model from a row: the row's `account` goes in only where the model has the field (the store
    already chose the rows by account)."""
    if "account" not in model.model_fields:
        values.pop("account", None)
    return model.model_validate(values)


def _new_id(inserted: CursorResult[Any]) -> int:
    """The id the database gave the row just inserted."""
    key = inserted.inserted_primary_key
    if key is None:
        raise StoreError("the database returned no id for the row inserted")
    return int(key[0])


def order_from(row: Any) -> Order:
    return _model(Order, dict(row._mapping))


def _event_from(row: Any) -> OrderEvent:
    """An executions row joined with its order, as the event it recorded."""
    m = row._mapping
    x = schema.executions.c
    fields = {name: m[schema.orders.c[name]] for name in _ORDER_COLUMNS}
    fields.update(status=m[x.status], cum_qty=m[x.cum_qty], avg_px=m[x.avg_px], order_id=m[x.order_id])
    order = _model(Order, fields)
    fill = None
    if m[x.fill_qty] is not None and m[x.fill_price] is not None:
        fill = Fill(
            fill_id=m[x.dedupe_key],
            cl_ord_id=order.cl_ord_id,
            order_id=m[x.order_id],
            symbol_id=order.symbol_id,
            side=order.side,
            quantity=m[x.fill_qty],
            price=m[x.fill_price],
            commission=m[x.fill_commission],
            swap=m[x.fill_swap],
            time=m[x.transact_time] or m[x.received_at],
        )
    return OrderEvent(
        kind=OrderEventKind(m[x.event]),
        order=order,
        fill=fill,
        reason=m[x.text] if m[x.event] == OrderEventKind.REJECTED else None,
        time=m[x.received_at],
        seq=m[x.id],
    )


def _stream(conn: Connection, query: Select[Any], sink: Callable[[Any], object], whole: bool = False) -> int:
    """Each row of `query` (its first column, or the row when `whole`) to `sink`, fetched in chunks."""
    count = 0
    for row in conn.execution_options(yield_per=STREAM_CHUNK).execute(query):
        sink(row if whole else row[0])
        count += 1
    return count


class BatchAborted(BaseException):
    """A call inside a store batch failed. A BaseException, so that a store method's own handlers (which
    expect a transaction of their own to retry in) let it through to the batch's runner."""


class CommitUnconfirmed(StoreError):
    """A batch's commit failed: it may or may not have landed (see OrderStore.batch)."""


class OrderStore:
    """One account's orders, their requests and executions, venue positions and instruments."""

    # Methods that do not go through `_run` (their own connection, or none): never part of a batch.
    UNBATCHED = frozenset({"create_schema", "close", "batch"})
    # Journaled writes the store thread may run many at once, in a batch (StoreThread._execute_bulk).
    BULK = {"apply_journaled_order": "apply_journaled_orders"}

    def __init__(self, url: str, echo: bool = False, account: str = DEFAULT_ACCOUNT) -> None:
        if not account or len(account) > schema.ACCOUNT_LENGTH:
            raise StoreError(f"an account name has 1 to {schema.ACCOUNT_LENGTH} characters, got {account!r}")
        self.url = url
        self.account = account
        self.engine = make_engine(url, echo)
        self._batch = threading.local()  # .conn: the batch's connection on the thread running one
        # Whether a cancel/replace stored before client_ids existed (no claim of its id) is in the store:
        # looked for once; every request since claims its id, so once none, never again.
        self._legacy_requests: bool | None = None
        # The writes every order makes, on the driver's cursor (driver_statements.py).
        dialect = self.engine.dialect
        self._insert_claim = DriverStatement(_INSERT_CLIENT_ID, dialect)
        self._insert_order = DriverStatement(_INSERT_ORDER, dialect)
        self._insert_request = DriverStatement(_INSERT_REQUEST, dialect)
        self._insert_execution = DriverStatement(_INSERT_EXECUTION, dialect)
        self._update_order = DriverStatement(_UPDATE_ORDER, dialect)
        self._insert_command_id = DriverStatement(_INSERT_COMMAND_ID, dialect)
        self._advance_journal = DriverStatement(_ADVANCE_JOURNAL, dialect)

    def create_schema(self) -> None:
        """Make sure the schema is this fixadapter's: a new, empty database is created at head; a store
        that is behind raises SchemaBehind naming the upgrade command (it is never changed here)."""
        migrations.ensure_current(self.engine, migrations.STORE)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except IntegrityError:
            raise
        except DataError as exc:
            raise UnstorableData(f"the database refused a value: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {exc.__class__.__name__}: {exc}") from exc

    def _run(self, work: Callable[[Connection], T]) -> T:
        batch: Connection | None = getattr(self._batch, "conn", None)
        if batch is None:
            with self._transaction() as conn:
                return work(conn)
        try:
            return work(batch)
        except Exception as exc:  # the batch's transaction is no longer usable: it is run call by call
            raise BatchAborted(exc) from exc

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Every store call made on this thread inside the block shares one transaction (group commit:
        one commit for the calls the store thread found waiting together), committed when the block
        ends. A call that fails inside raises BatchAborted out of the block and nothing of the batch is
        kept (certain: the commit was never asked for): its caller runs each call again on its own,
        where failures are handled as they always are (a duplicate report's IntegrityError, for one). A
        commit that fails raises CommitUnconfirmed: whether it landed is not known (a connection lost
        during COMMIT), so nothing may be run again; every call of the batch fails with it."""
        if getattr(self._batch, "conn", None) is not None:
            raise RuntimeError("store batches do not nest")
        try:
            with self.engine.begin() as conn:
                self._batch.conn = conn
                try:
                    yield
                finally:
                    self._batch.conn = None
        except BatchAborted:
            raise
        except Exception as exc:  # the commit itself failed
            raise CommitUnconfirmed(
                f"the database did not confirm a commit ({exc.__class__.__name__}: {exc}); what it "
                "held is looked for again, never written twice"
            ) from exc

    # -- orders -------------------------------------------------------------------------------

    def insert_order(
        self, order: Order, terms: dict[str, Any] | None = None, command: CommandUse | None = None
    ) -> bool:
        """Persist a new order and claim its ClOrdID; False when that order exists already (the caller's
        retry). Raises ClientIdInUse when the id names a cancel/replace request. `command`: the strategy
        command placing it, whose id is recorded in the same transaction (one commit, not two) when the
        order is new (True); a command id used before for another command raises CommandIdReused and
        stores nothing."""
        account = self.account
        command_row = None if command is None else _command_row(command)
        claim = _claim_row(account, order, terms)

        def work(conn: Connection) -> bool:
            # The claim's key refuses an id used before (handled below); only a request stored before
            # client_ids existed has no claim, and is looked for here (an old order's row refuses too).
            look = self._has_legacy(conn)  # before the claim, which would hide an unclaimed request
            if command_row is not None:
                self._insert_command_id.execute(conn, command_row)
            self._insert_claim.execute(conn, claim)
            legacy = _legacy_request(conn, account, order.cl_ord_id) if look else None
            if legacy is not None:
                raise _in_use("ClOrdID", order.cl_ord_id, legacy)  # rolls the claim back
            self._insert_order.execute(conn, _order_row(account, order))
            return True

        try:
            return self._run(work)
        except IntegrityError as exc:  # used before: the caller's retry, or another's id
            if command is not None:
                used_for = self._command_digest(command)
                if used_for is not None and used_for != command.digest:
                    raise CommandIdReused(command.command_id) from exc
                if used_for is not None:  # a redelivery: the id is recorded, the order decides
                    return self.insert_order(order, terms)
            usage = self.client_id_usage(order.cl_ord_id)
            if usage == ("order", order.cl_ord_id):
                return False
            if usage is not None:
                raise _in_use("ClOrdID", order.cl_ord_id, usage) from exc
            raise UnstorableData(f"order {order.cl_ord_id} violates a constraint: {exc.orig}") from exc

    # -- the order journal (store/journal.py) -------------------------------------------------------

    def journal_position(self) -> int:
        """How far the account's journal is applied here; 0 before its first record (the row is made)."""
        table = schema.journal_positions
        query = select(table.c.position).where(table.c.account == self.account)

        def work(conn: Connection) -> int:
            found = conn.execute(query).scalar()
            if found is None:
                conn.execute(insert(table), {"account": self.account, "position": 0})
                return 0
            return int(found)

        return self._run(work)

    def _advance(self, conn: Connection, position: int) -> bool:
        """Note `position` as applied; False when it was before (a record applied already: a replay after
        a commit the database did not confirm)."""
        values = {"key_account": self.account, "below": position, "new_position": position}
        return bool(self._advance_journal.execute(conn, values))

    def apply_journaled_order(
        self,
        order: Order,
        terms: dict[str, Any] | None,
        command: CommandUse | None,
        position: int,
        payload: bytes,
    ) -> None:
        """A new order from the journal: the command id placing it, its ClOrdID's claim and its row, with
        the journal position, in one transaction. The engine claimed both ids before journaling, so the
        database refusing the rows is a defect: they are set aside whole (logged), never retried, and the
        journal goes on."""
        account = self.account
        command_row = None if command is None else _command_row(command)
        claim = _claim_row(account, order, terms)
        order_row = _order_row(account, order)

        def work(conn: Connection) -> None:
            if self._advance(conn, position):
                if command_row is not None:
                    self._insert_command_id.execute(conn, command_row)
                self._insert_claim.execute(conn, claim)
                self._insert_order.execute(conn, order_row)

        try:
            self._run(work)
        except (IntegrityError, UnstorableData) as exc:
            self._set_aside_journaled("journal:order", order.cl_ord_id, payload, position, exc)

    def apply_journaled_orders(
        self, records: Sequence[tuple[Order, dict[str, Any] | None, CommandUse | None, int, bytes]]
    ) -> None:
        """Several `apply_journaled_order` records, consecutive in the journal, in one go: their rows
        inserted together and the position noted once (a few statements for a burst, not three per
        order). Only inside a batch: anything unusual (a record applied before, a refused row) fails it,
        and the batch runs again record by record."""
        account = self.account
        first, last = records[0][3], records[-1][3]
        commands = [_command_row(command) for _, _, command, _, _ in records if command is not None]
        claims = [_claim_row(account, order, terms) for order, terms, _, _, _ in records]
        orders = [_order_row(account, order) for order, _, _, _, _ in records]

        def work(conn: Connection) -> None:
            moved = self._advance_journal.execute(
                conn, {"key_account": account, "below": first, "new_position": last}
            )
            if not moved:
                raise StoreError(f"journal records from {first} were applied before: one at a time")
            if commands:
                conn.execute(insert(schema.queue_command_ids), commands)
            conn.execute(insert(schema.client_ids), claims)
            conn.execute(insert(schema.orders), orders)

        if getattr(self._batch, "conn", None) is None:
            raise RuntimeError("apply_journaled_orders runs inside a batch only")
        self._run(work)

    def _set_aside_journaled(
        self, kind: str, key: str, payload: bytes, position: int, error: BaseException
    ) -> None:
        log.error(
            "order journal: the database refused the record of %s (%s): set aside in reports_set_aside; "
            "the order is traded from memory, check the store",
            key,
            error,
        )

        def work(conn: Connection) -> None:
            if self._advance(conn, position):
                conn.execute(
                    insert(schema.reports_set_aside),
                    {
                        "account": self.account,
                        "received_at": datetime.now(UTC),
                        "report_type": kind,
                        "dedupe_key": _escaped(key),
                        "raw": _escaped(payload.decode("utf-8", "replace")),
                        "error": _escaped(str(error)),
                    },
                )

        self._run(work)

    def first_use_of_command(self, strategy: str, command_id: str, digest: str) -> bool:
        """Record a strategy's command id for the command's `digest`; True when new or when used for the
        same digest (a redelivery), False when used for another command (a strategy's bug: refused, never
        silently taken or ignored). Kept in the store, so a restart does not forget; through the store
        thread, so the ids of a burst share its commits."""
        use = CommandUse(strategy, command_id, digest)
        row = _command_row(use)
        try:
            self._run(lambda conn: self._insert_command_id.execute(conn, row))
            return True
        except IntegrityError:
            pass  # used before: compare
        return self._command_digest(use) == digest

    def _command_digest(self, command: CommandUse) -> str | None:
        """The digest recorded for the command's id, None when the id is unused."""
        ids = schema.queue_command_ids.c
        query = select(ids.digest).where(
            ids.strategy == command.strategy, ids.command_id == command.command_id
        )
        found = self._run(lambda conn: conn.execute(query).scalar())
        return None if found is None else str(found)

    def _has_legacy(self, conn: Connection) -> bool:
        if self._legacy_requests is None:
            requests, ids = schema.order_requests.c, schema.client_ids.c
            unclaimed = (
                select(requests.request_id)
                .select_from(
                    schema.order_requests.outerjoin(
                        schema.client_ids,
                        (ids.account == requests.account) & (ids.client_id == requests.request_id),
                    )
                )
                .where(ids.client_id.is_(None))
                .limit(1)
            )
            self._legacy_requests = conn.execute(unclaimed).first() is not None
        return self._legacy_requests

    def each_client_id(self, sink: Callable[[str], object]) -> int:
        """Hand every id the account has used to `sink`: claims, and the orders and requests of stores made
        before claims existed (some ids twice); how many were handed. Streamed, for a store of millions."""
        account = self.account
        queries = (
            select(schema.client_ids.c.client_id).where(schema.client_ids.c.account == account),
            select(schema.orders.c.cl_ord_id).where(schema.orders.c.account == account),
            select(schema.order_requests.c.request_id).where(schema.order_requests.c.account == account),
        )
        return self._run(lambda conn: sum(_stream(conn, query, sink) for query in queries))

    def each_command_id(self, sink: Callable[[str, str], object]) -> int:
        """Hand every strategy's recorded command id to `sink(strategy, command_id)`; how many."""
        ids = schema.queue_command_ids.c
        query = select(ids.strategy, ids.command_id)
        return self._run(lambda conn: _stream(conn, query, lambda row: sink(row[0], row[1]), whole=True))

    def client_id_usage(self, client_id: str) -> tuple[str, str] | None:
        """(kind, cl_ord_id) of what used `client_id`: an order ('order') or a cancel/replace of one."""
        return self._run(lambda conn: _usage(conn, self.account, client_id))

    def order_terms(self, cl_ord_id: str) -> dict[str, Any] | None:
        """The terms an order was first submitted with (None for orders stored before they were kept)."""
        ids = schema.client_ids.c
        query = select(ids.terms).where(
            ids.account == self.account, ids.client_id == cl_ord_id, ids.kind == "order"
        )
        text = self._run(lambda conn: conn.execute(query).scalar())
        return None if text is None else dict(json.loads(text))

    def save_order(self, order: Order) -> None:
        self._run(lambda conn: self._save(conn, order))

    def _save(self, conn: Connection, order: Order) -> None:
        key = {"key_account": self.account, "key_cl_ord_id": order.cl_ord_id}
        self._update_order.execute(conn, {**_order_row(self.account, order), **key})

    def _one_order(self, query: Select[Any]) -> Order | None:
        row = self._run(lambda conn: conn.execute(query).first())
        return None if row is None else order_from(row)

    def _orders(self) -> Select[Any]:
        return select(schema.orders).where(schema.orders.c.account == self.account)

    def get_order(self, cl_ord_id: str) -> Order | None:
        return self._one_order(self._orders().where(schema.orders.c.cl_ord_id == cl_ord_id))

    def order_for_request(self, request_id: str) -> Order | None:
        requests = schema.order_requests.c
        query = self._orders().join(
            schema.order_requests,
            (requests.account == schema.orders.c.account) & (requests.cl_ord_id == schema.orders.c.cl_ord_id),
        )
        return self._one_order(query.where(requests.request_id == request_id))

    def order_by_venue_id(self, order_id: str) -> Order | None:
        return self._one_order(self._orders().where(schema.orders.c.order_id == order_id))

    def get_request(self, request_id: str) -> OrderRequest | None:
        requests = schema.order_requests
        query = select(requests).where(
            requests.c.account == self.account, requests.c.request_id == request_id
        )
        row = self._run(lambda conn: conn.execute(query).first())
        return None if row is None else _model(OrderRequest, dict(row._mapping))

    def open_orders(self) -> list[Order]:
        statuses = [str(status) for status in OPEN_STATUSES]
        query = self._orders().where(schema.orders.c.status.in_(statuses))
        rows = self._run(lambda conn: conn.execute(query.order_by(schema.orders.c.created_at)).all())
        return [order_from(row) for row in rows]

    def orders(self) -> list[Order]:
        query = self._orders().order_by(schema.orders.c.created_at)
        return [order_from(row) for row in self._run(lambda conn: conn.execute(query).all())]

    def insert_request(self, request: OrderRequest, order: Order) -> None:
        """Persist a cancel/replace request and the order's pending state in one transaction; the request
        id is claimed (ClientIdInUse when any order or request used it before)."""
        account = self.account
        row = {**request.model_dump(), "account": account, "kind": str(request.kind)}
        claim = {
            "account": account,
            "client_id": request.request_id,
            "cl_ord_id": request.cl_ord_id,
            "kind": row["kind"],
            "terms": None,
            "created_at": request.created_at,
        }

        def work(conn: Connection) -> None:
            usage = _usage(conn, account, request.request_id)
            if usage is not None:
                raise _in_use("request id", request.request_id, usage)
            self._insert_claim.execute(conn, claim)
            self._insert_request.execute(conn, row)
            self._save(conn, order)

        try:
            self._run(work)
        except IntegrityError as exc:
            usage = self.client_id_usage(request.request_id)
            if usage is not None:
                raise _in_use("request id", request.request_id, usage) from exc
            raise UnstorableData(f"request {request.request_id} violates a constraint: {exc.orig}") from exc

    def requests(self) -> list[OrderRequest]:
        query = select(schema.order_requests).where(schema.order_requests.c.account == self.account)
        rows = self._run(lambda conn: conn.execute(query).all())
        return [_model(OrderRequest, dict(row._mapping)) for row in rows]

    # -- executions ---------------------------------------------------------------------------

    def _executions(self, *columns: Any) -> Select[Any]:
        return select(*(columns or (schema.executions,))).where(schema.executions.c.account == self.account)

    def has_execution(self, dedupe_key: str) -> bool:
        query = self._executions(schema.executions.c.id).where(schema.executions.c.dedupe_key == dedupe_key)
        return self._run(lambda conn: conn.execute(query).first()) is not None

    def record_execution(
        self,
        order: Order,
        event_name: str,
        report: ExecutionReport | None,
        fill: Fill | None,
        key: str,
        text: str | None = None,
    ) -> int | None:
        """Append the execution and update the order atomically: the new row's id (the event's sequence
        number), or None if `key` was recorded before."""
        account = self.account
        row = {
            "account": account,
            "dedupe_key": key,
            "cl_ord_id": order.cl_ord_id,
            "order_id": order.order_id,
            "event": event_name,
            "status": str(order.status),
            "fill_qty": fill.quantity if fill else None,
            "fill_price": fill.price if fill else None,
            "fill_commission": fill.commission if fill else None,
            "fill_swap": fill.swap if fill else None,
            "cum_qty": order.cum_qty,
            "avg_px": order.avg_px,
            "text": text or (report.text if report else None) or order.reason,
            "transact_time": report.transact_time if report else None,
            "received_at": datetime.now(UTC),
            "raw": report.raw if report else None,
        }

        order_row = _order_row(account, order)
        _check_lengths("executions", row)
        _check_lengths("orders", order_row)

        def work(conn: Connection) -> int:
            seq = self._insert_execution.execute(conn, row)
            self._update_order.execute(
                conn, {**order_row, "key_account": account, "key_cl_ord_id": order.cl_ord_id}
            )
            if seq is None:
                raise StoreError("the database returned no id for the execution inserted")
            return seq

        try:
            return self._run(work)
        except IntegrityError as exc:
            if not self.has_execution(key):
                raise UnstorableData(
                    f"execution {key} for {order.cl_ord_id} violates a constraint: {exc.orig}"
                ) from exc
            return None

    def execution(self, dedupe_key: str) -> dict[str, Any] | None:
        """The execution recorded under `dedupe_key`, as a row."""
        query = self._executions().where(schema.executions.c.dedupe_key == dedupe_key)
        row = self._run(lambda conn: conn.execute(query).first())
        return None if row is None else dict(row._mapping)

    def set_aside(self, report_type: str, dedupe_key: str | None, raw: str | None, error: str) -> int:
        """Keep a report the store could not take, whole, with why; the row's id. Text no database refuses:
        a NUL or an unpaired surrogate is written escaped (\\x00)."""
        row = {
            "account": self.account,
            "received_at": datetime.now(UTC),
            "report_type": report_type,
            "dedupe_key": _escaped(dedupe_key),
            "raw": _escaped(raw),
            "error": _escaped(error),
        }
        return self._run(lambda conn: _new_id(conn.execute(insert(schema.reports_set_aside), row)))

    def reports_set_aside(self) -> list[dict[str, Any]]:
        table = schema.reports_set_aside
        query = select(table).where(table.c.account == self.account).order_by(table.c.id)
        return [dict(row._mapping) for row in self._run(lambda conn: conn.execute(query).all())]

    def executions(self, cl_ord_id: str | None = None) -> list[dict[str, Any]]:
        query = self._executions().order_by(schema.executions.c.id)
        if cl_ord_id is not None:
            query = query.where(schema.executions.c.cl_ord_id == cl_ord_id)
        return [dict(row._mapping) for row in self._run(lambda conn: conn.execute(query).all())]

    def events_since(self, seq: int, limit: int = 1000) -> list[OrderEvent]:
        """This account's order events with a sequence number above `seq`, oldest first, rebuilt from
        their rows. Sequence numbers are the store's, shared by its accounts: each account's only grow.

        A row keeps what changed (status, filled quantities, the fill); the order's other terms are its
        current ones, so a replayed event before a replace shows the replaced terms.
        """
        x, o = schema.executions.c, schema.orders.c
        query = (
            self._executions(schema.executions, schema.orders)
            .join(schema.orders, (o.account == x.account) & (o.cl_ord_id == x.cl_ord_id))
            .where(x.id > seq)
            .order_by(x.id)
            .limit(limit)
        )
        rows = self._run(lambda conn: conn.execute(query).all())
        return [_event_from(row) for row in rows]

    def last_event_seq(self) -> int:
        query = self._executions(func.max(schema.executions.c.id))
        return int(self._run(lambda conn: conn.execute(query).scalar()) or 0)

    # -- positions and instruments ------------------------------------------------------------

    def _position_rows(self, positions: Sequence[Position]) -> list[dict[str, Any]]:
        return [{**p.model_dump(mode="python"), "account": self.account} for p in positions]

    def replace_positions(self, current: Sequence[Position]) -> None:
        """The venue is the authority: its list replaces this account's whole."""
        table = schema.positions

        def work(conn: Connection) -> None:
            conn.execute(table.delete().where(table.c.account == self.account))
            if current:
                conn.execute(insert(table), self._position_rows(current))

        self._run(work)

    def put_position(self, position_id: str, position: Position | None) -> None:
        """One position after a fill: stored, or removed when the fill closed it (None)."""
        table = schema.positions

        def work(conn: Connection) -> None:
            mine = (table.c.account == self.account) & (table.c.position_id == position_id)
            conn.execute(table.delete().where(mine))
            if position is not None:
                conn.execute(insert(table), self._position_rows([position]))

        self._run(work)

    def positions(self) -> list[Position]:
        table = schema.positions
        query = select(table).where(table.c.account == self.account).order_by(table.c.position_id)
        return [_model(Position, dict(r._mapping)) for r in self._run(lambda c: c.execute(query).all())]

    def replace_instruments(self, current: Sequence[Instrument]) -> None:
        now = datetime.now(UTC)
        table = schema.instruments

        def work(conn: Connection) -> None:
            conn.execute(table.delete().where(table.c.account == self.account))
            if current:
                rows = [{**i.model_dump(), "account": self.account, "updated_at": now} for i in current]
                conn.execute(insert(table), rows)

        self._run(work)

    def instruments(self) -> list[Instrument]:
        table = schema.instruments
        query = select(table.c.symbol_id, table.c.name, table.c.digits).where(table.c.account == self.account)
        return [
            Instrument.model_validate(dict(r._mapping)) for r in self._run(lambda c: c.execute(query).all())
        ]

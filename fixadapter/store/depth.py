"""Depth snapshots in `market_depth`: recorded in batches off the market-data thread, read back in order.

The market-data thread only samples, serializes and appends to the bounded buffer of a BackgroundWriter
(store/writer.py, shared with compliance capture); its thread does every INSERT. A slow or failing database
therefore costs buffered memory (at most `buffer_size` rows), never feed latency, and rows are lost only when
that buffer overflows or the database still fails at close(), both counted and logged. A row the database
refuses is set aside by the writer's one rule (the batch split until it stands alone, the rest stored).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from prometheus_client import Counter
from sqlalchemy import Engine, Row, Select, delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from fixadapter.config import DepthStorageConfig
from fixadapter.errors import StoreError
from fixadapter.metrics import Metrics
from fixadapter.model.market import Book, DepthSnapshot, PriceLevel
from fixadapter.store.checks import describe_error, require_table, table_error
from fixadapter.store.schema import market_depth
from fixadapter.store.writer import BackgroundWriter, WriterHooks, WriterSettings

log = logging.getLogger("fixadapter.store.depth")

TABLE = "market_depth"
PURGE_EVERY_SECONDS = 3600.0
PURGE_RETRY_SECONDS = 300.0
PURGE_CHUNK_ROWS = 5000
DROP_REASONS = ("buffer_full", "rejected", "error", "closed", "shutdown")

_t = market_depth.c


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _number(value: Decimal) -> str:
    """Plain notation (never 1E+6), so stored text reads like the venue's prices; str() is the fast path."""
    text = str(value)
    return format(value, "f") if "E" in text else text


def _optional_number(value: Decimal | None) -> str | None:
    return None if value is None else _number(value)


def _levels_json(levels: Sequence[PriceLevel]) -> str:
    """Compact JSON [["price","size"],...]: strings keep decimals exact; plain numbers need no escaping."""
    return "[" + ",".join(f'["{_number(price)}","{_number(size)}"]' for price, size in levels) + "]"


def _levels_from(text: str) -> tuple[PriceLevel, ...]:
    return tuple(PriceLevel(Decimal(price), Decimal(size)) for price, size in json.loads(text))


def _require_aware(value: datetime | None, name: str) -> None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (UTC), got {value.isoformat()}")


def depth_row(book: Book, levels: int) -> dict[str, Any]:
    """A `market_depth` row for `book`, at most `levels` per side, best first."""
    _require_aware(book.time, "book.time")
    return {
        "symbol_id": book.symbol_id,
        "symbol": book.symbol,
        "time": book.time,
        "bids": _levels_json(book.bids[:levels]),
        "asks": _levels_json(book.asks[:levels]),
        "mid": book.mid,
        "spread_pips": book.spread_pips,
        "microprice": book.microprice,
        "imbalance": book.imbalance,
    }


def _snapshot(row: Row[Any]) -> DepthSnapshot:
    # Our own rows, typed by the column types already: no need to validate them again per row.
    return DepthSnapshot.model_construct(
        symbol_id=row.symbol_id,
        symbol=row.symbol,
        time=row.time,
        bids=_levels_from(row.bids),
        asks=_levels_from(row.asks),
        mid=row.mid,
        spread_pips=row.spread_pips,
        imbalance=row.imbalance,
        microprice=row.microprice,
    )


def snapshot_record(snapshot: DepthSnapshot) -> dict[str, Any]:
    """A JSON-ready dict (decimals as exact strings, time as ISO 8601): one line of `depth replay`."""
    return {
        "symbol_id": snapshot.symbol_id,
        "symbol": snapshot.symbol,
        "time": snapshot.time.isoformat(timespec="microseconds"),
        "bids": [[_number(price), _number(size)] for price, size in snapshot.bids],
        "asks": [[_number(price), _number(size)] for price, size in snapshot.asks],
        "mid": _optional_number(snapshot.mid),
        "spread_pips": _optional_number(snapshot.spread_pips),
        "imbalance": snapshot.imbalance,
        "microprice": _optional_number(snapshot.microprice),
    }


def _store_error(exc: SQLAlchemyError) -> StoreError:
    return table_error(TABLE, exc)


def _filtered(
    query: Select[Any], symbol_id: int | None, start: datetime | None, end: datetime | None
) -> Select[Any]:
    _require_aware(start, "start")
    _require_aware(end, "end")
    if symbol_id is not None:
        query = query.where(_t.symbol_id == symbol_id)
    if start is not None:
        query = query.where(_t.time >= start)
    if end is not None:
        query = query.where(_t.time < end)
    return query


def _purge_chunks(engine: Engine, before: datetime, chunk_rows: int) -> Iterator[int]:
    """Delete rows with time < `before`, oldest first, one short transaction per chunk (no long lock)."""
    _require_aware(before, "before")
    oldest = select(_t.id).where(_t.time < before).order_by(_t.time, _t.id).limit(chunk_rows)
    statement = delete(market_depth).where(_t.id.in_(oldest.scalar_subquery()))
    while True:
        with engine.begin() as conn:
            deleted = conn.execute(statement).rowcount
        yield deleted
        if deleted < chunk_rows:
            return


def purge_depth(engine: Engine, before: datetime, chunk_rows: int = PURGE_CHUNK_ROWS) -> int:
    """Delete every snapshot older than `before` (rows at or after it stay); returns how many went."""
    try:
        return sum(_purge_chunks(engine, before, chunk_rows))
    except SQLAlchemyError as exc:
        raise _store_error(exc) from exc


def require_depth_table(engine: Engine) -> None:
    require_table(engine, TABLE, "nothing was recorded there (the adapter creates it at start)")


class DepthReader:
    """The read side of `market_depth`: latest snapshot per symbol, ordered replay, counts for progress."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def latest(self, symbol_id: int) -> DepthSnapshot | None:
        """Newest snapshot of a symbol: a backward step on the (symbol_id, time) index, one row read."""
        query = (
            select(market_depth)
            .where(_t.symbol_id == symbol_id)
            .order_by(_t.time.desc(), _t.id.desc())
            .limit(1)
        )
        try:
            with self.engine.connect() as conn:
                row = conn.execute(query).first()
        except SQLAlchemyError as exc:
            raise _store_error(exc) from exc
        return None if row is None else _snapshot(row)

    def replay(
        self,
        symbol_id: int | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        limit: int | None = None,
        fetch_rows: int = 1000,
    ) -> Iterator[DepthSnapshot]:
        """Snapshots with start <= time < end in time order (then insertion order), at most `limit`, streamed
        in chunks of `fetch_rows` (a server-side cursor on PostgreSQL): a replay of millions stays small."""
        query = _filtered(select(market_depth), symbol_id, start, end).order_by(_t.time, _t.id).limit(limit)
        try:
            with self.engine.connect() as conn:
                for row in conn.execution_options(yield_per=fetch_rows).execute(query):
                    yield _snapshot(row)
        except SQLAlchemyError as exc:
            raise _store_error(exc) from exc

    def count(
        self, symbol_id: int | None = None, start: datetime | None = None, end: datetime | None = None
    ) -> int:
        """How many snapshots `replay` with the same filters yields (for progress)."""
        query = _filtered(select(func.count()).select_from(market_depth), symbol_id, start, end)
        try:
            with self.engine.connect() as conn:
                return int(conn.execute(query).scalar_one())
        except SQLAlchemyError as exc:
            raise _store_error(exc) from exc


class _DepthTable:
    """The BackgroundWriter's destination: one executemany INSERT per batch; a refused row is dropped."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert = insert(market_depth)

    def prepare(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return items  # rows already (made by `offer`)

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        with self._engine.begin() as conn:
            conn.execute(self._insert, rows)

    def set_aside(self, row: dict[str, Any], reason: str) -> str:
        return "not stored"  # a snapshot is a sample: counted and logged, not kept

    def describe(self, row: dict[str, Any]) -> str:
        return f"{row['symbol']} at {row['time'].isoformat()}"

    def stop(self) -> None:
        return None  # the engine belongs to the store


class DepthRecorder:
    """Samples books per symbol into the bounded buffer of a BackgroundWriter (store/writer.py), which inserts
    them in batches; purges rows past the retention on the writer thread. `offer` runs on the market-data
    thread: it never blocks on the database and never raises. During an outage the rows stay buffered and are
    retried with backoff; a row the database refuses is set aside (counted as dropped, reason "rejected")."""

    def __init__(
        self,
        engine: Engine,
        config: DepthStorageConfig,
        metrics: Metrics | None = None,
        *,
        sample_clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = _utc_now,
        retry_initial_seconds: float = 0.5,
        retry_max_seconds: float = 30.0,
        purge_chunk_rows: int = PURGE_CHUNK_ROWS,
    ) -> None:
        self._engine = engine
        self._config = config
        self._sample_interval = config.sample_interval_ms / 1000
        self._sample_clock = sample_clock
        self._now = now
        self._purge_chunk_rows = purge_chunk_rows
        self._next_purge = 0.0
        self._last_sample: dict[int, float] = {}
        metrics = metrics or Metrics()
        self._purged = metrics.depth_purged
        self._dropped: dict[str, Counter] = {
            reason: metrics.depth_dropped.labels(reason) for reason in DROP_REASONS
        }
        write_seconds = metrics.db_write_seconds.labels(TABLE)
        rows_written = metrics.db_rows_written.labels(TABLE)

        def written(rows: int, seconds: float) -> None:
            write_seconds.observe(seconds)
            rows_written.inc(rows)

        settings = WriterSettings(
            label="depth storage",
            table=TABLE,
            noun="snapshots",
            thread_name="fixadapter-depth-writer",
            buffer_size=config.buffer_size,
            batch_size=config.batch_size,
            flush_interval=config.flush_interval_ms / 1000,
            database=engine.url.render_as_string(hide_password=True),
            retry_initial=retry_initial_seconds,
            retry_max=retry_max_seconds,
        )
        hooks = WriterHooks(
            written=written,
            failed=metrics.db_write_errors.labels(TABLE).inc,
            set_aside=self._dropped["rejected"].inc,
            lost=lambda reason, rows: self._dropped[reason].inc(rows),
        )
        self._writer: BackgroundWriter[dict[str, Any], dict[str, Any]] = BackgroundWriter(
            settings, _DepthTable(engine), log, hooks=hooks, housekeeping=self._housekeeping
        )
        metrics.depth_buffered.set_function(lambda: self._writer.buffered)

    @property
    def buffered(self) -> int:
        """Rows waiting for the writer (including a batch being retried)."""
        return self._writer.buffered

    # -- market-data thread ---------------------------------------------------------------------

    def offer(self, book: Book) -> None:
        """Every book update comes here; at most one per symbol per sample interval is kept, as it was."""
        if not self._config.enabled:
            return
        try:
            if self._sample_interval > 0:
                now = self._sample_clock()
                last = self._last_sample.get(book.symbol_id)
                if last is not None and now - last < self._sample_interval:
                    return
                self._last_sample[book.symbol_id] = now
            if self._writer.closed:
                self._drop("closed")
                return
            if not self._writer.offer(depth_row(book, self._config.levels)):
                self._drop("buffer_full")
        except Exception as exc:  # the feed goes on whatever happens here: counted and logged instead
            self._drop("error", describe_error(exc))

    def _drop(self, reason: str, detail: str = "") -> None:
        """Count a snapshot lost on the feed thread; warn at once, then at most every 10s per reason."""
        self._dropped[reason].inc()
        self._writer.warn(reason, 1, f"snapshot(s) not stored: {self._drop_advice(reason, detail)}")

    def _drop_advice(self, reason: str, detail: str) -> str:
        if reason == "buffer_full":
            outage = self._writer.outage
            failing = (
                f"; database writes are failing ({outage}): check the database"
                if outage is not None
                else "; or check the database is keeping up (fixadapter_database_write_seconds)"
            )
            return (
                f"the buffer of {self._config.buffer_size} rows is full: raise "
                f"market_data.storage.buffer_size or sample_interval_ms{failing}"
            )
        if reason == "closed":
            return "offered after close()"
        return f"could not be converted ({detail})"

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread; it purges rows past the retention first, then hourly."""
        if self._config.enabled:
            self._writer.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop taking snapshots and write everything buffered; what is still unwritten after `timeout`
        seconds (the database being down) is counted as dropped (reason shutdown) and logged."""
        self._writer.close(timeout)

    def purge(self, before: datetime) -> int:
        """Delete snapshots older than `before` in chunks; returns how many were deleted."""
        deleted = purge_depth(self._engine, before, self._purge_chunk_rows)
        self._purged.inc(deleted)
        return deleted

    # -- writer thread ------------------------------------------------------------------------------

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if now >= self._next_purge:
            self._next_purge = now + (PURGE_EVERY_SECONDS if self._purge_expired() else PURGE_RETRY_SECONDS)

    def _purge_expired(self) -> bool:
        """The retention policy: rows older than now - retention_days go; nothing newer is touched."""
        cutoff = self._now() - timedelta(days=self._config.retention_days)
        deleted = 0
        try:
            for count in _purge_chunks(self._engine, cutoff, self._purge_chunk_rows):
                deleted += count
                self._purged.inc(count)
                self._writer.write_full_batches()  # a long purge must not hold up the snapshots
        except Exception as exc:
            log.warning(
                "depth storage: retention purge of rows before %s failed (%s); retried in %.0f minutes",
                cutoff.isoformat(),
                describe_error(exc),
                PURGE_RETRY_SECONDS / 60,
            )
            return False
        if deleted:
            log.info(
                "depth storage: retention deleted %d snapshots older than %s", deleted, cutoff.isoformat()
            )
        return True

"""Depth snapshots in `market_depth`: recorded in batches off the market-data thread, read back in order.

The market-data thread only samples, serializes and appends to a bounded buffer; a writer thread of its own
does every INSERT. A slow or failing database therefore costs buffered memory (at most `buffer_size` rows),
never feed latency, and rows are lost only when that buffer overflows, which is counted and logged.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice
from typing import Any

from prometheus_client import Counter
from sqlalchemy import Engine, Row, Select, delete, func, insert, select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError

from fixadapter.config import DepthStorageConfig
from fixadapter.errors import StoreError
from fixadapter.metrics import Metrics
from fixadapter.model.market import Book, DepthSnapshot, PriceLevel
from fixadapter.store.checks import describe_error, require_table, table_error
from fixadapter.store.schema import market_depth

log = logging.getLogger("fixadapter.store.depth")

TABLE = "market_depth"
PURGE_EVERY_SECONDS = 3600.0
PURGE_RETRY_SECONDS = 300.0
PURGE_CHUNK_ROWS = 5000
DROP_WARNING_EVERY_SECONDS = 10.0
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


def _is_bad_row(exc: BaseException) -> bool:
    """A row the database refuses (a value too long, a constraint): retrying it cannot help."""
    if isinstance(exc, DataError | IntegrityError):
        return True
    return isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)


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


class DepthRecorder:
    """Samples books per symbol into a bounded buffer; a writer thread inserts them in batches and purges
    rows past the retention. `offer` runs on the market-data thread: it never blocks on the database and
    never raises."""

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
        self._flush_interval = config.flush_interval_ms / 1000
        self._sample_clock = sample_clock
        self._now = now
        self._retry_initial = retry_initial_seconds
        self._retry_max = retry_max_seconds
        self._purge_chunk_rows = purge_chunk_rows
        self._insert = insert(market_depth)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._buffer: deque[dict[str, Any]] = deque()
        self._last_sample: dict[int, float] = {}
        self._closed = False
        self._deadline = 0.0
        self._thread: threading.Thread | None = None
        self._outage_since: float | None = None
        self._last_error = ""
        self._drop_warning: dict[str, tuple[float, int]] = {}
        metrics = metrics or Metrics()
        self._write_seconds = metrics.db_write_seconds.labels(TABLE)
        self._rows_written = metrics.db_rows_written.labels(TABLE)
        self._write_errors = metrics.db_write_errors.labels(TABLE)
        self._purged = metrics.depth_purged
        self._dropped: dict[str, Counter] = {
            reason: metrics.depth_dropped.labels(reason) for reason in DROP_REASONS
        }
        metrics.depth_buffered.set_function(lambda: len(self._buffer))

    @property
    def buffered(self) -> int:
        """Rows waiting for the writer (including a batch being retried)."""
        return len(self._buffer)

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
            if self._closed:
                self._drop("closed")
                return
            row = depth_row(book, self._config.levels)
            with self._lock:
                full = len(self._buffer) >= self._config.buffer_size
                if not full:
                    self._buffer.append(row)
                    if len(self._buffer) >= self._config.batch_size:
                        self._wake.notify()
            if full:
                self._drop("buffer_full")
        except Exception as exc:  # the feed goes on whatever happens here: counted and logged instead
            self._drop("error", describe_error(exc))

    def _drop(self, reason: str, detail: str = "", count: int = 1) -> None:
        """Count a lost snapshot; warn at once, then at most every DROP_WARNING_EVERY_SECONDS per reason."""
        self._dropped[reason].inc(count)
        now = time.monotonic()
        next_warning, pending = self._drop_warning.get(reason, (0.0, 0))
        pending += count
        if now < next_warning:
            self._drop_warning[reason] = (next_warning, pending)
            return
        self._drop_warning[reason] = (now + DROP_WARNING_EVERY_SECONDS, 0)
        log.warning(
            "depth storage: %d snapshot(s) not stored: %s", pending, self._drop_advice(reason, detail)
        )

    def _drop_advice(self, reason: str, detail: str) -> str:
        if reason == "buffer_full":
            failing = (
                f"; database writes are failing ({self._last_error}): check the database"
                if self._outage_since is not None
                else "; or check the database is keeping up (fixadapter_db_write_seconds)"
            )
            return (
                f"the buffer of {self._config.buffer_size} rows is full: raise "
                f"market_data.storage.buffer_size or sample_interval_ms{failing}"
            )
        if reason == "closed":
            return "offered after close()"
        if reason == "rejected":
            return f"the database refused the row ({detail})"
        return f"could not be converted ({detail})"

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread; it purges rows past the retention first, then hourly."""
        if not self._config.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="fixadapter-depth-writer", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop taking snapshots and write everything buffered; what is still unwritten after `timeout`
        seconds (the database being down) is counted as dropped (reason shutdown) and logged."""
        with self._wake:
            self._closed = True
            self._deadline = time.monotonic() + timeout
            self._wake.notify_all()
        self._stop.set()
        thread = self._thread
        if thread is None:
            self._final_flush()
            return
        thread.join(timeout + 1.0)
        if thread.is_alive():
            log.error("depth storage: the writer is still busy %.0fs after close(); giving up on it", timeout)

    def purge(self, before: datetime) -> int:
        """Delete snapshots older than `before` in chunks; returns how many were deleted."""
        deleted = purge_depth(self._engine, before, self._purge_chunk_rows)
        self._purged.inc(deleted)
        return deleted

    # -- writer thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        next_flush = time.monotonic() + self._flush_interval
        next_purge = time.monotonic()
        backoff = self._retry_initial
        while not self._closed:
            now = time.monotonic()
            if now >= next_purge:
                next_purge = now + (PURGE_EVERY_SECONDS if self._purge_expired() else PURGE_RETRY_SECONDS)
            due = now >= next_flush
            if due:
                next_flush = now + self._flush_interval
            if self._drain(full_only=not due):
                backoff = self._retry_initial
                with self._wake:
                    self._wake.wait_for(self._batch_ready, timeout=max(0.0, next_flush - time.monotonic()))
            else:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._retry_max)
        self._final_flush()

    def _batch_ready(self) -> bool:
        return self._closed or len(self._buffer) >= self._config.batch_size

    def _drain(self, full_only: bool) -> bool:
        """Write buffered rows oldest first, one batch at a time; False (rows kept) when the database fails.

        Rows leave the buffer only once written, so a failed batch is retried whole and nothing is lost
        unless the buffer overflows; the lock is never held during I/O."""
        while True:
            with self._lock:
                waiting = len(self._buffer)
                if not waiting or (full_only and waiting < self._config.batch_size):
                    return True
                batch = list(islice(self._buffer, min(waiting, self._config.batch_size)))
            done = self._write(batch)
            with self._lock:
                for _ in range(done):
                    self._buffer.popleft()
            if done < len(batch):
                return False

    def _write(self, batch: list[dict[str, Any]]) -> int:
        """One executemany INSERT; returns how many rows from the front are settled (written or refused)."""
        started = time.perf_counter()
        try:
            with self._engine.begin() as conn:
                conn.execute(self._insert, batch)
        except Exception as exc:
            if not _is_bad_row(exc):
                self._failed(exc)
                return 0
            return self._write_one_by_one(batch)
        self._write_seconds.observe(time.perf_counter() - started)
        self._rows_written.inc(len(batch))
        self._recovered()
        return len(batch)

    def _write_one_by_one(self, batch: list[dict[str, Any]]) -> int:
        """A row the database refuses must not hold up the others: isolate it, count it, move on."""
        for done, row in enumerate(batch):
            try:
                with self._engine.begin() as conn:
                    conn.execute(self._insert, [row])
            except Exception as exc:
                if not _is_bad_row(exc):
                    self._failed(exc)
                    return done
                self._drop("rejected", f"{row['symbol']} at {row['time'].isoformat()}: {describe_error(exc)}")
                continue
            self._rows_written.inc()
        self._recovered()
        return len(batch)

    def _failed(self, exc: BaseException) -> None:
        self._write_errors.inc()
        self._last_error = describe_error(exc)
        if self._outage_since is not None:
            return
        self._outage_since = time.monotonic()
        log.warning(
            "depth storage: writing %s failed (%s); %d snapshots are kept and retried with backoff (up to "
            "%gs). Check the database at %s: snapshots are lost only if the buffer of %d rows fills",
            TABLE,
            self._last_error,
            len(self._buffer),
            self._retry_max,
            self._engine.url.render_as_string(hide_password=True),
            self._config.buffer_size,
        )

    def _recovered(self) -> None:
        if self._outage_since is None:
            return
        log.warning(
            "depth storage: %s writes recovered after %.1fs; %d snapshots still buffered",
            TABLE,
            time.monotonic() - self._outage_since,
            len(self._buffer),
        )
        self._outage_since = None

    def _final_flush(self) -> None:
        backoff = self._retry_initial
        while not self._drain(full_only=False):
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                with self._lock:
                    lost = len(self._buffer)
                    self._buffer.clear()
                self._dropped["shutdown"].inc(lost)
                log.error(
                    "depth storage: %d snapshots lost: the database still fails at close() (%s)",
                    lost,
                    self._last_error,
                )
                return
            time.sleep(min(backoff, remaining))
            backoff = min(backoff * 2, self._retry_max)

    def _purge_expired(self) -> bool:
        """The retention policy: rows older than now - retention_days go; nothing newer is touched."""
        cutoff = self._now() - timedelta(days=self._config.retention_days)
        deleted = 0
        try:
            for count in _purge_chunks(self._engine, cutoff, self._purge_chunk_rows):
                deleted += count
                self._purged.inc(count)
                self._drain(full_only=True)  # a long purge must not hold up the snapshots
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

"""MessageRecorder: every FIX message of both sessions, recorded off the QuickFIX threads.

QuickFIX calls the Python Log (connectors/fix/application.py) on its session threads, holding the GIL, so
`offer` does the least possible there: a clock read and one append to a bounded deque (no lock, no
parsing, no masking; measured at well under a microsecond). A writer thread does the rest, in batches, in
arrival order:

1. masks secrets (mask_secrets field by field, as import does, behind a cheap pre-check) and reads the
   indexed tags (35, 34, 11, 41, 37) by string search, building FixRecords;
2. appends them to the masked QuickFIX-format log files and fsyncs them (files.py);
3. inserts them into `fix_messages`, chained (writer.py); when the database fails, or a batch takes longer
   than `spill_after_seconds`, records go to a spill file instead (spill.py) and everything after them
   follows them there until the spill is loaded back, so the table keeps arrival order.

Nothing is dropped silently: a full buffer, a spill file that cannot be written and a record the database
refuses are each counted (fixadapter_compliance_dropped_total) and logged as errors; refused records are kept
in spill/rejected.jsonl.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import Connection, Engine, make_url

from fixadapter.compliance.files import EVENT, MESSAGES, LogFiles
from fixadapter.compliance.logfile import mask_message
from fixadapter.compliance.records import Direction, FixRecord
from fixadapter.compliance.spill import (
    REJECTED,
    Spill,
    forget_progress,
    is_bad_row,
    record_progress,
    spill_name,
    write_rejected,
)
from fixadapter.compliance.writer import ComplianceWriter
from fixadapter.config import AdapterConfig, ComplianceConfig
from fixadapter.errors import StoreError
from fixadapter.logs import mask_secrets
from fixadapter.metrics import Metrics
from fixadapter.private_files import narrow, private_dir
from fixadapter.store.checks import describe_error
from fixadapter.store.repository import make_engine

log = logging.getLogger("fixadapter.compliance")

TABLE = "fix_messages"
MAINTENANCE_EVERY_SECONDS = 3600.0
WARN_EVERY_SECONDS = 10.0
DROP_REASONS = ("buffer_full", "spill_failed", "rejected", "unconverted")
MARKET_DATA = frozenset({"W", "X"})


# An item of the buffer: capture time, session, direction ("in"/"out", None for an engine event), text;
# or a threading.Event that `flush` waits on.
Item = tuple[float, str, str | None, str]


def maybe_secret(text: str) -> bool:
    """Every secret mask_secrets knows holds 554=, passw(or)d, token or secret (a test keeps the two in
    step): only such texts go through its regexes. 0.6 us on a market data message (a regex: 6 us)."""
    if "554=" in text:
        return True
    lowered = text.lower()
    return "passw" in lowered or "token" in lowered or "secret" in lowered


def mask(text: str) -> str:
    """An engine event's text, masked."""
    return mask_secrets(text) if maybe_secret(text) else text


def mask_raw(raw: str) -> str:
    """A FIX message masked field by field, as import masks them (logfile.mask_message): same record."""
    return mask_message(raw) if maybe_secret(raw) else raw


def field(raw: str, tag: str) -> str | None:
    """The first value of `tag` in a raw message: two string searches, no parse (tags of the header/body)."""
    marker = f"\x01{tag}="
    start = raw.find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = raw.find("\x01", start)
    return raw[start:end] if end >= 0 else raw[start:]


def msg_type_of(raw: str) -> str | None:
    return field(raw, "35")


def _visible(text: str) -> str:
    try:
        data = text.encode("utf-8", "surrogateescape")  # the bytes as they came
    except UnicodeEncodeError:  # a surrogate that was never a byte
        data = text.encode("utf-8", "surrogatepass")
    return data.decode("utf-8", "backslashreplace")


def to_record(moment: float, session: str, direction: str, text: str) -> FixRecord:
    """A masked FixRecord for a captured message; a garbled one is kept whole with what could be read."""
    raw = mask_raw(text)
    if "\x00" in raw:  # PostgreSQL text cannot hold NUL: keep it visible instead
        raw = raw.replace("\x00", "\\x00")
    if not raw.isascii():
        # Bytes that were not UTF-8 arrive as lone surrogates (surrogateescape), which no database and no
        # UTF-8 file can hold: keep each visible as \xNN, so a garbled message never stalls the record.
        raw = _visible(raw)
    seq = field(raw, "34")
    return FixRecord.model_construct(
        time=datetime.fromtimestamp(moment, UTC),
        session=session,
        direction=Direction(direction),
        msg_type=(field(raw, "35") or "")[:16],
        seq_num=int(seq) if seq and seq.isdigit() and len(seq) < 19 else None,
        cl_ord_id=field(raw, "11"),
        orig_cl_ord_id=field(raw, "41"),
        order_id=field(raw, "37"),
        raw=raw,
    )


def with_timeouts(url: str, seconds: float) -> str:
    """PostgreSQL: bound connect, statements and dead TCP peers, so a hung database cannot stall the writer
    longer than `seconds` (it then spills). Other databases unchanged."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        return url
    ms = int(seconds * 1000)
    query: dict[str, Any] = dict(parsed.query)
    query.setdefault("connect_timeout", str(max(1, int(seconds))))
    query.setdefault("tcp_user_timeout", str(ms))
    options = str(query.get("options", ""))
    query["options"] = f"{options} -c statement_timeout={ms}".strip()
    return parsed.update_query_dict(query).render_as_string(hide_password=False)


def log_directory(config: AdapterConfig) -> Path:
    """compliance.directory; when unset, fixlog/ next to a SQLite store (tests and the demo keep their logs
    with their database), else var/fixlog."""
    if config.compliance.directory is not None:
        return config.compliance.directory
    url = config.store.url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        return Path(url.removeprefix("sqlite:///")).expanduser().parent / "fixlog"
    return Path("var/fixlog")


@dataclass(frozen=True)
class _Counters:
    """The recorder's metric children, resolved once (labels() costs a lock and a dict per call)."""

    skipped: Counter
    file_records: Counter
    rows_written: Counter
    write_seconds: Histogram
    write_errors: Counter
    spilled: Counter
    spill_loaded: Counter
    spill_files: Gauge
    errors: Counter
    file_errors: Counter
    dropped: dict[str, Counter]

    @classmethod
    def of(cls, metrics: Metrics, buffered: Callable[[], int]) -> _Counters:
        metrics.compliance_buffered.set_function(buffered)
        return cls(
            skipped=metrics.compliance_skipped,
            file_records=metrics.compliance_recorded.labels("file"),
            rows_written=metrics.compliance_recorded.labels("database"),
            write_seconds=metrics.db_write_seconds.labels(TABLE),
            write_errors=metrics.db_write_errors.labels(TABLE),
            spilled=metrics.compliance_spilled,
            spill_loaded=metrics.compliance_spill_loaded,
            spill_files=metrics.compliance_spill_files,
            errors=metrics.compliance_writer_errors,
            file_errors=metrics.compliance_file_errors,
            dropped={reason: metrics.compliance_dropped.labels(reason) for reason in DROP_REASONS},
        )


class MessageRecorder:
    """The bounded buffer (filled by QuickFIX threads) and the writer thread that empties it."""

    def __init__(
        self,
        config: ComplianceConfig,
        directory: Path,
        engine: Engine | None,
        metrics: Metrics | None = None,
        *,
        clock: Callable[[], float] = time.time,
        retry_initial_seconds: float = 0.5,
        retry_max_seconds: float = 10.0,
    ) -> None:
        self._config = config
        self._engine = engine if config.database else None
        self._capacity = config.buffer_size
        self._skip_market_data = not config.record_market_data
        self._clock = clock
        self._retry_initial = retry_initial_seconds
        self._retry_max = retry_max_seconds
        self._buffer: deque[Item | threading.Event] = deque()
        self._overflow_lock = threading.Lock()
        self._overflowed = 0
        self._closed = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.directory = directory
        self.files = LogFiles(directory, config.max_file_bytes) if config.files else None
        self.spill: Spill | None = None  # opened with the directory lock (start)
        self._lock_fd: int | None = None
        self._writer: ComplianceWriter | None = None
        self._finished_ledgers: list[str] = []
        self._backoff = retry_initial_seconds
        self._retry_at = 0.0
        self._outage_since: float | None = None
        self._last_error = ""
        self._warned: dict[str, tuple[float, int]] = {}
        self._counters = _Counters.of(metrics or Metrics(), lambda: len(self._buffer))

    # -- QuickFIX threads ---------------------------------------------------------------------------

    def offer(self, session: str, direction: str, text: str) -> None:
        """A message QuickFIX sent or received: one append (or a counted drop); never blocks, never raises."""
        if self._skip_market_data and session == "QUOTE" and msg_type_of(text) in MARKET_DATA:
            self._counters.skipped.inc()
            return
        if len(self._buffer) < self._capacity and not self._closed:
            self._buffer.append((self._clock(), session, direction, text))
        else:
            self._overflow()

    def offer_event(self, session: str, text: str) -> None:
        """An engine event (logon, disconnect, garbled message): goes to the event file only."""
        if len(self._buffer) < self._capacity and not self._closed:
            self._buffer.append((self._clock(), session, None, text))
        else:
            self._overflow()

    def register_session(self, session: str, prefix: str) -> None:
        if self.files is not None:
            self.files.register(session, prefix)

    def _overflow(self) -> None:
        with self._overflow_lock:  # rare path: counted exactly, reported by the writer thread
            self._overflowed += 1

    # -- lifecycle ------------------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def start(self) -> None:
        """Lock the directory (one recorder per directory: files and spill are not shared), pick up spill
        files an earlier run left, and start the writer thread. StoreError when another process holds it."""
        if self._thread is None:
            self._open()
            self._thread = threading.Thread(
                target=self._run, name="fixadapter-compliance-writer", daemon=True
            )
            self._thread.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything offered so far is in the files and in the table or a spill file."""
        done = threading.Event()
        self._buffer.append(done)
        self._wake.set()
        if self._thread is None:
            self._open()
            self._cycle()
        return done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Take no more messages; write what is buffered (to the spill when the database still fails)."""
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is None:
            self._open()
            self._cycle()
            self._shutdown()
            return
        thread.join(timeout)
        if thread.is_alive():
            log.error(
                "compliance: the writer is still busy %.0fs after close() with %d messages buffered: "
                "they are in memory only and lost if the process ends now",
                timeout,
                len(self._buffer),
            )

    # -- writer thread ------------------------------------------------------------------------------------

    def _run(self) -> None:
        next_maintenance = time.monotonic()
        while True:
            self._wake.wait(self._config.flush_interval_ms / 1000)
            self._wake.clear()
            closing = self._closed
            try:
                self._cycle()
                if time.monotonic() >= next_maintenance:
                    next_maintenance = time.monotonic() + MAINTENANCE_EVERY_SECONDS
                    self._maintain()
            except Exception:  # the writer must outlive any surprise: counted, logged, next cycle
                self._counters.errors.inc()
                log.exception("compliance: writer cycle failed; retrying")
            if closing and not self._buffer:
                break
        self._shutdown()

    def _open(self) -> None:
        if self._lock_fd is not None:
            return
        private_dir(self.directory)
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        narrow(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(
                f"another adapter records FIX messages into {self.directory}: give each its own "
                "compliance.directory"
            ) from None
        self._lock_fd = fd
        if self._engine is not None:
            self.spill = Spill(self.directory / "spill")
            self._counters.spill_files.set(self.spill.files)

    def _shutdown(self) -> None:
        """Last chance for spilled records to reach the table, then close the files and unlock."""
        if self.spill is not None:
            if self.spill.pending:
                self._retry_at = 0.0
                self._load_spill(budget=self._config.database_timeout_seconds)
            if self.spill.pending:
                log.warning(
                    "compliance: spilled messages remain in %s; they are loaded at the next start",
                    self.spill.directory,
                )
            self.spill.close()
        if self.files is not None:
            self.files.close()
        if self._engine is not None:
            self._engine.dispose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _cycle(self) -> None:
        """Drain the buffer batch by batch: files, then the table (or the spill); then load the spill."""
        self._report_overflow()
        while self._buffer:
            batch, waiters = self._take(self._config.batch_size)
            records, events = self._convert(batch)
            self._write_files(records, events)
            self._store(records)
            for waiter in waiters:
                waiter.set()
        self._load_spill(budget=self._config.spill_after_seconds)

    def _take(self, limit: int) -> tuple[list[Item], list[threading.Event]]:
        batch: list[Item] = []
        waiters: list[threading.Event] = []
        buffer = self._buffer
        while buffer and len(batch) < limit:
            item = buffer.popleft()
            if isinstance(item, threading.Event):
                waiters.append(item)
                break  # set once everything before it is written
            batch.append(item)
        return batch, waiters

    def _convert(self, batch: list[Item]) -> tuple[list[FixRecord], list[tuple[float, str, str]]]:
        records: list[FixRecord] = []
        events: list[tuple[float, str, str]] = []
        for moment, session, direction, text in batch:
            try:
                if direction is None:
                    events.append((moment, session, mask(text)))
                else:
                    records.append(to_record(moment, session, direction, text))
            except Exception as exc:
                self._drop("unconverted", f"{session} message at {moment}: {exc!r}")
        return records, events

    def _write_files(self, records: list[FixRecord], events: list[tuple[float, str, str]]) -> None:
        files = self.files
        if files is None:
            return
        try:
            for record in records:
                files.write(record.session, MESSAGES, record.time, record.raw)
            for moment, session, text in events:
                files.write(session, EVENT, datetime.fromtimestamp(moment, UTC), text)
            files.sync()
            self._counters.file_records.inc(len(records))
        except OSError as exc:
            self._counters.file_errors.inc()
            self._warn(
                "files",
                len(records),
                f"cannot write the FIX log files in {files.directory} ({exc}); the database copy goes on",
                level=logging.ERROR,
            )

    # -- database -------------------------------------------------------------------------------------------

    def _store(self, records: list[FixRecord]) -> None:
        if self._engine is None or self.spill is None or not records:
            return
        if self.spill.pending or time.monotonic() < self._retry_at:
            self._spill(records)
            return
        started = time.monotonic()
        if self._insert(records):
            elapsed = time.monotonic() - started
            if elapsed > self._config.spill_after_seconds:
                self._slow(elapsed)

    def _ready_writer(self) -> ComplianceWriter:
        if self._writer is None:
            if self._engine is None:
                raise StoreError("compliance.database is off: there is no fix_messages to write")
            self._writer = ComplianceWriter(self._engine)  # creates the table: may fail while the db is down
        return self._writer

    def _insert(self, records: list[FixRecord]) -> bool:
        """One transaction; on a database failure the records spill (False).

        The transaction also records `len(records)` lines loaded for the spill file the records would go to
        on failure: a COMMIT that succeeded although the connection died before its answer is then seen by
        the spill load, which skips them (exactly once). That ledger row is removed by the next batch."""
        started = time.perf_counter()
        name, finished = spill_name(), self._finished_ledgers

        def ledger(conn: Connection) -> None:
            record_progress(conn, name, len(records))
            forget_progress(conn, finished)

        try:
            writer = self._ready_writer()
            with writer.engine.begin() as conn:
                writer.insert_chained(conn, records, then=ledger)
        except Exception as exc:
            if not is_bad_row(exc):
                self._failed(exc)
                self._spill(records, name)
                return False
            return self._insert_one_by_one(records)
        self._finished_ledgers = [name]
        self._counters.write_seconds.observe(time.perf_counter() - started)
        self._counters.rows_written.inc(len(records))
        self._recovered()
        return True

    def _insert_one_by_one(self, records: list[FixRecord]) -> bool:
        """A row the database refuses must not hold up the others: set it aside, counted, and go on.
        A database failure midway spills the rest (each row committed with its own ledger mark)."""
        writer = self._ready_writer()
        for number, record in enumerate(records):
            name = spill_name()
            try:
                with writer.engine.begin() as conn:
                    writer.insert_chained(conn, [record], then=lambda c, n=name: record_progress(c, n, 1))
            except Exception as exc:
                if not is_bad_row(exc):
                    self._failed(exc)
                    self._spill(records[number:], name)
                    return False
                self._reject(record.model_dump_json(), f"the database refused it: {describe_error(exc)}")
                continue
            self._finished_ledgers.append(name)
            self._counters.rows_written.inc()
        return True

    def _spill(self, records: list[FixRecord], name: str | None = None) -> None:
        spill = self.spill
        try:
            if spill is None:
                raise OSError("the spill is not open (the recorder was not started)")
            spill.append(records, name)
        except OSError as exc:
            self._drop(
                "spill_failed",
                f"the database is unavailable ({self._last_error or 'slow'}) and the spill file in "
                f"{self.directory / 'spill'} cannot be written ({exc}); these messages are only in the log "
                "files",
                len(records),
            )
            return
        self._counters.spilled.inc(len(records))
        self._counters.spill_files.set(spill.files)

    def _load_spill(self, budget: float) -> None:
        spill = self.spill
        if spill is None or not spill.pending or time.monotonic() < self._retry_at:
            return
        deadline = time.monotonic() + budget
        while spill.pending and time.monotonic() < deadline:
            started = time.monotonic()
            try:
                loaded = spill.load_chunk(self._ready_writer(), self._config.batch_size, self._reject)
            except OSError as exc:
                self._warn("spill_read", 0, f"cannot read the spill file ({exc}); retried", logging.ERROR)
                self._retry_at = time.monotonic() + self._retry_max
                return
            except Exception as exc:
                self._failed(exc)
                return
            self._counters.spill_loaded.inc(loaded)
            self._counters.rows_written.inc(loaded)
            self._counters.spill_files.set(spill.files)
            self._recovered()
            if time.monotonic() - started > self._config.spill_after_seconds:
                self._slow(time.monotonic() - started)
                return
        if not spill.pending:
            log.warning("compliance: every spilled message is now in %s", TABLE)

    def _failed(self, exc: BaseException) -> None:
        self._counters.write_errors.inc()
        self._last_error = describe_error(exc)
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self._retry_max)
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.error(
                "compliance: writing %s failed (%s); messages spill to %s and are loaded when the database "
                "at %s is back",
                TABLE,
                self._last_error,
                self.spill.directory if self.spill else "-",
                self._engine.url.render_as_string(hide_password=True) if self._engine else "-",
            )

    def _slow(self, elapsed: float) -> None:
        """A batch took longer than spill_after_seconds: the next ones spill while the database catches up."""
        self._retry_at = time.monotonic() + self._retry_initial
        self._warn(
            "slow", 0, f"a batch to {TABLE} took {elapsed:.1f}s; messages spill meanwhile", logging.WARNING
        )

    def _recovered(self) -> None:
        self._backoff = self._retry_initial
        if self._outage_since is not None:
            log.warning(
                "compliance: %s writes recovered after %.1fs", TABLE, time.monotonic() - self._outage_since
            )
            self._outage_since = None

    # -- counting and telling ------------------------------------------------------------------------------

    def _reject(self, what: str, why: str) -> None:
        self._drop("rejected", f"{why}; kept in {self.directory / 'spill' / REJECTED}")
        try:
            write_rejected(self.directory / "spill", what, why)
        except OSError as exc:
            log.error("compliance: cannot keep a refused record (%s): %s", exc, why)

    def _report_overflow(self) -> None:
        with self._overflow_lock:
            lost, self._overflowed = self._overflowed, 0
        if lost:
            self._drop(
                "buffer_full",
                f"the buffer of {self._capacity} messages was full (the writer is behind: "
                "raise compliance.buffer_size or check the disk and database)",
                lost,
            )

    def _drop(self, reason: str, detail: str, count: int = 1) -> None:
        self._counters.dropped[reason].inc(count)
        self._warn(reason, count, f"messages not recorded: {detail}", logging.ERROR)

    def _warn(self, key: str, count: int, message: str, level: int) -> None:
        """Log at once, then at most every WARN_EVERY_SECONDS per kind, with the count in between."""
        now = time.monotonic()
        next_time, pending = self._warned.get(key, (0.0, 0))
        pending += count
        if now < next_time:
            self._warned[key] = (next_time, pending)
            return
        self._warned[key] = (now + WARN_EVERY_SECONDS, 0)
        log.log(level, "compliance: %s%s", f"{pending} " if pending else "", message)

    def _maintain(self) -> None:
        if self.files is not None:
            try:
                self.files.compress_older_than(self._config.compress_after_days)
            except OSError as exc:
                self._warn("compress", 0, f"cannot compress old log files: {exc}", logging.WARNING)


def build_recorder(config: AdapterConfig, metrics: Metrics, connector: object) -> MessageRecorder | None:
    """The recorder fed by the connector's QuickFIX Log (set on it here), or None when compliance is off
    or the connector has no FIX log."""
    settings = config.compliance
    setter = getattr(connector, "set_message_recorder", None)
    if setter is None or not settings.enabled or not (settings.files or settings.database):
        return None
    engine = None
    if settings.database:
        url = config.compliance_store_url
        engine = make_engine(with_timeouts(url, settings.database_timeout_seconds))
    recorder = MessageRecorder(settings, log_directory(config), engine, metrics)
    setter(recorder)
    return recorder

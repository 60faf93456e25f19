"""MessageRecorder: every FIX message of both sessions and every Open API frame, recorded off the QuickFIX
threads and the asyncio loop.

QuickFIX calls the Python Log (connectors/fix/application.py) on its session threads, holding the GIL, so
`offer` does the least possible there: a clock read and one append to a bounded deque (no lock, no
parsing, no masking; measured at well under a microsecond). The rest is a BackgroundWriter
(store/writer.py, the machine depth storage runs on too), whose thread works in batches, in arrival order:

1. masks secrets (mask_secrets field by field, as import does, behind a cheap pre-check) and reads the
   indexed tags (35, 34, 11, 41, 37) by string search, building FixRecords;
2. appends them to the masked QuickFIX-format log files and fsyncs them (files.py);
   Open API frames are decoded and masked field by field there too (openapi_frames.py), never on the loop;
3. inserts them into `fix_messages`, chained (writer.py); when the database fails, or a batch takes longer
   than `spill_after_seconds`, records go to a spill file instead (spill.py) and everything after them
   follows them there until the spill is loaded back, so the table keeps arrival order.

Nothing is dropped silently: a full buffer, a spill file that cannot be written and a record the database
refuses are each counted (fixadapter_compliance_dropped_total) and logged as errors. A refused record is
set aside by the writer's one rule (the batch split until it stands alone, every other record stored) and
kept in spill/rejected.jsonl with its reason, so nothing of the record is lost.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import Connection, Engine, make_url

from fixadapter.compliance.files import EVENT, MESSAGES, LogFiles
from fixadapter.compliance.logfile import mask_message
from fixadapter.compliance.openapi_frames import frame_record, peek_payload_type
from fixadapter.compliance.records import Direction, FixRecord
from fixadapter.compliance.spill import (
    REJECTED,
    Spill,
    forget_progress,
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
from fixadapter.store.repository import make_engine
from fixadapter.store.writer import BackgroundWriter, RateLimitedLog, WriterHooks, WriterSettings

log = logging.getLogger("fixadapter.compliance")

TABLE = "fix_messages"
MAINTENANCE_EVERY_SECONDS = 3600.0
DROP_REASONS = ("buffer_full", "spill_failed", "rejected", "unconverted")
MARKET_DATA = frozenset({"W", "X"})
# ProtoOASpotEvent, ProtoOADepthEvent: Open API's market data, skipped like W/X unless record_market_data.
OPENAPI_MARKET_DATA = frozenset({2131, 2155})


# An item of the buffer: capture time, session, direction ("in"/"out", None for an engine event), and the
# FIX message or event text, or an Open API frame's bytes.
Item = tuple[float, str, str | None, str | bytes]


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
    dropped: Counter  # labelled by reason
    drop: dict[str, Counter]

    @classmethod
    def of(cls, metrics: Metrics) -> _Counters:
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
            dropped=metrics.compliance_dropped,
            drop={reason: metrics.compliance_dropped.labels(reason) for reason in DROP_REASONS},
        )

    def written(self, rows: int, seconds: float) -> None:
        self.write_seconds.observe(seconds)
        self.rows_written.inc(rows)

    def lost(self, reason: str, rows: int) -> None:
        counter = self.drop.get(reason) or self.dropped.labels(reason)
        counter.inc(rows)

    def hooks(self) -> WriterHooks:
        return WriterHooks(
            written=self.written,
            failed=self.write_errors.inc,
            set_aside=self.drop["rejected"].inc,
            lost=self.lost,
            spilled=self.spilled.inc,
            spill_loaded=self.spill_loaded.inc,
            error=self.errors.inc,
        )


class _FixMessages:
    """The BackgroundWriter's destination: items become masked records (and log-file lines) on the writer
    thread, records go into `fix_messages` chained, a refused record is kept in spill/rejected.jsonl."""

    def __init__(
        self,
        directory: Path,
        engine: Engine | None,
        files: LogFiles | None,
        counters: _Counters,
        warn: RateLimitedLog,
        *,
        drop: Callable[[str, str], None],
        on_stop: Callable[[], None],
    ) -> None:
        self._directory = directory
        self._drop = drop
        self._on_stop = on_stop
        self._engine = engine
        self._files = files
        self._counters = counters
        self._warn = warn
        self._writer: ComplianceWriter | None = None
        self._finished_ledgers: list[str] = []
        self.attempt: str | None = None  # the ledger id of the write in progress (see `write`)

    @property
    def rejected_path(self) -> Path:
        return self._directory / "spill" / REJECTED

    def ready_writer(self) -> ComplianceWriter:
        if self._writer is None:
            if self._engine is None:
                raise StoreError("compliance.database is off: there is no fix_messages to write")
            self._writer = ComplianceWriter(self._engine)  # creates the table: may fail while the db is down
        return self._writer

    # -- Destination ---------------------------------------------------------------------------------

    def prepare(self, items: list[Item]) -> list[FixRecord]:
        """Mask and read the items, append them to the log files; the records for the table."""
        records, events = self._convert(items)
        self._write_files(records, events)
        return records if self._engine is not None else []

    def write(self, records: Sequence[FixRecord]) -> None:
        """One transaction; it also records `len(records)` lines loaded for the spill file the records would
        go to if this write fails (`attempt`): a COMMIT that succeeded although the connection died before
        its answer is then seen by the spill load, which skips them (exactly once). That ledger row is removed
        by the next write."""
        name, finished = spill_name(), self._finished_ledgers
        self.attempt = name

        def ledger(conn: Connection) -> None:
            record_progress(conn, name, len(records))
            forget_progress(conn, finished)

        writer = self.ready_writer()
        with writer.engine.begin() as conn:
            writer.insert_chained(conn, records, then=ledger)
        self._finished_ledgers = [name]
        self.attempt = None

    def set_aside(self, record: FixRecord, reason: str) -> str:
        return self.keep(record.model_dump_json(), reason)

    def keep(self, what: str, why: str) -> str:
        """A refused record (or spill line) with its reason, next to the spill files: never silently gone."""
        write_rejected(self._directory / "spill", what, why)
        return f"kept in {self.rejected_path}"

    def describe(self, record: FixRecord) -> str:
        return f"{record.session} {record.direction} {record.msg_type or '?'} seq {record.seq_num}"

    def stop(self) -> None:
        self._on_stop()

    # -- converting and files ------------------------------------------------------------------------

    def _convert(self, batch: list[Item]) -> tuple[list[FixRecord], list[tuple[float, str, str]]]:
        records: list[FixRecord] = []
        events: list[tuple[float, str, str]] = []
        for moment, session, direction, text in batch:
            try:
                if isinstance(text, bytes):
                    if direction is None:
                        raise ValueError("an Open API frame without a direction")
                    records.append(frame_record(moment, session, direction, text))
                elif direction is None:
                    events.append((moment, session, mask(text)))
                else:
                    records.append(to_record(moment, session, direction, text))
            except Exception as exc:
                self._drop("unconverted", f"{session} message at {moment}: {exc!r}")
        return records, events

    def _write_files(self, records: list[FixRecord], events: list[tuple[float, str, str]]) -> None:
        files = self._files
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


class _SpillFiles:
    """The BackgroundWriter's spill: spill/*.jsonl (spill.py), opened with the directory lock."""

    def __init__(self, table: _FixMessages, directory: Path, counters: _Counters) -> None:
        self.spill: Spill | None = None
        self._table = table
        self._directory = directory
        self._counters = counters

    @property
    def pending(self) -> bool:
        return self.spill is not None and self.spill.pending

    @property
    def where(self) -> str:
        return str(self._directory)

    def append(self, records: Sequence[FixRecord]) -> None:
        # the ledger id of the write that just failed, if any: its file is named after it (exactly once)
        name, self._table.attempt = self._table.attempt, None
        if self.spill is None:
            raise OSError("the spill is not open (the recorder was not started)")
        self.spill.append(records, name)
        self._counters.spill_files.set(self.spill.files)

    def load(self, rows: int, set_aside: Callable[[str, str], None]) -> int:
        if self.spill is None:
            return 0

        def rejected(what: str, why: str) -> None:
            try:
                where = self._table.keep(what, why)
            except OSError as exc:
                where = f"could not be kept ({exc})"
            set_aside(why, where)

        loaded = self.spill.load_chunk(self._table.ready_writer(), rows, rejected)
        self._counters.spill_files.set(self.spill.files)
        return loaded


class MessageRecorder:
    """The bounded buffer (filled by QuickFIX threads) and the writer thread that empties it: a
    BackgroundWriter (store/writer.py) with a spill, shared with depth storage."""

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
        self._skip_market_data = not config.record_market_data
        self._clock = clock
        self._overflow_lock = threading.Lock()
        self._overflowed = 0
        self.directory = directory
        self.files = LogFiles(directory, config.max_file_bytes) if config.files else None
        self._lock_fd: int | None = None
        self._next_maintenance = 0.0
        metrics = metrics or Metrics()
        self._counters = _Counters.of(metrics)
        self._warn = RateLimitedLog(log, "compliance")
        self._table = _FixMessages(
            directory,
            self._engine,
            self.files,
            self._counters,
            self._warn,
            drop=self._drop,
            on_stop=self._stopped,
        )
        self._spill = _SpillFiles(self._table, directory / "spill", self._counters)
        settings = WriterSettings(
            label="compliance",
            table=TABLE,
            noun="messages",
            thread_name="fixadapter-compliance-writer",
            buffer_size=config.buffer_size,
            batch_size=config.batch_size,
            flush_interval=config.flush_interval_ms / 1000,
            database=self._engine.url.render_as_string(hide_password=True) if self._engine else "-",
            retry_initial=retry_initial_seconds,
            retry_max=retry_max_seconds,
            slow_after=config.spill_after_seconds,
            stop_budget=config.database_timeout_seconds,
        )
        self._writer: BackgroundWriter[Item, FixRecord] = BackgroundWriter(
            settings,
            self._table,
            log,
            hooks=self._counters.hooks(),
            spill=self._spill if self._engine is not None else None,
            housekeeping=self._housekeeping,
        )
        self._offer = self._writer.offer
        metrics.compliance_buffered.set_function(lambda: self._writer.buffered)

    @property
    def spill(self) -> Spill | None:
        """The spill files (open once the recorder holds its directory)."""
        return self._spill.spill

    # -- QuickFIX threads ---------------------------------------------------------------------------

    def offer(self, session: str, direction: str, text: str) -> None:
        """A message QuickFIX sent or received: one append (or a counted drop); never blocks, never raises."""
        if self._skip_market_data and session.endswith("QUOTE") and msg_type_of(text) in MARKET_DATA:
            self._counters.skipped.inc()
            return
        if not self._offer((self._clock(), session, direction, text)):
            self._overflow()

    def offer_frame(self, session: str, direction: str, frame: bytes) -> None:
        """An Open API frame sent or received (one serialized ProtoMessage, without the 4-byte length prefix),
        from the connector's asyncio loop: one append (or a counted drop), decoded and masked on the writer
        thread; never blocks, never raises. `direction` is "in" or "out"; spot and depth events are skipped
        unless compliance.record_market_data."""
        if self._skip_market_data and peek_payload_type(frame) in OPENAPI_MARKET_DATA:
            self._counters.skipped.inc()
            return
        if not self._offer((self._clock(), session, direction, bytes(frame))):
            self._overflow()

    def offer_event(self, session: str, text: str) -> None:
        """An engine event (logon, disconnect, garbled message): goes to the event file only."""
        if not self._offer((self._clock(), session, None, text)):
            self._overflow()

    def register_session(self, session: str, prefix: str) -> None:
        """The log file prefix of a session's messages (QuickFIX's for FIX; any name for Open API)."""
        if self.files is not None:
            self.files.register(session, prefix)

    def _overflow(self) -> None:
        with self._overflow_lock:  # rare path: counted exactly, reported by the writer thread
            self._overflowed += 1

    # -- lifecycle ------------------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        return self._writer.buffered

    def start(self) -> None:
        """Lock the directory (one recorder per directory: files and spill are not shared), pick up spill
        files an earlier run left, and start the writer thread. StoreError when another process holds it."""
        self._open()
        self._writer.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything offered so far is in the files and in the table or a spill file."""
        self._open()
        return self._writer.flush(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Take no more messages; write what is buffered (to the spill when the database still fails). A
        recorder that never started (its directory was another's) has nothing to write and no lock."""
        if self._lock_fd is None and self._writer.buffered == 0:
            self._writer.close(timeout)
            return
        self._open()
        self._writer.close(timeout)

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
                "compliance.directory (a `fixadapter order` beside a running daemon: give it a config of its "
                "own, or send the order through the daemon)"
            ) from None
        self._lock_fd = fd
        if self._engine is not None:
            spill = Spill(self.directory / "spill")
            self._spill.spill = spill
            self._counters.spill_files.set(spill.files)

    def _stopped(self) -> None:
        """The writer is done: report the last drops, close the files and the spill, unlock."""
        self._report_overflow()
        if self._spill.spill is not None:
            self._spill.spill.close()
        if self.files is not None:
            self.files.close()
        if self._engine is not None:
            self._engine.dispose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- writer thread --------------------------------------------------------------------------------

    def _housekeeping(self) -> None:
        self._report_overflow()
        if time.monotonic() >= self._next_maintenance:
            self._next_maintenance = time.monotonic() + MAINTENANCE_EVERY_SECONDS
            self._maintain()

    def _report_overflow(self) -> None:
        with self._overflow_lock:
            lost, self._overflowed = self._overflowed, 0
        if lost:
            self._drop(
                "buffer_full",
                f"the buffer of {self._config.buffer_size} messages was full (the writer is behind: "
                "raise compliance.buffer_size or check the disk and database)",
                lost,
            )

    def _drop(self, reason: str, detail: str, count: int = 1) -> None:
        self._counters.drop[reason].inc(count)
        self._warn(reason, count, f"messages not recorded: {detail}", logging.ERROR)

    def _maintain(self) -> None:
        if self.files is not None:
            try:
                self.files.compress_older_than(self._config.compress_after_days)
            except OSError as exc:
                self._warn("compress", 0, f"cannot compress old log files: {exc}", logging.WARNING)


def build_recorder(config: AdapterConfig, metrics: Metrics) -> MessageRecorder | None:
    """The one compliance record of the process (every account's sessions), or None when it is off."""
    settings = config.compliance
    if not settings.enabled or not (settings.files or settings.database):
        return None
    engine = None
    if settings.database:
        url = config.compliance_store_url
        engine = make_engine(with_timeouts(url, settings.database_timeout_seconds))
    return MessageRecorder(settings, log_directory(config), engine, metrics)

"""BackgroundWriter: rows offered from a hot thread, written to the database in batches by its own thread.

Compliance capture (every FIX message into `fix_messages`) and depth storage (snapshots into `market_depth`)
both run on it; each says what is particular to it through a `Destination` (how a batch is written, where a
refused row is kept), an optional `Spill` and `WriterHooks` (its metrics). The machine is the same for both:

- **The buffer.** `offer` appends to a bounded deque without a lock and never blocks or raises; it returns
  False when the buffer is full or the writer is closed (the user counts that drop as it sees fit).
- **Batches.** The writer thread takes at most `batch_size` items at a time, in arrival order: at once when a
  full batch is waiting, otherwise every `flush_interval` (and on `flush` and `close`). `Destination.prepare`
  turns items into rows on the writer thread (compliance masks and writes its log files there).
- **An outage** (any failure that is not a refused row) never reaches the producer. Without a spill, the rows
  stay in the writer's hands and are retried with backoff; they are lost only when the buffer overflows or
  when `close` gives up at its deadline (counted, reason "shutdown"). With a spill, the rows go to it (durable
  on local disk) and every row after them follows until the spill is loaded back, so the table keeps arrival
  order; a spill that cannot be written is counted (reason "spill_failed").
- **A refused row** (`is_bad_row`: a value or constraint the database will never accept) is isolated by
  splitting the batch in halves until it stands alone; it is then set aside (logged with its reason, counted
  through `WriterHooks.set_aside`, and kept wherever `Destination.set_aside` keeps it: compliance in its
  spill directory, depth nowhere) and every other row of the batch is stored, in order. The spill load of
  compliance follows the same rule through `store_isolating`.
- **Stop.** `close` writes everything buffered (to the spill when the database still fails), gives spilled
  rows a last chance to reach the table, then calls `Destination.stop`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from fixadapter.store.checks import describe_error

ItemT = TypeVar("ItemT")
RowT = TypeVar("RowT")
RowT_contra = TypeVar("RowT_contra", contravariant=True)

WARN_EVERY_SECONDS = 10.0
PROGRESS_EVERY_SECONDS = 60.0


def is_bad_row(exc: BaseException) -> bool:
    """A row the database refuses whatever the retry (a value it cannot store, a constraint, a naive time):
    isolate it and set it aside; retrying cannot help. Anything else is an outage and is retried."""
    if isinstance(exc, DataError | IntegrityError | ValueError | UnicodeError):
        return True
    return isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)


class Interrupted(Exception):
    """The database failed (not a refused row) after the first `settled` rows were stored or set aside."""

    def __init__(self, settled: int, cause: BaseException) -> None:
        super().__init__(describe_error(cause))
        self.settled = settled
        self.cause = cause


def store_isolating(
    rows: Sequence[RowT],
    write: Callable[[Sequence[RowT]], None],
    refused: Callable[[RowT, BaseException], None],
) -> int:
    """Write `rows` in one `write` (one transaction); when the database refuses a row, split the batch in
    halves until each refused row stands alone, hand it to `refused` and store the rest, in order.

    Returns how many rows were stored. Raises Interrupted (with how many rows from the front are settled) when
    the database fails otherwise; every `write` before it committed. Cost: one transaction for a clean batch,
    about 2*log2(n) per refused row."""
    return _isolate(rows, 0, write, refused)


def _isolate(
    rows: Sequence[RowT],
    start: int,
    write: Callable[[Sequence[RowT]], None],
    refused: Callable[[RowT, BaseException], None],
) -> int:
    try:
        write(rows)
    except Exception as exc:
        if not is_bad_row(exc):
            raise Interrupted(start, exc) from exc
        if len(rows) == 1:
            try:
                refused(rows[0], exc)
            except Exception as error:  # setting it aside failed: the row is not settled
                raise Interrupted(start, error) from error
            return 0
        middle = len(rows) // 2
        stored = _isolate(rows[:middle], start, write, refused)
        return stored + _isolate(rows[middle:], start + middle, write, refused)
    return len(rows)


class Destination(Protocol[ItemT, RowT]):
    """What a user of the writer supplies: how items become rows and how rows are stored."""

    def prepare(self, items: list[ItemT]) -> list[RowT]:
        """Items of one batch as rows to store, on the writer thread (may write elsewhere too)."""
        ...

    def write(self, rows: Sequence[RowT]) -> None:
        """Store `rows` in one transaction; raise when the database fails or refuses a row."""
        ...

    def set_aside(self, row: RowT, reason: str) -> str:
        """Keep a row the database refused wherever this user keeps them; return where, for the log."""
        ...

    def describe(self, row: RowT) -> str:
        """A short text naming the row in a log line (no secret)."""
        ...

    def stop(self) -> None:
        """Release what the destination holds (the writer is done with it)."""
        ...


class Spill(Protocol[RowT_contra]):
    """Local storage for rows while the database is slow or down (compliance)."""

    @property
    def pending(self) -> bool:
        """Rows wait in the spill: new rows must queue behind them."""
        ...

    @property
    def where(self) -> str:
        """The place, for log lines."""
        ...

    def append(self, rows: Sequence[RowT_contra]) -> None:
        """Keep `rows` durably; raise OSError when that is impossible."""
        ...

    def load(self, rows: int, set_aside: Callable[[str, str], None]) -> int:
        """Move up to `rows` spilled rows into the table, by the same rule (`store_isolating`): a refused row
        is kept by the spill wherever it keeps them and reported as `set_aside(detail, where)`. Returns how
        many were stored. Raises on a database failure (nothing consumed), OSError when it cannot be read."""
        ...


def _ignore(*_args: object) -> None:
    return None


@dataclass(frozen=True)
class WriterHooks:
    """Metric hooks, all called on the writer thread (`offer` calls none)."""

    written: Callable[[int, float], None] = _ignore  # rows stored by one transaction, its seconds
    failed: Callable[[], None] = _ignore  # a write that failed (the database down or slow)
    set_aside: Callable[[int], None] = _ignore  # rows the database refused, set aside
    lost: Callable[[str, int], None] = _ignore  # rows lost: "shutdown", "spill_failed"
    spilled: Callable[[int], None] = _ignore
    spill_loaded: Callable[[int], None] = _ignore
    error: Callable[[], None] = _ignore  # an unexpected error in the writer thread (logged; it goes on)


@dataclass(frozen=True)
class WriterSettings:
    label: str  # log prefix: "compliance", "depth storage"
    table: str
    noun: str  # what a row is called in log lines: "messages", "snapshots"
    thread_name: str
    buffer_size: int
    batch_size: int
    flush_interval: float
    database: str  # where the rows go, for log lines (a URL with its password hidden)
    retry_initial: float = 0.5
    retry_max: float = 30.0
    slow_after: float | None = None  # with a spill: a batch slower than this diverts the next ones to it
    stop_budget: float = 10.0  # with a spill: how long the last load of spilled rows may take at close


class RateLimitedLog:
    """A log line per kind at once, then at most every `every` seconds with the count in between."""

    def __init__(self, log: logging.Logger, prefix: str, every: float = WARN_EVERY_SECONDS) -> None:
        self._log = log
        self._prefix = prefix
        self._every = every
        self._next: dict[str, tuple[float, int]] = {}

    def __call__(self, key: str, count: int, message: str, level: int = logging.WARNING) -> None:
        now = time.monotonic()
        next_time, pending = self._next.get(key, (0.0, 0))
        pending += count
        if now < next_time:
            self._next[key] = (next_time, pending)
            return
        self._next[key] = (now + self._every, 0)
        self._log.log(level, "%s: %s%s", self._prefix, f"{pending} " if pending else "", message)


class BackgroundWriter(Generic[ItemT, RowT]):
    """The bounded buffer and the writer thread that empties it into the database (see the module)."""

    def __init__(
        self,
        settings: WriterSettings,
        destination: Destination[ItemT, RowT],
        log: logging.Logger,
        *,
        hooks: WriterHooks | None = None,
        spill: Spill[RowT] | None = None,
        housekeeping: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self._destination = destination
        self._log = log
        self._hooks = hooks or WriterHooks()
        self._spill = spill
        self._housekeeping = housekeeping
        self.warn = RateLimitedLog(log, settings.label)
        self._capacity = settings.buffer_size
        self._batch_size = settings.batch_size
        self._buffer: deque[ItemT | threading.Event] = deque()
        self._in_hand: tuple[list[RowT], list[threading.Event]] | None = None
        self._held = 0  # items taken from the buffer and not settled yet (counted in `buffered`)
        self._wake = threading.Event()
        self._stopping = threading.Event()  # interrupts a backoff wait
        self._flush_asked = False
        self._closed = False
        self._deadline = 0.0
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._backoff = settings.retry_initial
        self._retry_at = 0.0
        self._outage_since: float | None = None
        self._last_error = ""
        self._next_progress = 0.0

    # -- the producer -----------------------------------------------------------------------------

    def offer(self, item: ItemT) -> bool:
        """Append one item (no lock, never blocks); False when the buffer is full or the writer closed."""
        buffer = self._buffer
        if len(buffer) + self._held < self._capacity and not self._closed:
            buffer.append(item)
            if len(buffer) >= self._batch_size and not self._wake.is_set():
                self._wake.set()
            return True
        return False

    @property
    def buffered(self) -> int:
        """Items waiting for the database (a batch being retried included)."""
        return len(self._buffer) + self._held

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def outage(self) -> str | None:
        """The last database error while writes are failing; None while they succeed."""
        return self._last_error if self._outage_since is not None else None

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None and not self._stopped:
            self._thread = threading.Thread(target=self._run, name=self.settings.thread_name, daemon=True)
            self._thread.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything offered so far is settled (stored, spilled, or set aside); False on timeout.
        Without a writer thread (not started) the caller's thread does the writing."""
        done = threading.Event()
        self._buffer.append(done)
        self._flush_asked = True
        self._wake.set()
        if self._thread is None:
            self._cycle(full_only=False)
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Take no more items; write everything buffered. Rows the database still cannot take after `timeout`
        seconds go to the spill, or without one are counted as lost (reason "shutdown") and logged."""
        self._deadline = time.monotonic() + timeout
        self._closed = True
        self._wake.set()
        self._stopping.set()
        thread = self._thread
        if thread is None:
            if not self._stopped:
                self._finish()
            return
        thread.join(timeout + 1.0)
        if thread.is_alive():
            self._log.error(
                "%s: the writer is still busy %.0fs after close() with %d %s buffered: they are in memory "
                "only and lost if the process ends now",
                self.settings.label,
                timeout,
                self.buffered,
                self.settings.noun,
            )

    # -- the writer thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        interval = self.settings.flush_interval
        next_flush = time.monotonic() + interval
        while not self._closed:
            try:
                if self._housekeeping is not None:
                    self._housekeeping()
                now = time.monotonic()
                due = self._flush_asked or now >= next_flush
                if due:
                    self._flush_asked = False
                    next_flush = now + interval
                if self._cycle(full_only=not due):
                    self._wake.wait(max(0.0, next_flush - time.monotonic()))
                    self._wake.clear()
                else:
                    self._stopping.wait(self._backoff)
            except Exception:  # the writer must outlive any surprise: counted, logged, next cycle
                self._hooks.error()
                self._log.exception("%s: writer cycle failed; retrying", self.settings.label)
                self._stopping.wait(self._backoff)
        self._finish()

    def write_full_batches(self) -> bool:
        """Write the full batches waiting (writer thread only: housekeeping calls it during long chores)."""
        return self._cycle(full_only=True)

    def _cycle(self, full_only: bool) -> bool:
        """Settle batches oldest first; False when the database failed and rows are kept for a retry."""
        while True:
            if self._in_hand is None:
                if full_only and len(self._buffer) < self._batch_size:
                    break
                items, waiters = self._take()
                if not items and not waiters:
                    break
                self._in_hand = (self._destination.prepare(items) if items else [], waiters)
            rows, waiters = self._in_hand
            if rows and not self._settle(rows):
                return False
            self._in_hand = None
            self._held = 0
            for waiter in waiters:
                waiter.set()
        self._load_spill(self.settings.slow_after or self.settings.stop_budget)
        return True

    def _take(self) -> tuple[list[ItemT], list[threading.Event]]:
        items: list[ItemT] = []
        waiters: list[threading.Event] = []
        buffer = self._buffer
        while buffer and len(items) < self._batch_size:
            item = buffer.popleft()
            if isinstance(item, threading.Event):
                waiters.append(item)
                break  # set once everything before it is settled
            items.append(item)
        self._held = len(items)
        return items, waiters

    def _settle(self, rows: list[RowT]) -> bool:
        """Store `rows` (or spill them); False when they are kept in hand for a retry (no spill)."""
        spill = self._spill
        if spill is not None and (spill.pending or time.monotonic() < self._retry_at):
            self._to_spill(rows)
            return True
        started = time.monotonic()
        try:
            store_isolating(rows, self._write, self._refused)
        except Interrupted as interrupted:
            self._failed(interrupted.cause)
            rest = rows[interrupted.settled :]
            if spill is not None:
                self._to_spill(rest)
                return True
            self._in_hand = (rest, self._in_hand[1] if self._in_hand else [])
            self._held = len(rest)
            return False
        self._recovered()
        elapsed = time.monotonic() - started
        slow_after = self.settings.slow_after
        if spill is not None and slow_after is not None and elapsed > slow_after:
            self._retry_at = time.monotonic() + self.settings.retry_initial
            self.warn(
                "slow",
                0,
                f"a batch to {self.settings.table} took {elapsed:.1f}s; {self.settings.noun} spill meanwhile",
            )
        return True

    def _write(self, rows: Sequence[RowT]) -> None:
        started = time.perf_counter()
        self._destination.write(rows)
        self._hooks.written(len(rows), time.perf_counter() - started)

    def _refused(self, row: RowT, exc: BaseException) -> None:
        reason = f"the database refused it: {describe_error(exc)}"
        try:
            where = self._destination.set_aside(row, reason)
        except OSError as error:
            where = f"could not be kept ({error})"
        self.set_aside(f"{self._destination.describe(row)}: {reason}", where)

    def set_aside(self, detail: str, where: str) -> None:
        """Count and log one row set aside (the one rule, also for rows refused while loading a spill)."""
        self._hooks.set_aside(1)
        self.warn(
            "rejected",
            1,
            f"{self.settings.noun} refused by the database and set aside ({where}): {detail}",
            logging.ERROR,
        )

    def _to_spill(self, rows: Sequence[RowT]) -> None:
        spill = self._spill
        if spill is None or not rows:
            return
        try:
            spill.append(rows)
        except OSError as exc:
            self._hooks.lost("spill_failed", len(rows))
            self.warn(
                "spill_failed",
                len(rows),
                f"{self.settings.noun} not recorded: the database is unavailable "
                f"({self._last_error or 'slow'}) and the spill in {spill.where} cannot be written ({exc})",
                logging.ERROR,
            )
            return
        self._hooks.spilled(len(rows))

    def _load_spill(self, budget: float) -> None:
        spill = self._spill
        if spill is None or not spill.pending or time.monotonic() < self._retry_at:
            return
        deadline = time.monotonic() + budget
        while spill.pending and time.monotonic() < deadline:
            started = time.monotonic()
            try:
                loaded = spill.load(self._batch_size, self.set_aside)
            except OSError as exc:
                self.warn("spill_read", 0, f"cannot read the spill ({exc}); retried", logging.ERROR)
                self._retry_at = time.monotonic() + self.settings.retry_max
                return
            except Exception as exc:
                self._failed(exc)
                return
            elapsed = time.monotonic() - started
            self._hooks.spill_loaded(loaded)
            self._hooks.written(loaded, elapsed)
            self._recovered()
            if self.settings.slow_after is not None and elapsed > self.settings.slow_after:
                self._retry_at = time.monotonic() + self.settings.retry_initial
                return
        if not spill.pending:
            label, noun, table = self.settings.label, self.settings.noun, self.settings.table
            self._log.warning("%s: every spilled %s is now in %s", label, noun, table)

    def _failed(self, exc: BaseException) -> None:
        self._hooks.failed()
        self._last_error = describe_error(exc)
        self._retry_at = time.monotonic() + self._backoff
        backoff = self._backoff
        self._backoff = min(self._backoff * 2, self.settings.retry_max)
        now = time.monotonic()
        settings = self.settings
        if self._outage_since is None:
            self._outage_since = now
            self._next_progress = now + PROGRESS_EVERY_SECONDS
            if self._spill is not None:
                keeping = f"{settings.noun} spill to {self._spill.where} and are loaded when it is back"
            else:
                keeping = (
                    f"{self.buffered} {settings.noun} are kept and retried with backoff (up to "
                    f"{settings.retry_max:g}s); {settings.noun} are lost only if the buffer of "
                    f"{settings.buffer_size} rows fills"
                )
            self._log.error(
                "%s: writing %s failed (%s); %s. Check the database at %s",
                settings.label,
                settings.table,
                self._last_error,
                keeping,
                settings.database,
            )
        elif now >= self._next_progress:
            self._next_progress = now + PROGRESS_EVERY_SECONDS
            self._log.error(
                "%s: %s still cannot be written after %.0fs (%s); %d %s buffered, next try in %.1fs",
                settings.label,
                settings.table,
                now - self._outage_since,
                self._last_error,
                self.buffered,
                settings.noun,
                backoff,
            )

    def _recovered(self) -> None:
        self._backoff = self.settings.retry_initial
        if self._outage_since is None:
            return
        self._log.warning(
            "%s: %s writes recovered after %.1fs; %d %s still buffered",
            self.settings.label,
            self.settings.table,
            time.monotonic() - self._outage_since,
            self.buffered,
            self.settings.noun,
        )
        self._outage_since = None

    def _finish(self) -> None:
        """Close: settle everything buffered (retrying until the deadline), a last spill load, then stop."""
        self._stopped = True
        backoff = self.settings.retry_initial
        try:
            while not self._cycle(full_only=False):
                remaining = self._deadline - time.monotonic()
                if remaining <= 0:
                    self._give_up()
                    break
                time.sleep(min(backoff, remaining))
                backoff = min(backoff * 2, self.settings.retry_max)
            spill = self._spill
            if spill is not None and spill.pending:
                self._retry_at = 0.0
                self._load_spill(self.settings.stop_budget)
                if spill.pending:
                    self._log.warning(
                        "%s: spilled %s remain in %s; they are loaded at the next start",
                        self.settings.label,
                        self.settings.noun,
                        spill.where,
                    )
        except Exception:
            self._hooks.error()
            self._log.exception("%s: the writer failed while closing", self.settings.label)
        finally:
            self._destination.stop()

    def _give_up(self) -> None:
        """The deadline of close() passed with the database still failing: what is left is lost, counted."""
        lost = self._held
        self._in_hand = None
        self._held = 0
        while self._buffer:
            if not isinstance(self._buffer.popleft(), threading.Event):
                lost += 1
        self._hooks.lost("shutdown", lost)
        self._log.error(
            "%s: %d %s lost: the database still fails at close() (%s)",
            self.settings.label,
            lost,
            self.settings.noun,
            self._last_error,
        )

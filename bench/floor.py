"""The durable floor's journal: the least a durable order path must write, through plain sqlite3.

bench/baseline.py measures the raw QuickFIX pair again in the same session with a Journal, which writes the
order's ClOrdID (and commits) before its NewOrderSingle is sent and writes the ExecutionReport (and commits)
in the ER callback before the waiting thread is woken: a report is durable before anyone hears of it. One
INSERT per transaction, one transaction per order and per report, never batched: the floor of doing it
naively and durably (floor.*). GroupJournal is the same rows committed in groups by one writer thread, each
send or wake-up after the commit that holds its row: the floor of a store that group-commits
(floor.group_commit.burst.throughput; the burst only, one at a time a group is one row).

WAL with synchronous=FULL: each COMMIT returns only once the WAL file holding the row is fsynced
(fdatasync on Linux), so a committed row survives a process kill and an OS crash or power cut, as far as
the disk honours the flush. Checkpoints into the main database file happen when the WAL grows, not per
commit. (The adapter's SQLite store runs synchronous=NORMAL: a commit survives a process kill, not an OS
crash, so this floor is the stricter of the two.)
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

SETUP = (
    "floor: the same pair and session plus sqlite3 (journal_mode=WAL, synchronous=FULL: every COMMIT fsyncs "
    "the WAL, so a committed row survives an OS crash or power cut, not only a process kill) in a temporary "
    "directory on the disk the adapter's store uses ({directory}): one INSERT+COMMIT of the ClOrdID before "
    "each send, one of the ExecutionReport in the ER callback before the waiting thread is woken; "
    "floor.group_commit: the burst with the same rows committed in groups by one writer thread"
)
SCHEMA = (
    "CREATE TABLE orders (cl_ord_id TEXT PRIMARY KEY)",
    "CREATE TABLE reports (id INTEGER PRIMARY KEY, cl_ord_id TEXT NOT NULL, order_id TEXT NOT NULL,"
    " exec_type TEXT NOT NULL, status TEXT NOT NULL)",
)
INSERT_ORDER = "INSERT INTO orders (cl_ord_id) VALUES (?)"
INSERT_REPORT = "INSERT INTO reports (cl_ord_id, order_id, exec_type, status) VALUES (?, ?, ?, ?)"
Then = Callable[[], None]  # what may happen once the row is committed: the send, the wake-up


class Journal:
    """Each row its own transaction, committed in the calling thread, then `then()` there.

    One sqlite3 connection shared by the sending thread and QuickFIX's callback thread: a lock takes turns
    (SQLite has one writer at a time anyway, and its busy handler would sleep instead of waiting)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # isolation_level=None: no implicit BEGIN, so each INSERT alone is a transaction, committed on return.
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.lock = threading.Lock()
        self.failure: BaseException | None = None
        mode = self.connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise RuntimeError(f"{path}: journal_mode is {mode}, not wal")
        self.connection.execute("PRAGMA synchronous=FULL")
        for statement in SCHEMA:
            self.connection.execute(statement)

    def order(self, cl_ord_id: str, then: Then) -> None:
        with self.lock:
            self.connection.execute(INSERT_ORDER, (cl_ord_id,))
        then()

    def report(self, fields: tuple[str, str, str, str], then: Then) -> None:
        """`fields`: ClOrdID, OrderID, ExecType, OrdStatus."""
        with self.lock:
            self.connection.execute(INSERT_REPORT, fields)
        then()

    def counts(self) -> tuple[int, int]:
        """Rows in orders and in reports."""
        with self.lock:
            orders = self.connection.execute("SELECT count(*) FROM orders").fetchone()[0]
            reports = self.connection.execute("SELECT count(*) FROM reports").fetchone()[0]
        return int(orders), int(reports)

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class GroupJournal(Journal):
    """Rows queued by any thread; one writer thread commits all that are waiting in one transaction, then
    runs their `then()` in the order they came."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.pending: queue.SimpleQueue[tuple[str, tuple[str, ...], Then] | None] = queue.SimpleQueue()
        self.commits = 0
        self.writer = threading.Thread(target=self._write, name="group-commit", daemon=True)
        self.writer.start()

    def order(self, cl_ord_id: str, then: Then) -> None:
        self.pending.put((INSERT_ORDER, (cl_ord_id,), then))

    def report(self, fields: tuple[str, str, str, str], then: Then) -> None:
        self.pending.put((INSERT_REPORT, fields, then))

    def _write(self) -> None:
        while True:
            group = [self.pending.get()]
            while group[-1] is not None and not self.pending.empty():
                group.append(self.pending.get())
            rows = [item for item in group if item is not None]
            try:
                with self.lock:
                    if not rows:
                        return
                    self.connection.execute("BEGIN")
                    for statement, values, _ in rows:
                        self.connection.execute(statement, values)
                    self.connection.execute("COMMIT")
                    self.commits += 1
                for _, _, then in rows:
                    then()
            except Exception as exc:  # the burst then times out and says so
                self.failure = exc
                return
            if group[-1] is None:
                return

    def close(self) -> None:
        self.pending.put(None)
        self.writer.join(timeout=10)
        super().close()

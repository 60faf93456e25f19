"""The durable floor's journals (bench/floor.py): one row per order and per report, each committed (seen
by another connection) before what depends on it runs: the send, the waiting thread's wake-up."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from bench.floor import GroupJournal, Journal


def committed(path: Path) -> tuple[int, int]:
    """What another connection sees: only committed rows."""
    reader = sqlite3.connect(path)
    try:
        orders = reader.execute("SELECT count(*) FROM orders").fetchone()[0]
        return orders, reader.execute("SELECT count(*) FROM reports").fetchone()[0]
    finally:
        reader.close()


def test_each_row_is_committed_by_itself_fsynced_in_wal_before_its_then_runs(tmp_path: Path):
    path = tmp_path / "floor.db"
    seen: list[tuple[int, int]] = []
    with Journal(path) as journal:
        assert journal.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert journal.connection.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        for i in range(3):
            journal.order(f"P{i}", lambda: seen.append(committed(path)))
            journal.report((f"P{i}", str(i), "0", "0"), lambda: seen.append(committed(path)))
        assert journal.counts() == (3, 3)
    assert seen == [(1, 0), (1, 1), (2, 1), (2, 2), (3, 2), (3, 3)]


def test_a_group_is_committed_in_one_transaction_before_any_of_its_thens_run(tmp_path: Path):
    path = tmp_path / "group.db"
    seen: list[tuple[int, int]] = []
    writing, hold, done = threading.Event(), threading.Event(), threading.Event()

    def held() -> None:
        writing.set()
        hold.wait(10)

    with GroupJournal(path) as journal:
        journal.order("G0", held)
        assert writing.wait(10)  # G0 committed alone; the writer waits in its `then` while the rest queue up
        for i in range(1, 4):
            journal.order(f"G{i}", lambda: seen.append(committed(path)))
            journal.report((f"G{i}", str(i), "0", "0"), lambda: seen.append(committed(path)))
        journal.report(("G0", "0", "0", "0"), done.set)
        hold.set()
        assert done.wait(10)
        assert journal.counts() == (4, 4)
        assert journal.commits == 2
        assert journal.failure is None
    assert seen == [(4, 4)] * 6


def test_a_failed_group_commit_is_kept_for_the_bench_to_report(tmp_path: Path):
    with GroupJournal(tmp_path / "group.db") as journal:
        journal.order("G0", lambda: None)
        journal.order("G0", lambda: pytest.fail("ran after a failed commit"))  # the primary key refuses it
        journal.writer.join(10)
        assert isinstance(journal.failure, sqlite3.IntegrityError)

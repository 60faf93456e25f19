"""WAL from connections opened together on a new SQLite file: SQLite refuses a journal-mode switch at once
while another connection holds a lock (no busy wait), which made stores started together fail with
"database is locked"."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from fixadapter.store.sqlite_wal import use_wal


class _Noting:
    """A connection that says when a switch to WAL was refused."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self.refused = threading.Event()

    def execute(self, sql: str) -> Any:
        try:
            return self._connection.execute(sql)
        except sqlite3.OperationalError:
            if sql == "PRAGMA journal_mode=WAL":
                self.refused.set()
            raise


def test_a_switch_refused_while_another_connection_writes_is_retried_until_it_is_done(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("CREATE TABLE t (x)")
    opened = sqlite3.connect(path, timeout=0.1, check_same_thread=False)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        use_wal(opened, within=0)  # what every connection opened then met

    noting = _Noting(opened)
    errors: list[BaseException] = []

    def switch() -> None:
        try:
            use_wal(noting, within=30)
        except BaseException as exc:
            errors.append(exc)

    switching = threading.Thread(target=switch)
    switching.start()
    assert noting.refused.wait(30), "the switch was never refused while the writer held its lock"
    writer.execute("COMMIT")
    switching.join(30)

    assert errors == []
    assert opened.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # kept in the file


def test_an_in_memory_database_keeps_its_own_mode() -> None:
    memory = sqlite3.connect(":memory:")
    use_wal(memory)
    assert memory.execute("PRAGMA journal_mode").fetchone()[0] == "memory"

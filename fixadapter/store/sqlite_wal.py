"""Put a SQLite database in WAL mode from any of the connections that open it at the same moment.

WAL is kept in the file: the first connection of a new database switches it, the others find it set.
SQLite refuses a journal-mode switch at once, without its busy wait, while another connection holds a
lock, so connections opened together (several accounts' stores starting on one new file) could fail
with "database is locked". Here they read the mode first and, when it is not WAL yet, retry the switch
for a bounded time.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

SWITCH_SECONDS = 10.0


def use_wal(connection: Any, within: float = SWITCH_SECONDS) -> None:
    """WAL on `connection` (a DB-API sqlite3 connection or cursor); an in-memory database keeps its own
    mode. Raises the last "database is locked" when no switch succeeds `within` seconds."""
    deadline = time.monotonic() + within
    delay = 0.002
    while True:
        mode = str(connection.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        if mode in ("wal", "memory"):
            return
        try:
            connection.execute("PRAGMA journal_mode=WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)

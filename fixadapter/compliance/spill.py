"""Spill files: masked FixRecords kept on local disk while the database is slow or down, loaded back later.

Append-only JSON Lines (one `FixRecord` per line), fsynced per batch, one file per outage or run, loaded in
name (creation) order, so the table receives every record in arrival order and chains them then.

Exactly once: each chunk loaded commits its rows together with the file's progress in `fix_messages_spill`
(spill_id = file name, lines_loaded). A direct insert that fails may still have committed (the connection
died after COMMIT was sent): it records its own progress under the name of the spill file its records go to
on failure, so if it did commit, the load skips them. After a crash anywhere, the next load skips the lines
the table already holds. A file is deleted only once fully loaded, and its ledger row only after the file is
gone (a crash in between leaves a harmless ledger row, never a file that could load twice).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from pydantic import ValidationError
from sqlalchemy import Connection, bindparam, delete, insert, select, update

from fixadapter.compliance.records import FixRecord
from fixadapter.compliance.table import fix_messages_spill
from fixadapter.compliance.writer import ComplianceWriter
from fixadapter.private_files import fsync_directory, open_private, private_dir
from fixadapter.store.writer import Interrupted, store_isolating

log = logging.getLogger("fixadapter.compliance.spill")

SUFFIX = ".jsonl"
REJECTED = "rejected.jsonl"
Rejected = Callable[[str, str], None]  # (what: the record or line, why)

_s = fix_messages_spill.c


@dataclass
class _Reading:
    path: Path
    handle: IO[bytes]
    line: int  # lines of the file already in the table


class Spill:
    """Only the compliance writer thread uses it. `append` raises OSError when the disk refuses."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        private_dir(directory)
        self._files = sorted(p for p in directory.glob(f"spill-*{SUFFIX}"))
        self._appending: tuple[Path, IO[bytes]] | None = None
        self._reading: _Reading | None = None
        if self._files:
            log.warning(
                "compliance: %d spill file(s) from an earlier run in %s are loaded into the database first",
                len(self._files),
                directory,
            )

    @property
    def pending(self) -> bool:
        """Records wait in a spill file: new records must queue behind them to keep arrival order."""
        return bool(self._files)

    @property
    def files(self) -> int:
        return len(self._files)

    def append(self, records: Sequence[FixRecord], name: str | None = None) -> None:
        """Write `records` as JSON lines and fsync: when this returns, they survive a crash. `name` (from
        `spill_name`) names a new file: the ledger id a failed insert of these records used (see capture)."""
        if not records:
            return
        if self._appending is None:
            path = self.directory / (name or spill_name())
            self._appending = (path, open_private(path))
            self._files.append(path)
            fsync_directory(self.directory)
        path, handle = self._appending
        handle.write(b"".join(record.model_dump_json().encode() + b"\n" for record in records))
        handle.flush()
        os.fsync(handle.fileno())

    def load_chunk(self, writer: ComplianceWriter, rows: int, rejected: Rejected) -> int:
        """Load the next `rows` lines of the oldest spill file (one transaction with the ledger); returns how
        many records went into the table. Database errors propagate; what they interrupted is read again
        (from the ledger, so nothing loads twice and nothing is skipped)."""
        reading = self._reading or self._open_oldest(writer)
        start = reading.handle.tell()
        lines = [line for line in (reading.handle.readline() for _ in range(rows)) if line]
        if not lines:
            self._finish(writer, reading)
            return 0
        try:
            loaded = self._load_lines(writer, reading, lines, rejected)
        except Interrupted as interrupted:
            if interrupted.settled:  # part of the chunk committed: resume where the ledger says
                reading.handle.close()
                self._reading = None
            else:
                reading.handle.seek(start)
            raise interrupted.cause from None
        except BaseException:
            reading.handle.seek(start)  # nothing committed: the same lines are read again next time
            raise
        reading.line += len(lines)
        return loaded

    def close(self) -> None:
        if self._appending is not None:
            self._appending[1].close()
            self._appending = None
        if self._reading is not None:
            self._reading.handle.close()
            self._reading = None

    # -- loading --------------------------------------------------------------------------------

    def _open_oldest(self, writer: ComplianceWriter) -> _Reading:
        path = self._files[0]
        with writer.engine.connect() as conn:
            done = conn.execute(select(_s.lines_loaded).where(_s.spill_id == path.name)).scalar() or 0
        handle = path.open("rb")
        for _ in range(done):
            handle.readline()
        if done:
            log.warning(
                "compliance: %s: %d lines were loaded before a restart; resuming after them", path, done
            )
        self._reading = _Reading(path, handle, done)
        return self._reading

    def _load_lines(
        self, writer: ComplianceWriter, reading: _Reading, lines: list[bytes], rejected: Rejected
    ) -> int:
        parsed: list[tuple[int, FixRecord]] = []
        unreadable: list[tuple[str, str]] = []
        for number, line in enumerate(lines, reading.line + 1):
            try:
                parsed.append((number, FixRecord.model_validate_json(line)))
            except ValidationError as exc:  # a line torn by a crash mid-write, or edited by hand
                where = f"{reading.path.name} line {number}"
                unreadable.append((line.decode(errors="replace"), f"{where}: {exc.error_count()} error(s)"))
        name, done = reading.path.name, reading.line + len(lines)
        last = parsed[-1][0] if parsed else None
        marked = reading.line  # the ledger: lines of this file in the table

        def write(chunk: Sequence[tuple[int, FixRecord]]) -> None:
            """Records and the ledger in one transaction (the chunk's last line; the whole read when last)."""
            nonlocal marked
            upto = done if chunk[-1][0] == last else chunk[-1][0]
            with writer.engine.begin() as conn:
                writer.insert_chained(
                    conn, [record for _, record in chunk], then=lambda c: _advance(c, name, upto)
                )
            marked = upto

        def refused(item: tuple[int, FixRecord], exc: BaseException) -> None:
            """The one rule (store_isolating): set aside, reported once the ledger is past it."""
            nonlocal marked
            number, record = item
            with writer.engine.begin() as conn:
                _advance(conn, name, number)
            marked = number
            rejected(record.model_dump_json(), f"{name} line {number}: the database refused it: {exc!r}")

        loaded = store_isolating(parsed, write, refused) if parsed else 0
        if marked < done:  # unreadable lines (or a refused one) end the read
            try:
                with writer.engine.begin() as conn:
                    _advance(conn, name, done)
            except Exception as exc:
                raise Interrupted(len(parsed) or 1, exc) from exc
        for what, why in unreadable:  # reported once the ledger is past them (never twice)
            rejected(what, why)
        return loaded

    def _finish(self, writer: ComplianceWriter, reading: _Reading) -> None:
        """The oldest file is fully in the table: delete it, then forget it in the ledger."""
        reading.handle.close()
        self._reading = None
        if self._appending is not None and self._appending[0] == reading.path:
            self._appending[1].close()
            self._appending = None
        reading.path.unlink()
        fsync_directory(self.directory)
        self._files.pop(0)
        log.info("compliance: %s fully loaded (%d lines) and removed", reading.path.name, reading.line)
        try:
            with writer.engine.begin() as conn:
                conn.execute(delete(fix_messages_spill).where(_s.spill_id == reading.path.name))
        except Exception as exc:  # a leftover ledger row is harmless: its file is gone
            log.warning("compliance: could not remove the ledger row of %s: %s", reading.path.name, exc)


def spill_name() -> str:
    """A new spill file's name (its ledger id): sorts in creation order."""
    return f"spill-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}{SUFFIX}"


def record_progress(conn: Connection, spill_id: str, lines: int) -> None:
    """In the caller's transaction: `lines` lines of spill file `spill_id` are in the table."""
    _advance(conn, spill_id, lines)


def forget_progress(conn: Connection, spill_ids: Sequence[str]) -> None:
    if spill_ids:
        conn.execute(_FORGET, {"spill_ids": list(spill_ids)})


# Built once with their values as parameters: the capture writes its ledger on every write, and a
# statement built per call costs Core a new cache key each time.
_FORGET = delete(fix_messages_spill).where(_s.spill_id.in_(bindparam("spill_ids", expanding=True)))
_ADVANCE = (
    update(fix_messages_spill)
    .where(_s.spill_id == bindparam("ledger"))
    .values(lines_loaded=bindparam("lines"), updated_at=bindparam("now"))
)
_START = insert(fix_messages_spill)


def _advance(conn: Connection, spill_id: str, lines: int) -> None:
    now = datetime.now(UTC)
    changed = conn.execute(_ADVANCE, {"ledger": spill_id, "lines": lines, "now": now}).rowcount
    if not changed:
        conn.execute(_START, {"spill_id": spill_id, "lines_loaded": lines, "updated_at": now})


def write_rejected(directory: Path, what: str, why: str) -> None:
    """Keep a record the database refused next to the spill files, with the reason (never silently gone)."""
    line = json.dumps({"time": datetime.now(UTC).isoformat(), "why": why, "record": what}) + "\n"
    with open_private(directory / REJECTED) as handle:
        handle.write(line.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())

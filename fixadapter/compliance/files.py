"""Masked FIX log files in QuickFIX's own FileLog format, written by the compliance writer thread.

QuickFIX's FileLog would write the Logon with its Password (554) in clear, so the adapter writes the files
itself, from the masked records: the same line format (`YYYYMMDD-HH:MM:SS.fffffffff : message`) and the same
file prefix (`FIX.4.4-SENDER-TARGET-QUALIFIER`), so any tool that reads QuickFIX logs reads these.

Rotation is by UTC day, then by size: `<prefix>.messages.20250304.log`, then `...20250304.1.log` once a
file passes `max_bytes`; events go to `<prefix>.event.<day>.log`. Dated names need no rename at midnight
(nothing to lose in a crash), and a day's file is complete once the day is over. Files older than
`compress_after_days` are gzipped in place (`.log.gz`); nothing is ever deleted.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO

from fixadapter.private_files import open_private, private_dir

log = logging.getLogger("fixadapter.compliance.files")

MESSAGES = "messages"
EVENT = "event"
_NAME = re.compile(r"\.(messages|event)\.(\d{8})(?:\.(\d+))?\.log$")


@dataclass
class _Open:
    day: str
    part: int
    path: Path
    handle: IO[bytes]
    size: int


def timestamp(moment: datetime) -> str:
    """QuickFIX's FileLog time: UTC with nanoseconds (ours are microseconds, padded)."""
    return moment.strftime("%Y%m%d-%H:%M:%S.%f") + "000"


class LogFiles:
    """One open file per (session, kind); only the compliance writer thread calls write/sync/compress."""

    def __init__(self, directory: Path, max_bytes: int = 1 << 30) -> None:
        self.directory = directory
        self._max_bytes = max_bytes
        self._prefixes: dict[str, str] = {}
        self._open: dict[tuple[str, str], _Open] = {}
        private_dir(directory)

    def register(self, session: str, prefix: str) -> None:
        """QuickFIX's file prefix for a session (from its SessionID); the session name is used until then."""
        self._prefixes[session] = prefix

    def write(self, session: str, kind: str, moment: datetime, text: str) -> None:
        """Append one line (buffered: `sync` makes the batch durable)."""
        day = moment.strftime("%Y%m%d")
        current = self._open.get((session, kind))
        if current is None or current.day != day or current.size >= self._max_bytes:
            current = self._roll(session, kind, day, current)
        line = f"{timestamp(moment)} : {text}\n".encode(errors="surrogateescape")
        current.handle.write(line)
        current.size += len(line)

    def sync(self) -> None:
        """Flush and fsync every open file: what was written before is on disk when this returns."""
        for current in self._open.values():
            current.handle.flush()
            os.fsync(current.handle.fileno())

    def close(self) -> None:
        try:
            self.sync()
        finally:
            for current in self._open.values():
                current.handle.close()
            self._open.clear()

    def _roll(self, session: str, kind: str, day: str, current: _Open | None) -> _Open:
        part = 0
        if current is not None:
            current.handle.flush()
            os.fsync(current.handle.fileno())
            current.handle.close()
            part = current.part + 1 if current.day == day else 0
        prefix = self._prefixes.get(session, session)
        while True:
            suffix = f".{part}" if part else ""
            path = self.directory / f"{prefix}.{kind}.{day}{suffix}.log"
            size = path.stat().st_size if path.exists() else 0
            if size < self._max_bytes and not Path(f"{path}.gz").exists():
                break
            part += 1
        opened = _Open(day, part, path, open_private(path), size)
        self._open[(session, kind)] = opened
        return opened

    def compress_older_than(self, days: int, today: date | None = None) -> int:
        """Gzip every log file whose day is at least `days` before `today`; returns how many were."""
        today = today or datetime.now(UTC).date()
        cutoff = (today - timedelta(days=days)).strftime("%Y%m%d")
        in_use = {current.path for current in self._open.values()}
        compressed = 0
        for path in sorted(self.directory.glob("*.log")):
            match = _NAME.search(path.name)
            if match is None or match.group(2) > cutoff or path in in_use:
                continue
            _gzip(path)
            compressed += 1
        return compressed


def _gzip(path: Path) -> None:
    """Compressed copy first, fsynced, renamed into place; only then the original goes (crash: both)."""
    target = Path(f"{path}.gz")
    partial = Path(f"{path}.gz.partial")
    with (
        path.open("rb") as source,
        open_private(partial, append=False) as raw,
        gzip.GzipFile(fileobj=raw, mode="wb") as sink,
    ):
        shutil.copyfileobj(source, sink, 1 << 20)
    with partial.open("rb") as written:
        os.fsync(written.fileno())
    partial.replace(target)
    path.unlink()
    log.info("compliance: compressed %s", target.name)

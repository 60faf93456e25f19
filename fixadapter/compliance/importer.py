"""Log files into `fix_messages`: read by logfile, chained in by ComplianceWriter.append_many, in batches.

Importing is idempotent: a message already stored (same session, direction and raw text: the raw text holds
MsgSeqNum and SendingTime; an Open API frame's has neither, so its time counts too) is not stored again, so
a file imported twice, or our own log file imported next to what capture already wrote, adds nothing.
Skipped lines never stop an import; they are reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from fixadapter.compliance.logfile import LogFileReader, Problem
from fixadapter.compliance.records import FixRecord, is_openapi_record
from fixadapter.compliance.table import iter_records
from fixadapter.compliance.writer import ComplianceWriter

# How far apart the same message's time may be in a log file and in the table: our own files carry the
# table's time; another logger stamps the message itself, a few milliseconds off.
DUPLICATE_WINDOW = timedelta(seconds=2)

_Key = tuple[str, str, str, datetime | None]


@dataclass
class ImportResult:
    """What one file gave: imported, already stored, and the lines skipped (or warned about)."""

    path: Path
    lines: int = 0
    imported: int = 0
    duplicates: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return sum(1 for problem in self.problems if not problem.warning)

    @property
    def warnings(self) -> int:
        return sum(1 for problem in self.problems if problem.warning)


def _key(record: FixRecord) -> _Key:
    """What makes a message the same one: its text (a FIX message has its sequence number in it); an Open API
    frame has none, so two heartbeats read alike and its time tells them apart."""
    moment = record.time if is_openapi_record(record.raw) else None
    return (record.session, str(record.direction), record.raw, moment)


class Importer:
    """Imports files through one ComplianceWriter; `progress(reader)` runs every `progress_every` lines."""

    def __init__(
        self,
        writer: ComplianceWriter,
        *,
        our_comp_id: str | None = None,
        config_comp_id: str | None = None,
        session: str | None = None,
        batch_size: int = 2000,
        progress: Callable[[LogFileReader], None] | None = None,
        progress_every: int = 100_000,
    ) -> None:
        self.writer = writer
        self.our_comp_id = our_comp_id
        self.config_comp_id = config_comp_id
        self.session = session
        self.batch_size = max(1, batch_size)
        self.progress = progress
        self.progress_every = max(1, progress_every)

    def reader(self, path: Path) -> LogFileReader:
        return LogFileReader(path, self.our_comp_id, self.session, self.config_comp_id)

    def import_file(self, path: Path) -> ImportResult:
        """Read `path` and store its new messages in file order; raises LogFileError if the file itself
        cannot be read (what was stored before stays, and importing again adds only the rest)."""
        reader = self.reader(path)
        result = ImportResult(path, problems=reader.problems)
        batch: list[FixRecord] = []
        next_progress = self.progress_every
        for logged in reader:
            batch.append(logged.record)
            if len(batch) >= self.batch_size:
                self._store(batch, result)
                batch = []
            if self.progress is not None and reader.lines >= next_progress:
                next_progress = reader.lines + self.progress_every
                result.lines = reader.lines
                self.progress(reader)
        self._store(batch, result)
        result.lines = reader.lines
        return result

    def _store(self, batch: list[FixRecord], result: ImportResult) -> None:
        if not batch:
            return
        seen = self._stored_keys(batch)
        fresh: list[FixRecord] = []
        for record in batch:
            key = _key(record)
            if key in seen:
                result.duplicates += 1
                continue
            seen.add(key)
            fresh.append(record)
        result.imported += self.writer.append_many(fresh)

    def _stored_keys(self, batch: Iterable[FixRecord]) -> set[_Key]:
        """Keys of the stored messages around the batch's time span, per session (one indexed query each)."""
        spans: dict[str, tuple[FixRecord, FixRecord]] = {}
        for record in batch:
            first, last = spans.get(record.session, (record, record))
            spans[record.session] = (
                record if record.time < first.time else first,
                record if record.time > last.time else last,
            )
        keys: set[_Key] = set()
        for session, (first, last) in spans.items():
            stored = iter_records(
                self.writer.engine,
                session=session,
                start=first.time - DUPLICATE_WINDOW,
                end=last.time + DUPLICATE_WINDOW,
            )
            keys.update(_key(record) for record in stored)
        return keys

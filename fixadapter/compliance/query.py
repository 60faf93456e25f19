"""Finding FIX messages for people: search filters, the database and log files as sources, and the whole life
of one order across cancel/replace chains.

Both sources answer the same `LogFilter`, with the same meaning (a ClOrdID filter matches ClOrdID 11 or
OrigClOrdID 41, as `iter_records` does), so a search gives the same answer from the table or from the files
it was captured from.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from fixadapter.compliance.logfile import LogFileReader, Problem
from fixadapter.compliance.records import FixRecord
from fixadapter.compliance.table import fix_messages, iter_records, store_error, stored_record

# FIX's OrderID for "no such order" (on a reject): never a link between orders.
NO_ORDER_IDS = frozenset({"NONE", "UNKNOWN", ""})


@dataclass(frozen=True)
class Entry:
    """A message with the id it is found again by: the table's row id, or `file:line` for a log file."""

    id: int | str
    record: FixRecord
    sort_key: tuple[Any, ...] = ()


@dataclass(frozen=True)
class LogFilter:
    """Every filter given must match; `start` inclusive, `end` exclusive (both timezone-aware)."""

    session: str | None = None
    msg_type: str | None = None
    cl_ord_id: str | None = None
    order_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def matches(self, record: FixRecord) -> bool:
        return (
            (self.session is None or record.session == self.session)
            and (self.msg_type is None or record.msg_type == self.msg_type)
            and (self.cl_ord_id is None or self.cl_ord_id in (record.cl_ord_id, record.orig_cl_ord_id))
            and (self.order_id is None or record.order_id == self.order_id)
            and (self.start is None or record.time >= self.start)
            and (self.end is None or record.time < self.end)
        )

    def keywords(self) -> dict[str, Any]:
        """The filters as iter_records keyword arguments."""
        return {
            "session": self.session,
            "msg_type": self.msg_type,
            "cl_ord_id": self.cl_ord_id,
            "order_id": self.order_id,
            "start": self.start,
            "end": self.end,
        }

    @property
    def by_order(self) -> bool:
        return self.cl_ord_id is not None or self.order_id is not None


class Source(Protocol):
    """Where messages are searched: `search` yields matches in time order."""

    def search(self, where: LogFilter) -> Iterator[Entry]: ...


class StoreSource:
    """The `fix_messages` table, through the capture's reader (iter_records)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def search(self, where: LogFilter) -> Iterator[Entry]:
        for stored in iter_records(self.engine, **where.keywords()):
            yield Entry(stored.id, stored, (stored.time, stored.id))

    def get(self, record_id: int) -> Entry | None:
        query = select(fix_messages).where(fix_messages.c.id == record_id)
        try:
            with self.engine.connect() as conn:
                row = conn.execute(query).first()
        except SQLAlchemyError as exc:
            raise store_error(exc) from exc
        if row is None:
            return None
        stored = stored_record(row)
        return Entry(stored.id, stored, (stored.time, stored.id))


@dataclass
class FileSource:
    """QuickFIX log files read straight, no database needed. Lines that cannot be read go to `on_problem`.

    Messages that carry an order id (ClOrdID, OrigClOrdID, OrderID: a small part of a log full of market
    data and heartbeats) are kept in memory after the first order search, so following an order's chain
    reads each file once."""

    paths: Sequence[Path]
    our_comp_id: str | None = None
    config_comp_id: str | None = None
    on_problem: Callable[[Problem], None] = lambda _problem: None
    _order_entries: list[Entry] | None = field(default=None, init=False)

    def reader(self, path: Path) -> LogFileReader:
        return LogFileReader(path, self.our_comp_id, config_comp_id=self.config_comp_id)

    def check(self) -> None:
        """Fail now (LogFileError) if a file is unreadable or its side cannot be told."""
        for path in self.paths:
            self.reader(path).check()

    def entries(self) -> Iterator[Entry]:
        """Every message of every file, the files merged by time (each file is in time order already: a
        logger appends), so a search of gigabytes streams instead of sorting in memory."""
        files = [self._file(index, path) for index, path in enumerate(self.paths)]
        yield from heapq.merge(*files, key=_order)

    def _file(self, index: int, path: Path) -> Iterator[Entry]:
        reader = self.reader(path)
        reported = 0
        for logged in reader:
            yield Entry(f"{path}:{logged.line}", logged.record, (logged.record.time, index, logged.line))
            reported = self._report(reader.problems, reported)
        self._report(reader.problems, reported)

    def _report(self, problems: list[Problem], reported: int) -> int:
        for problem in problems[reported:]:
            self.on_problem(problem)
        return len(problems)

    def search(self, where: LogFilter) -> Iterator[Entry]:
        if not where.by_order:
            yield from (entry for entry in self.entries() if where.matches(entry.record))
            return
        if self._order_entries is None:
            self._order_entries = [e for e in self.entries() if _has_order_id(e.record)]
        yield from (entry for entry in self._order_entries if where.matches(entry.record))

    def get(self, path: Path, line: int) -> Entry | None:
        for index, candidate in enumerate(self.paths):
            if candidate == path:
                reader = self.reader(path)
                for logged in reader:
                    if logged.line == line:
                        return Entry(f"{path}:{line}", logged.record, (logged.record.time, index, line))
                    if logged.line > line:
                        break
                for problem in reader.problems:
                    if problem.line == line:
                        self.on_problem(problem)
        return None


def _order(entry: Entry) -> tuple[Any, ...]:
    return entry.sort_key


def _has_order_id(record: FixRecord) -> bool:
    return bool(record.cl_ord_id or record.orig_cl_ord_id or record.order_id)


@dataclass(frozen=True)
class OrderLife:
    """Every message of one order in time order, and the ClOrdIDs of its chain in the order they appeared."""

    entries: list[Entry]
    cl_ord_ids: list[str]
    order_ids: list[str]


def order_life(source: Source, cl_ord_id: str) -> OrderLife:
    """All messages linked to `cl_ord_id`: through OrigClOrdID both ways (the original it replaced and every
    later replace or cancel) and through OrderID, until nothing new turns up."""
    found: dict[int | str, Entry] = {}
    pending: deque[tuple[str, str]] = deque([("cl_ord_id", cl_ord_id)])
    asked: set[tuple[str, str]] = set()
    while pending:
        key = pending.popleft()
        if key in asked:
            continue
        asked.add(key)
        for entry in source.search(_filter(*key)):
            if entry.id in found:
                continue
            found[entry.id] = entry
            record = entry.record
            pending.extend(("cl_ord_id", c) for c in (record.cl_ord_id, record.orig_cl_ord_id) if c)
            if record.order_id and record.order_id.upper() not in NO_ORDER_IDS:
                pending.append(("order_id", record.order_id))
    entries = sorted(found.values(), key=lambda e: e.sort_key)
    return OrderLife(entries, _chain(entries), _unique(e.record.order_id for e in entries))


def _filter(field: str, value: str) -> LogFilter:
    return LogFilter(cl_ord_id=value) if field == "cl_ord_id" else LogFilter(order_id=value)


def _chain(entries: Iterable[Entry]) -> list[str]:
    """ClOrdIDs in the order they were first used (the original first, then each replace and cancel)."""
    return _unique(c for e in entries for c in (e.record.orig_cl_ord_id, e.record.cl_ord_id))


def _unique(values: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v and v.upper() not in NO_ORDER_IDS))

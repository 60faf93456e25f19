"""Tamper evidence: each stored message's hash covers its content and the hash of the one before it.

One chain per (session, UTC day), in `id` order; the first row links to GENESIS. Editing a row breaks its
own hash; deleting one breaks the next row's link; moving one breaks the links around it. `verify` walks the
chains and names the first such record. What a chain cannot show by itself is its tail being cut off: `verify`
prints each chain's length and head hash so an auditor can keep them elsewhere and compare later.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from fixadapter.compliance.records import FixRecord
from fixadapter.compliance.table import StoredRecord, fix_messages, store_error, stored_record

GENESIS = "0" * 64

_m = fix_messages.c


def record_day(record: FixRecord) -> date:
    """The chain a record belongs to: the UTC date of its time."""
    return record.time.astimezone(UTC).date()


def canonical(prev_hash: str, record: FixRecord, day: date) -> bytes:
    """The bytes hashed: a JSON array in a fixed field order (unambiguous whatever the values contain)."""
    return json.dumps(
        [
            prev_hash,
            record.time.astimezone(UTC).isoformat(timespec="microseconds"),
            record.session,
            str(record.direction),
            record.msg_type,
            record.seq_num,
            record.cl_ord_id,
            record.orig_cl_ord_id,
            record.order_id,
            record.raw,
            day.isoformat(),
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


def record_hash(prev_hash: str, record: FixRecord, day: date | None = None) -> str:
    return hashlib.sha256(canonical(prev_hash, record, day or record_day(record))).hexdigest()


@dataclass(frozen=True)
class Problem:
    """The first record of a chain that does not check out, and what is wrong with it."""

    kind: str  # edited | deleted | reordered
    id: int
    session: str
    seq_num: int | None
    time: str
    detail: str

    def __str__(self) -> str:
        seq = "" if self.seq_num is None else f" seq {self.seq_num}"  # Open API frames have none
        return f"{self.kind.upper()}: record id {self.id} ({self.session}{seq} at {self.time}): {self.detail}"


@dataclass(frozen=True)
class ChainResult:
    session: str
    day: date
    records: int
    head: str
    problem: Problem | None = None


@dataclass(frozen=True)
class VerifyReport:
    chains: list[ChainResult] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return all(chain.problem is None for chain in self.chains)

    @property
    def first_problem(self) -> Problem | None:
        """The tampered record with the lowest id across every chain checked."""
        problems = [chain.problem for chain in self.chains if chain.problem is not None]
        return min(problems, key=lambda p: p.id) if problems else None


def _problem(kind: str, row: StoredRecord, detail: str) -> Problem:
    when = row.time.isoformat(timespec="microseconds")
    return Problem(kind, row.id, row.session, row.seq_num, when, detail)


def _broken_link(engine: Engine, row: StoredRecord, previous: StoredRecord | None) -> Problem:
    """The row does not link to the one stored before it: find whether what it links to moved or is gone."""
    query = (
        select(_m.id)
        .where(_m.session == row.session, _m.day == row.day.isoformat(), _m.hash == row.prev_hash)
        .limit(1)
    )
    with engine.connect() as conn:
        linked = conn.execute(query).scalar()
    before = f"record id {previous.id}" if previous else "the start of the chain"
    if linked is not None:
        return _problem(
            "reordered",
            row,
            f"it should follow record id {linked}, but is stored after {before}: "
            "records were swapped or moved",
        )
    if row.prev_hash == GENESIS:
        return _problem("reordered", row, f"it starts a chain, but is stored after {before}")
    return _problem(
        "deleted",
        row,
        f"the record it follows is missing: one or more records between {before} and id {row.id} "
        "were deleted (or the previous one was rewritten with a new hash)",
    )


def _check_chain(engine: Engine, session: str, day: str, fetch_rows: int) -> ChainResult:
    query = select(fix_messages).where(_m.session == session, _m.day == day).order_by(_m.id)
    expected, count, previous = GENESIS, 0, None
    unlinked: StoredRecord | None = None
    problem: Problem | None = None
    with engine.connect() as conn, conn.execution_options(yield_per=fetch_rows).execute(query) as result:
        for row in result:
            record = stored_record(row)
            if record.prev_hash != expected:
                unlinked = record
                break
            if record.hash != record_hash(record.prev_hash, record, record.day):
                problem = _problem("edited", record, "its content does not match its hash")
                break
            expected, count, previous = record.hash, count + 1, record
    if unlinked is not None:  # looked up once the chain's cursor is closed
        problem = _broken_link(engine, unlinked, previous)
    return ChainResult(session, date.fromisoformat(day), count, expected, problem)


def _chains(engine: Engine, session: str | None, day: date | None) -> Iterator[tuple[str, str]]:
    query = select(_m.session, _m.day).distinct().order_by(_m.session, _m.day)
    if session is not None:
        query = query.where(_m.session == session)
    if day is not None:
        query = query.where(_m.day == day.isoformat())
    with engine.connect() as conn:
        yield from ((row.session, row.day) for row in conn.execute(query).all())


def verify(
    engine: Engine, session: str | None = None, day: date | None = None, *, fetch_rows: int = 5000
) -> VerifyReport:
    """Check every chain (or those of `session` and/or `day`): each row hash and its link to the previous."""
    try:
        return VerifyReport(
            [_check_chain(engine, s, d, fetch_rows) for s, d in _chains(engine, session, day)]
        )
    except SQLAlchemyError as exc:
        raise store_error(exc) from exc

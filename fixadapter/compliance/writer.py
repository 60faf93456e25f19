"""ComplianceWriter: appends FixRecords to `fix_messages`, each hashed onto its (session, day) chain.

One transaction per call: it takes the chains' write lock (a transaction-scoped advisory lock on PostgreSQL,
the database write lock on SQLite), reads each chain's head, hashes the records in the order given and inserts
them. So the capture thread, a spill load and an import running at once never fork a chain, ids follow chain
order, and a restart simply continues from the last stored row of each chain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from itertools import islice
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, select, text
from sqlalchemy.exc import SQLAlchemyError

from fixadapter.compliance.chain import GENESIS, record_day, record_hash
from fixadapter.compliance.records import FixRecord
from fixadapter.compliance.table import create_tables, fix_messages, store_error

_m = fix_messages.c
ChainKey = tuple[str, date]

# Built once with their values as parameters (a statement built per call costs Core a new cache key on
# every write of the capture thread).
_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
# SQLite: a write statement that changes nothing takes the database write lock.
_WRITE_LOCK = fix_messages.update().where(text("1 = 0")).values(id=_m.id)
_HEAD = (
    select(_m.hash)
    .where(_m.session == bindparam("chain_session"), _m.day == bindparam("chain_day"))
    .order_by(_m.id.desc())
    .limit(1)
)


def _lock_key(key: ChainKey) -> int:
    digest = hashlib.sha256(f"fix_messages|{key[0]}|{key[1].isoformat()}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _require_aware(record: FixRecord) -> None:
    if record.time.tzinfo is None:
        raise ValueError(
            f"record time must be timezone-aware (UTC), got {record.time.isoformat()} "
            f"({record.session} {record.msg_type} seq {record.seq_num})"
        )


class ComplianceWriter:
    """Synchronous, chained inserts into `fix_messages`; thread-safe (each call is its own transaction)."""

    def __init__(self, engine: Engine, *, create: bool = True) -> None:
        self.engine = engine
        self._insert = insert(fix_messages)
        if create:
            create_tables(engine)

    def append_many(self, records: Iterable[FixRecord], *, chunk_rows: int = 2000) -> int:
        """Insert `records` in the order given, `chunk_rows` per transaction; returns how many were stored.

        Raises StoreError when the database fails (chunks committed before stay: they are complete, chained
        rows) and ValueError for a record with a naive time."""
        stored = 0
        iterator = iter(records)
        while chunk := list(islice(iterator, chunk_rows)):
            try:
                with self.engine.begin() as conn:
                    stored += self.insert_chained(conn, chunk)
            except SQLAlchemyError as exc:
                raise store_error(exc) from exc
        return stored

    def insert_chained(
        self,
        conn: Connection,
        records: Sequence[FixRecord],
        *,
        then: Callable[[Connection], Any] | None = None,
    ) -> int:
        """Chain and insert `records` inside the caller's transaction (a spill load also moves its ledger
        in it: rows and progress commit together); `then` runs last in the same transaction."""
        for record in records:
            _require_aware(record)
        keys = [(record.session, record_day(record)) for record in records]
        heads = self._lock_and_read_heads(conn, sorted(set(keys)))
        rows: list[dict[str, Any]] = []
        for record, key in zip(records, keys, strict=True):
            prev_hash = heads[key]
            digest = record_hash(prev_hash, record, key[1])
            heads[key] = digest
            rows.append(self._row(record, key[1], prev_hash, digest))
        if rows:
            conn.execute(self._insert, rows)
        if then is not None:
            then(conn)
        return len(rows)

    def _lock_and_read_heads(self, conn: Connection, keys: list[ChainKey]) -> dict[ChainKey, str]:
        if conn.dialect.name == "postgresql":
            for key in keys:  # sorted: two writers lock in the same order, so they never deadlock
                conn.execute(_ADVISORY_LOCK, {"key": _lock_key(key)})
        elif keys:
            # SQLite: a write statement first takes the database write lock, so the heads read below cannot
            # change before this transaction commits (a deferred read-then-write could fork a chain).
            conn.execute(_WRITE_LOCK)
        heads: dict[ChainKey, str] = {}
        for session, day in keys:
            head = conn.execute(_HEAD, {"chain_session": session, "chain_day": day.isoformat()})
            heads[(session, day)] = head.scalar() or GENESIS
        return heads

    @staticmethod
    def _row(record: FixRecord, day: date, prev_hash: str, digest: str) -> dict[str, Any]:
        return {
            "time": record.time,
            "session": record.session,
            "direction": str(record.direction),
            "msg_type": record.msg_type,
            "seq_num": record.seq_num,
            "cl_ord_id": record.cl_ord_id,
            "orig_cl_ord_id": record.orig_cl_ord_id,
            "order_id": record.order_id,
            "raw": record.raw,
            "day": day.isoformat(),
            "prev_hash": prev_hash,
            "hash": digest,
        }

"""Specification of `fix_messages`: chained appends (ComplianceWriter), the reader and `verify`.

Runs on SQLite and, when FIXADAPTER_TEST_POSTGRES_URL is set, on PostgreSQL in a schema of its own per test.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text, update

from fixadapter.compliance.chain import GENESIS, record_hash, verify
from fixadapter.compliance.records import Direction, FixRecord
from fixadapter.compliance.table import fix_messages, iter_records, purge_messages
from fixadapter.compliance.writer import ComplianceWriter
from fixadapter.errors import StoreError
from fixadapter.store.repository import make_engine

T0 = datetime(2025, 3, 4, 10, 0, 0, 123456, tzinfo=UTC)
SOH = "\x01"


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'compliance.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def postgresql_engine(pg_schema_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_schema_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    return request.getfixturevalue(f"{request.param}_engine")


def record(seq: int, session: str = "TRADE", at: datetime | None = None, **fields: object) -> FixRecord:
    values: dict[str, object] = {
        "time": at or T0 + timedelta(milliseconds=seq),
        "session": session,
        "direction": Direction.OUTBOUND if seq % 2 else Direction.INBOUND,
        "msg_type": "D",
        "seq_num": seq,
        "cl_ord_id": f"c{seq}",
        "raw": f"8=FIX.4.4{SOH}35=D{SOH}34={seq}{SOH}11=c{seq}{SOH}10=000{SOH}",
    }
    return FixRecord(**{**values, **fields})


def ids(engine: Engine, session: str = "TRADE") -> list[int]:
    with engine.connect() as conn:
        query = select(fix_messages.c.id).where(fix_messages.c.session == session).order_by(fix_messages.c.id)
        return list(conn.execute(query).scalars())


def test_append_many_chains_each_session_and_day_from_genesis(engine: Engine) -> None:
    writer = ComplianceWriter(engine)
    next_day = T0 + timedelta(days=1)
    records = [record(1), record(2, "QUOTE"), record(3), record(4, at=next_day)]

    assert writer.append_many(records) == 4

    stored = {r.seq_num: r for r in iter_records(engine)}
    assert stored[1].prev_hash == GENESIS and stored[2].prev_hash == GENESIS
    assert stored[3].prev_hash == stored[1].hash
    assert stored[4].prev_hash == GENESIS and stored[4].day == date(2025, 3, 5)
    assert stored[3].hash == record_hash(stored[1].hash, records[2])
    assert stored[1].record() == records[0]
    assert verify(engine).intact


def test_append_many_in_a_later_call_continues_the_chain_where_it_ended(engine: Engine) -> None:
    ComplianceWriter(engine).append_many([record(1), record(2)])

    ComplianceWriter(engine).append_many([record(3)], chunk_rows=1)  # as after a restart

    rows = [r for r in iter_records(engine) if r.session == "TRADE"]
    assert [r.seq_num for r in rows] == [1, 2, 3]
    assert rows[2].prev_hash == rows[1].hash
    report = verify(engine)
    assert report.intact and report.chains[0].records == 3 and report.chains[0].head == rows[2].hash


def test_append_many_from_concurrent_writers_keeps_one_chain_per_session_and_day(engine: Engine) -> None:
    writers = [ComplianceWriter(engine) for _ in range(4)]

    def write(number: int) -> None:
        for batch in range(5):
            seq = number * 100 + batch * 10
            writers[number].append_many([record(seq + i) for i in range(10)])

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    report = verify(engine)
    assert report.intact, report.first_problem
    assert report.chains[0].records == 200


def test_append_many_refuses_a_naive_time(engine: Engine) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ComplianceWriter(engine).append_many([record(1, at=datetime(2025, 3, 4, 10))])


def test_iter_records_filters_by_every_field_in_time_order(engine: Engine) -> None:
    ComplianceWriter(engine).append_many(
        [
            record(3, cl_ord_id="a", order_id="100", msg_type="8"),
            record(1, cl_ord_id="a"),
            record(2, "QUOTE", cl_ord_id=None, msg_type="W"),
            record(4, cl_ord_id="b", orig_cl_ord_id="a", msg_type="F"),
        ]
    )

    def seqs(**filters: object) -> list[int | None]:
        return [r.seq_num for r in iter_records(engine, **filters)]  # type: ignore[arg-type]

    assert seqs() == [1, 2, 3, 4]
    assert seqs(session="QUOTE") == [2]
    assert seqs(msg_type="8") == [3]
    assert seqs(cl_ord_id="a") == [1, 3, 4]
    assert seqs(order_id="100") == [3]
    assert seqs(start=T0 + timedelta(milliseconds=2), end=T0 + timedelta(milliseconds=4)) == [2, 3]
    with pytest.raises(ValueError, match="timezone-aware"):
        seqs(start=datetime(2025, 1, 1))


def chain_of_five(engine: Engine) -> list[int]:
    ComplianceWriter(engine).append_many([record(seq) for seq in range(1, 6)])
    assert verify(engine).intact
    return ids(engine)


def test_verify_names_an_edited_record(engine: Engine) -> None:
    row_ids = chain_of_five(engine)
    with engine.begin() as conn:
        conn.execute(
            update(fix_messages).where(fix_messages.c.id == row_ids[2]).values(raw="8=FIX.4.4\x0135=D\x01")
        )

    problem = verify(engine).first_problem

    assert problem is not None and problem.kind == "edited" and problem.id == row_ids[2]
    assert problem.seq_num == 3 and problem.session == "TRADE"


def test_verify_names_where_a_record_was_deleted(engine: Engine) -> None:
    row_ids = chain_of_five(engine)
    with engine.begin() as conn:
        conn.execute(fix_messages.delete().where(fix_messages.c.id == row_ids[1]))

    problem = verify(engine).first_problem

    assert problem is not None and problem.kind == "deleted" and problem.id == row_ids[2]
    assert f"between record id {row_ids[0]} and id {row_ids[2]}" in problem.detail


def test_verify_names_swapped_records(engine: Engine) -> None:
    row_ids = chain_of_five(engine)
    columns = [c.name for c in fix_messages.columns if c.name != "id"]
    with engine.begin() as conn:
        first, second = (
            conn.execute(select(fix_messages).where(fix_messages.c.id == i)).one()._mapping
            for i in row_ids[1:3]
        )
        for target, source in ((row_ids[1], second), (row_ids[2], first)):
            values = {name: source[name] for name in columns}
            conn.execute(update(fix_messages).where(fix_messages.c.id == target).values(**values))

    problem = verify(engine).first_problem

    assert problem is not None and problem.kind == "reordered" and problem.id == row_ids[1]
    assert f"follow record id {row_ids[2]}" in problem.detail


def test_verify_of_one_session_and_day_checks_only_that_chain(engine: Engine) -> None:
    ComplianceWriter(engine).append_many([record(1), record(2, "QUOTE")])
    with engine.begin() as conn:
        conn.execute(update(fix_messages).where(fix_messages.c.session == "QUOTE").values(raw="x"))

    assert verify(engine, session="TRADE").intact
    assert not verify(engine, session="QUOTE", day=date(2025, 3, 4)).intact
    assert verify(engine, day=date(2025, 3, 5)).chains == []


def test_verify_detects_a_hash_rewritten_to_match_an_edit(engine: Engine) -> None:
    """Recomputing an edited row's own hash still breaks the next row's link."""
    row_ids = chain_of_five(engine)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE fix_messages SET hash = :h WHERE id = :i"), {"h": "f" * 64, "i": row_ids[3]}
        )

    problem = verify(engine).first_problem

    assert problem is not None and problem.id == row_ids[3] and problem.kind == "edited"


def test_iter_records_stopped_early_releases_its_cursor(engine: Engine) -> None:
    ComplianceWriter(engine).append_many([record(seq) for seq in range(1, 6)])
    records = iter_records(engine, fetch_rows=2)

    assert next(records).seq_num == 1
    records.close()  # a reader that has seen enough (`log search | head`)

    assert len(list(iter_records(engine))) == 5


def test_purge_deletes_whole_days_before_the_cutoff_and_the_rest_still_verifies(engine: Engine) -> None:
    ComplianceWriter(engine).append_many([record(1), record(2, at=T0 + timedelta(days=1))])

    assert purge_messages(engine, date(2025, 3, 5), retention_days=10, today=date(2025, 3, 15)) == 1

    assert [r.seq_num for r in iter_records(engine)] == [2]
    assert verify(engine).intact


def test_purge_refuses_a_cutoff_inside_the_retention_period(engine: Engine) -> None:
    ComplianceWriter(engine).append_many([record(1)])

    with pytest.raises(StoreError, match="retention period of 10 days keeps everything from 2025-03-05"):
        purge_messages(engine, date(2025, 3, 6), retention_days=10, today=date(2025, 3, 15))

    assert len(list(iter_records(engine))) == 1

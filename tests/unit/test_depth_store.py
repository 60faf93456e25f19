"""Specification of depth storage (`market_depth`): DepthRecorder writes, DepthReader reads, purge retains.

Runs on SQLite and, when FIXADAPTER_TEST_POSTGRES_URL is set, on PostgreSQL in a schema of its own per test.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from fixadapter.config import DepthStorageConfig
from fixadapter.metrics import Metrics
from fixadapter.model.market import Book, DepthSnapshot, PriceLevel
from fixadapter.store.depth import DepthReader, DepthRecorder, depth_row, purge_depth
from fixadapter.store.repository import OrderStore
from tests.unit.conftest import T0

D = Decimal
WRITER = "fixadapter-depth-writer"


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    store = OrderStore(f"sqlite:///{tmp_path / 'depth.db'}")
    store.create_schema()
    yield store.engine
    store.close()


@pytest.fixture
def postgresql_engine(pg_schema_url: str) -> Iterator[Engine]:
    store = OrderStore(pg_schema_url)
    store.create_schema()
    yield store.engine
    store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    return request.getfixturevalue(f"{request.param}_engine")


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def recorders(engine: Engine, metrics: Metrics) -> Iterator[Callable[..., DepthRecorder]]:
    """DepthRecorder factory: every config value the test does not name is one that stays out of its way."""
    made: list[DepthRecorder] = []

    def make(**changes: Any) -> DepthRecorder:
        options = {k: changes.pop(k) for k in ("sample_clock", "now") if k in changes}
        values: dict[str, Any] = {
            "sample_interval_ms": 0,
            "flush_interval_ms": 10_000,
            "batch_size": 1000,
            "buffer_size": 10_000,
            "levels": 10,
        }
        config = DepthStorageConfig(**{**values, **changes})
        recorder = DepthRecorder(
            engine, config, metrics, retry_initial_seconds=0.01, retry_max_seconds=0.05, **options
        )
        made.append(recorder)
        return recorder

    yield make
    for recorder in made:
        recorder.close(timeout=1.0)


@dataclass
class Insert:
    thread: str
    executemany: bool
    rows: int


@pytest.fixture
def inserts(engine: Engine) -> Iterator[list[Insert]]:
    """Every INSERT INTO market_depth sent to the database: which thread, how many rows."""
    seen: list[Insert] = []

    def spy(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO MARKET_DEPTH"):
            rows = len(parameters) if many else 1
            seen.append(Insert(threading.current_thread().name, many, rows))

    event.listen(engine, "before_cursor_execute", spy)
    yield seen
    event.remove(engine, "before_cursor_execute", spy)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def levels(best: str, step: str, count: int, size: str = "1000000") -> tuple[PriceLevel, ...]:
    return tuple(PriceLevel(D(best) + D(step) * n, D(size) + n) for n in range(count))


def make_book(symbol_id: int = 1, at: datetime = T0, **changes: Any) -> Book:
    """EURUSD (id 1) 1.08355 / 1.08357 with three levels a side, or GBPUSD when symbol_id is 2."""
    values: dict[str, Any] = {
        "symbol_id": symbol_id,
        "symbol": {1: "EURUSD", 2: "GBPUSD"}.get(symbol_id, str(symbol_id)),
        "time": at,
        "bids": levels("1.08355", "-0.00001", 3),
        "asks": levels("1.08357", "0.00001", 3),
        "mid": D("1.08356"),
        "spread_pips": D("0.2"),
        "imbalance": 0.125,
        "microprice": D("1.083560000000"),
    }
    return Book(**{**values, **changes})


def snapshot_of(book: Book, depth: int = 10) -> DepthSnapshot:
    return DepthSnapshot(
        symbol_id=book.symbol_id,
        symbol=book.symbol,
        time=book.time,
        bids=book.bids[:depth],
        asks=book.asks[:depth],
        mid=book.mid,
        spread_pips=book.spread_pips,
        imbalance=book.imbalance,
        microprice=book.microprice,
    )


def stored_times(engine: Engine, symbol_id: int | None = None) -> list[datetime]:
    return [snapshot.time for snapshot in DepthReader(engine).replay(symbol_id)]


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.value(name, labels) or 0.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# -- rows -------------------------------------------------------------------------------------------


def test_depth_row_keeps_at_most_levels_per_side_best_first_as_exact_decimal_strings() -> None:
    book = make_book(bids=levels("1.08355", "-0.00001", 12), asks=(PriceLevel(D("1.08357"), D("1E+6")),))

    row = depth_row(book, levels=10)

    assert row["bids"].startswith('[["1.08355","1000000"],["1.08354","1000001"],')
    assert row["bids"].count("[") == 11  # the outer list and ten levels
    assert row["asks"] == '[["1.08357","1000000"]]'
    assert (row["symbol_id"], row["symbol"], row["time"], row["mid"]) == (1, "EURUSD", T0, D("1.08356"))


# -- writing ----------------------------------------------------------------------------------------


def test_snapshots_are_inserted_only_by_the_writer_thread_one_executemany_per_batch(
    recorders: Callable[..., DepthRecorder], inserts: list[Insert], engine: Engine
) -> None:
    recorder = recorders(batch_size=3)
    recorder.start()

    for n in range(7):
        recorder.offer(make_book(at=at(n)))
    wait_until(lambda: sum(i.rows for i in inserts) == 6)
    recorder.close()

    assert [i.rows for i in inserts] == [3, 3, 1]  # two full batches, the rest at close()
    assert {i.thread for i in inserts} == {WRITER}
    assert all(i.executemany for i in inserts if i.rows > 1)
    assert stored_times(engine) == [at(n) for n in range(7)]


def test_buffered_rows_are_written_every_flush_interval_without_waiting_for_a_full_batch(
    recorders: Callable[..., DepthRecorder], engine: Engine, metrics: Metrics
) -> None:
    recorder = recorders(flush_interval_ms=20, batch_size=1000)
    recorder.start()

    recorder.offer(make_book(at=at(0)))
    recorder.offer(make_book(at=at(1)))

    wait_until(lambda: len(stored_times(engine)) == 2)
    assert sample(metrics, "fixadapter_database_rows_written_total", table="market_depth") == 2
    assert sample(metrics, "fixadapter_database_write_seconds_count", table="market_depth") >= 1
    assert sample(metrics, "fixadapter_depth_buffered_rows") == 0


def test_sampling_keeps_the_first_book_of_each_interval_per_symbol(
    recorders: Callable[..., DepthRecorder], engine: Engine
) -> None:
    clock = FakeClock()
    recorder = recorders(sample_interval_ms=100, sample_clock=clock)
    arrivals = [(0.0, 1), (0.05, 1), (0.06, 2), (0.1, 1), (0.15, 1), (0.15, 2), (0.2, 1)]

    for seconds, symbol_id in arrivals:
        clock.now = seconds
        recorder.offer(make_book(symbol_id, at=at(seconds)))
    recorder.close()

    assert stored_times(engine, 1) == [at(0.0), at(0.1), at(0.2)]
    assert stored_times(engine, 2) == [at(0.06)]


def test_sample_interval_zero_stores_every_update(
    recorders: Callable[..., DepthRecorder], engine: Engine
) -> None:
    recorder = recorders(sample_interval_ms=0)

    for _ in range(3):
        recorder.offer(make_book(at=T0))
    recorder.close()

    assert stored_times(engine) == [T0, T0, T0]


def test_a_full_buffer_counts_every_snapshot_it_drops_and_warns_what_to_do(
    recorders: Callable[..., DepthRecorder],
    engine: Engine,
    metrics: Metrics,
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = recorders(buffer_size=2)  # not started: nothing drains the buffer

    with caplog.at_level(logging.WARNING, "fixadapter.store.depth"):
        for n in range(5):
            recorder.offer(make_book(at=at(n)))

    assert recorder.buffered == 2
    assert sample(metrics, "fixadapter_depth_snapshots_dropped_total", reason="buffer_full") == 3
    (warning,) = caplog.messages  # rate-limited: one warning, not one per snapshot
    assert "buffer of 2 rows is full" in warning
    assert "buffer_size" in warning
    assert "sample_interval_ms" in warning
    recorder.close()
    assert stored_times(engine) == [at(0), at(1)]


def test_a_database_outage_loses_nothing_and_writes_each_row_once_after_recovery(
    recorders: Callable[..., DepthRecorder],
    engine: Engine,
    metrics: Metrics,
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = recorders(flush_interval_ms=10)
    recorder.start()
    recorder.offer(make_book(at=at(0)))
    wait_until(lambda: len(stored_times(engine)) == 1)

    with caplog.at_level(logging.INFO, "fixadapter.store.depth"):
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE market_depth RENAME TO market_depth_away"))
        for n in range(1, 4):
            recorder.offer(make_book(at=at(n)))
        wait_until(
            lambda: sample(metrics, "fixadapter_database_write_errors_total", table="market_depth") >= 3
        )
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE market_depth_away RENAME TO market_depth"))
        recorder.offer(make_book(at=at(4)))
        recorder.close()

    assert stored_times(engine) == [at(n) for n in range(5)]
    assert sample(metrics, "fixadapter_depth_snapshots_dropped_total", reason="shutdown") == 0
    failures = [m for m in caplog.messages if "writing market_depth failed" in m]
    assert len(failures) == 1  # once per outage, not once per retry
    assert "Check the database" in failures[0]
    assert len([m for m in caplog.messages if "writes recovered" in m]) == 1


def test_a_row_the_database_refuses_is_counted_and_the_others_are_still_written(
    recorders: Callable[..., DepthRecorder], engine: Engine, metrics: Metrics
) -> None:
    def refuse_bad(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        if statement.lstrip().upper().startswith("INSERT") and "'BAD'" in repr(parameters):
            raise engine.dialect.loaded_dbapi.DataError("value too long for type character varying(32)")

    event.listen(engine, "before_cursor_execute", refuse_bad)
    recorder = recorders()
    recorder.offer(make_book(at=at(0)))
    recorder.offer(make_book(at=at(1), symbol="BAD"))
    recorder.offer(make_book(at=at(2)))
    recorder.close()
    event.remove(engine, "before_cursor_execute", refuse_bad)

    assert stored_times(engine) == [at(0), at(2)]
    assert sample(metrics, "fixadapter_depth_snapshots_dropped_total", reason="rejected") == 1


def test_a_refused_row_is_isolated_by_halving_the_batch_and_set_aside_with_its_reason(
    recorders: Callable[..., DepthRecorder],
    engine: Engine,
    metrics: Metrics,
    inserts: list[Insert],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The writer's one rule (store/writer.py), as for compliance: not one transaction per row."""

    def refuse_bad(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        if statement.lstrip().upper().startswith("INSERT") and "'BAD'" in repr(parameters):
            raise engine.dialect.loaded_dbapi.DataError("value too long for type character varying(32)")

    event.listen(engine, "before_cursor_execute", refuse_bad)
    recorder = recorders(batch_size=64)
    for n in range(64):
        recorder.offer(make_book(at=at(n), symbol="BAD" if n == 37 else "EURUSD"))
    with caplog.at_level(logging.ERROR, "fixadapter.store.depth"):
        recorder.close()
    event.remove(engine, "before_cursor_execute", refuse_bad)

    assert stored_times(engine) == [at(n) for n in range(64) if n != 37]
    assert sample(metrics, "fixadapter_depth_snapshots_dropped_total", reason="rejected") == 1
    assert len(inserts) == 1 + 2 * 6  # the batch, then two halves per halving down to the row (not 1 + 64)
    (line,) = caplog.messages
    assert "refused by the database and set aside" in line
    assert f"BAD at {at(37).isoformat()}" in line and "value too long" in line


def test_close_writes_everything_still_buffered(
    recorders: Callable[..., DepthRecorder], engine: Engine, inserts: list[Insert]
) -> None:
    recorder = recorders(batch_size=1000, flush_interval_ms=10_000)
    recorder.start()
    for n in range(5):
        recorder.offer(make_book(at=at(n)))

    recorder.close()

    assert recorder.buffered == 0
    assert stored_times(engine) == [at(n) for n in range(5)]
    assert [(i.thread, i.rows) for i in inserts] == [(WRITER, 5)]


def test_close_while_the_database_is_down_counts_and_logs_what_it_could_not_write(
    recorders: Callable[..., DepthRecorder],
    engine: Engine,
    metrics: Metrics,
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = recorders()
    recorder.start()
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE market_depth RENAME TO market_depth_away"))
    for n in range(3):
        recorder.offer(make_book(at=at(n)))

    with caplog.at_level(logging.ERROR, "fixadapter.store.depth"):
        recorder.close(timeout=0.1)

    assert sample(metrics, "fixadapter_depth_snapshots_dropped_total", reason="shutdown") == 3
    assert any("3 snapshots lost" in m for m in caplog.messages)


def test_offer_never_raises_and_counts_what_it_cannot_store(
    recorders: Callable[..., DepthRecorder], metrics: Metrics
) -> None:
    recorder = recorders()

    recorder.offer(make_book(at=datetime(2024, 5, 6, 9, 30)))  # naive: no instant to store it at
    recorder.close()
    recorder.offer(make_book(at=at(1)))

    assert sample(metrics, "fixadapter_depth_snapshots_dropped_total", reason="error") == 1
    assert sample(metrics, "fixadapter_depth_snapshots_dropped_total", reason="closed") == 1


def test_a_disabled_recorder_stores_nothing(recorders: Callable[..., DepthRecorder], engine: Engine) -> None:
    recorder = recorders(enabled=False)
    recorder.start()

    recorder.offer(make_book())
    recorder.close()

    assert stored_times(engine) == []


# -- reading ----------------------------------------------------------------------------------------


def test_replay_returns_every_symbol_in_time_order_then_in_the_order_written(
    recorders: Callable[..., DepthRecorder], engine: Engine
) -> None:
    recorder = recorders()
    written = [
        make_book(2, at=at(3)),
        make_book(1, at=at(1)),
        make_book(1, at=at(2), mid=D("1.1")),
        make_book(2, at=at(2)),
        make_book(1, at=at(2), mid=D("1.2")),
    ]
    for book in written:
        recorder.offer(book)
    recorder.close()

    replayed = [(s.symbol_id, s.time, s.mid) for s in DepthReader(engine).replay()]

    assert replayed == [
        (1, at(1), D("1.08356")),
        (1, at(2), D("1.1")),
        (2, at(2), D("1.08356")),
        (1, at(2), D("1.2")),
        (2, at(3), D("1.08356")),
    ]


def test_replay_filters_by_symbol_and_a_half_open_time_range(
    recorders: Callable[..., DepthRecorder], engine: Engine
) -> None:
    recorder = recorders()
    for n in range(5):
        recorder.offer(make_book(1, at=at(n)))
        recorder.offer(make_book(2, at=at(n)))
    recorder.close()
    reader = DepthReader(engine)

    window = [(s.symbol_id, s.time) for s in reader.replay(2, start=at(1), end=at(3))]

    assert window == [(2, at(1)), (2, at(2))]
    assert reader.count(2, start=at(1), end=at(3)) == 2
    assert reader.count() == 10
    assert [s.time for s in reader.replay(1, start=at(3))] == [at(3), at(4)]
    assert [s.time for s in reader.replay(end=at(1))] == [at(0), at(0)]
    assert [s.time for s in reader.replay(1, limit=2)] == [at(0), at(1)]


def test_a_replayed_snapshot_is_the_stored_book_exactly(
    recorders: Callable[..., DepthRecorder], engine: Engine
) -> None:
    book = make_book(
        at=datetime(2024, 5, 6, 9, 30, 0, 123456, tzinfo=UTC),
        bids=levels("1.08355", "-0.00001", 12),
        microprice=D("1.083561234567890123456789"),
        spread_pips=None,
        imbalance=-0.3333333333333333,
    )
    recorder = recorders(levels=10)
    recorder.offer(book)
    recorder.close()

    (replayed,) = DepthReader(engine).replay()

    assert replayed == snapshot_of(book, depth=10)
    assert replayed.time.utcoffset() == timedelta(0)


def test_latest_returns_the_newest_snapshot_of_that_symbol(
    recorders: Callable[..., DepthRecorder], engine: Engine
) -> None:
    recorder = recorders()
    for book in (
        make_book(1, at=at(1)),
        make_book(1, at=at(5)),
        make_book(1, at=at(3)),
        make_book(2, at=at(9)),
    ):
        recorder.offer(book)
    recorder.close()
    reader = DepthReader(engine)

    latest = reader.latest(1)

    assert latest == snapshot_of(make_book(1, at=at(5)))
    assert reader.latest(3) is None


def test_latest_is_one_step_on_the_symbol_time_index_not_a_scan_or_a_sort(
    recorders: Callable[..., DepthRecorder], engine: Engine
) -> None:
    recorder = recorders()
    for n in range(20):
        recorder.offer(make_book(n % 2 + 1, at=at(n)))
    recorder.close()
    captured: list[tuple[str, Any]] = []

    def capture(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    DepthReader(engine).latest(1)
    event.remove(engine, "before_cursor_execute", capture)
    ((statement, parameters),) = captured

    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            plan = " ".join(
                str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            )
        else:
            conn.exec_driver_sql("SET enable_seqscan = off")  # a 20-row table would rather be scanned
            plan = " ".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {statement}", parameters))

    assert "ix_market_depth_symbol_id_time" in plan
    assert "TEMP B-TREE" not in plan.upper()
    assert "Sort" not in plan


def test_reading_with_a_naive_time_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        list(DepthReader(engine).replay(start=datetime(2024, 5, 6)))


# -- retention --------------------------------------------------------------------------------------


def test_purge_deletes_only_rows_older_than_the_cutoff_in_chunks(
    recorders: Callable[..., DepthRecorder], engine: Engine
) -> None:
    recorder = recorders()
    offsets = [-2 * 86400, -86400, -0.000001, 0, 86400]
    for seconds in offsets:
        recorder.offer(make_book(1, at=at(seconds)))
        recorder.offer(make_book(2, at=at(seconds)))
    recorder.close()
    deletes: list[str] = []

    def spy(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            deletes.append(statement)

    event.listen(engine, "before_cursor_execute", spy)
    deleted = purge_depth(engine, before=T0, chunk_rows=2)
    event.remove(engine, "before_cursor_execute", spy)

    assert deleted == 6
    assert len(deletes) == 4  # 2 + 2 + 2 + the empty chunk that proves nothing older is left
    assert stored_times(engine) == [T0, T0, at(86400), at(86400)]


def test_the_writer_purges_rows_past_the_retention_when_it_starts(
    recorders: Callable[..., DepthRecorder], engine: Engine, metrics: Metrics
) -> None:
    loader = recorders()
    for seconds in (-60, 60):
        loader.offer(make_book(at=at(seconds)))
    loader.close()
    recorder = recorders(retention_days=30, now=lambda: T0 + timedelta(days=30))

    recorder.start()

    # The count follows the delete's commit on the writer thread: wait for both, not for the rows alone.
    wait_until(lambda: sample(metrics, "fixadapter_depth_rows_purged_total") == 1)
    assert stored_times(engine) == [at(60)]
    assert sample(metrics, "fixadapter_depth_rows_purged_total") == 1


def test_recorder_purge_counts_what_it_deleted(
    recorders: Callable[..., DepthRecorder], engine: Engine, metrics: Metrics
) -> None:
    recorder = recorders()
    for seconds in (-1, 0, 1):
        recorder.offer(make_book(at=at(seconds)))
    recorder.close()

    assert recorder.purge(T0) == 1
    assert sample(metrics, "fixadapter_depth_rows_purged_total") == 1
    assert stored_times(engine) == [at(0), at(1)]

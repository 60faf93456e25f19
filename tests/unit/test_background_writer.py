"""Specification of BackgroundWriter (store/writer.py), the one machine under compliance capture and depth
storage: the bounded buffer, batches, an outage (kept and retried, or spilled), the one rule for a row the
database refuses, and stop. The users' own tests (test_depth_store.py, test_compliance_capture.py) show the
same rules through DepthRecorder and MessageRecorder against real databases."""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence

import pytest
from sqlalchemy.exc import DataError, OperationalError

from fixadapter.store.writer import (
    BackgroundWriter,
    Interrupted,
    WriterHooks,
    WriterSettings,
    is_bad_row,
    store_isolating,
)

log = logging.getLogger("tests.background_writer")


class Table:
    """A destination whose database can be taken down, or go down after a number of transactions, and that
    refuses chosen rows as a database refuses a value it cannot store (DataError)."""

    def __init__(self, refuse: Sequence[int] = (), down_after: int | None = None) -> None:
        self.rows: list[int] = []
        self.kept: list[tuple[int, str]] = []
        self.transactions = 0
        self.down = False
        self.refuse = set(refuse)
        self.down_after = down_after
        self.stopped = False

    def prepare(self, items: list[int]) -> list[int]:
        return items

    def write(self, rows: Sequence[int]) -> None:
        self.transactions += 1
        if self.down or (self.down_after is not None and self.transactions > self.down_after):
            raise OperationalError("INSERT INTO t", {}, ConnectionRefusedError("connection refused"))
        if self.refuse.intersection(rows):
            raise DataError("INSERT INTO t", {}, ValueError("value too long for type character varying(8)"))
        self.rows.extend(rows)

    def set_aside(self, row: int, reason: str) -> str:
        self.kept.append((row, reason))
        return "kept by the test"

    def describe(self, row: int) -> str:
        return f"row {row}"

    def stop(self) -> None:
        self.stopped = True


class ListSpill:
    """A spill in memory: rows wait in a list and load into the table in order."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.rows: list[int] = []

    @property
    def pending(self) -> bool:
        return bool(self.rows)

    @property
    def where(self) -> str:
        return "the test's list"

    def append(self, rows: Sequence[int]) -> None:
        self.rows.extend(rows)

    def load(self, rows: int, set_aside: Callable[[str, str], None]) -> int:
        chunk = self.rows[:rows]
        self.table.write(chunk)
        del self.rows[: len(chunk)]
        return len(chunk)


class Counted:
    """WriterHooks that count what they are told."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def hooks(self) -> WriterHooks:
        def add(name: str) -> Callable[..., None]:
            def hook(*args: object) -> None:
                amount = next((a for a in args if isinstance(a, int)), 1)
                key = f"{name}:{args[0]}" if args and isinstance(args[0], str) else name
                self.counts[key] += amount

            return hook

        return WriterHooks(
            written=add("written"),
            failed=add("failed"),
            set_aside=add("set_aside"),
            lost=add("lost"),
            spilled=add("spilled"),
            spill_loaded=add("spill_loaded"),
            error=add("error"),
        )


@pytest.fixture
def counted() -> Counted:
    return Counted()


@pytest.fixture
def writers(counted: Counted) -> Iterator[Callable[..., BackgroundWriter[int, int]]]:
    made: list[BackgroundWriter[int, int]] = []

    def make(
        table: Table, spill: ListSpill | None = None, **changes: float | int
    ) -> BackgroundWriter[int, int]:
        values: dict[str, float | int] = {
            "buffer_size": 1000,
            "batch_size": 100,
            "flush_interval": 10.0,
            "retry_initial": 0.01,
            "retry_max": 0.02,
            **changes,
        }
        settings = WriterSettings(
            label="test writer",
            table="t",
            noun="rows",
            thread_name="test-writer",
            database="sqlite:///test",
            buffer_size=int(values["buffer_size"]),
            batch_size=int(values["batch_size"]),
            flush_interval=float(values["flush_interval"]),
            retry_initial=float(values["retry_initial"]),
            retry_max=float(values["retry_max"]),
            slow_after=None if spill is None else 10.0,
        )
        writer: BackgroundWriter[int, int] = BackgroundWriter(
            settings, table, log, hooks=counted.hooks(), spill=spill
        )
        made.append(writer)
        return writer

    yield make
    for writer in made:
        writer.close(timeout=1.0)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


# -- the one rule for a refused row -------------------------------------------------------------------


def test_a_refused_row_is_a_value_the_database_will_never_take_and_an_outage_is_not() -> None:
    assert is_bad_row(DataError("INSERT", {}, ValueError("too long")))
    assert is_bad_row(ValueError("record time must be timezone-aware"))
    assert not is_bad_row(OperationalError("INSERT", {}, ConnectionResetError("reset")))
    assert not is_bad_row(OSError("disk full"))


def test_a_batch_with_one_refused_row_stores_every_other_row_in_order_and_sets_that_one_aside(
    writers: Callable[..., BackgroundWriter[int, int]], counted: Counted, caplog: pytest.LogCaptureFixture
) -> None:
    table = Table(refuse=[4])
    writer = writers(table)

    for row in range(10):
        assert writer.offer(row)
    with caplog.at_level(logging.ERROR, log.name):
        assert writer.flush()

    assert table.rows == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    ((row, reason),) = table.kept
    assert row == 4 and reason.startswith("the database refused it: ") and "value too long" in reason
    assert counted.counts["set_aside"] == 1 and counted.counts["written"] == 9
    (line,) = caplog.messages
    assert "refused by the database and set aside (kept by the test)" in line and "row 4" in line


def test_isolating_costs_one_transaction_for_a_clean_batch_and_two_per_halving_for_a_refused_row() -> None:
    clean, one_bad = Table(), Table(refuse=[37])
    kept: list[int] = []

    assert store_isolating(list(range(64)), clean.write, lambda row, _exc: kept.append(row)) == 64
    assert store_isolating(list(range(64)), one_bad.write, lambda row, _exc: kept.append(row)) == 63

    assert clean.transactions == 1
    assert one_bad.transactions == 1 + 2 * int(math.log2(64))  # not one per row (65)
    assert one_bad.rows == [n for n in range(64) if n != 37] and kept == [37]


def test_isolating_stops_at_an_outage_and_says_how_many_rows_from_the_front_are_settled() -> None:
    # transactions: [0..7] refused, [0..3] refused, [0, 1] refused, [0] stored, [1] refused (set aside),
    # then [2, 3]: the database is down
    table, kept = Table(refuse=[1], down_after=5), []

    with pytest.raises(Interrupted) as raised:
        store_isolating(list(range(8)), table.write, lambda row, _exc: kept.append(row))

    assert raised.value.settled == 2
    assert isinstance(raised.value.cause, OperationalError)
    assert table.rows == [0] and kept == [1]


# -- the buffer and batches -----------------------------------------------------------------------------


def test_a_full_buffer_refuses_an_offer_at_once_and_keeps_what_it_holds(
    writers: Callable[..., BackgroundWriter[int, int]],
) -> None:
    table = Table()
    writer = writers(table, buffer_size=2)  # not started: nothing drains the buffer

    accepted = [writer.offer(row) for row in range(4)]

    assert accepted == [True, True, False, False]
    assert writer.buffered == 2
    writer.close()
    assert table.rows == [0, 1]
    assert not writer.offer(9)  # closed


def test_a_full_batch_is_written_without_waiting_for_the_flush_interval(
    writers: Callable[..., BackgroundWriter[int, int]],
) -> None:
    table = Table()
    writer = writers(table, batch_size=3, flush_interval=60.0)
    writer.start()

    for row in range(7):
        writer.offer(row)
    wait_until(lambda: len(table.rows) == 6 and writer.buffered == 1)  # the seventh waits

    assert table.rows == list(range(6))
    writer.close()
    assert table.rows == list(range(7))


# -- an outage -------------------------------------------------------------------------------------------


def test_an_outage_keeps_the_rows_retries_them_and_never_holds_up_the_producer(
    writers: Callable[..., BackgroundWriter[int, int]], counted: Counted, caplog: pytest.LogCaptureFixture
) -> None:
    table = Table()
    writer = writers(table, flush_interval=0.01)
    writer.start()
    table.down = True

    with caplog.at_level(logging.WARNING, log.name):
        assert all(writer.offer(row) for row in range(5))  # accepted while the database is down
        wait_until(lambda: counted.counts["failed"] >= 3)
        assert writer.buffered == 5 and writer.outage is not None
        table.down = False
        writer.offer(5)
        writer.close()

    assert table.rows == list(range(6))
    assert counted.counts["lost:shutdown"] == 0 and writer.buffered == 0
    assert len([m for m in caplog.messages if "writing t failed" in m]) == 1  # once per outage
    assert len([m for m in caplog.messages if "writes recovered" in m]) == 1


def test_with_a_spill_an_outage_sends_rows_there_and_every_later_row_follows_until_it_is_loaded(
    writers: Callable[..., BackgroundWriter[int, int]], counted: Counted
) -> None:
    table = Table()
    spill = ListSpill(table)
    writer = writers(table, spill)
    table.down = True

    for row in range(3):
        writer.offer(row)
    assert writer.flush()
    assert spill.rows == [0, 1, 2] and table.rows == []  # settled: kept on the spill, nothing lost
    table.down = False
    writer.offer(3)
    deadline = time.monotonic() + 5
    while spill.pending and time.monotonic() < deadline:
        writer.flush()

    assert table.rows == [0, 1, 2, 3]  # arrival order: the new row queued behind the spilled ones
    assert counted.counts["spilled"] >= 3 and counted.counts["spill_loaded"] == 4


def test_an_outage_in_the_middle_of_isolating_a_refused_row_spills_the_rest_and_loses_nothing(
    writers: Callable[..., BackgroundWriter[int, int]],
) -> None:
    table = Table(refuse=[1], down_after=5)  # down from the sixth transaction: [2, 3] (see above)
    spill = ListSpill(table)
    writer = writers(table, spill)

    for row in range(8):
        writer.offer(row)
    assert writer.flush()
    assert table.rows == [0] and spill.rows == [2, 3, 4, 5, 6, 7]
    table.down_after = None
    deadline = time.monotonic() + 5
    while spill.pending and time.monotonic() < deadline:
        writer.flush()

    assert table.rows == [0, 2, 3, 4, 5, 6, 7] and [row for row, _ in table.kept] == [1]


# -- stop ------------------------------------------------------------------------------------------------


def test_close_writes_everything_still_buffered_then_stops_the_destination(
    writers: Callable[..., BackgroundWriter[int, int]],
) -> None:
    table = Table()
    writer = writers(table, flush_interval=60.0)
    writer.start()
    for row in range(5):
        writer.offer(row)

    writer.close()

    assert table.rows == list(range(5)) and table.transactions == 1
    assert writer.buffered == 0 and table.stopped


def test_close_while_the_database_is_down_counts_and_logs_what_it_could_not_write(
    writers: Callable[..., BackgroundWriter[int, int]], counted: Counted, caplog: pytest.LogCaptureFixture
) -> None:
    table = Table()
    table.down = True
    writer = writers(table)
    writer.start()
    for row in range(3):
        writer.offer(row)

    with caplog.at_level(logging.ERROR, log.name):
        writer.close(timeout=0.1)

    assert counted.counts["lost:shutdown"] == 3 and table.stopped
    assert any("3 rows lost: the database still fails at close()" in m for m in caplog.messages)


def test_close_with_a_spill_keeps_on_the_spill_what_the_database_cannot_take(
    writers: Callable[..., BackgroundWriter[int, int]], counted: Counted
) -> None:
    table = Table()
    table.down = True
    spill = ListSpill(table)
    writer = writers(table, spill)
    for row in range(3):
        writer.offer(row)

    writer.close(timeout=0.1)

    assert spill.rows == [0, 1, 2] and counted.counts["lost:shutdown"] == 0 and table.stopped

"""The order journal: records read back in order from any position; a record cut short at the end is cut
off, damage before the end is refused; segments roll over and go once applied; a failed write leaves no
torn record behind. The store is maintained from it exactly once, whatever the crash (SQLite and, when
FIXADAPTER_TEST_POSTGRES_URL is set, PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from fixadapter.engine.identity import order_terms
from fixadapter.engine.journaling import Journaling
from fixadapter.engine.store_thread import StoreThread
from fixadapter.errors import StoreError
from fixadapter.metrics import Metrics
from fixadapter.model.enums import OrderStatus
from fixadapter.store.journal import Journal, JournalBusy, JournalDamaged, segment_of
from fixadapter.store.repository import OrderStore
from tests.unit.conftest import make_order


def appended(directory: Path, payloads: list[bytes], **options: Any) -> list[int]:
    journal = Journal(directory, **options)
    journal.open()
    try:
        return [journal.append(payload) for payload in payloads]
    finally:
        journal.close()


def read(directory: Path, after: int = 0) -> list[bytes]:
    return [entry.payload for entry in Journal(directory).read_after(after)]


def test_records_read_back_in_order_and_from_any_position(tmp_path: Path) -> None:
    payloads = [f"record {n}".encode() for n in range(5)]
    positions = appended(tmp_path, payloads)
    assert positions == sorted(positions)
    assert read(tmp_path) == payloads
    assert read(tmp_path, after=positions[2]) == payloads[3:]
    assert read(tmp_path, after=positions[-1]) == []


def test_appending_after_a_restart_goes_on_where_the_journal_ended(tmp_path: Path) -> None:
    first = appended(tmp_path, [b"one", b"two"])
    second = appended(tmp_path, [b"three"])
    assert second[0] > first[-1]
    assert read(tmp_path) == [b"one", b"two", b"three"]


@pytest.mark.parametrize("cut", [1, 5, 9], ids=["in the header", "in the payload", "the last byte"])
def test_a_record_cut_short_at_the_end_is_cut_off_and_the_next_one_follows_the_good_ones(
    tmp_path: Path, cut: int
) -> None:
    appended(tmp_path, [b"kept", b"cut short"])
    [segment] = tmp_path.iterdir()
    data = segment.read_bytes()
    segment.write_bytes(data[: len(data) - cut])  # the process died in the middle of its write
    assert read(tmp_path) == [b"kept"]
    appended(tmp_path, [b"after"])
    assert read(tmp_path) == [b"kept", b"after"]


def test_a_damaged_record_with_records_after_it_is_refused_not_skipped(tmp_path: Path) -> None:
    appended(tmp_path, [b"first", b"second", b"third"])
    [segment] = tmp_path.iterdir()
    data = bytearray(segment.read_bytes())
    data[10] ^= 0xFF  # inside the first record's payload
    segment.write_bytes(bytes(data))
    with pytest.raises(JournalDamaged, match="damaged at byte 0"):
        read(tmp_path)


def test_segments_roll_over_and_the_applied_ones_are_deleted(tmp_path: Path) -> None:
    journal = Journal(tmp_path, segment_bytes=64)
    journal.open()
    positions = [journal.append(b"x" * 60) for _ in range(6)]
    assert len(journal.segments()) == 6  # each record fills a segment past 64 bytes
    assert [entry.payload for entry in journal.read_after(0)] == [b"x" * 60] * 6
    assert journal.discard_before(positions[3]) == 3
    assert journal.segments() == [segment_of(p) for p in positions[3:]]
    assert [entry.position for entry in journal.read_after(positions[3])] == positions[4:]
    journal.close()


def test_a_write_that_fails_half_way_leaves_no_torn_record_and_the_journal_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(tmp_path)
    journal.open()
    journal.append(b"before")
    real_write = os.write

    def half_then_full(fd: int, data: bytes) -> int:
        monkeypatch.setattr(os, "write", failing)
        return real_write(fd, data[: len(data) // 2])

    def failing(_fd: int, _data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(StoreError, match=r"No space left on device.*nothing was sent"):
        journal.append(b"refused record")
    monkeypatch.setattr(os, "write", real_write)
    journal.append(b"after")
    journal.close()
    assert read(tmp_path) == [b"before", b"after"]


def test_the_journal_files_are_private(tmp_path: Path) -> None:
    appended(tmp_path / "journal", [b"secret-free but private"])
    assert (tmp_path / "journal").stat().st_mode & 0o777 == 0o700
    [segment] = (tmp_path / "journal").iterdir()
    assert segment.stat().st_mode & 0o777 == 0o600


def test_one_process_holds_a_journal_at_a_time(tmp_path: Path) -> None:
    holder = Journal(tmp_path)
    holder.lock()
    other = Journal(tmp_path)
    with pytest.raises(JournalBusy, match="held by another process"):
        other.lock()
    holder.close()
    other.lock()  # released with its holder
    other.close()


# -- the store maintained from the journal ----------------------------------------------------------


@pytest.fixture
def thread() -> Iterator[StoreThread]:
    running = StoreThread(Metrics())
    yield running
    running.shutdown()


def journaled(store: OrderStore, thread: StoreThread, directory: Path, cl_ord_ids: list[str]) -> None:
    """New orders journaled as the engine does, the store written behind (then the thread drained)."""

    async def run() -> None:
        journaling = Journaling(Journal(directory), store, thread)
        await journaling.start()
        for cl_ord_id in cl_ord_ids:
            order = make_order(cl_ord_id=cl_ord_id)
            journaling.new_order(order, order_terms(order), None)
        await thread.run(lambda: None)  # every posted write before it is done
        journaling.close()

    asyncio.run(run())


def test_a_journaled_order_reaches_the_store_with_its_claim_and_terms(
    store: OrderStore, thread: StoreThread, tmp_path: Path
) -> None:
    journaled(store, thread, tmp_path, ["ord-1", "ord-2"])
    assert [o.cl_ord_id for o in store.orders()] == ["ord-1", "ord-2"]
    assert store.client_id_usage("ord-1") == ("order", "ord-1")
    assert store.order_terms("ord-2") == order_terms(make_order(cl_ord_id="ord-2"))
    assert store.journal_position() > 0


def test_orders_journaled_but_never_stored_are_applied_at_the_next_start_exactly_once(
    store: OrderStore, thread: StoreThread, tmp_path: Path
) -> None:
    journal = Journal(tmp_path)
    journal.open()
    for cl_ord_id in ("ord-1", "ord-2"):  # the process died after the journal write, before the store
        order = make_order(cl_ord_id=cl_ord_id)
        journal.append(b'{"kind":"order","order":%s,"terms":null}' % order.model_dump_json().encode())
    journal.close()
    journaled(store, thread, tmp_path, [])
    journaled(store, thread, tmp_path, ["ord-3"])  # a second start applies nothing again
    assert [o.cl_ord_id for o in store.orders()] == ["ord-1", "ord-2", "ord-3"]
    assert {o.status for o in store.orders()} == {OrderStatus.PENDING_NEW}


def test_with_the_journal_held_by_another_process_nothing_is_replayed_or_journaled(
    store: OrderStore, thread: StoreThread, tmp_path: Path
) -> None:
    holder = Journal(tmp_path)
    holder.lock()
    holder.open()
    holder.append(b'{"kind":"order","order":%s}' % make_order(cl_ord_id="theirs").model_dump_json().encode())

    async def run() -> bool:
        journaling = Journaling(Journal(tmp_path), store, thread)
        await journaling.start()
        return journaling.active

    assert asyncio.run(run()) is False  # its orders go through the store
    assert store.orders() == []  # the holder's records are the holder's to apply
    holder.close()


def test_a_record_applied_again_after_an_unconfirmed_commit_is_not_applied_twice(
    store: OrderStore, tmp_path: Path
) -> None:
    order = make_order(cl_ord_id="ord-1")
    store.journal_position()
    store.apply_journaled_order(order, None, None, 100, b"{}")
    store.apply_journaled_order(order, None, None, 100, b"{}")  # the store thread's rerun: it landed before
    assert [o.cl_ord_id for o in store.orders()] == ["ord-1"]
    assert store.reports_set_aside() == []


def test_a_record_the_database_refuses_is_set_aside_and_the_journal_goes_on(
    store: OrderStore, tmp_path: Path
) -> None:
    store.journal_position()
    store.apply_journaled_order(make_order(cl_ord_id="ord-1"), None, None, 100, b'{"order": "ord-1"}')
    store.apply_journaled_order(make_order(cl_ord_id="ord-1"), None, None, 200, b'{"order": "ord-1 again"}')
    store.apply_journaled_order(make_order(cl_ord_id="ord-2"), None, None, 300, b'{"order": "ord-2"}')
    assert [o.cl_ord_id for o in store.orders()] == ["ord-1", "ord-2"]
    [aside] = store.reports_set_aside()
    assert (aside["report_type"], aside["dedupe_key"], aside["raw"]) == (
        "journal:order",
        "ord-1",
        '{"order": "ord-1 again"}',
    )
    assert store.journal_position() == 300


def test_a_posted_write_that_fails_is_retried_and_holds_back_the_calls_after_it(
    store: OrderStore, thread: StoreThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("fixadapter.engine.store_thread.RETRY_FIRST_SECONDS", 0.01)
    failures = [2]
    lock = threading.Lock()

    def flaky(cl_ord_id: str) -> None:
        with lock:
            if failures[0]:
                failures[0] -= 1
                raise StoreError("database is down")
        store.insert_order(make_order(cl_ord_id=cl_ord_id))

    thread.post(1, flaky, "ord-1")
    found = thread.submit(store.get_order, "ord-1").result(30)  # asked after: sees the write
    assert found is not None and found.cl_ord_id == "ord-1"
    assert failures == [0]


def held(thread: StoreThread) -> threading.Event:
    """Hold the store thread until the event is set, so what is posted meanwhile is found together."""
    entered, release = threading.Event(), threading.Event()
    thread.submit(lambda: (entered.set(), release.wait(30)))
    assert entered.wait(30)
    return release


def post_orders(store: OrderStore, thread: StoreThread, items: list[tuple[str, int]]) -> None:
    for cl_ord_id, position in items:
        order = make_order(cl_ord_id=cl_ord_id)
        thread.post(position, store.apply_journaled_order, order, None, None, position, b"{}")


def test_journaled_orders_found_together_are_written_in_bulk_with_one_commit(
    store: OrderStore, thread: StoreThread
) -> None:
    store.journal_position()
    counted = [0]
    event.listen(store.engine, "commit", lambda _conn: counted.__setitem__(0, counted[0] + 1))
    release = held(thread)
    post_orders(store, thread, [(f"ord-{n}", 100 + n) for n in range(50)])
    release.set()
    thread.submit(lambda: None).result(30)
    assert counted[0] == 1
    assert len(store.orders()) == 50
    assert store.journal_position() == 149
    assert thread.applied == 149
    bulk = thread.metrics.value("fixadapter_store_seconds_count", {"operation": "apply_journaled_orders"})
    assert bulk == 1


def test_a_bulk_write_that_fails_is_written_record_by_record_and_the_refused_one_set_aside(
    store: OrderStore, thread: StoreThread
) -> None:
    store.journal_position()
    store.apply_journaled_order(make_order(cl_ord_id="ord-2"), None, None, 50, b"{}")  # its id is taken
    release = held(thread)
    post_orders(store, thread, [("ord-1", 100), ("ord-2", 101), ("ord-3", 102)])
    release.set()
    thread.submit(lambda: None).result(30)
    assert sorted(o.cl_ord_id for o in store.orders()) == ["ord-1", "ord-2", "ord-3"]
    assert [row["dedupe_key"] for row in store.reports_set_aside()] == ["ord-2"]
    assert store.journal_position() == 102


def test_segments_the_store_has_applied_are_deleted_as_the_journal_rolls_over(
    store: OrderStore, thread: StoreThread, tmp_path: Path
) -> None:
    async def run() -> list[int]:
        journal = Journal(tmp_path, segment_bytes=1000)  # an order's record is about 700 bytes
        journaling = Journaling(journal, store, thread)
        await journaling.start()
        for n in range(6):
            order = make_order(cl_ord_id=f"ord-{n}")
            journaling.new_order(order, order_terms(order), None)
        await thread.run(lambda: None)
        segments = journal.segments()
        journaling.close()
        return segments

    segments = asyncio.run(run())
    assert len(store.orders()) == 6
    assert len(segments) <= 2  # the rolled-over ones are gone once applied; the newest is kept
    assert [entry.payload for entry in Journal(tmp_path).read_after(store.journal_position())] == []


def test_a_journal_directory_that_cannot_be_made_stops_the_start_saying_what_to_do(
    store: OrderStore, thread: StoreThread, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the journal's directory should be")

    async def run() -> None:
        await Journaling(Journal(blocker / "default"), store, thread).start()

    with pytest.raises(StoreError, match=r"cannot be opened.*set store.journal.directory"):
        asyncio.run(run())


def test_a_record_that_does_not_read_as_an_order_stops_the_start_saying_what_to_do(
    store: OrderStore, thread: StoreThread, tmp_path: Path
) -> None:
    appended(tmp_path, [b'{"kind":"order","order":{"cl_ord_id":"ord-1"}}'])  # no symbol, side...

    async def run() -> None:
        await Journaling(Journal(tmp_path), store, thread).start()

    with pytest.raises(StoreError, match=r"cannot be read .* move the journal aside"):
        asyncio.run(run())
    assert store.orders() == []

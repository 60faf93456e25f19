"""Specification of new orders through the order journal: an order with ids certainly unused is journaled
and sent without asking the store, and every rule about ids holds as through the store: a retried or
redelivered command gets its order back and nothing is sent twice, a command id reused for another command
is refused (also by another account's engine while the first is only journaled), a ClOrdID the store held
before the start is never taken for new. SQLite, and PostgreSQL when FIXADAPTER_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import pytest

from fixadapter.config import OrdersConfig
from fixadapter.engine.claims import CommandIds
from fixadapter.engine.orders import OrderEngine
from fixadapter.errors import CommandIdReused, OrderRejected
from fixadapter.metrics import Metrics
from fixadapter.model.enums import OrderType, Side
from fixadapter.model.reports import Instrument
from fixadapter.model.requests import CommandUse, NewOrder
from fixadapter.store.journal import Journal
from fixadapter.store.repository import OrderStore
from tests.unit.conftest import make_order
from tests.unit.quiet_connector import QuietConnector

EURUSD = Instrument(symbol_id=1, name="EURUSD", digits=5)


def limit(cl_ord_id: str, price: str = "1.08") -> NewOrder:
    return NewOrder(
        cl_ord_id=cl_ord_id,
        symbol="EURUSD",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=Decimal(10000),
        price=Decimal(price),
        strategy="momo",
    )


class Desk:
    """Engines of one process, one per account, each with its journal, sharing the command ids."""

    def __init__(self, url: str, journals: Path) -> None:
        self.command_ids = CommandIds()
        self.url = url
        self.journals = journals
        self.connectors: dict[str, QuietConnector] = {}
        self.engines: dict[str, OrderEngine] = {}

    async def start(self, *accounts: str) -> None:
        for account in accounts:
            store = OrderStore(self.url, account=account)
            connector = self.connectors[account] = QuietConnector()
            engine = OrderEngine(
                store,
                connector,
                Metrics(),
                OrdersConfig(inflight_timeout_seconds=600),
                journal=Journal(self.journals / account),
                command_ids=self.command_ids,
            )
            await engine.start()
            engine.catalog.replace([EURUSD])
            engine.mark_ready()
            self.engines[account] = engine

    async def stop(self) -> None:
        for engine in self.engines.values():
            await engine.stop()

    def journal_records(self, account: str) -> int:
        return sum(1 for _ in Journal(self.journals / account).read_after(0))


def run(url: str, journals: Path, scenario: Callable[[Desk], Awaitable[None]], *accounts: str) -> None:
    async def main() -> None:
        desk = Desk(url, journals)
        await desk.start(*(accounts or ("default",)))
        try:
            await scenario(desk)
        finally:
            await desk.stop()

    asyncio.run(main())


def test_a_new_order_is_journaled_sent_and_then_in_the_store(store_url: str, tmp_path: Path) -> None:
    async def scenario(desk: Desk) -> None:
        engine = desk.engines["default"]
        order = await engine.submit(limit("A-1"), CommandUse("momo", "cmd-1", "digest-1"))
        assert desk.connectors["default"].sent == [("new", "A-1")]
        assert desk.journal_records("default") == 1
        stored = await engine.get_order(order.cl_ord_id)
        assert stored is not None and stored.price == Decimal("1.08")

    run(store_url, tmp_path, scenario)
    store = OrderStore(store_url)
    try:
        assert [o.cl_ord_id for o in store.orders()] == ["A-1"]
        assert store.first_use_of_command("momo", "cmd-1", "digest-1") is True  # recorded with the order
        assert store.first_use_of_command("momo", "cmd-1", "digest-2") is False
    finally:
        store.close()


def test_a_redelivered_command_gets_its_journaled_order_back_and_nothing_is_sent_twice(
    store_url: str, tmp_path: Path
) -> None:
    async def scenario(desk: Desk) -> None:
        engine = desk.engines["default"]
        use = CommandUse("momo", "cmd-1", "digest-1")
        first = await engine.submit(limit("A-1"), use)
        again = await engine.submit(limit("A-1"), use)  # at once: the store may not have it yet
        assert again.cl_ord_id == first.cl_ord_id
        assert desk.connectors["default"].sent == [("new", "A-1")]

    run(store_url, tmp_path, scenario)


def test_a_command_id_reused_for_another_command_is_refused_by_every_accounts_engine(
    store_url: str, tmp_path: Path
) -> None:
    async def scenario(desk: Desk) -> None:
        release = threading.Event()
        desk.engines["a"].store_thread.submit(release.wait, 30)  # account a's store is behind
        try:
            await desk.engines["a"].submit(limit("A-1"), CommandUse("momo", "cmd-1", "digest-1"))
            with pytest.raises(CommandIdReused):  # journaled by account a, not in the store yet
                await desk.engines["b"].submit(limit("B-1"), CommandUse("momo", "cmd-1", "digest-2"))
            assert await desk.engines["b"].first_use_of_command("momo", "cmd-1", "digest-2") is False
        finally:
            release.set()
        with pytest.raises(CommandIdReused):
            await desk.engines["a"].submit(limit("A-2"), CommandUse("momo", "cmd-1", "digest-3"))
        assert desk.connectors["b"].sent == []
        assert desk.connectors["a"].sent == [("new", "A-1")]

    run(store_url, tmp_path, scenario, "a", "b")


def test_a_clordid_the_store_held_before_the_start_is_never_taken_for_new(
    store_url: str, tmp_path: Path
) -> None:
    store = OrderStore(store_url)
    store.create_schema()
    store.insert_order(make_order(cl_ord_id="OLD-1", strategy="momo"), None, CommandUse("momo", "old", "d"))
    store.close()

    async def scenario(desk: Desk) -> None:
        engine = desk.engines["default"]
        with pytest.raises(OrderRejected, match="OLD-1 was used for a different order"):
            await engine.submit(limit("OLD-1"), CommandUse("momo", "cmd-2", "digest-2"))
        with pytest.raises(CommandIdReused):  # a command id recorded before the start
            await engine.submit(limit("A-9"), CommandUse("momo", "old", "other"))
        assert desk.connectors["default"].sent == []
        assert desk.journal_records("default") == 0

    run(store_url, tmp_path, scenario)


def test_orders_journaled_before_a_crash_are_in_the_store_and_known_after_the_restart(
    store_url: str, tmp_path: Path
) -> None:
    async def before(desk: Desk) -> None:
        for n in range(3):
            await desk.engines["default"].submit(limit(f"A-{n}"), CommandUse("momo", f"cmd-{n}", f"d{n}"))

    run(store_url, tmp_path, before)
    store = OrderStore(store_url)
    with store.engine.begin() as conn:  # as if the store never got the last two (a kill before the write)
        conn.exec_driver_sql("DELETE FROM orders WHERE cl_ord_id IN ('A-1', 'A-2')")
        conn.exec_driver_sql("DELETE FROM client_ids WHERE client_id IN ('A-1', 'A-2')")
        conn.exec_driver_sql("DELETE FROM queue_command_ids WHERE command_id IN ('cmd-1', 'cmd-2')")
        first = next(iter(Journal(tmp_path / "default").read_after(0))).position
        conn.exec_driver_sql(f"UPDATE journal_positions SET position = {first}")  # noqa: S608 - our int

    async def after(desk: Desk) -> None:
        engine = desk.engines["default"]
        assert {o.cl_ord_id for o in engine.open_orders()} == {"A-0", "A-1", "A-2"}
        again = await engine.submit(limit("A-2"), CommandUse("momo", "cmd-2", "d2"))  # a redelivery
        assert again.cl_ord_id == "A-2"
        assert desk.connectors["default"].sent == []

    run(store_url, tmp_path, after)
    assert sorted(o.cl_ord_id for o in store.orders()) == ["A-0", "A-1", "A-2"]
    store.close()


def test_reading_the_ids_the_store_holds_at_start_shows_progress(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("fixadapter.engine.orders.LOAD_PROGRESS_EVERY", 2)
    store = OrderStore(store_url)
    store.create_schema()
    for n in range(5):
        store.insert_order(make_order(cl_ord_id=f"OLD-{n}"))
    store.close()

    async def scenario(desk: Desk) -> None:
        assert not desk.engines["default"]._known.certainly_unused("OLD-3")

    with caplog.at_level("WARNING", logger="fixadapter.engine"):
        run(store_url, tmp_path, scenario)
    progress = [r.getMessage() for r in caplog.records if "reading the ids" in r.getMessage()]
    assert progress[:2] == [
        "reading the ids the store holds: 2 so far",
        "reading the ids the store holds: 4 so far",
    ]

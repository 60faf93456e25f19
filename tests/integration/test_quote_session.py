"""QUOTE session end to end: subscriptions, books equal to the simulator's, reconnects, rejects."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import pytest

from fixadapter.api import Adapter
from fixadapter.errors import SubscriptionRejected, UnknownSymbol
from fixadapter.model.market import Book, MarketDataRejected, Quote
from fixadapter.sim.process import SimProcess
from fixadapter.store.depth import DepthReader

from .conftest import ConfigFactory, SimFactory

D = Decimal


def sim_levels(
    sim: SimProcess, symbol_id: int
) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
    book = sim.control(f"/book?symbol_id={symbol_id}")
    return (
        [(D(price), D(size)) for price, size in book["bids"]],
        [(D(price), D(size)) for price, size in book["asks"]],
    )


def adapter_levels(book: Book | None) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
    assert book is not None
    return [(level.price, level.size) for level in book.bids], [
        (level.price, level.size) for level in book.asks
    ]


def applied(adapter: Adapter, kind: str = "incremental") -> float:
    value = adapter.metrics.value("fixadapter_market_data_messages_applied_total", {"kind": kind})
    return value or 0.0


async def until(condition: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def books_equal(adapter: Adapter, sim: SimProcess, symbol: str, symbol_id: int) -> None:
    """Pause the feed, then the adapter must converge to exactly the simulator's book."""
    sim.control("/market", {"paused": True})
    expected = sim_levels(sim, symbol_id)
    await until(lambda: adapter_levels(adapter.book(symbol)) == expected, what=f"{symbol} book to match")
    assert expected[0] and expected[1]


@pytest.fixture
def fast_sim(start_sim: SimFactory) -> SimProcess:
    return start_sim(extra_args=("--tick-ms", "50", "--md-rate", "2000"))


def test_after_thousands_of_updates_the_book_equals_the_simulators(
    fast_sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        async with Adapter(make_config(fast_sim)) as adapter:
            await adapter.wait_ready(15)
            await adapter.subscribe("EURUSD", depth=True)
            await adapter.subscribe("USDJPY", depth=True)
            await until(lambda: applied(adapter) > 4000, timeout=20, what="4000 X messages")
            await books_equal(adapter, fast_sim, "EURUSD", 1)
            await books_equal(adapter, fast_sim, "USDJPY", 4)
            book = adapter.book("EURUSD")
            assert book is not None and book.mid is not None and book.spread_pips is not None
            assert book.bids[0].price < book.asks[0].price
            assert -1 <= (book.imbalance or 0) <= 1
            assert adapter.metrics.value("fixadapter_market_data_unknown_entries_total") == 0

    asyncio.run(scenario())


def test_depth_snapshots_are_stored_in_batches_and_read_back_in_order(
    fast_sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> list[Any]:
        async with Adapter(make_config(fast_sim)) as adapter:
            await adapter.wait_ready(15)
            await adapter.subscribe("EURUSD", depth=True)
            await asyncio.sleep(1.5)
            store = adapter.engine.store.engine
        reader = DepthReader(store)  # after stop(): the recorder flushed what it held
        rows = list(reader.replay(1))
        latest = reader.latest(1)
        assert latest is not None and rows and latest.time == rows[-1].time
        return rows

    rows = asyncio.run(scenario())
    times = [row.time for row in rows]
    assert times == sorted(times)
    # sampled at most once per 100 ms per symbol, never every one of the ~3000 updates
    assert 5 <= len(rows) <= 25
    assert all(row.bids and row.asks and row.mid is not None for row in rows)


def test_spot_quotes_follow_the_venue_price(sim: SimProcess, make_config: ConfigFactory):
    async def scenario() -> None:
        async with Adapter(make_config(sim)) as adapter:
            await adapter.wait_ready(15)
            quotes: list[Quote] = []
            adapter.on_market(lambda event: quotes.append(event) if isinstance(event, Quote) else None)
            await adapter.subscribe("EURUSD")
            sim.control("/scenario", {"freeze_prices": True})
            sim.control("/quote", {"symbol_id": 1, "bid": "1.20000", "ask": "1.20010"})
            await until(lambda: quotes and quotes[-1].bid == D("1.20000"), what="the pinned quote")
            quote = adapter.quote("EURUSD")
            assert quote is not None
            assert (quote.ask, quote.mid, quote.spread_pips) == (D("1.20010"), D("1.200050"), D("1.0"))
            assert adapter.book("EURUSD") is None  # spot makes no depth book

    asyncio.run(scenario())


def test_after_a_forced_reconnect_subscriptions_come_back_and_the_book_is_rebuilt(
    fast_sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        async with Adapter(make_config(fast_sim)) as adapter:
            await adapter.wait_ready(15)
            await adapter.subscribe("EURUSD", depth=True)
            await adapter.subscribe("GBPUSD")
            await until(lambda: applied(adapter) > 500, what="500 X messages")
            snapshots = applied(adapter, "snapshot")
            fast_sim.control("/logout", {"session": "QUOTE", "reason": "maintenance"})
            await until(lambda: applied(adapter, "snapshot") > snapshots, timeout=15, what="a fresh snapshot")
            subscriptions = fast_sim.control("/market")["subscriptions"]
            assert sorted((s["symbol_id"], s["depth"]) for s in subscriptions) == [(1, True), (2, False)]
            await until(lambda: applied(adapter) > 1000, what="updates after the reconnect")
            await books_equal(adapter, fast_sim, "EURUSD", 1)
            logons = adapter.metrics.value("fixadapter_logons_total", {"session": "QUOTE"})
            assert logons == 2

    asyncio.run(scenario())


def test_unknown_symbols_are_refused_by_name_here_and_by_id_at_the_server(
    sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        async with Adapter(make_config(sim)) as adapter:
            await adapter.wait_ready(15)
            with pytest.raises(UnknownSymbol, match="did you mean EURUSD"):
                await adapter.subscribe("EURUSX", depth=True)
            events: list[MarketDataRejected] = []
            adapter.on_market(lambda e: events.append(e) if isinstance(e, MarketDataRejected) else None)
            # A name our catalog knows but the server does not (delisted since the last SecurityList).
            adapter.engine.catalog.replace([*adapter.engine.catalog.all(), *_ghost()])
            with pytest.raises(SubscriptionRejected, match="INVALID_REQUEST") as refused:
                await adapter.subscribe("GHOST", depth=True)
            assert refused.value.reason == 0
            await until(lambda: bool(events), what="the reject event")
            assert events[0].symbol == "GHOST"

    asyncio.run(scenario())


def _ghost() -> list[Any]:
    from fixadapter.model.reports import Instrument

    return [Instrument(symbol_id=99999, name="GHOST", digits=5)]


def test_unsubscribe_stops_the_updates(fast_sim: SimProcess, make_config: ConfigFactory):
    async def scenario() -> None:
        async with Adapter(make_config(fast_sim)) as adapter:
            await adapter.wait_ready(15)
            await adapter.subscribe("EURUSD", depth=True)
            await until(lambda: applied(adapter) > 200, what="200 X messages")
            assert await adapter.unsubscribe("EURUSD", depth=True)
            await until(
                lambda: not fast_sim.control("/market")["subscriptions"], what="the server to drop it"
            )
            await asyncio.sleep(0.2)
            before = applied(adapter)
            await asyncio.sleep(0.5)
            assert applied(adapter) == before
            assert adapter.book("EURUSD") is None

    asyncio.run(scenario())

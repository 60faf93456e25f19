"""QUOTE session end to end: subscriptions, books equal to the simulator's, reconnects, rejects.

Nothing here waits a fixed time or asserts at an arbitrary instant (the CI machine's two cores are shared):
waits end on a condition, with generous timeouts, and what the adapter has applied is pinned down by a
barrier on the QUOTE session (see `quote_barrier`) before it is compared or counted.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import pytest

from fixadapter.api import Adapter
from fixadapter.config import AdapterConfig
from fixadapter.engine.subscriptions import Subscription
from fixadapter.errors import SubscriptionRejected, UnknownSymbol
from fixadapter.model.market import Book, MarketDataRejected, Quote
from fixadapter.sim.process import SimProcess
from fixadapter.store.depth import DepthReader

from .conftest import ConfigFactory, SimFactory

D = Decimal
WAIT_SECONDS = 30.0  # a condition ends every wait; this only bounds a broken one
STREAM_SECONDS = 60.0  # for a number of updates to stream, which takes longer on a loaded machine
BARRIER_SYMBOL = "AUDUSD"  # no test subscribes it otherwise


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


def sim_subscriptions(sim: SimProcess) -> list[tuple[int, bool]]:
    return sorted((s["symbol_id"], s["depth"]) for s in sim.control("/market")["subscriptions"])


def applied(adapter: Adapter, kind: str = "incremental") -> float:
    value = adapter.metrics.value("fixadapter_market_data_messages_applied_total", {"kind": kind})
    return value or 0.0


def book_updates(adapter: Adapter, symbol: str) -> float:
    """Books the adapter published for `symbol` (one per W or X that touched it)."""
    value = adapter.metrics.value("fixadapter_market_data_book_updates_total", {"symbol": symbol})
    return value or 0.0


def unsolicited(adapter: Adapter, message_type: str) -> float:
    """W or X the adapter received for a symbol it has no such subscription for (and ignored)."""
    value = adapter.metrics.value(
        "fixadapter_market_data_unsolicited_messages_total", {"message_type": message_type}
    )
    return value or 0.0


def depth_rows_written(adapter: Adapter) -> float:
    value = adapter.metrics.value("fixadapter_database_rows_written_total", {"table": "market_depth"})
    return value or 0.0


def patient(config: AdapterConfig) -> AdapterConfig:
    """`config` with a subscribe (first snapshot) timeout of WAIT_SECONDS instead of the default 10 s."""
    market_data = config.market_data.model_copy(update={"subscribe_timeout_seconds": WAIT_SECONDS})
    return config.model_copy(update={"market_data": market_data})


async def until(condition: Any, timeout: float = WAIT_SECONDS, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.05)


async def quote_barrier(adapter: Adapter, symbol: str = BARRIER_SYMBOL, depth: bool = False) -> Subscription:
    """Subscribe `symbol` (not subscribed yet) and wait until its snapshot is applied: from then on, every
    market data message the simulator sent before it handled this request has been applied too.

    The simulator handles a session's requests in order (so after any earlier unsubscribe) and sends market
    data under the lock that covers handling a request, so this snapshot follows on the wire every message
    sent before; the adapter's one market-data thread applies what arrives in arrival order. A snapshot is
    sent even while the feed is paused. Returns the subscription (still subscribed).
    """
    market = adapter.market
    assert market is not None
    symbol_id = adapter.engine.catalog.resolve(symbol).symbol_id
    assert market.subscriptions.get(symbol_id, depth) is None, f"{symbol} is subscribed already: no barrier"
    subscription = await adapter.subscribe(symbol, depth=depth, wait=False)
    await until(lambda: subscription.received > 0, what=f"the {symbol} snapshot (a QUOTE barrier)")
    return subscription


async def books_equal(adapter: Adapter, sim: SimProcess, symbol: str, symbol_id: int) -> None:
    """Pause the feed, then the adapter's book must be exactly the simulator's.

    Paused, the simulator sends no market data and its book stands still; once a barrier shows the adapter
    has applied everything sent before, the two are compared, once.
    """
    sim.control("/market", {"paused": True})
    expected = sim_levels(sim, symbol_id)
    await quote_barrier(adapter)
    assert await adapter.unsubscribe(BARRIER_SYMBOL)
    assert adapter_levels(adapter.book(symbol)) == expected, f"{symbol}: the adapter's book differs"
    assert expected[0] and expected[1]


@pytest.fixture
def fast_sim(start_sim: SimFactory) -> SimProcess:
    return start_sim(extra_args=("--tick-ms", "50", "--md-rate", "2000"))


def test_after_thousands_of_updates_the_book_equals_the_simulators(
    fast_sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        async with Adapter(patient(make_config(fast_sim))) as adapter:
            await adapter.wait_ready(WAIT_SECONDS)
            await adapter.subscribe("EURUSD", depth=True)
            await adapter.subscribe("USDJPY", depth=True)
            await until(lambda: applied(adapter) > 4000, timeout=STREAM_SECONDS, what="4000 X messages")
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
    config = patient(make_config(fast_sim))
    interval = config.market_data.storage.sample_interval_ms / 1000

    async def scenario() -> tuple[list[Any], float, float]:
        began = time.monotonic()
        async with Adapter(config) as adapter:
            await adapter.wait_ready(WAIT_SECONDS)
            await adapter.subscribe("EURUSD", depth=True)
            await until(
                lambda: depth_rows_written(adapter) >= 5 and book_updates(adapter, "EURUSD") >= 1000,
                timeout=STREAM_SECONDS,
                what="5 stored snapshots and 1000 EURUSD book updates",
            )
            store = adapter.engine.store.engine
        # Every sample is taken in here, at least `interval` after the one before (a monotonic clock).
        elapsed = time.monotonic() - began
        updates = book_updates(adapter, "EURUSD")
        reader = DepthReader(store)  # after stop(): the recorder flushed what it held
        rows = list(reader.replay(1))
        latest = reader.latest(1)
        assert latest is not None and rows and latest.time == rows[-1].time
        return rows, elapsed, updates

    rows, elapsed, updates = asyncio.run(scenario())
    times = [row.time for row in rows]
    assert times == sorted(times)
    # sampled at most once per sample interval per symbol, never every update
    assert 5 <= len(rows) <= elapsed / interval + 1, f"{len(rows)} rows in {elapsed:.2f}s"
    assert len(rows) < updates
    assert all(row.bids and row.asks and row.mid is not None for row in rows)


def test_spot_quotes_follow_the_venue_price(sim: SimProcess, make_config: ConfigFactory):
    async def scenario() -> None:
        async with Adapter(patient(make_config(sim))) as adapter:
            await adapter.wait_ready(WAIT_SECONDS)
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
        async with Adapter(patient(make_config(fast_sim))) as adapter:
            await adapter.wait_ready(WAIT_SECONDS)
            await adapter.subscribe("EURUSD", depth=True)
            await adapter.subscribe("GBPUSD")
            await until(lambda: applied(adapter) > 500, what="500 X messages")
            snapshots = applied(adapter, "snapshot")
            fast_sim.control("/logout", {"session": "QUOTE", "reason": "maintenance"})
            await until(lambda: applied(adapter, "snapshot") > snapshots, what="a fresh snapshot")
            # Both requests are sent at the logon; the depth snapshot may come before the spot V is handled.
            await until(
                lambda: sim_subscriptions(fast_sim) == [(1, True), (2, False)], what="both subscriptions"
            )
            await until(lambda: applied(adapter) > 1000, what="updates after the reconnect")
            await books_equal(adapter, fast_sim, "EURUSD", 1)
            logons = adapter.metrics.value("fixadapter_logons_total", {"session": "QUOTE"})
            assert logons == 2

    asyncio.run(scenario())


def test_unknown_symbols_are_refused_by_name_here_and_by_id_at_the_server(
    sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        async with Adapter(patient(make_config(sim))) as adapter:
            await adapter.wait_ready(WAIT_SECONDS)
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
        async with Adapter(patient(make_config(fast_sim))) as adapter:
            await adapter.wait_ready(WAIT_SECONDS)
            await adapter.subscribe("EURUSD", depth=True)
            await until(lambda: book_updates(adapter, "EURUSD") > 200, what="200 EURUSD book updates")
            assert await adapter.unsubscribe("EURUSD", depth=True)
            # X sent before the simulator handled the unsubscribe may still be on their way: once the
            # GBPUSD snapshot (requested after it) is applied, all of them are.
            await quote_barrier(adapter, "GBPUSD", depth=True)
            assert sim_subscriptions(fast_sim) == [(2, True)]
            assert adapter.book("EURUSD") is None
            eurusd, ignored = book_updates(adapter, "EURUSD"), unsolicited(adapter, "X")
            # The simulator's churn and re-centring now go to GBPUSD alone; with EURUSD still subscribed,
            # its X would come in between. Counted in updates, not seconds: a loaded machine streams less.
            gbpusd = book_updates(adapter, "GBPUSD")
            await until(
                lambda: book_updates(adapter, "GBPUSD") >= gbpusd + 200,
                timeout=STREAM_SECONDS,
                what="200 more GBPUSD book updates",
            )
            assert book_updates(adapter, "EURUSD") == eurusd
            assert unsolicited(adapter, "X") == ignored  # no X for EURUSD came at all, not even ignored
            assert adapter.book("EURUSD") is None

    asyncio.run(scenario())

"""MarketData, driven by raw QUOTE messages through a fake connector: what consumers see and when."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest

from fixadapter.config import MarketDataConfig
from fixadapter.connectors.fix.market_codec import decode_market_data
from fixadapter.connectors.fix.wire import frame
from fixadapter.engine.instruments import Catalog
from fixadapter.engine.market_data import MarketData
from fixadapter.errors import SubscriptionRejected, SubscriptionTimeout, UnknownSymbol
from fixadapter.metrics import Metrics
from fixadapter.model.enums import Channel, SessionState
from fixadapter.model.market import Book, MarketDataRejected, MarketDataStale, MarketMessage, PriceLevel
from fixadapter.model.reports import ConnectionStatus, Instrument

D = Decimal
HEADER = [(49, "CSERVER"), (56, "demo.sim.1"), (34, "2"), (52, "20250101-10:00:00.123")]


class FakeConnector:
    """Records the V requests; the test plays the server by delivering raw messages."""

    def __init__(self) -> None:
        self.sink: Callable[[Any], None] | None = None
        self.requests: list[tuple[str, int, bool, bool]] = []

    def set_market_sink(self, sink: Callable[[Any], None]) -> None:
        self.sink = sink

    def decode_market_data(self, item: Any) -> MarketMessage:
        return decode_market_data(item)

    def send_market_data_request(self, md_req_id: str, symbol_id: int, depth: bool, subscribe: bool) -> None:
        self.requests.append((md_req_id, symbol_id, depth, subscribe))

    def push(self, item: Any) -> None:
        assert self.sink is not None
        self.sink(item)

    def logon(self) -> None:
        self.push(
            ConnectionStatus(connector="fix", channel=Channel.MARKET_DATA, state=SessionState.LOGGED_ON)
        )

    def logout(self) -> None:
        self.push(
            ConnectionStatus(connector="fix", channel=Channel.MARKET_DATA, state=SessionState.LOGGED_OUT)
        )


def depth_w(symbol_id: int, entries: list[tuple[str, str, str, str]]) -> str:
    body = [(55, str(symbol_id)), (268, str(len(entries)))]
    for entry_id, side, price, size in entries:
        body += [(269, side), (270, price), (271, size), (278, entry_id)]
    return frame("W", HEADER, body)


def spot_w(symbol_id: int, bid: str, ask: str) -> str:
    return frame(
        "W", HEADER, [(55, str(symbol_id)), (268, "2"), (269, "0"), (270, bid), (269, "1"), (270, ask)]
    )


def x(*changes: tuple[str, ...]) -> str:
    body = [(268, str(len(changes)))]
    for change in changes:
        if change[0] == "new":
            _, symbol_id, entry_id, side, price, size = change
            body += [(279, "0"), (269, side), (278, entry_id), (55, symbol_id), (270, price), (271, size)]
        else:
            _, symbol_id, entry_id = change
            body += [(279, "2"), (278, entry_id), (55, symbol_id)]
    return frame("X", HEADER, body)


def y(md_req_id: str, text: str) -> str:
    return frame("Y", HEADER, [(58, text), (262, md_req_id), (281, "0")])


BOOK = [("1", "0", "1.08345", "1000000"), ("2", "0", "1.08344", "2000000"), ("3", "1", "1.08355", "3000000")]
Scenario = Callable[[MarketData, FakeConnector], Awaitable[None]]


def run(scenario: Scenario, **config: Any) -> None:
    async def main() -> None:
        connector = FakeConnector()
        catalog = Catalog(
            [
                Instrument(symbol_id=1, name="EURUSD", digits=5),
                Instrument(symbol_id=4, name="USDJPY", digits=3),
            ]
        )
        market = MarketData(connector, catalog, MarketDataConfig(**config), Metrics(), route="QUOTE")
        await market.start()
        try:
            await asyncio.wait_for(scenario(market, connector), 5)
        finally:
            await market.stop()

    asyncio.run(main())


async def settle(market: MarketData) -> None:
    """Let the market-data thread drain its queue and the loop run the hand-off."""
    for _ in range(200):
        await asyncio.sleep(0.005)
        if market.queue_depth == 0:
            await asyncio.sleep(0.01)
            return


async def subscribed(
    market: MarketData, connector: FakeConnector, symbol: str, depth: bool, first: str
) -> str:
    task = asyncio.create_task(market.subscribe(symbol, depth=depth))
    await settle(market)
    md_req_id = connector.requests[-1][0]
    connector.push(first)
    await task
    return md_req_id


def test_subscriptions_wait_for_the_logon_and_go_out_as_v_by_numeric_id() -> None:
    async def scenario(market: MarketData, connector: FakeConnector) -> None:
        task = asyncio.create_task(market.subscribe("eurusd", depth=True))
        await settle(market)
        assert connector.requests == []  # QUOTE is not logged on yet
        connector.logon()
        await settle(market)
        md_req_id, symbol_id, depth, subscribe = connector.requests[0]
        assert (symbol_id, depth, subscribe) == (1, True, True)
        connector.push(depth_w(1, BOOK))
        subscription = await task
        assert subscription.md_req_id == md_req_id

    run(scenario)


def test_an_unknown_name_is_refused_before_anything_is_sent_with_close_matches() -> None:
    async def scenario(market: MarketData, connector: FakeConnector) -> None:
        with pytest.raises(UnknownSymbol, match="EURUSD"):
            await market.subscribe("EURUSX")
        assert connector.requests == []

    run(scenario)


def test_a_depth_book_is_built_from_w_and_x_and_carries_its_dom_figures() -> None:
    async def scenario(market: MarketData, connector: FakeConnector) -> None:
        connector.logon()
        await subscribed(market, connector, "EURUSD", True, depth_w(1, BOOK))
        connector.push(
            x(
                ("del", "1", "1"),
                ("new", "1", "4", "0", "1.08345", "5000000"),
                ("del", "1", "3"),
                ("new", "1", "5", "1", "1.08350", "1000000"),
            )
        )
        await settle(market)
        book = market.book("EURUSD")
        assert book is not None
        assert book.bids == (PriceLevel(D("1.08345"), D(5000000)), PriceLevel(D("1.08344"), D(2000000)))
        assert book.asks == (PriceLevel(D("1.08350"), D(1000000)),)
        assert book.mid == D("1.083475")
        assert book.spread_pips == D("0.5")
        assert book.imbalance == pytest.approx((7 - 1) / 8)
        assert book.updates == 2

    run(scenario)


def test_an_x_is_applied_whole_before_consumers_see_the_book() -> None:
    async def scenario(market: MarketData, connector: FakeConnector) -> None:
        connector.logon()
        await subscribed(market, connector, "EURUSD", True, depth_w(1, BOOK))
        seen: list[Book] = []
        market.on_event(lambda event: seen.append(event) if isinstance(event, Book) else None)
        # Delete the only ask and add a new one: a half-applied X would show an empty ask side.
        connector.push(x(("del", "1", "3"), ("new", "1", "9", "1", "1.08356", "1000000")))
        await settle(market)
        assert seen and all(book.asks for book in seen)

    run(scenario)


def test_an_unknown_entry_id_is_counted_not_fatal() -> None:
    async def scenario(market: MarketData, connector: FakeConnector) -> None:
        connector.logon()
        await subscribed(market, connector, "EURUSD", True, depth_w(1, BOOK))
        connector.push(x(("del", "1", "404")))
        connector.push(x(("new", "1", "6", "0", "1.08340", "100000")))
        await settle(market)
        assert market._metrics.md_unknown_entries._value.get() == 1
        book = market.book("EURUSD")
        assert book is not None and len(book.bids) == 3

    run(scenario)


def test_an_unreadable_message_is_counted_and_the_depth_book_is_requested_afresh() -> None:
    async def scenario(market: MarketData, connector: FakeConnector) -> None:
        connector.logon()
        old_id = await subscribed(market, connector, "EURUSD", True, depth_w(1, BOOK))
        connector.push(x(("del", "1", "1")).replace("268=1", "268=7"))
        await settle(market)
        assert market._metrics.malformed_messages.labels("QUOTE", "unreadable")._value.get() == 1
        # The lost X may have changed the book: unsubscribe the old stream, subscribe under a new id.
        (_, _, _, off), (new_id, symbol_id, depth, on) = connector.requests[-2:]
        assert (connector.requests[-2][0], off, symbol_id, depth, on) == (old_id, False, 1, True, True)
        assert new_id != old_id
        connector.push(depth_w(1, [("60", "0", "1.08300", "100000")]))
        connector.push(x(("new", "1", "61", "1", "1.08310", "100000")))
        await settle(market)
        book = market.book("EURUSD")
        assert book is not None
        assert book.bids == (PriceLevel(D("1.08300"), D(100000)),)
        assert book.asks == (PriceLevel(D("1.08310"), D(100000)),)

    run(scenario)


def test_spot_w_updates_the_quote_and_is_not_mistaken_for_depth() -> None:
    async def scenario(market: MarketData, connector: FakeConnector) -> None:
        connector.logon()
        await subscribed(market, connector, "USDJPY", False, spot_w(4, "155.440", "155.452"))
        connector.push(spot_w(4, "155.441", "155.453"))
        await settle(market)
        quote = market.quote("USDJPY")
        assert quote is not None
        assert (quote.bid, quote.ask, quote.spread_pips) == (D("155.441"), D("155.453"), D("1.2"))
        assert market.book("USDJPY") is None

    run(scenario)


def test_a_rejected_subscription_raises_with_ctraders_reason_and_emits_an_event() -> None:
    async def scenario(market: MarketData, connector: FakeConnector) -> None:
        connector.logon()
        events: list[object] = []
        market.on_event(events.append)
        task = asyncio.create_task(market.subscribe("EURUSD"))
        await settle(market)
        connector.push(y(connector.requests[-1][0], "INVALID_REQUEST: Symbol not found"))
        with pytest.raises(SubscriptionRejected, match="INVALID_REQUEST: Symbol not found"):
            await task
        assert any(isinstance(e, MarketDataRejected) and e.symbol == "EURUSD" for e in events)
        assert market.subscriptions.all() == []

    run(scenario)


def test_every_subscription_is_sent_again_after_a_reconnect_and_the_new_w_rebuilds_the_book() -> None:
    async def scenario(market: MarketData, connector: FakeConnector) -> None:
        connector.logon()
        depth_id = await subscribed(market, connector, "EURUSD", True, depth_w(1, BOOK))
        spot_id = await subscribed(market, connector, "USDJPY", False, spot_w(4, "155.440", "155.452"))
        connector.logout()
        await settle(market)
        stale = market.book("EURUSD")
        connector.requests.clear()
        connector.logon()
        await settle(market)
        assert sorted(r[0] for r in connector.requests) == sorted([depth_id, spot_id])
        connector.push(depth_w(1, [("50", "0", "1.09000", "100000"), ("51", "1", "1.09010", "100000")]))
        await settle(market)
        book = market.book("EURUSD")
        assert stale is not None and book is not None
        assert book.bids == (PriceLevel(D("1.09000"), D(100000)),)

    run(scenario)


def test_unsubscribe_repeats_the_id_and_later_data_for_the_symbol_is_ignored() -> None:
    async def scenario(market: MarketData, connector: FakeConnector) -> None:
        connector.logon()
        md_req_id = await subscribed(market, connector, "EURUSD", True, depth_w(1, BOOK))
        assert await market.unsubscribe("EURUSD", depth=True)
        assert connector.requests[-1] == (md_req_id, 1, True, False)
        connector.push(x(("del", "1", "1")))
        await settle(market)
        assert market.book("EURUSD") is None
        assert market._metrics.md_unsolicited.labels("X")._value.get() == 1

    run(scenario)


def test_a_silent_subscription_is_flagged_stale_and_fresh_data_clears_it() -> None:
    async def scenario(market: MarketData, connector: FakeConnector) -> None:
        connector.logon()
        await subscribed(market, connector, "EURUSD", True, depth_w(1, BOOK))
        events: list[object] = []
        market.on_event(events.append)
        await asyncio.sleep(0.5)
        assert any(isinstance(e, MarketDataStale) for e in events)
        assert any(isinstance(e, Book) and e.stale for e in events)
        connector.push(x(("del", "1", "1")))
        await settle(market)
        book = market.book("EURUSD")
        assert book is not None and not book.stale
        assert market._stale == set()

    run(scenario, stale_after_seconds=0.2)


def test_no_snapshot_in_time_withdraws_the_subscription_and_says_what_to_do() -> None:
    async def scenario(market: MarketData, connector: FakeConnector) -> None:
        with pytest.raises(SubscriptionTimeout, match="QUOTE is not logged on"):
            await market.subscribe("EURUSD")
        assert market.subscriptions.all() == []

    run(scenario, subscribe_timeout_seconds=0.2)


def test_a_subscription_made_while_quote_is_down_is_never_logged_as_subscribed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario(market: MarketData, connector: FakeConnector) -> None:
        caplog.set_level("INFO", logger="fixadapter.market")
        task = asyncio.create_task(market.subscribe("EURUSD", depth=True))
        await settle(market)
        said = [r.getMessage() for r in caplog.records if "EURUSD" in r.getMessage()]
        assert len(said) == 1 and not said[0].startswith("subscribed"), said
        assert said[0].startswith("QUOTE is not logged on: depth EURUSD"), said
        assert said[0].endswith("will be requested when it logs on")
        connector.logon()
        await settle(market)
        connector.push(depth_w(1, BOOK))
        await task

    run(scenario)


def test_stopping_before_the_first_snapshot_nobody_awaits_logs_no_future_exception() -> None:
    """The configured subscriptions (wait=False) when QUOTE never logged on: no "Future exception was
    never retrieved" when the process exits."""
    logged: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logged.append(record.getMessage())

    async def main() -> None:
        catalog = Catalog([Instrument(symbol_id=1, name="EURUSD", digits=5)])
        market = MarketData(FakeConnector(), catalog, MarketDataConfig(), Metrics(), route="QUOTE")
        await market.start()
        await market.subscribe("EURUSD", depth=True, wait=False)
        await market.stop()

    handler = Keep(logging.ERROR)
    logging.getLogger("asyncio").addHandler(handler)
    try:
        asyncio.run(main())
        gc.collect()
    finally:
        logging.getLogger("asyncio").removeHandler(handler)
    assert [m for m in logged if "never retrieved" in m] == []

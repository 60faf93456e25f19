"""Specification of the simulated venue's stop-limit orders (an Open API order type; cTrader FIX has none):
a stop that, once triggered, works as a limit under the same order id."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from fixadapter.sim.prices import DEFAULT_SYMBOLS, RandomWalk
from fixadapter.sim.venue import ExecKind, Execution, OrderKind, PlaceRequest, Side, Venue, VenueStatus

EURUSD = 1
T0 = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)
D = Decimal


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def stop_limit(
    cl_ord_id: str, side: Side, stop_price: str, price: str, quantity: str = "1000"
) -> PlaceRequest:
    return PlaceRequest(
        cl_ord_id, EURUSD, side, OrderKind.STOP_LIMIT, D(quantity), price=D(price), stop_price=D(stop_price)
    )


def kinds(executions: list[Execution]) -> list[ExecKind]:
    return [execution.kind for execution in executions]


@pytest.fixture
def prices() -> RandomWalk:
    walk = RandomWalk(DEFAULT_SYMBOLS, seed=1)
    walk.set_quote(EURUSD, D("1.08000"), D("1.08010"))
    return walk


@pytest.fixture
def venue(prices: RandomWalk) -> Iterator[Venue]:
    venue = Venue(prices)
    yield venue
    venue.close()


def quote(venue: Venue, prices: RandomWalk, bid: str, ask: str, now: datetime) -> list[Execution]:
    return venue.on_quote(prices.set_quote(EURUSD, D(bid), D(ask)), now)


def test_a_buy_stop_limit_rests_untriggered_until_the_ask_reaches_its_stop(
    venue: Venue, prices: RandomWalk
) -> None:
    (new,) = venue.place(stop_limit("sl1", Side.BUY, "1.08050", "1.08060"), T0)

    assert new.kind is ExecKind.NEW
    assert quote(venue, prices, "1.08030", "1.08049", at(1)) == []
    order = venue.order(new.order.order_id)
    assert order is not None and not order.triggered and order.status is VenueStatus.NEW


def test_a_buy_stop_limit_triggered_within_its_limit_fills_at_its_limit_under_the_same_order_id(
    venue: Venue, prices: RandomWalk
) -> None:
    (new,) = venue.place(stop_limit("sl1", Side.BUY, "1.08050", "1.08060"), T0)

    (trade,) = quote(venue, prices, "1.08045", "1.08055", at(1))

    assert trade.kind is ExecKind.TRADE
    assert trade.order.order_id == new.order.order_id
    assert trade.last_px == D("1.08060")
    assert trade.order.status is VenueStatus.FILLED


def test_a_trigger_that_gaps_past_the_limit_leaves_it_resting_as_a_limit(
    venue: Venue, prices: RandomWalk
) -> None:
    (new,) = venue.place(stop_limit("sl1", Side.BUY, "1.08050", "1.08060"), T0)

    assert quote(venue, prices, "1.08070", "1.08080", at(1)) == []

    order = venue.order(new.order.order_id)
    assert order is not None and order.triggered and order.is_working


def test_a_triggered_stop_limit_fills_when_a_later_quote_crosses_its_limit_even_below_the_stop(
    venue: Venue, prices: RandomWalk
) -> None:
    venue.place(stop_limit("sl1", Side.BUY, "1.08050", "1.08060"), T0)
    quote(venue, prices, "1.08070", "1.08080", at(1))

    (trade,) = quote(venue, prices, "1.08030", "1.08040", at(2))

    assert trade.last_px == D("1.08060")


def test_a_sell_stop_limit_triggers_on_the_bid_and_fills_at_its_limit_once_the_bid_is_back_above_it(
    venue: Venue, prices: RandomWalk
) -> None:
    venue.place(stop_limit("sl1", Side.SELL, "1.07950", "1.07940"), T0)
    assert quote(venue, prices, "1.07951", "1.07961", at(1)) == []
    assert quote(venue, prices, "1.07930", "1.07940", at(2)) == []  # triggered, bid below the limit

    (trade,) = quote(venue, prices, "1.07945", "1.07955", at(3))

    assert trade.last_px == D("1.07940")
    assert trade.order.side is Side.SELL


def test_a_stop_limit_already_triggered_at_placement_fills_at_once(venue: Venue) -> None:
    executions = venue.place(stop_limit("sl1", Side.SELL, "1.08100", "1.07990"), T0)

    assert kinds(executions) == [ExecKind.NEW, ExecKind.TRADE]
    assert executions[1].last_px == D("1.07990")


def test_a_stop_limit_needs_both_prices_and_its_limit_beyond_its_stop(venue: Venue) -> None:
    no_limit = PlaceRequest("a", EURUSD, Side.BUY, OrderKind.STOP_LIMIT, D(1000), stop_price=D("1.081"))
    below = stop_limit("b", Side.BUY, "1.08100", "1.08090")
    above = stop_limit("c", Side.SELL, "1.07900", "1.07910")

    texts = [venue.place(request, T0)[0].text or "" for request in (no_limit, below, above)]

    assert texts[0].startswith("INVALID_REQUEST:")
    assert texts[1].startswith("TRADING_BAD_PRICES:") and texts[2].startswith("TRADING_BAD_PRICES:")


def test_replace_moves_both_prices_of_a_stop_limit(venue: Venue, prices: RandomWalk) -> None:
    (new,) = venue.place(stop_limit("sl1", Side.BUY, "1.08050", "1.08060"), T0)

    result = venue.replace("r1", "sl1", new.order.order_id, D(1000), D("1.08090"), D("1.08080"), None, at(1))

    assert isinstance(result, list) and kinds(result) == [ExecKind.REPLACED]
    assert (result[0].order.stop_price, result[0].order.price) == (D("1.08080"), D("1.08090"))
    assert quote(venue, prices, "1.08045", "1.08055", at(2)) == []
    assert kinds(quote(venue, prices, "1.08075", "1.08085", at(3))) == [ExecKind.TRADE]


def test_a_triggered_stop_limit_survives_a_restart(prices: RandomWalk, tmp_path: Path) -> None:
    path = tmp_path / "venue.sqlite"
    first = Venue(prices, state_path=path)
    (new,) = first.place(stop_limit("sl1", Side.BUY, "1.08050", "1.08060"), T0)
    first.on_quote(prices.set_quote(EURUSD, D("1.08070"), D("1.08080")), at(1))
    first.close()

    second = Venue(prices, state_path=path)
    order = second.order(new.order.order_id)

    assert order is not None and order.kind is OrderKind.STOP_LIMIT and order.triggered
    (trade,) = second.on_quote(prices.set_quote(EURUSD, D("1.08040"), D("1.08050")), at(2))
    assert trade.last_px == D("1.08060")
    second.close()


def test_a_state_file_from_before_stop_limits_and_commissions_still_loads(
    prices: RandomWalk, tmp_path: Path
) -> None:
    """Rows written before `triggered` and a deal's `commission` existed load with their defaults."""
    path = tmp_path / "venue.sqlite"
    first = Venue(prices, state_path=path)
    first.place(PlaceRequest("m1", EURUSD, Side.BUY, OrderKind.MARKET, D(1000)), T0)
    first.place(PlaceRequest("l1", EURUSD, Side.BUY, OrderKind.LIMIT, D(1000), price=D("1.07")), T0)
    first.close()
    with sqlite3.connect(path) as db:
        for table, key in (("orders", "order_id"), ("deals", "deal_id")):
            for row_id, data in db.execute(f"SELECT {key}, data FROM {table}").fetchall():  # noqa: S608
                values = json.loads(data)
                values.pop("triggered", None)
                values.pop("commission", None)
                db.execute(f"UPDATE {table} SET data = ? WHERE {key} = ?", (json.dumps(values), row_id))  # noqa: S608
    db.close()

    second = Venue(prices, state_path=path)

    assert [deal.commission for deal in second.deals()] == [D(0)]
    assert [order.triggered for order in second.working_orders()] == [False]
    second.close()

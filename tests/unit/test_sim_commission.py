"""The simulator's commission rule: USD N per million USD of notional on every fill, booked on the deal and,
through the ledger, into the balance."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fixadapter.sim.commission import CommissionRule
from fixadapter.sim.openapi.margin import Ledger, MarginRule
from fixadapter.sim.prices import DEFAULT_SYMBOLS, RandomWalk
from fixadapter.sim.venue import OrderKind, PlaceRequest, Side, Venue

EURUSD, EURJPY, USDJPY = 1, 3, 4
T0 = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)
D = Decimal


def market() -> RandomWalk:
    prices = RandomWalk(DEFAULT_SYMBOLS, seed=1)
    prices.set_quote(EURUSD, D("1.10000"), D("1.10010"))
    prices.set_quote(USDJPY, D("149.995"), D("150.005"))
    return prices


def spec(prices: RandomWalk, symbol_id: int):
    found = prices.spec(symbol_id)
    assert found is not None
    return found


def test_a_fill_costs_the_rate_per_million_usd_of_its_notional_rounded_to_the_cent_and_negative():
    prices = market()
    rule = CommissionRule(D(30), prices)

    assert rule.charge(spec(prices, EURUSD), D(100_000), D("1.1")) == D("-3.30")
    assert rule.charge(spec(prices, USDJPY), D(100_000), D("150")) == D("-3.00")
    assert rule.charge(spec(prices, EURUSD), D(1000), D("1.1")) == D("-0.03")


def test_a_cross_is_converted_through_its_base_in_usd_as_the_margin_rule_converts():
    prices = market()
    eurjpy = spec(prices, EURJPY)

    charged = CommissionRule(D(30), prices).charge(eurjpy, D(1_000_000), D("165"))

    notional = MarginRule(D(100_000), 1, prices).notional_usd(eurjpy, D(1_000_000), D("165"))
    assert charged == -(notional * 30 / 1_000_000).quantize(D("0.01"))


def test_a_rate_of_zero_charges_nothing_and_a_negative_rate_is_refused():
    prices = market()

    assert CommissionRule(D(0), prices).charge(spec(prices, EURUSD), D(100_000), D("1.1")) == 0
    with pytest.raises(ValueError, match="commission"):
        CommissionRule(D(-1), prices)


def test_the_venue_books_each_fills_commission_on_its_deal_opening_and_closing_alike():
    prices = market()
    venue = Venue(prices, commission=CommissionRule(D(30), prices))
    opened = venue.place(PlaceRequest("o", EURUSD, Side.BUY, OrderKind.MARKET, D(100_000)), T0)[-1]
    close = PlaceRequest(
        "c",
        EURUSD,
        Side.SELL,
        OrderKind.MARKET,
        D(100_000),
        position_id=opened.order.position_id,
        closing=True,
    )
    venue.place(close, T0)

    assert [deal.commission for deal in venue.deals()] == [D("-3.30"), D("-3.30")]


def test_a_venue_without_a_rule_charges_nothing():
    prices = market()
    venue = Venue(prices)

    venue.place(PlaceRequest("o", EURUSD, Side.BUY, OrderKind.MARKET, D(100_000)), T0)

    assert [deal.commission for deal in venue.deals()] == [D(0)]


def test_the_ledger_takes_each_deals_commission_off_the_balance_with_its_profit():
    prices = market()
    venue = Venue(prices, commission=CommissionRule(D(30), prices))
    opened = venue.place(PlaceRequest("o", EURUSD, Side.BUY, OrderKind.MARKET, D(100_000)), T0)[-1]
    prices.set_quote(EURUSD, D("1.10110"), D("1.10120"))
    close = PlaceRequest(
        "c",
        EURUSD,
        Side.SELL,
        OrderKind.MARKET,
        D(100_000),
        position_id=opened.order.position_id,
        closing=True,
    )
    venue.place(close, T0)
    ledger = Ledger(MarginRule(D(100_000), 100, prices), {7: []})

    balances = [ledger.book(7, deal) for deal in venue.deals()]

    profit = (D("1.10110") - D("1.10010")) * 100_000
    assert balances == [D("99996.70"), D("99996.70") + profit - D("3.30")]
    assert Ledger(ledger.rule, {7: venue.deals()}).balance(7) == balances[-1]

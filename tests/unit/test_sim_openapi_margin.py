"""The simulator's crude margin rule and ledger: margins in USD at the account's leverage, closing profits
booked into the balance (converted to USD)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from fixadapter.sim.openapi.margin import Ledger, MarginRule
from fixadapter.sim.prices import DEFAULT_SYMBOLS, RandomWalk
from fixadapter.sim.venue import OrderKind, PlaceRequest, Side, Venue

EURUSD, EURJPY, USDJPY = 1, 3, 4
T0 = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)
D = Decimal


def market() -> RandomWalk:
    prices = RandomWalk(DEFAULT_SYMBOLS, seed=1)
    prices.set_quote(EURUSD, D("1.10000"), D("1.10000") + D("0.00010"))
    prices.set_quote(USDJPY, D("149.995"), D("150.005"))
    return prices


def test_margins_are_notionals_in_usd_over_the_leverage():
    prices = market()
    rule = MarginRule(D("100000"), 100, prices)
    eurusd, eurjpy, usdjpy = (prices.spec(s) for s in (EURUSD, EURJPY, USDJPY))
    assert eurusd is not None and eurjpy is not None and usdjpy is not None
    assert rule.margin(eurusd, D(100000), D("1.1")) == D(1100)
    assert rule.margin(usdjpy, D(100000), D("150")) == D(1000)
    assert rule.margin(eurjpy, D(100000), D("165")) == D(100000) * D("1.10005") / 100


def test_a_closing_profit_in_yen_is_booked_in_usd_into_the_balance():
    prices = market()
    venue = Venue(prices)
    opened = venue.place(PlaceRequest("o", USDJPY, Side.BUY, OrderKind.MARKET, D(1000)), T0)[-1]
    prices.set_quote(USDJPY, D("151.495"), D("151.505"))
    close = PlaceRequest(
        "c", USDJPY, Side.SELL, OrderKind.MARKET, D(1000), position_id=opened.order.position_id, closing=True
    )
    closing = venue.place(close, T0)[-1]
    assert closing.deal is not None
    rule = MarginRule(D("100000"), 100, prices)
    ledger = Ledger(rule, {7: []})
    profit_yen = (D("151.495") - D("150.005")) * 1000
    assert rule.profit_usd(closing.deal) == profit_yen / D("151.5")
    assert ledger.book(7, closing.deal) == D("100000") + profit_yen / D("151.5")
    assert Ledger(rule, {7: venue.deals()}).balance(7) == ledger.balance(7)
    assert list(ledger.history(venue.deals()).values())[-1] == ledger.balance(7)

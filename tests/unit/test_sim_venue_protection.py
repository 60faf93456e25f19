"""The venue's stop loss / take profit (set through the Open API) and its deals, kept across restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from fixadapter.sim.prices import DEFAULT_SYMBOLS, Quote, RandomWalk
from fixadapter.sim.records import DealStatus
from fixadapter.sim.venue import ExecKind, OrderKind, PlaceRequest, Side, Venue, VenueStatus

EURUSD = 1
T0 = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)
D = Decimal


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def walk() -> RandomWalk:
    prices = RandomWalk(DEFAULT_SYMBOLS, seed=1)
    prices.set_quote(EURUSD, D("1.08000"), D("1.08010"))
    return prices


def quote(prices: RandomWalk, bid: str, ask: str) -> Quote:
    return prices.set_quote(EURUSD, D(bid), D(ask))


def buy(cl_ord_id: str, **extra: object) -> PlaceRequest:
    return PlaceRequest(cl_ord_id, EURUSD, Side.BUY, OrderKind.MARKET, D(1000), **extra)  # type: ignore[arg-type]


def test_a_relative_stop_loss_is_set_from_the_fill_price_and_a_crossing_quote_closes_the_position():
    prices = walk()
    venue = Venue(prices)
    filled = venue.place(buy("a", relative_stop_loss=D("0.00500")), at(0))[-1]
    position_id = filled.order.position_id
    assert venue.positions()[0].stop_loss == D("1.07510")
    assert venue.on_quote(quote(prices, "1.07600", "1.07610"), at(1)) == []
    closing = venue.on_quote(quote(prices, "1.07500", "1.07510"), at(2))
    assert [e.kind for e in closing] == [ExecKind.NEW, ExecKind.TRADE]
    trade = closing[-1]
    assert trade.server_event and trade.order.closing and trade.order.side is Side.SELL
    assert trade.position is None and trade.order.position_id == position_id
    assert trade.deal is not None and trade.deal.closed_volume == D(1000)
    assert trade.deal.closed_entry_price == D("1.08010") and trade.last_px == D("1.07500")
    assert venue.positions() == []


def test_a_take_profit_set_later_closes_a_short_when_the_ask_falls_to_it():
    prices = walk()
    venue = Venue(prices)
    sell = PlaceRequest("s", EURUSD, Side.SELL, OrderKind.MARKET, D(2000))
    position_id = venue.place(sell, at(0))[-1].order.position_id
    updated = venue.set_protection(position_id, None, D("1.07000"), False, at(1))
    assert updated is not None and updated.take_profit == D("1.07000")
    closed = venue.on_quote(quote(prices, "1.06990", "1.07000"), at(2))
    assert closed[-1].order.status is VenueStatus.FILLED and venue.positions() == []
    assert venue.set_protection(position_id, D("1.1"), None, False, at(3)) is None


def test_a_trailing_stop_follows_the_price_up_and_never_down():
    prices = walk()
    venue = Venue(prices)
    position_id = venue.place(buy("t"), at(0))[-1].order.position_id
    venue.set_protection(position_id, D("1.07900"), None, True, at(1))
    venue.on_quote(quote(prices, "1.08200", "1.08210"), at(2))
    assert venue.position(position_id).stop_loss == D("1.08100")  # type: ignore[union-attr]
    venue.on_quote(quote(prices, "1.08150", "1.08160"), at(3))
    assert venue.position(position_id).stop_loss == D("1.08100")  # type: ignore[union-attr]


def test_deals_have_ids_of_their_own_and_survive_a_restart_with_the_protection(tmp_path: Path):
    path = tmp_path / "venue.sqlite"
    prices = walk()
    venue = Venue(prices, path, partial_fill_parts=2)
    order = venue.place(buy("p", stop_loss=D("1.07")), at(0))[0].order
    first = venue.advance(order.order_id, at(1))[0].deal
    second = venue.advance(order.order_id, at(2))[0].deal
    assert first is not None and second is not None and second.deal_id == first.deal_id + 1
    assert (first.status, second.status) == (DealStatus.PARTIALLY_FILLED, DealStatus.FILLED)
    venue.close()
    again = Venue(prices, path)
    assert [deal.deal_id for deal in again.deals()] == [first.deal_id, second.deal_id]
    assert again.positions()[0].stop_loss == D("1.07")
    third = again.place(buy("q"), at(3))[-1].deal
    assert third is not None and third.deal_id == second.deal_id + 1
    again.close()

"""Specification of the simulated cTrader venue (ctrader-fix.md §2.5 to 2.17), without FIX."""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from fixadapter.sim.prices import DEFAULT_SYMBOLS, RandomWalk
from fixadapter.sim.venue import (
    FIRST_ORDER_ID,
    FIRST_POSITION_ID,
    CancelRefused,
    ExecKind,
    Execution,
    NotFound,
    OrderKind,
    PlaceRequest,
    Side,
    Venue,
    VenueStatus,
)

EURUSD = 1
USDJPY = 4
XAUUSD = 10026
T0 = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)
REPO_ROOT = Path(__file__).resolve().parents[2]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


D = Decimal


def market(cl_ord_id: str, side: Side, quantity: str, position_id: int | None = None) -> PlaceRequest:
    return PlaceRequest(cl_ord_id, EURUSD, side, OrderKind.MARKET, D(quantity), position_id=position_id)


def limit(
    cl_ord_id: str, side: Side, quantity: str, price: str, expire_time: datetime | None = None
) -> PlaceRequest:
    return PlaceRequest(
        cl_ord_id, EURUSD, side, OrderKind.LIMIT, D(quantity), price=D(price), expire_time=expire_time
    )


def stop(cl_ord_id: str, side: Side, quantity: str, stop_price: str) -> PlaceRequest:
    return PlaceRequest(cl_ord_id, EURUSD, side, OrderKind.STOP, D(quantity), stop_price=D(stop_price))


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


@pytest.fixture
def venue_in_parts(prices: RandomWalk) -> Iterator[Venue]:
    venue = Venue(prices, partial_fill_parts=3)
    yield venue
    venue.close()


def set_eurusd(venue: Venue, prices: RandomWalk, bid: str, ask: str, now: datetime) -> list[Execution]:
    return venue.on_quote(prices.set_quote(EURUSD, D(bid), D(ask)), now)


def open_long(venue: Venue, cl_ord_id: str = "open-1", quantity: str = "10000") -> int:
    """Open a long EURUSD position at 1.08010 and return its position id."""
    executions = venue.place(market(cl_ord_id, Side.BUY, quantity), T0)
    assert kinds(executions) == [ExecKind.NEW, ExecKind.TRADE]
    return executions[-1].order.position_id


# ---- market orders ------------------------------------------------------------------------------------


def test_market_buy_one_part_new_then_trade_at_ask(venue: Venue) -> None:
    new, trade = venue.place(market("c1", Side.BUY, "10000"), T0)

    assert new.kind is ExecKind.NEW
    assert new.order.status is VenueStatus.NEW
    assert new.order.cum_qty == 0
    assert new.order.leaves_qty == D("10000")
    assert new.request_id == "c1"
    assert trade.kind is ExecKind.TRADE
    assert trade.order.status is VenueStatus.FILLED
    assert trade.last_qty == D("10000")
    assert trade.last_px == D("1.08010")
    assert trade.order.avg_px == D("1.08010")
    assert trade.order.cum_qty == D("10000")
    assert trade.order.leaves_qty == 0


def test_market_buy_ids_allocated_and_long_position_opened(venue: Venue) -> None:
    new, _ = venue.place(market("c1", Side.BUY, "10000"), T0)

    assert new.order.order_id == FIRST_ORDER_ID
    assert new.order.position_id == FIRST_POSITION_ID
    position = venue.position(FIRST_POSITION_ID)
    assert position is not None
    assert (position.symbol_id, position.side, position.volume) == (EURUSD, Side.BUY, D("10000"))
    assert position.entry_price == D("1.08010")


def test_market_sell_filled_at_bid_opens_short(venue: Venue) -> None:
    trade = venue.place(market("c1", Side.SELL, "3000"), T0)[-1]

    assert trade.last_px == D("1.08000")
    position = venue.position(trade.order.position_id)
    assert position is not None
    assert (position.side, position.volume, position.entry_price) == (Side.SELL, D("3000"), D("1.08000"))


def test_market_in_three_parts_partially_filled_twice_then_filled(
    venue_in_parts: Venue, prices: RandomWalk
) -> None:
    venue = venue_in_parts
    (new,) = venue.place(market("c1", Side.BUY, "10000"), T0)
    assert new.order.under_execution
    order_id = new.order.order_id

    first = venue.advance(order_id, at(1))
    prices.set_quote(EURUSD, D("1.08010"), D("1.08020"))
    second = venue.advance(order_id, at(2))
    prices.set_quote(EURUSD, D("1.08030"), D("1.08040"))
    third = venue.advance(order_id, at(3))

    fills = [*first, *second, *third]
    assert [f.order.status for f in fills] == [
        VenueStatus.PARTIALLY_FILLED,
        VenueStatus.PARTIALLY_FILLED,
        VenueStatus.FILLED,
    ]
    assert [f.last_qty for f in fills] == [D("3333.33"), D("3333.33"), D("3333.34")]
    assert [f.last_px for f in fills] == [D("1.08010"), D("1.08020"), D("1.08040")]
    assert [f.order.cum_qty for f in fills] == [D("3333.33"), D("6666.66"), D("10000")]
    assert fills[1].order.avg_px == D("1.080150")
    # (3333.33*1.08010 + 3333.33*1.08020 + 3333.34*1.08040) / 10000 = 1.080233334 -> digits + 1
    assert fills[2].order.avg_px == D("1.080233")
    assert fills[2].order.transact_time == at(3)
    assert not fills[2].order.under_execution
    assert venue.advance(order_id, at(4)) == []


def test_market_in_parts_position_grows_with_each_part(venue_in_parts: Venue) -> None:
    (new,) = venue_in_parts.place(market("c1", Side.BUY, "3000"), T0)
    assert venue_in_parts.position(new.order.position_id) is None

    venue_in_parts.advance(new.order.order_id, at(1))

    position = venue_in_parts.position(new.order.position_id)
    assert position is not None
    assert position.volume == D("1000")


def test_market_in_parts_tiny_volume_keeps_volume_step(venue_in_parts: Venue) -> None:
    gold = PlaceRequest("c1", XAUUSD, Side.SELL, OrderKind.MARKET, D("0.02"))  # gold's minimum is 0.01
    (new,) = venue_in_parts.place(gold, T0)

    fills = venue_in_parts.advance(new.order.order_id, at(1)) + venue_in_parts.advance(
        new.order.order_id, at(2)
    )

    assert [f.last_qty for f in fills] == [D("0.01"), D("0.01")]
    assert fills[-1].order.status is VenueStatus.FILLED
    assert venue_in_parts.advance(new.order.order_id, at(3)) == []


def test_cancel_remainder_of_market_in_parts_reports_cancelled(venue_in_parts: Venue) -> None:
    (new,) = venue_in_parts.place(market("c1", Side.BUY, "9000"), T0)
    venue_in_parts.advance(new.order.order_id, at(1))

    (cancelled,) = venue_in_parts.cancel_remainder(new.order.order_id, at(2), text="no liquidity")

    assert cancelled.kind is ExecKind.CANCELLED
    assert cancelled.order.status is VenueStatus.CANCELLED
    assert cancelled.order.cum_qty == D("3000")
    assert cancelled.text == "no liquidity"
    assert venue_in_parts.working_orders() == []


# ---- pending orders -----------------------------------------------------------------------------------


def test_limit_buy_below_ask_rests_then_fills_at_limit_when_ask_crosses(
    venue: Venue, prices: RandomWalk
) -> None:
    (new,) = venue.place(limit("l1", Side.BUY, "5000", "1.07950"), T0)
    assert new.order.status is VenueStatus.NEW
    assert set_eurusd(venue, prices, "1.07950", "1.07960", at(1)) == []

    (trade,) = set_eurusd(venue, prices, "1.07930", "1.07945", at(2))

    assert trade.kind is ExecKind.TRADE
    assert trade.order.status is VenueStatus.FILLED
    assert trade.last_px == D("1.07950")
    assert trade.request_id == "l1"
    assert venue.working_orders() == []
    position = venue.position(new.order.position_id)
    assert position is not None
    assert position.entry_price == D("1.07950")


def test_limit_sell_fills_when_bid_reaches_price(venue: Venue, prices: RandomWalk) -> None:
    venue.place(limit("l1", Side.SELL, "5000", "1.08100"), T0)

    (trade,) = set_eurusd(venue, prices, "1.08100", "1.08110", at(1))

    assert trade.last_px == D("1.08100")


def test_limit_price_quantized_to_symbol_digits(venue: Venue) -> None:
    (new,) = venue.place(limit("l1", Side.BUY, "5000", "1.079504"), T0)

    assert new.order.price == D("1.07950")


def test_limit_marketable_at_placement_new_then_trade(venue: Venue) -> None:
    executions = venue.place(limit("l1", Side.BUY, "5000", "1.08020"), T0)

    assert kinds(executions) == [ExecKind.NEW, ExecKind.TRADE]
    assert executions[1].last_px == D("1.08020")


def test_stop_buy_triggers_when_ask_reaches_stop_and_fills_at_ask(venue: Venue, prices: RandomWalk) -> None:
    venue.place(stop("s1", Side.BUY, "1000", "1.08050"), T0)
    assert set_eurusd(venue, prices, "1.08030", "1.08049", at(1)) == []

    (trade,) = set_eurusd(venue, prices, "1.08045", "1.08055", at(2))

    assert trade.last_px == D("1.08055")
    assert trade.order.status is VenueStatus.FILLED


def test_stop_sell_triggers_when_bid_falls_to_stop_and_fills_at_bid(venue: Venue, prices: RandomWalk) -> None:
    venue.place(stop("s1", Side.SELL, "1000", "1.07900"), T0)
    assert set_eurusd(venue, prices, "1.07901", "1.07911", at(1)) == []

    (trade,) = set_eurusd(venue, prices, "1.07890", "1.07900", at(2))

    assert trade.last_px == D("1.07890")


def test_stop_already_triggered_at_placement_new_then_trade_at_quote(venue: Venue) -> None:
    executions = venue.place(stop("s1", Side.SELL, "1000", "1.08100"), T0)

    assert kinds(executions) == [ExecKind.NEW, ExecKind.TRADE]
    assert executions[1].last_px == D("1.08000")


def test_on_quote_other_symbol_leaves_orders_resting(venue: Venue, prices: RandomWalk) -> None:
    venue.place(limit("l1", Side.BUY, "5000", "1.07950"), T0)

    assert venue.on_quote(prices.set_quote(USDJPY, D("1.00000"), D("1.00100")), at(1)) == []
    assert len(venue.working_orders()) == 1


def test_on_quote_several_crossed_orders_filled_in_order_id_order(venue: Venue, prices: RandomWalk) -> None:
    venue.place(limit("l1", Side.BUY, "1000", "1.07950"), T0)
    venue.place(limit("l2", Side.BUY, "1000", "1.07900"), T0)
    venue.place(limit("l3", Side.BUY, "1000", "1.07960"), T0)

    trades = set_eurusd(venue, prices, "1.07880", "1.07890", at(1))

    assert [t.request_id for t in trades] == ["l1", "l2", "l3"]


def test_pending_order_position_id_allocated_at_acceptance(venue: Venue) -> None:
    (first,) = venue.place(limit("l1", Side.BUY, "1000", "1.07000"), T0)
    (second,) = venue.place(stop("s1", Side.SELL, "1000", "1.07000"), T0)

    assert first.order.position_id == FIRST_POSITION_ID
    assert second.order.position_id == FIRST_POSITION_ID + 1
    assert venue.positions() == []


def test_gtd_limit_expires_at_expire_time(venue: Venue) -> None:
    (new,) = venue.place(limit("g1", Side.BUY, "1000", "1.07000", expire_time=at(60)), T0)

    assert venue.expire_due(at(59)) == []
    (expired,) = venue.expire_due(at(60))

    assert expired.kind is ExecKind.EXPIRED
    assert expired.order.status is VenueStatus.EXPIRED
    assert expired.order.order_id == new.order.order_id
    assert expired.request_id == "g1"
    assert venue.working_orders() == []
    assert venue.expire_due(at(61)) == []


def test_fill_part_of_limit_then_quote_fills_rest_with_vwap(venue: Venue, prices: RandomWalk) -> None:
    (new,) = venue.place(limit("l1", Side.SELL, "3000", "1.08100"), T0)

    (partial,) = venue.fill_part(new.order.order_id, D("1000"), at(1))
    (rest,) = set_eurusd(venue, prices, "1.08120", "1.08130", at(2))

    assert partial.order.status is VenueStatus.PARTIALLY_FILLED
    assert partial.order.leaves_qty == D("2000")
    assert rest.last_qty == D("2000")
    assert rest.order.status is VenueStatus.FILLED
    assert rest.order.avg_px == D("1.081000")


# ---- cancel -------------------------------------------------------------------------------------------


def test_cancel_working_limit_cancelled_with_cancel_and_original_ids(venue: Venue) -> None:
    (new,) = venue.place(limit("l1", Side.BUY, "1000", "1.07000"), T0)

    result = venue.cancel("x1", "l1", None, at(1))

    assert isinstance(result, list)
    (cancelled,) = result
    assert cancelled.kind is ExecKind.CANCELLED
    assert cancelled.order.status is VenueStatus.CANCELLED
    assert cancelled.request_id == "x1"
    assert cancelled.orig_request_id == "l1"
    assert cancelled.order.order_id == new.order.order_id
    assert cancelled.order.cl_ord_id == "l1"
    assert cancelled.order.last_request_id == "x1"
    assert cancelled.order.leaves_qty == 0
    assert venue.working_orders() == []


def test_cancel_by_order_id_wins_over_cl_ord_id(venue: Venue) -> None:
    (new,) = venue.place(limit("l1", Side.BUY, "1000", "1.07000"), T0)

    result = venue.cancel("x1", "whatever", new.order.order_id, at(1))

    assert isinstance(result, list)
    assert result[0].order.status is VenueStatus.CANCELLED


def test_cancel_unknown_cl_ord_id_not_found_with_ctrader_text(venue: Venue) -> None:
    result = venue.cancel("x1", "n9Tm8x1AavO5", None, T0)

    assert result == NotFound("x1", "ORDER_NOT_FOUND:Order with clientOrderId=n9Tm8x1AavO5 not found.")


def test_cancel_unknown_order_id_not_found_with_order_id_text(venue: Venue) -> None:
    result = venue.cancel("x1", "l1", 999, T0)

    assert result == NotFound("x1", "ORDER_NOT_FOUND:Order with orderId:999 isn't found")


def test_cancel_filled_order_not_found(venue: Venue) -> None:
    venue.place(market("c1", Side.BUY, "1000"), T0)

    result = venue.cancel("x1", "c1", None, at(1))

    assert isinstance(result, NotFound)
    assert result.text.startswith("ORDER_NOT_FOUND:")


def test_cancel_twice_second_not_found(venue: Venue) -> None:
    venue.place(limit("l1", Side.BUY, "1000", "1.07000"), T0)
    venue.cancel("x1", "l1", None, at(1))

    assert isinstance(venue.cancel("x2", "l1", None, at(2)), NotFound)


def test_cancel_market_order_under_execution_refused(venue_in_parts: Venue) -> None:
    (new,) = venue_in_parts.place(market("c1", Side.BUY, "3000"), T0)
    venue_in_parts.advance(new.order.order_id, at(1))

    result = venue_in_parts.cancel("x1", "c1", None, at(2))

    assert isinstance(result, CancelRefused)
    assert result.text == "Order is under execution"
    assert result.response_to == 1
    assert result.request_id == "x1"
    assert result.order.status is VenueStatus.PARTIALLY_FILLED
    assert venue_in_parts.working_orders()[0].under_execution


# ---- replace ------------------------------------------------------------------------------------------


def test_replace_changes_quantity_price_and_request_id(venue: Venue) -> None:
    (new,) = venue.place(limit("l1", Side.BUY, "1000", "1.07000"), T0)

    result = venue.replace("r1", "l1", new.order.order_id, D("2000"), D("1.07100"), None, None, at(1))

    assert isinstance(result, list)
    (replaced,) = result
    assert replaced.kind is ExecKind.REPLACED
    assert replaced.request_id == "r1"
    assert replaced.order.status is VenueStatus.NEW
    assert (replaced.order.quantity, replaced.order.price) == (D("2000"), D("1.07100"))
    assert replaced.order.cl_ord_id == "l1"
    assert replaced.order.last_request_id == "r1"
    assert replaced.order.transact_time == at(1)


def test_replace_then_cancel_by_replace_cl_ord_id_found(venue: Venue) -> None:
    venue.place(limit("l1", Side.BUY, "1000", "1.07000"), T0)
    venue.replace("r1", "l1", None, D("1000"), D("1.07100"), None, None, at(1))

    result = venue.cancel("x1", "r1", None, at(2))

    assert isinstance(result, list)
    assert result[0].orig_request_id == "l1"


def test_replace_keeps_unset_fields_and_sets_expiry(venue: Venue) -> None:
    (new,) = venue.place(stop("s1", Side.BUY, "1000", "1.09000"), T0)

    result = venue.replace("r1", "s1", new.order.order_id, D("2000"), None, None, at(600), at(1))

    assert isinstance(result, list)
    order = result[0].order
    assert (order.quantity, order.stop_price, order.expire_time) == (D("2000"), D("1.09000"), at(600))


def test_replace_into_marketable_price_fills_right_away(venue: Venue) -> None:
    (new,) = venue.place(limit("l1", Side.BUY, "1000", "1.07000"), T0)

    result = venue.replace("r1", "l1", new.order.order_id, D("1000"), D("1.08010"), None, None, at(1))

    assert isinstance(result, list)
    assert kinds(result) == [ExecKind.REPLACED, ExecKind.TRADE]
    assert result[1].request_id == "r1"
    assert result[1].order.status is VenueStatus.FILLED


def test_replace_below_filled_quantity_refused(venue: Venue) -> None:
    (new,) = venue.place(limit("l1", Side.SELL, "3000", "1.08100"), T0)
    venue.fill_part(new.order.order_id, D("2000"), at(1))

    result = venue.replace("r1", "l1", new.order.order_id, D("1000"), None, None, None, at(2))

    assert isinstance(result, CancelRefused)
    assert result.response_to == 2
    assert result.text.startswith("TRADING_BAD_VOLUME:")
    assert venue.working_orders()[0].quantity == D("3000")


@pytest.mark.parametrize(
    ("request_", "price", "stop_price"),
    [
        (stop("s1", Side.BUY, "1000", "1.09000"), D("1.09000"), None),
        (limit("s1", Side.BUY, "1000", "1.07000"), None, D("1.07000")),
    ],
    ids=["price_on_stop", "stop_price_on_limit"],
)
def test_replace_price_field_of_other_kind_refused(
    venue: Venue, request_: PlaceRequest, price: Decimal | None, stop_price: Decimal | None
) -> None:
    venue.place(request_, T0)

    result = venue.replace("r1", "s1", None, D("1000"), price, stop_price, None, at(1))

    assert isinstance(result, CancelRefused)
    assert result.text.startswith("INVALID_REQUEST:")
    assert result.response_to == 2


def test_replace_market_order_refused(venue_in_parts: Venue) -> None:
    venue_in_parts.place(market("c1", Side.BUY, "3000"), T0)

    result = venue_in_parts.replace("r1", "c1", None, D("1000"), None, None, None, at(1))

    assert isinstance(result, CancelRefused)
    assert result.response_to == 2


def test_replace_opposite_order_above_position_volume_refused(venue: Venue) -> None:
    position_id = open_long(venue)
    request = PlaceRequest(
        "tp", EURUSD, Side.SELL, OrderKind.LIMIT, D("4000"), price=D("1.09000"), position_id=position_id
    )
    venue.place(request, at(1))

    result = venue.replace("r1", "tp", None, D("10000.01"), None, None, None, at(2))

    assert isinstance(result, CancelRefused)
    assert result.text.startswith("TRADING_BAD_VOLUME:")


def test_replace_unknown_order_id_not_found(venue: Venue) -> None:
    result = venue.replace("r1", "l1", 4242, D("1000"), None, None, None, T0)

    assert result == NotFound("r1", "ORDER_NOT_FOUND:Order with orderId:4242 isn't found")


# ---- hedged positions ---------------------------------------------------------------------------------


def test_two_buys_without_position_id_open_two_positions(venue: Venue) -> None:
    first = open_long(venue, "b1", "1000")
    second = open_long(venue, "b2", "1000")

    assert first != second
    assert [p.position_id for p in venue.positions()] == [first, second]


def test_sell_with_position_id_partially_closes_then_closes_long(venue: Venue, prices: RandomWalk) -> None:
    position_id = open_long(venue)
    prices.set_quote(EURUSD, D("1.08200"), D("1.08210"))

    close_part = venue.place(market("s1", Side.SELL, "4000", position_id), at(1))

    assert close_part[-1].order.position_id == position_id
    position = venue.position(position_id)
    assert position is not None
    assert (position.side, position.volume, position.entry_price) == (Side.BUY, D("6000"), D("1.08010"))

    venue.place(market("s2", Side.SELL, "6000", position_id), at(2))

    assert venue.position(position_id) is None
    assert venue.positions() == []


def test_sell_without_position_id_opens_hedge_not_close(venue: Venue) -> None:
    long_id = open_long(venue)

    trade = venue.place(market("s1", Side.SELL, "10000"), at(1))[-1]

    assert trade.order.position_id != long_id
    sides = {(p.position_id, p.side, p.volume) for p in venue.positions()}
    assert sides == {(long_id, Side.BUY, D("10000")), (trade.order.position_id, Side.SELL, D("10000"))}


def test_buy_with_position_id_increases_volume_and_averages_entry(venue: Venue, prices: RandomWalk) -> None:
    position_id = open_long(venue, quantity="10000")
    prices.set_quote(EURUSD, D("1.08100"), D("1.08110"))

    venue.place(market("b2", Side.BUY, "30000", position_id), at(1))

    position = venue.position(position_id)
    assert position is not None
    # (10000 * 1.08010 + 30000 * 1.08110) / 40000 = 1.08085
    assert (position.volume, position.entry_price) == (D("40000"), D("1.080850"))


def test_close_more_than_open_volume_rejected(venue: Venue) -> None:
    position_id = open_long(venue)

    (rejected,) = venue.place(market("s1", Side.SELL, "10000.01", position_id), at(1))

    assert rejected.kind is ExecKind.REJECTED
    assert rejected.text is not None
    assert rejected.text.startswith("TRADING_BAD_VOLUME:")
    position = venue.position(position_id)
    assert position is not None
    assert position.volume == D("10000")


def test_sell_limit_on_long_position_takes_profit_when_crossed(venue: Venue, prices: RandomWalk) -> None:
    position_id = open_long(venue)
    venue.place(
        PlaceRequest(
            "tp", EURUSD, Side.SELL, OrderKind.LIMIT, D("10000"), price=D("1.08500"), position_id=position_id
        ),
        at(1),
    )

    (trade,) = set_eurusd(venue, prices, "1.08500", "1.08510", at(2))

    assert trade.order.position_id == position_id
    assert venue.positions() == []


def test_orphan_close_order_after_position_closed_opens_opposite_position(
    venue: Venue, prices: RandomWalk
) -> None:
    """Pitfall §5 #9: an SL/TP emulated with a pending order outlives the position and opens a new one."""
    position_id = open_long(venue)
    venue.place(
        PlaceRequest(
            "sl",
            EURUSD,
            Side.SELL,
            OrderKind.STOP,
            D("10000"),
            stop_price=D("1.07500"),
            position_id=position_id,
        ),
        at(1),
    )
    venue.place(market("close", Side.SELL, "10000", position_id), at(2))
    assert venue.positions() == []

    (trade,) = set_eurusd(venue, prices, "1.07490", "1.07500", at(3))

    position = venue.position(position_id)
    assert trade.order.status is VenueStatus.FILLED
    assert position is not None
    assert (position.side, position.volume) == (Side.SELL, D("10000"))


# ---- validation ---------------------------------------------------------------------------------------


def _req(**changes: object) -> PlaceRequest:
    base = PlaceRequest("v1", EURUSD, Side.BUY, OrderKind.LIMIT, D("1000"), price=D("1.07000"))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (_req(symbol_id=777), "SYMBOL_NOT_FOUND:"),
        (_req(quantity=D("0")), "TRADING_BAD_VOLUME:"),
        (_req(quantity=D("-1000")), "TRADING_BAD_VOLUME:"),
        (_req(quantity=D("1000.001")), "TRADING_BAD_VOLUME:"),
        (_req(quantity=D("NaN")), "TRADING_BAD_VOLUME:"),
        (_req(price=None), "INVALID_REQUEST:"),
        (_req(price=D("0")), "INVALID_REQUEST:"),
        (_req(stop_price=D("1.09000")), "INVALID_REQUEST:"),
        (_req(kind=OrderKind.STOP, price=None), "INVALID_REQUEST:"),
        (_req(kind=OrderKind.STOP, stop_price=D("1.09000")), "INVALID_REQUEST:"),
        (_req(kind=OrderKind.MARKET), "INVALID_REQUEST:"),
        (_req(kind=OrderKind.MARKET, price=None, expire_time=at(60)), "INVALID_REQUEST:"),
        (_req(expire_time=T0), "INVALID_REQUEST:"),
        (_req(expire_time=at(-1)), "INVALID_REQUEST:"),
        (_req(expire_time=datetime(2030, 1, 1)), "INVALID_REQUEST:"),  # naive on purpose
        (_req(position_id=123), "POSITION_NOT_FOUND:"),
    ],
    ids=[
        "unknown_symbol",
        "zero_volume",
        "negative_volume",
        "volume_below_step",
        "nan_volume",
        "limit_without_price",
        "limit_with_zero_price",
        "limit_with_stop_price",
        "stop_without_stop_price",
        "stop_with_price",
        "market_with_price",
        "market_with_expiry",
        "expiry_now",
        "expiry_in_past",
        "expiry_naive",
        "unknown_position",
    ],
)
def test_place_invalid_request_rejected_with_code(venue: Venue, request_: PlaceRequest, code: str) -> None:
    (rejected,) = venue.place(request_, T0)

    assert rejected.kind is ExecKind.REJECTED
    assert rejected.order.status is VenueStatus.REJECTED
    assert rejected.order.order_id == FIRST_ORDER_ID
    assert rejected.request_id == "v1"
    assert rejected.text is not None
    assert rejected.text.startswith(code)
    assert venue.working_orders() == []
    assert venue.positions() == []


def test_place_position_of_other_symbol_rejected(venue: Venue) -> None:
    position_id = open_long(venue)

    (rejected,) = venue.place(_req(symbol_id=USDJPY, price=D("150.000"), position_id=position_id), at(1))

    assert rejected.text is not None
    assert rejected.text.startswith("POSITION_NOT_FOUND:")


def test_place_duplicate_cl_ord_id_of_working_order_rejected(venue: Venue) -> None:
    venue.place(_req(), T0)

    (rejected,) = venue.place(_req(), at(1))

    assert rejected.kind is ExecKind.REJECTED
    assert rejected.text is not None
    assert rejected.text.startswith("INVALID_REQUEST:")
    assert len(venue.working_orders()) == 1


def test_place_reused_cl_ord_id_of_finished_order_accepted(venue: Venue) -> None:
    venue.place(market("c1", Side.BUY, "1000"), T0)

    executions = venue.place(market("c1", Side.BUY, "1000"), at(1))

    assert kinds(executions) == [ExecKind.NEW, ExecKind.TRADE]


def test_rejected_order_consumes_order_id_but_no_position_id(venue: Venue) -> None:
    venue.place(_req(quantity=D("0")), T0)

    (new,) = venue.place(_req(cl_ord_id="v2"), at(1))

    assert new.order.order_id == FIRST_ORDER_ID + 1
    assert new.order.position_id == FIRST_POSITION_ID


# ---- status and snapshots -----------------------------------------------------------------------------


def test_status_working_order_by_current_cl_ord_id(venue: Venue) -> None:
    venue.place(limit("l1", Side.BUY, "1000", "1.07000"), T0)
    venue.replace("r1", "l1", None, D("2000"), None, None, None, at(1))

    by_original = venue.status("l1", at(2))
    by_current = venue.status("r1", at(2))

    assert isinstance(by_original, Execution)
    assert isinstance(by_current, Execution)
    assert by_current.kind is ExecKind.STATUS
    assert by_current.request_id == "r1"
    assert by_original.order == by_current.order
    assert by_current.order.quantity == D("2000")


def test_status_unknown_cl_ord_id_not_found(venue: Venue) -> None:
    assert venue.status("nope", T0) == NotFound(
        "nope", "ORDER_NOT_FOUND:Order with clientOrderId=nope not found."
    )


def test_executions_hand_out_snapshots_not_live_orders(venue: Venue, prices: RandomWalk) -> None:
    (new,) = venue.place(limit("l1", Side.BUY, "1000", "1.07950"), T0)
    new.order.quantity = D("1")

    (trade,) = set_eurusd(venue, prices, "1.07930", "1.07940", at(1))

    assert new.order.status is VenueStatus.NEW
    assert trade.order.quantity == D("1000")


def test_naive_now_raises(venue: Venue) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        venue.place(_req(), datetime(2024, 5, 6, 9, 30))  # naive on purpose


def test_closed_venue_mutation_raises(prices: RandomWalk) -> None:
    venue = Venue(prices)
    venue.close()

    with pytest.raises(RuntimeError, match="closed"):
        venue.place(_req(), T0)


def test_concurrent_placements_get_distinct_ids(venue: Venue) -> None:
    results: list[Execution] = []

    def place_many(prefix: str) -> None:
        for index in range(50):
            results.extend(venue.place(market(f"{prefix}-{index}", Side.BUY, "1000"), T0))

    threads = [threading.Thread(target=place_many, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    trades = [r for r in results if r.kind is ExecKind.TRADE]
    assert len({t.order.order_id for t in trades}) == 200
    assert len(venue.positions()) == 200


# ---- persistence --------------------------------------------------------------------------------------


def _populate(venue: Venue) -> tuple[int, int]:
    """A long position partially closed, a resting limit and a filled order; returns (position, limit)."""
    position_id = open_long(venue)
    venue.place(market("s1", Side.SELL, "4000", position_id), at(1))
    (resting,) = venue.place(limit("l1", Side.BUY, "1000", "1.07000", expire_time=at(3600)), at(2))
    return position_id, resting.order.order_id


def _assert_resumed(venue: Venue, position_id: int, resting_id: int) -> None:
    position = venue.position(position_id)
    assert position is not None
    assert (position.side, position.volume, position.entry_price) == (Side.BUY, D("6000"), D("1.08010"))
    (working,) = venue.working_orders()
    assert working.order_id == resting_id
    assert working.expire_time == at(3600)
    filled = venue.status("open-1", at(10))
    assert isinstance(filled, Execution)
    assert filled.order.status is VenueStatus.FILLED
    assert filled.order.avg_px == D("1.08010")


def test_restart_after_close_resumes_orders_positions_and_ids(prices: RandomWalk, tmp_path: Path) -> None:
    path = tmp_path / "venue.sqlite"
    first = Venue(prices, state_path=path)
    position_id, resting_id = _populate(first)
    first.close()

    second = Venue(prices, state_path=path)
    try:
        _assert_resumed(second, position_id, resting_id)
        (new,) = second.place(limit("l2", Side.SELL, "1000", "1.09000"), at(20))
        assert new.order.order_id == resting_id + 1
        assert new.order.position_id == FIRST_POSITION_ID + 2
    finally:
        second.close()


def test_restart_without_close_sees_every_answered_change(prices: RandomWalk, tmp_path: Path) -> None:
    path = tmp_path / "venue.sqlite"
    abandoned = Venue(prices, state_path=path)
    position_id, resting_id = _populate(abandoned)

    successor = Venue(prices, state_path=path)
    try:
        _assert_resumed(successor, position_id, resting_id)
        result = successor.cancel("x1", "l1", None, at(20))
        assert isinstance(result, list)
        assert successor.place(market("c9", Side.BUY, "1000"), at(21))[0].order.order_id == resting_id + 1
    finally:
        successor.close()
        abandoned.close()


def test_restart_after_sigkill_resumes_committed_state(prices: RandomWalk, tmp_path: Path) -> None:
    path = tmp_path / "venue.sqlite"
    script = (
        "import os, signal, sys\n"
        "from datetime import datetime\n"
        "from decimal import Decimal\n"
        "from fixadapter.sim.prices import DEFAULT_SYMBOLS, RandomWalk\n"
        "from fixadapter.sim.venue import OrderKind, PlaceRequest, Side, Venue\n"
        "walk = RandomWalk(DEFAULT_SYMBOLS, seed=1)\n"
        "walk.set_quote(1, Decimal('1.08000'), Decimal('1.08010'))\n"
        "venue = Venue(walk, state_path=__import__('pathlib').Path(sys.argv[1]))\n"
        "now = datetime.fromisoformat(sys.argv[2])\n"
        "venue.place(PlaceRequest('k1', 1, Side.BUY, OrderKind.MARKET, Decimal('10000')), now)\n"
        "venue.place(PlaceRequest('k2', 1, Side.BUY, OrderKind.LIMIT, Decimal('1000'),"
        " price=Decimal('1.07000')), now)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    completed = subprocess.run(  # noqa: S603, RUF100 - our own interpreter and script
        [sys.executable, "-c", script, str(path), T0.isoformat()], env=env, check=False, timeout=60
    )
    assert completed.returncode == -signal.SIGKILL

    venue = Venue(prices, state_path=path)
    try:
        assert [o.cl_ord_id for o in venue.working_orders()] == ["k2"]
        assert [p.volume for p in venue.positions()] == [D("10000")]
        (new,) = venue.place(limit("l3", Side.BUY, "1000", "1.07000"), at(1))
        assert new.order.order_id == FIRST_ORDER_ID + 2
        assert new.order.position_id == FIRST_POSITION_ID + 2
    finally:
        venue.close()


def test_restart_market_order_in_parts_continues_execution(prices: RandomWalk, tmp_path: Path) -> None:
    path = tmp_path / "venue.sqlite"
    first = Venue(prices, state_path=path, partial_fill_parts=2)
    (new,) = first.place(market("c1", Side.BUY, "1000"), T0)
    first.advance(new.order.order_id, at(1))
    first.close()

    second = Venue(prices, state_path=path, partial_fill_parts=2)
    try:
        (trade,) = second.advance(new.order.order_id, at(2))
        assert trade.order.status is VenueStatus.FILLED
        assert trade.order.cum_qty == D("1000")
    finally:
        second.close()


def test_state_file_uses_wal_journal(prices: RandomWalk, tmp_path: Path) -> None:
    path = tmp_path / "venue.sqlite"
    Venue(prices, state_path=path).close()

    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        connection.close()


def test_a_volume_below_the_symbols_minimum_is_rejected(venue: Venue) -> None:
    (rejected,) = venue.place(market("v1", Side.BUY, "1.5"), T0)

    assert rejected.kind is ExecKind.REJECTED
    assert (
        rejected.text == "TRADING_BAD_VOLUME:Order volume 1.5 is less than the minimum volume 1000 of EURUSD."
    )
    assert venue.positions() == []


def test_a_volume_off_the_symbols_step_is_rejected(venue: Venue) -> None:
    (rejected,) = venue.place(limit("v1", Side.BUY, "1500", "1.07000"), T0)

    assert rejected.kind is ExecKind.REJECTED
    assert rejected.text == (
        "TRADING_BAD_VOLUME:Order volume 1500 is not a multiple of the volume step 1000 of EURUSD."
    )


def test_a_replace_to_a_volume_off_the_step_is_refused(venue: Venue) -> None:
    (new,) = venue.place(limit("l1", Side.BUY, "1000", "1.07000"), T0)

    result = venue.replace("r1", "l1", new.order.order_id, D("2500"), None, None, None, at(1))

    assert isinstance(result, CancelRefused)
    assert result.text.startswith("TRADING_BAD_VOLUME:Order volume 2500 is not a multiple")

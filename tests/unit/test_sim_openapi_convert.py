"""Venue executions as ProtoOAExecutionEvents and venue records as Open API model messages (reference 3.3
and 3.4: volumes in 0.01 units, money scaled by moneyDigits, Unix ms)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from fixadapter.protocols.openapi.generated import OpenApiModelMessages_pb2 as model
from fixadapter.sim.openapi import convert
from fixadapter.sim.prices import DEFAULT_SYMBOLS, RandomWalk
from fixadapter.sim.records import VenueDeal
from fixadapter.sim.venue import ExecKind, Execution, OrderKind, PlaceRequest, Side, Venue

EURUSD = 1
T0 = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)
CTID = 20_000_001
BALANCE = Decimal("100000.00")


def venue() -> Venue:
    prices = RandomWalk(DEFAULT_SYMBOLS, seed=1)
    prices.set_quote(EURUSD, Decimal("1.08000"), Decimal("1.08010"))
    return Venue(prices)


def test_volumes_are_hundredths_of_a_unit_and_money_has_two_digits():
    assert convert.to_cents(Decimal(1000)) == 100_000 and convert.from_cents(100_000) == Decimal(1000)
    assert convert.money(Decimal("100000.00")) == 10_000_000
    assert convert.millis(T0) == 1_714_987_800_000 and convert.from_millis(1_714_987_800_000) == T0
    assert convert.relative_price(500) == Decimal("0.005")


def test_a_market_order_becomes_accepted_then_filled_with_its_deal_and_open_position():
    accepted, filled = venue().place(
        PlaceRequest("c1", EURUSD, Side.BUY, OrderKind.MARKET, Decimal(1000), label="L"), T0
    )
    first = convert.execution_event(CTID, accepted)
    last = convert.execution_event(CTID, filled, Decimal(0), BALANCE)
    assert first is not None and last is not None
    assert first.executionType == model.ORDER_ACCEPTED and not first.HasField("deal")
    assert first.order.orderStatus == model.ORDER_STATUS_ACCEPTED and first.order.clientOrderId == "c1"
    assert last.executionType == model.ORDER_FILLED and last.ctidTraderAccountId == CTID
    assert last.order.orderStatus == model.ORDER_STATUS_FILLED and last.order.executedVolume == 100_000
    assert last.order.timeInForce == model.IMMEDIATE_OR_CANCEL and last.order.tradeData.label == "L"
    assert last.deal.filledVolume == 100_000 and last.deal.executionPrice == 1.0801
    assert last.deal.dealStatus == model.FILLED and not last.deal.HasField("closePositionDetail")
    assert last.position.positionStatus == model.POSITION_STATUS_OPEN and last.position.price == 1.0801
    assert last.IsInitialized()


def test_a_closing_fill_carries_the_closed_position_and_its_gross_profit():
    trading = venue()
    opened = trading.place(PlaceRequest("o", EURUSD, Side.BUY, OrderKind.MARKET, Decimal(1000)), T0)[-1]
    trading.prices.set_quote(EURUSD, Decimal("1.09000"), Decimal("1.09010"))
    close = PlaceRequest(
        "x",
        EURUSD,
        Side.SELL,
        OrderKind.MARKET,
        Decimal(1000),
        position_id=opened.order.position_id,
        closing=True,
    )
    event = convert.execution_event(CTID, trading.place(close, T0)[-1], Decimal("9.90"), BALANCE)
    assert event is not None and event.order.closingOrder
    assert (
        event.position.positionStatus == model.POSITION_STATUS_CLOSED and event.position.tradeData.volume == 0
    )
    detail = event.deal.closePositionDetail
    assert detail.entryPrice == 1.0801 and detail.closedVolume == 100_000
    assert detail.grossProfit == 990 and detail.balance == 10_000_000  # 9.90 and 100,000.00 in cents
    assert convert.gross_profit(event_deal(trading)) == Decimal("9.90")  # (1.09000 - 1.08010) x 1000
    assert event.IsInitialized()


def test_a_rejection_carries_the_venue_code_and_a_status_answer_is_no_event():
    trading = venue()
    rejected = trading.place(PlaceRequest("r", 999, Side.BUY, OrderKind.MARKET, Decimal(1000)), T0)[0]
    assert rejected.kind is ExecKind.REJECTED
    event = convert.execution_event(CTID, rejected)
    assert event is not None and event.executionType == model.ORDER_REJECTED
    assert event.errorCode == "SYMBOL_NOT_FOUND"
    status = trading.status("r", T0)
    assert isinstance(status, Execution) and status.kind is ExecKind.STATUS
    assert convert.execution_event(CTID, status) is None


def event_deal(trading: Venue) -> VenueDeal:
    return trading.deals()[-1]

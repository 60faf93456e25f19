"""Venue executions as ProtoOAExecutionEvents and venue records as Open API model messages (reference 3.3
and 3.4: volumes in 0.01 units, money scaled by moneyDigits, Unix ms)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from fixadapter.protocols.openapi.generated import OpenApiModelMessages_pb2 as model
from fixadapter.sim.openapi import convert
from fixadapter.sim.prices import DEFAULT_SYMBOLS, RandomWalk
from fixadapter.sim.records import DealStatus, VenueDeal
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


def test_a_stop_limit_shows_its_stop_and_slippage_and_its_limit_price_only_once_triggered():
    prices = RandomWalk(DEFAULT_SYMBOLS, seed=1)
    prices.set_quote(EURUSD, Decimal("1.08000"), Decimal("1.08010"))
    sim = Venue(prices)
    request = PlaceRequest(
        "sl", EURUSD, Side.SELL, OrderKind.STOP_LIMIT, Decimal(1000), Decimal("1.07930"), Decimal("1.07950")
    )
    (accepted,) = sim.place(request, T0)

    resting = convert.order(accepted.order)
    assert resting.orderType == model.STOP_LIMIT and resting.stopPrice == 1.0795
    assert resting.slippageInPoints == 20 and not resting.HasField("limitPrice")

    sim.on_quote(prices.set_quote(EURUSD, Decimal("1.07900"), Decimal("1.07910")), T0)  # gaps past the limit
    triggered = sim.order(accepted.order.order_id)
    assert triggered is not None
    shown = convert.order(triggered)
    assert shown.limitPrice == 1.0793 and shown.slippageInPoints == 20 and shown.orderType == model.STOP_LIMIT


def test_a_deal_and_its_close_detail_carry_its_commission_in_cents_and_no_swap():
    deal = VenueDeal(
        deal_id=1,
        order_id=2,
        position_id=3,
        symbol_id=EURUSD,
        side=Side.SELL,
        volume=Decimal(1000),
        filled_volume=Decimal(1000),
        price=Decimal("1.08100"),
        created_at=T0,
        executed_at=T0,
        status=DealStatus.FILLED,
        closed_entry_price=Decimal("1.08000"),
        closed_volume=Decimal(1000),
        commission=Decimal("-0.03"),
    )

    proto = convert.deal(deal, Decimal(1), BALANCE)

    assert proto.commission == -3 and proto.moneyDigits == 2
    assert proto.closePositionDetail.commission == -3 and proto.closePositionDetail.swap == 0

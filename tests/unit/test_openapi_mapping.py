"""Open API numbers in the normalized model: volumes in hundredths of a unit on each symbol's grid, prices
read back exactly, execution events as the same reports FIX produces."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fixadapter.connectors.openapi import mapping
from fixadapter.connectors.openapi.symbols import SymbolSpec, VolumeError, from_double, hundredths, units
from fixadapter.model.enums import ExecKind, OrderStatus, OrderType, PositionSide, Side
from fixadapter.protocols.openapi.generated import OpenApiMessages_pb2 as oa
from fixadapter.protocols.openapi.generated import OpenApiModelMessages_pb2 as model

EURUSD = SymbolSpec(
    symbol_id=1,
    name="EURUSD",
    digits=5,
    pip_position=4,
    min_volume=100_000,
    step_volume=100_000,
    max_volume=10_000_000_000,
    lot_size=10_000_000,
)


def test_a_quantity_in_units_travels_in_hundredths_and_comes_back_equal() -> None:
    assert hundredths(Decimal(10000)) == 1_000_000
    assert units(1_000_000) == Decimal(10000)
    assert hundredths(Decimal("0.01")) == 1
    assert units(0) == 0


def test_a_quantity_finer_than_a_hundredth_is_refused_not_rounded() -> None:
    with pytest.raises(VolumeError, match="finer than a hundredth"):
        hundredths(Decimal("0.005"))


def test_the_symbol_grid_refuses_off_step_below_minimum_and_above_maximum_naming_the_rule() -> None:
    assert EURUSD.volume(Decimal(3000)) == 300_000
    with pytest.raises(VolumeError, match="not a multiple of the step of 1000 units"):
        EURUSD.volume(Decimal(1500))
    with pytest.raises(VolumeError, match="below the minimum"):
        EURUSD.volume(Decimal(100))
    with pytest.raises(VolumeError, match="above the maximum"):
        EURUSD.volume(Decimal(200_000_000))


def test_a_price_goes_out_only_on_the_symbols_digits_and_comes_back_as_the_decimal_it_was() -> None:
    assert EURUSD.price(Decimal("1.08351")) == 1.08351
    with pytest.raises(ValueError, match="more than the symbol's 5 digits"):
        EURUSD.price(Decimal("1.083512"))
    assert from_double(1.08351) == Decimal("1.08351")
    assert from_double(0.1 + 0.2, 5) == Decimal("0.30000")


def test_relative_protection_distances_travel_in_hundred_thousandths_of_a_price_unit() -> None:
    assert EURUSD.relative(Decimal("0.0050"), "stop_loss_distance") == 500
    with pytest.raises(ValueError, match="at most 5 decimals"):
        EURUSD.relative(Decimal("0.000001"), "stop_loss_distance")


def _order(**fields: object) -> model.ProtoOAOrder:
    order = model.ProtoOAOrder(
        orderId=9001,
        tradeData=model.ProtoOATradeData(symbolId=1, volume=1_000_000, tradeSide=model.BUY, label="L"),
        orderType=model.MARKET,
        orderStatus=model.ORDER_STATUS_ACCEPTED,
        clientOrderId="CL1",
        positionId=7001,
        utcLastUpdateTimestamp=1_700_000_000_000,
    )
    for name, value in fields.items():
        setattr(order, name, value)
    return order


def test_a_filled_event_is_a_trade_report_with_cumulative_quantity_average_price_and_position() -> None:
    order = _order(orderStatus=model.ORDER_STATUS_FILLED, executedVolume=1_000_000, executionPrice=1.0836)
    event = oa.ProtoOAExecutionEvent(
        ctidTraderAccountId=5,
        executionType=model.ORDER_FILLED,
        order=order,
        deal=model.ProtoOADeal(
            dealId=1,
            orderId=9001,
            positionId=7001,
            volume=1_000_000,
            filledVolume=1_000_000,
            symbolId=1,
            createTimestamp=1,
            executionTimestamp=1,
            tradeSide=model.BUY,
            dealStatus=model.FILLED,
            executionPrice=1.0836,
        ),
    )
    report = mapping.execution_report(event, digits=5, cl_ord_id="CL1", orig_cl_ord_id=None)
    assert report is not None
    assert (report.kind, report.status) == (ExecKind.TRADE, OrderStatus.FILLED)
    assert (report.order_id, report.cl_ord_id, report.position_id) == ("9001", "CL1", "7001")
    assert (report.quantity, report.cum_qty, report.leaves_qty, report.last_qty) == (
        Decimal(10000),
        Decimal(10000),
        Decimal(0),
        Decimal(10000),
    )
    assert report.avg_px == Decimal("1.0836")
    assert (report.side, report.order_type, report.label) == (Side.BUY, OrderType.MARKET, "L")


def test_the_same_event_twice_has_the_same_dedupe_key_and_a_later_fill_another() -> None:
    first = _order(orderStatus=model.ORDER_STATUS_ACCEPTED, executedVolume=400_000, executionPrice=1.0836)
    later = _order(
        orderStatus=model.ORDER_STATUS_FILLED,
        executedVolume=1_000_000,
        executionPrice=1.0837,
        utcLastUpdateTimestamp=1_700_000_000_500,
    )

    def key(order: model.ProtoOAOrder, kind: int) -> str:
        event = oa.ProtoOAExecutionEvent(ctidTraderAccountId=5, executionType=kind, order=order)
        report = mapping.execution_report(event, digits=5, cl_ord_id="CL1", orig_cl_ord_id=None)
        assert report is not None
        return report.dedupe_key

    assert key(first, model.ORDER_PARTIAL_FILL) == key(first, model.ORDER_PARTIAL_FILL)
    assert key(first, model.ORDER_PARTIAL_FILL) != key(later, model.ORDER_FILLED)


def test_a_venue_order_view_is_a_status_report_working_until_done() -> None:
    resting = _order(orderType=model.LIMIT, limitPrice=1.08, executedVolume=0)
    part = _order(orderType=model.LIMIT, limitPrice=1.08, executedVolume=300_000, executionPrice=1.08)
    assert mapping.status_report(resting, 5).status is OrderStatus.NEW
    assert mapping.status_report(resting, 5).price == Decimal("1.08000")
    assert mapping.status_report(part, 5).status is OrderStatus.PARTIALLY_FILLED
    assert mapping.status_report(part, 5).leaves_qty == Decimal(7000)
    cancelled = _order(orderStatus=model.ORDER_STATUS_CANCELLED)
    assert mapping.status_report(cancelled, 5).status is OrderStatus.CANCELLED


def test_a_swap_or_deposit_event_is_not_an_order_report() -> None:
    event = oa.ProtoOAExecutionEvent(ctidTraderAccountId=5, executionType=model.SWAP)
    assert mapping.execution_report(event, digits=5, cl_ord_id=None, orig_cl_ord_id=None) is None


def test_a_venue_position_is_long_or_short_with_units_and_entry_price() -> None:
    position = model.ProtoOAPosition(
        positionId=7001,
        tradeData=model.ProtoOATradeData(symbolId=1, volume=250_000, tradeSide=model.SELL),
        positionStatus=model.POSITION_STATUS_OPEN,
        swap=0,
        price=1.08344,
    )
    mapped = mapping.position(position, 5)
    assert (mapped.position_id, mapped.side, mapped.quantity, mapped.entry_price) == (
        "7001",
        PositionSide.SHORT,
        Decimal(2500),
        Decimal("1.08344"),
    )


def test_a_fill_carries_the_deals_own_price_commission_and_the_swap_a_closing_deal_books() -> None:
    from fixadapter.model.orders import Order
    from fixadapter.model.transitions import apply_execution

    order = _order(orderStatus=model.ORDER_STATUS_FILLED, executedVolume=1_000_000, executionPrice=1.08362)
    deal = model.ProtoOADeal(
        dealId=1,
        orderId=9001,
        positionId=7001,
        volume=1_000_000,
        filledVolume=1_000_000,
        symbolId=1,
        createTimestamp=1,
        executionTimestamp=1,
        tradeSide=model.BUY,
        dealStatus=model.FILLED,
        executionPrice=1.08362,
        commission=-3512,
        moneyDigits=4,
        closePositionDetail=model.ProtoOAClosePositionDetail(
            entryPrice=1.08, grossProfit=100, swap=-250, commission=0, balance=1, moneyDigits=4
        ),
    )
    event = oa.ProtoOAExecutionEvent(
        ctidTraderAccountId=5, executionType=model.ORDER_FILLED, order=order, deal=deal
    )
    report = mapping.execution_report(event, digits=5, cl_ord_id="CL1", orig_cl_ord_id=None)
    assert report is not None
    assert (report.last_px, report.commission, report.swap) == (
        Decimal("1.08362"),
        Decimal("-0.3512"),
        Decimal("-0.025"),
    )
    working = Order(
        cl_ord_id="CL1",
        symbol_id=1,
        symbol="EURUSD",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=10000,
    )
    applied = apply_execution(working, report)
    assert applied is not None and applied.fill is not None
    assert (applied.fill.price, applied.fill.commission, applied.fill.swap) == (
        Decimal("1.08362"),
        Decimal("-0.3512"),
        Decimal("-0.025"),
    )

"""The venue's records as Open API model messages, and venue executions as ProtoOAExecutionEvents.

The venue keeps units, Decimal prices and datetimes; the Open API sends volumes in 0.01 of a unit, prices
as doubles, money as integers scaled by 10^moneyDigits and times in Unix ms (reference 3.4). An order's
and a position's ids are the venue's own, the same numbers the FIX front sends in tags 37 and 721.

A stop-limit shows its stopPrice and slippageInPoints (the distance to its limit), as it was sent; its
limitPrice only once triggered, when it works as the limit order the proto says limitPrice is for. A
deal's commission is the venue's (USD, negative when charged); swap is always 0 (no rollover here).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from fixadapter.model.enums import Side
from fixadapter.protocols.openapi.generated import OpenApiMessages_pb2 as messages
from fixadapter.protocols.openapi.generated import OpenApiModelMessages_pb2 as model
from fixadapter.sim.prices import SymbolSpec
from fixadapter.sim.records import (
    DealStatus,
    ExecKind,
    Execution,
    OrderKind,
    VenueDeal,
    VenueOrder,
    VenuePosition,
    VenueStatus,
)

MONEY_DIGITS = 2
USD_ASSET_ID = 15  # the deposit asset (USD); cTrader numbers assets per broker, 15 is an assumption
CENTS_PER_UNIT = 100
RELATIVE_PRICE_SCALE = Decimal(100_000)  # relativeStopLoss/TakeProfit: 1/100000 of a price unit
MAX_VOLUME_UNITS = Decimal(100_000_000)

ORDER_TYPE = {
    OrderKind.MARKET: model.MARKET,
    OrderKind.LIMIT: model.LIMIT,
    OrderKind.STOP: model.STOP,
    OrderKind.STOP_LIMIT: model.STOP_LIMIT,
}
KIND_OF_TYPE = {number: kind for kind, number in ORDER_TYPE.items()}
TRADE_SIDE = {Side.BUY: model.BUY, Side.SELL: model.SELL}
SIDE_OF_TRADE_SIDE = {number: side for side, number in TRADE_SIDE.items()}
ORDER_STATUS = {
    VenueStatus.NEW: model.ORDER_STATUS_ACCEPTED,
    VenueStatus.PARTIALLY_FILLED: model.ORDER_STATUS_ACCEPTED,
    VenueStatus.FILLED: model.ORDER_STATUS_FILLED,
    VenueStatus.CANCELLED: model.ORDER_STATUS_CANCELLED,
    VenueStatus.REJECTED: model.ORDER_STATUS_REJECTED,
    VenueStatus.EXPIRED: model.ORDER_STATUS_EXPIRED,
}
EXECUTION_TYPE = {
    ExecKind.NEW: model.ORDER_ACCEPTED,
    ExecKind.CANCELLED: model.ORDER_CANCELLED,
    ExecKind.REPLACED: model.ORDER_REPLACED,
    ExecKind.REJECTED: model.ORDER_REJECTED,
    ExecKind.EXPIRED: model.ORDER_EXPIRED,
}
DEAL_STATUS = {DealStatus.FILLED: model.FILLED, DealStatus.PARTIALLY_FILLED: model.PARTIALLY_FILLED}


def to_cents(units: Decimal) -> int:
    """Units as the Open API's volume (0.01 of a unit)."""
    return int((units * CENTS_PER_UNIT).to_integral_value(rounding=ROUND_HALF_EVEN))


def from_cents(volume: int) -> Decimal:
    return Decimal(volume) / CENTS_PER_UNIT


def money(amount: Decimal) -> int:
    """An amount in the deposit currency scaled by 10^MONEY_DIGITS."""
    return int((amount * 10**MONEY_DIGITS).to_integral_value(rounding=ROUND_HALF_EVEN))


def millis(moment: datetime | None) -> int:
    return int(moment.timestamp() * 1000) if moment is not None else 0


def from_millis(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


def relative_price(value: int) -> Decimal:
    """A relativeStopLoss/relativeTakeProfit distance as a price difference."""
    return Decimal(value) / RELATIVE_PRICE_SCALE


def error_code(text: str | None) -> str:
    """The code of a venue refusal text `CODE:description` (the venue writes Open API codes)."""
    code = (text or "").partition(":")[0]
    return code if code.isupper() and code.replace("_", "").isalnum() else "INVALID_REQUEST"


def light_symbol(spec: SymbolSpec) -> model.ProtoOALightSymbol:
    return model.ProtoOALightSymbol(symbolId=spec.symbol_id, symbolName=spec.name, enabled=True)


def symbol(spec: SymbolSpec) -> model.ProtoOASymbol:
    """The full symbol: volumes in 0.01 units; FX lots are 100,000 units, other symbols 1 unit."""
    pip_position = max(spec.digits - 1, 0)
    lot_units = Decimal(100_000) if spec.min_volume >= 1000 else Decimal(1)
    return model.ProtoOASymbol(
        symbolId=spec.symbol_id,
        digits=spec.digits,
        pipPosition=pip_position,
        enableShortSelling=True,
        minVolume=to_cents(spec.min_volume),
        stepVolume=to_cents(spec.volume_step),
        maxVolume=to_cents(MAX_VOLUME_UNITS),
        lotSize=to_cents(lot_units),
        tradingMode=model.ENABLED,
    )


def order(venue_order: VenueOrder) -> model.ProtoOAOrder:
    """The venue order as ProtoOAOrder; clientOrderId is the ClOrdID it was placed with (FIX tag 11)."""
    trade_data = model.ProtoOATradeData(
        symbolId=venue_order.symbol_id,
        volume=to_cents(venue_order.quantity),
        tradeSide=TRADE_SIDE[venue_order.side],
        openTimestamp=millis(venue_order.created_at),
    )
    if venue_order.label is not None:
        trade_data.label = venue_order.label
    if venue_order.comment is not None:
        trade_data.comment = venue_order.comment
    proto = model.ProtoOAOrder(
        orderId=venue_order.order_id,
        tradeData=trade_data,
        orderType=ORDER_TYPE[venue_order.kind],
        orderStatus=ORDER_STATUS[venue_order.status],
        executedVolume=to_cents(venue_order.cum_qty),
        utcLastUpdateTimestamp=millis(venue_order.transact_time),
        closingOrder=venue_order.closing,
        clientOrderId=venue_order.cl_ord_id,
        positionId=venue_order.position_id,
        trailingStopLoss=venue_order.trailing_stop_loss,
        timeInForce=_time_in_force(venue_order),
    )
    stop_limit = venue_order.kind is OrderKind.STOP_LIMIT
    if stop_limit and venue_order.price is not None and venue_order.stop_price is not None:
        proto.slippageInPoints = points(venue_order.price - venue_order.stop_price)
    optional_prices = {
        "executionPrice": venue_order.avg_px,
        "limitPrice": venue_order.price if venue_order.triggered or not stop_limit else None,
        "stopPrice": venue_order.stop_price,
        "stopLoss": venue_order.stop_loss,
        "takeProfit": venue_order.take_profit,
    }
    for name, value in optional_prices.items():
        if value is not None:
            setattr(proto, name, float(value))
    if venue_order.expire_time is not None:
        proto.expirationTimestamp = millis(venue_order.expire_time)
    if venue_order.relative_stop_loss is not None:
        proto.relativeStopLoss = int(venue_order.relative_stop_loss * RELATIVE_PRICE_SCALE)
    if venue_order.relative_take_profit is not None:
        proto.relativeTakeProfit = int(venue_order.relative_take_profit * RELATIVE_PRICE_SCALE)
    return proto


def points(distance: Decimal) -> int:
    """A price distance in the symbol's points (slippageInPoints).

    The venue keeps every order price on its symbol's grid (quantized to its digits when accepted and
    amended), so the difference of two has the symbol's exponent and its digits count the points.
    """
    exponent = distance.as_tuple().exponent
    if not isinstance(exponent, int):
        raise ValueError(f"distance {distance} is not a finite price difference")
    return abs(int(distance.scaleb(-exponent)))


def _time_in_force(venue_order: VenueOrder) -> model.ProtoOATimeInForce.ValueType:
    if venue_order.kind is OrderKind.MARKET:
        return model.IMMEDIATE_OR_CANCEL
    return model.GOOD_TILL_DATE if venue_order.expire_time is not None else model.GOOD_TILL_CANCEL


def position(venue_position: VenuePosition, used_margin: Decimal | None = None) -> model.ProtoOAPosition:
    trade_data = model.ProtoOATradeData(
        symbolId=venue_position.symbol_id,
        volume=to_cents(venue_position.volume),
        tradeSide=TRADE_SIDE[venue_position.side],
        openTimestamp=millis(venue_position.opened_at),
    )
    if venue_position.label is not None:
        trade_data.label = venue_position.label
    if venue_position.comment is not None:
        trade_data.comment = venue_position.comment
    proto = model.ProtoOAPosition(
        positionId=venue_position.position_id,
        tradeData=trade_data,
        positionStatus=model.POSITION_STATUS_OPEN,
        swap=0,
        price=float(venue_position.entry_price),
        commission=0,
        moneyDigits=MONEY_DIGITS,
        trailingStopLoss=venue_position.trailing_stop_loss,
    )
    if venue_position.stop_loss is not None:
        proto.stopLoss = float(venue_position.stop_loss)
    if venue_position.take_profit is not None:
        proto.takeProfit = float(venue_position.take_profit)
    if used_margin is not None:
        proto.usedMargin = money(used_margin)
    return proto


def closed_position(deal: VenueDeal, opened_side: Side) -> model.ProtoOAPosition:
    """A position the deal closed: volume 0, status CLOSED, at the entry price it had."""
    entry = deal.closed_entry_price if deal.closed_entry_price is not None else deal.price
    trade_data = model.ProtoOATradeData(
        symbolId=deal.symbol_id,
        volume=0,
        tradeSide=TRADE_SIDE[opened_side],
        closeTimestamp=millis(deal.executed_at),
    )
    return model.ProtoOAPosition(
        positionId=deal.position_id,
        tradeData=trade_data,
        positionStatus=model.POSITION_STATUS_CLOSED,
        swap=0,
        price=float(entry),
        commission=0,
        moneyDigits=MONEY_DIGITS,
    )


def deal(
    venue_deal: VenueDeal, gross_profit: Decimal | None = None, balance: Decimal | None = None
) -> model.ProtoOADeal:
    proto = model.ProtoOADeal(
        dealId=venue_deal.deal_id,
        orderId=venue_deal.order_id,
        positionId=venue_deal.position_id,
        volume=to_cents(venue_deal.volume),
        filledVolume=to_cents(venue_deal.filled_volume),
        symbolId=venue_deal.symbol_id,
        createTimestamp=millis(venue_deal.created_at),
        executionTimestamp=millis(venue_deal.executed_at),
        utcLastUpdateTimestamp=millis(venue_deal.executed_at),
        executionPrice=float(venue_deal.price),
        tradeSide=TRADE_SIDE[venue_deal.side],
        dealStatus=DEAL_STATUS[venue_deal.status],
        commission=money(venue_deal.commission),
        moneyDigits=MONEY_DIGITS,
    )
    if venue_deal.closed_entry_price is not None and venue_deal.closed_volume is not None:
        proto.closePositionDetail.CopyFrom(
            model.ProtoOAClosePositionDetail(
                entryPrice=float(venue_deal.closed_entry_price),
                grossProfit=money(gross_profit or Decimal(0)),
                swap=0,
                commission=money(venue_deal.commission),
                balance=money(balance or Decimal(0)),
                closedVolume=to_cents(venue_deal.closed_volume),
                moneyDigits=MONEY_DIGITS,
            )
        )
    return proto


def execution_event(
    ctid: int,
    venue_execution: Execution,
    profit: Decimal = Decimal(0),
    balance: Decimal = Decimal(0),
) -> messages.ProtoOAExecutionEvent | None:
    """The ProtoOAExecutionEvent of one venue execution, None for a FIX status answer (no event at cTrader).

    A fill is ORDER_FILLED when it completes the order, ORDER_PARTIAL_FILL otherwise, with its deal and the
    position after it (CLOSED, volume 0, when the fill closed it); a closing deal carries `profit` and the
    `balance` after it (USD).
    """
    kind = venue_execution.kind
    venue_order = venue_execution.order
    if kind is ExecKind.STATUS:
        return None
    event = messages.ProtoOAExecutionEvent(ctidTraderAccountId=ctid, order=order(venue_order))
    if kind is ExecKind.TRADE:
        filled = venue_order.status is VenueStatus.FILLED
        event.executionType = model.ORDER_FILLED if filled else model.ORDER_PARTIAL_FILL
        venue_deal = venue_execution.deal
        if venue_deal is not None:
            event.deal.CopyFrom(deal(venue_deal, profit, balance))
            if venue_execution.position is not None:
                event.position.CopyFrom(position(venue_execution.position))
            else:
                event.position.CopyFrom(closed_position(venue_deal, venue_order.side.opposite))
    else:
        event.executionType = EXECUTION_TYPE[kind]
        if kind is ExecKind.REJECTED:
            event.errorCode = error_code(venue_execution.text)
    if venue_execution.server_event:
        event.isServerEvent = True
    return event


def gross_profit(venue_deal: VenueDeal) -> Decimal:
    """The profit of a closing deal in the symbol's quote currency (the simulator does not convert it)."""
    if venue_deal.closed_entry_price is None or venue_deal.closed_volume is None:
        return Decimal(0)
    # The deal's side is the closing side: a sell closes a long, which gains when the price rose.
    direction = 1 if venue_deal.side is Side.SELL else -1
    return direction * (venue_deal.price - venue_deal.closed_entry_price) * venue_deal.closed_volume

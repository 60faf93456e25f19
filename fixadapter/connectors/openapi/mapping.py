"""Open API orders, deals and positions in the normalized model's terms (reports, positions).

Everything here is a pure function of the message (and of the symbol spec for prices): the connector
decides which order or request a message is about, this says what it means. An execution event becomes
an ExecutionReport the engine applies exactly as it applies FIX's: cumulative quantity and average price
from the order, so a fill seen twice (live and in a reconcile, or on both routes) never counts twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from fixadapter.connectors.openapi.symbols import from_double, units
from fixadapter.model.enums import ExecKind, OrderStatus, OrderType, PositionSide, Side, TimeInForce
from fixadapter.model.orders import Position
from fixadapter.model.reports import ExecutionReport
from fixadapter.protocols.openapi.generated import OpenApiMessages_pb2 as oa
from fixadapter.protocols.openapi.generated import OpenApiModelMessages_pb2 as model

__all__ = [
    "EXEC_KIND",
    "ORDER_TYPE",
    "SIDE",
    "execution_report",
    "position",
    "status_report",
    "timestamp_ms",
]

SIDE = {model.BUY: Side.BUY, model.SELL: Side.SELL}
SIDE_CODE = {side: code for code, side in SIDE.items()}
ORDER_TYPE = {
    model.MARKET: OrderType.MARKET,
    model.LIMIT: OrderType.LIMIT,
    model.STOP: OrderType.STOP,
    model.MARKET_RANGE: OrderType.MARKET,
    model.STOP_LIMIT: OrderType.STOP_LIMIT,
}
TIME_IN_FORCE = {
    model.GOOD_TILL_DATE: TimeInForce.GOOD_TILL_DATE,
    model.GOOD_TILL_CANCEL: TimeInForce.GOOD_TILL_CANCEL,
    model.IMMEDIATE_OR_CANCEL: TimeInForce.IMMEDIATE_OR_CANCEL,
}
TIME_IN_FORCE_CODE = {tif: code for code, tif in TIME_IN_FORCE.items()}
EXEC_KIND = {
    model.ORDER_ACCEPTED: ExecKind.ACCEPTED,
    model.ORDER_FILLED: ExecKind.TRADE,
    model.ORDER_PARTIAL_FILL: ExecKind.TRADE,
    model.ORDER_REPLACED: ExecKind.REPLACED,
    model.ORDER_CANCELLED: ExecKind.CANCELLED,
    model.ORDER_EXPIRED: ExecKind.EXPIRED,
    model.ORDER_REJECTED: ExecKind.REJECTED,
}


def timestamp_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _time(ms: int) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


def _price(message: object, name: str, digits: int | None) -> Decimal | None:
    if not message.HasField(name):  # type: ignore[attr-defined]
        return None
    return from_double(getattr(message, name), digits)


def money(value: int, digits: int) -> Decimal:
    """A money amount of the wire (an integer scaled by 10^moneyDigits, reference 3.4) as a Decimal."""
    return Decimal(value).scaleb(-digits)


def _money(deal: model.ProtoOADeal, name: str) -> Decimal | None:
    if not deal.HasField(name):  # type: ignore[arg-type]
        return None
    return money(getattr(deal, name), deal.moneyDigits if deal.HasField("moneyDigits") else 2)


def _closing_swap(deal: model.ProtoOADeal | None) -> Decimal | None:
    """The swap a closing deal books (its closePositionDetail); an opening deal books none."""
    if deal is None or not deal.HasField("closePositionDetail"):
        return None
    detail = deal.closePositionDetail
    digits = detail.moneyDigits if detail.HasField("moneyDigits") else deal.moneyDigits or 2
    return money(detail.swap, digits)


def order_status(order: model.ProtoOAOrder) -> OrderStatus:
    """The venue's order status in ours: accepted is NEW, or PARTIALLY_FILLED once something executed."""
    status = order.orderStatus
    if status == model.ORDER_STATUS_FILLED:
        return OrderStatus.FILLED
    if status == model.ORDER_STATUS_REJECTED:
        return OrderStatus.REJECTED
    if status == model.ORDER_STATUS_EXPIRED:
        return OrderStatus.EXPIRED
    if status == model.ORDER_STATUS_CANCELLED:
        return OrderStatus.CANCELLED
    return OrderStatus.PARTIALLY_FILLED if order.executedVolume > 0 else OrderStatus.NEW


def _order_type(order: model.ProtoOAOrder) -> OrderType | None:
    return ORDER_TYPE.get(order.orderType)


def _stop_limit_price(order: model.ProtoOAOrder, stop: Decimal | None, digits: int | None) -> Decimal | None:
    """A stop-limit's limit before it triggers: the stop moved by slippageInPoints against the trader (our
    order's `price`; the venue shows limitPrice only once triggered)."""
    if stop is None or digits is None or not order.HasField("slippageInPoints"):
        return None
    distance = Decimal(order.slippageInPoints).scaleb(-digits)
    return stop + distance if order.tradeData.tradeSide == model.BUY else stop - distance


def _report(
    order: model.ProtoOAOrder,
    *,
    kind: ExecKind,
    status: OrderStatus,
    digits: int | None,
    dedupe_key: str,
    cl_ord_id: str | None,
    orig_cl_ord_id: str | None,
    last_qty: Decimal | None = None,
    deal: model.ProtoOADeal | None = None,
    text: str | None = None,
    position_id: int | None = None,
) -> ExecutionReport:
    trade = order.tradeData
    quantity = units(trade.volume)
    cum_qty = units(order.executedVolume)
    done = status in (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED)
    limit = _price(order, "limitPrice", digits)
    stop = _price(order, "stopPrice", digits)
    if limit is None and order.orderType == model.STOP_LIMIT:
        limit = _stop_limit_price(order, stop, digits)
    pos = order.positionId or position_id
    return ExecutionReport(
        kind=kind,
        status=status,
        order_id=str(order.orderId),
        cl_ord_id=cl_ord_id,
        orig_cl_ord_id=orig_cl_ord_id,
        symbol_id=trade.symbolId,
        side=SIDE.get(trade.tradeSide),
        order_type=_order_type(order),
        quantity=quantity,
        price=limit,
        stop_price=stop,
        time_in_force=TIME_IN_FORCE.get(order.timeInForce) if order.HasField("timeInForce") else None,
        expire_time=_time(order.expirationTimestamp) if order.HasField("expirationTimestamp") else None,
        cum_qty=cum_qty,
        leaves_qty=Decimal(0) if done else max(quantity - cum_qty, Decimal(0)),
        last_qty=last_qty,
        last_px=_price(deal, "executionPrice", digits) if deal is not None else None,
        commission=_money(deal, "commission") if deal is not None else None,
        swap=_closing_swap(deal),
        avg_px=from_double(order.executionPrice)
        if order.HasField("executionPrice") and cum_qty > 0
        else None,
        position_id=str(pos) if pos else None,
        label=trade.label or None,
        text=text,
        transact_time=_time(order.utcLastUpdateTimestamp),
        dedupe_key=dedupe_key,
    )


def execution_report(
    event: oa.ProtoOAExecutionEvent,
    *,
    digits: int | None,
    cl_ord_id: str | None,
    orig_cl_ord_id: str | None,
) -> ExecutionReport | None:
    """A live execution event about an order as a report (None: not about an order's life, e.g. a swap).

    `cl_ord_id`/`orig_cl_ord_id` are chosen by the connector: the order's own id for its own events, the
    cancel's or replace's request id (with the order's id as orig) for the answer to one of ours."""
    kind = EXEC_KIND.get(event.executionType)
    if kind is None or not event.HasField("order"):
        return None
    order = event.order
    status = order_status(order)
    if kind is ExecKind.TRADE:
        status = (
            OrderStatus.FILLED if event.executionType == model.ORDER_FILLED else OrderStatus.PARTIALLY_FILLED
        )
    elif kind is ExecKind.CANCELLED:
        status = OrderStatus.CANCELLED
    elif kind is ExecKind.EXPIRED:
        status = OrderStatus.EXPIRED
    elif kind is ExecKind.REJECTED:
        status = OrderStatus.REJECTED
    deal = event.deal if event.HasField("deal") else None
    last_qty = units(deal.filledVolume) if deal is not None else None
    position_id = event.position.positionId if event.HasField("position") else None
    key = "|".join(
        str(part)
        for part in (
            "openapi",
            order.orderId,
            event.executionType,
            deal.dealId if deal is not None else "",
            order.executedVolume,
            order.utcLastUpdateTimestamp,
        )
    )
    return _report(
        order,
        kind=kind,
        status=status,
        digits=digits,
        dedupe_key=key,
        cl_ord_id=cl_ord_id,
        orig_cl_ord_id=orig_cl_ord_id,
        last_qty=last_qty,
        deal=deal,
        text=event.errorCode or None,
        position_id=position_id,
    )


def status_report(order: model.ProtoOAOrder, digits: int | None) -> ExecutionReport:
    """The venue's view of one order (reconcile, order details, order list) as a STATUS report."""
    parts = (order.orderId, order.orderStatus, order.executedVolume, order.utcLastUpdateTimestamp)
    key = "openapi-status|" + "|".join(map(str, parts))
    return _report(
        order,
        kind=ExecKind.STATUS,
        status=order_status(order),
        digits=digits,
        dedupe_key=key,
        cl_ord_id=order.clientOrderId or None,
        orig_cl_ord_id=None,
    )


def position(message: model.ProtoOAPosition, digits: int | None) -> Position:
    trade = message.tradeData
    side = PositionSide.LONG if trade.tradeSide == model.BUY else PositionSide.SHORT
    return Position(
        position_id=str(message.positionId),
        symbol_id=trade.symbolId,
        side=side,
        quantity=units(trade.volume),
        entry_price=from_double(message.price) if message.HasField("price") else None,
        stop_loss=_price(message, "stopLoss", digits),
        take_profit=_price(message, "takeProfit", digits),
        trailing_stop_loss=message.trailingStopLoss,
        updated_at=_time(message.utcLastUpdateTimestamp) or datetime.now(UTC),
    )

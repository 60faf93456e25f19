"""Open API trading requests on the simulator: new order, cancel, amend, amend position SL/TP, close.

Each is validated the way the reference describes cTrader's answers, then executed on the account's venue
under the trade lock, so FIX sees the same orders and both fronts get the executions. Validation refusals
are ProtoOAOrderErrorEvents; the ones cTrader sends with orderId = positionId = 0 (TRADING_BAD_STOPS,
POSITION_NOT_FOUND: openapi-proto-messages#23) carry 0 here too, the id only in the description, and the
request's clientMsgId. Refusals the venue itself makes (e.g. a duplicate clientOrderId) become ORDER_REJECTED
execution events, on both fronts, as any venue rejection does.

A STOP_LIMIT order names its trigger (stopPrice) and its limit as slippageInPoints from it: a buy's limit is
stopPrice + slippage points, a sell's stopPrice - slippage points (reference 3.4: a point is 10^-digits).
An amendment may move either; moving only the stop keeps the slippage (the limit moves with it), and an
explicit limitPrice sets the limit itself (what the adapter's connector sends when it amends a price).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from fixadapter.model.enums import Side
from fixadapter.protocols.openapi.generated import OpenApiMessages_pb2 as messages
from fixadapter.protocols.openapi.generated import OpenApiModelMessages_pb2 as model
from fixadapter.protocols.openapi.messages import Decoded
from fixadapter.sim.matching import market_price
from fixadapter.sim.openapi import convert
from fixadapter.sim.openapi.connection import Connection, account_id, message_of
from fixadapter.sim.openapi.front import Front
from fixadapter.sim.order_rules import volume_error
from fixadapter.sim.prices import SymbolSpec
from fixadapter.sim.records import (
    CancelRefused,
    ExecKind,
    Execution,
    NotFound,
    OrderKind,
    PlaceRequest,
    VenueOrder,
    VenuePosition,
)

if TYPE_CHECKING:
    from fixadapter.sim.trade_server import Desk

Handler = Callable[[Connection, Decoded], None]
UNSUPPORTED_TIME_IN_FORCE = frozenset({model.MARKET_ON_OPEN})


@dataclass(frozen=True)
class Protection:
    """A pending order's stop loss and take profit, each an absolute price or a distance from the fill."""

    stop_loss: Decimal | None
    relative_stop_loss: Decimal | None
    take_profit: Decimal | None
    relative_take_profit: Decimal | None
    trailing_stop_loss: bool

    @classmethod
    def of(cls, order: VenueOrder) -> Protection:
        return cls(
            order.stop_loss,
            order.relative_stop_loss,
            order.take_profit,
            order.relative_take_profit,
            order.trailing_stop_loss,
        )


class OrderRefused(Exception):
    """A request refused before the venue sees it: ProtoOAOrderErrorEvent(code, ids, description)."""

    def __init__(self, code: str, description: str, order_id: int = 0, position_id: int = 0) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.order_id = order_id
        self.position_id = position_id


class Trading:
    def __init__(self, server: Front) -> None:
        self.server = server

    def handlers(self) -> dict[int, Handler]:
        return {
            model.PROTO_OA_NEW_ORDER_REQ: self._guarded(self._new_order),
            model.PROTO_OA_CANCEL_ORDER_REQ: self._guarded(self._cancel),
            model.PROTO_OA_AMEND_ORDER_REQ: self._guarded(self._amend),
            model.PROTO_OA_AMEND_POSITION_SLTP_REQ: self._guarded(self._amend_protection),
            model.PROTO_OA_CLOSE_POSITION_REQ: self._guarded(self._close_position),
        }

    def _guarded(self, handler: Handler) -> Handler:
        """Trading needs a token with the trading scope; a refusal becomes a ProtoOAOrderErrorEvent."""

        def run(connection: Connection, decoded: Decoded) -> None:
            ctid = account_id(decoded)
            grant = self.server.registry.grant_of(connection.accounts[ctid])
            if grant is None or grant.scope != "trading":
                self.server.error(connection, decoded, "TRADING_NOT_ALLOWED", "the access token is view-only")
                return
            try:
                handler(connection, decoded)
            except OrderRefused as refused:
                event = messages.ProtoOAOrderErrorEvent(
                    ctidTraderAccountId=ctid,
                    errorCode=refused.code,
                    orderId=refused.order_id,
                    positionId=refused.position_id,
                    description=refused.description,
                )
                connection.send(event, decoded.client_msg_id)

        return run

    def _execute(
        self, connection: Connection, decoded: Decoded, desk: Desk, action: Callable[[], list[Execution]]
    ) -> list[Execution]:
        """A venue call and its executions to both fronts, as this request's."""

        def run() -> list[Execution]:
            executions = action()
            self.server.trade.send_executions(desk, executions)
            return executions

        return self.server.run_on_venue(connection, decoded.client_msg_id, run)

    # -- new order -----------------------------------------------------------------------------

    def _new_order(self, connection: Connection, decoded: Decoded) -> None:
        request = message_of(decoded, messages.ProtoOANewOrderReq)
        desk = self.server.desk(request.ctidTraderAccountId)
        venue = desk.venue
        spec = venue.prices.spec(request.symbolId)
        if spec is None:
            raise OrderRefused("SYMBOL_NOT_FOUND", f"Symbol with id {request.symbolId} is not found.")
        kind = convert.KIND_OF_TYPE.get(request.orderType)
        if kind is None:
            raise OrderRefused(
                "INVALID_REQUEST",
                f"{model.ProtoOAOrderType.Name(request.orderType)} orders are not supported",
            )
        side = convert.SIDE_OF_TRADE_SIDE[request.tradeSide]
        units = _volume(request.volume, spec)
        position = _named_position(request, venue.position, spec)
        time_in_force = request.timeInForce if request.HasField("timeInForce") else model.GOOD_TILL_CANCEL
        expire_time = _expiry(request, kind, time_in_force)
        price, stop_price = _order_prices(request, kind, side, spec)
        closing = position is not None and position.side is not side
        if closing and position is not None and units > position.volume:
            raise OrderRefused(
                "TRADING_BAD_VOLUME",
                f"Volume {units} exceeds the volume {position.volume} of position {position.position_id}",
            )
        reference = price or stop_price or market_price(side, venue.quote(spec.symbol_id))
        stop_loss, take_profit, relative_sl, relative_tp = _protection(request, side, reference)
        if not closing:
            self._check_margin(desk, spec, units, reference)
        place = PlaceRequest(
            cl_ord_id=request.clientOrderId
            if request.HasField("clientOrderId")
            else f"oa-{secrets.token_hex(8)}",
            symbol_id=spec.symbol_id,
            side=side,
            kind=kind,
            quantity=units,
            price=price,
            stop_price=stop_price,
            expire_time=expire_time,
            position_id=position.position_id if position is not None else None,
            label=request.label if request.HasField("label") else None,
            comment=request.comment if request.HasField("comment") else None,
            stop_loss=stop_loss,
            take_profit=take_profit,
            relative_stop_loss=relative_sl,
            relative_take_profit=relative_tp,
            trailing_stop_loss=request.trailingStopLoss,
            closing=closing,
        )
        immediate = time_in_force in (model.IMMEDIATE_OR_CANCEL, model.FILL_OR_KILL)

        def place_order() -> list[Execution]:
            now = datetime.now(UTC)
            executions = venue.place(place, now)
            if immediate and kind is not OrderKind.MARKET:
                accepted = next((e.order for e in executions if e.kind is ExecKind.NEW), None)
                if accepted is not None:
                    current = venue.order(accepted.order_id)
                    if current is not None and current.is_working:
                        cancelled = venue.cancel(current.cl_ord_id, current.cl_ord_id, current.order_id, now)
                        if isinstance(cancelled, list):
                            executions += cancelled
            return executions

        self._execute(connection, decoded, desk, place_order)

    def _check_margin(self, desk: Desk, spec: SymbolSpec, units: Decimal, price: Decimal) -> None:
        margin = self.server.margin
        needed = margin.margin(spec, units, price)
        ctid = desk.account.ctid_trader_account_id or 0
        free = margin.free_margin(self.server.ledger.balance(ctid), desk.venue.positions())
        if needed > free:
            raise OrderRefused(
                "NOT_ENOUGH_MONEY", f"Not enough money: margin {needed:.2f} USD, free {free:.2f} USD"
            )

    # -- cancel, amend -------------------------------------------------------------------------

    def _cancel(self, connection: Connection, decoded: Decoded) -> None:
        request = message_of(decoded, messages.ProtoOACancelOrderReq)
        desk = self.server.desk(request.ctidTraderAccountId)
        venue = desk.venue
        order = venue.order(request.orderId)
        if order is None or not order.is_working:
            raise OrderRefused(
                "ORDER_NOT_FOUND",
                f"Order with orderId:{request.orderId} isn't found",
                order_id=request.orderId,
            )
        outcome: list[NotFound | CancelRefused] = []

        def cancel() -> list[Execution]:
            result = venue.cancel(order.cl_ord_id, order.cl_ord_id, order.order_id, datetime.now(UTC))
            if isinstance(result, list):
                return result
            outcome.append(result)
            return []

        self._execute(connection, decoded, desk, cancel)
        if outcome:
            refused = outcome[0]
            if isinstance(refused, CancelRefused):
                event = messages.ProtoOAExecutionEvent(
                    ctidTraderAccountId=request.ctidTraderAccountId,
                    executionType=model.ORDER_CANCEL_REJECTED,
                    order=convert.order(refused.order),
                    errorCode="UNABLE_TO_CANCEL_ORDER",
                )
                connection.send(event, decoded.client_msg_id)
            else:
                raise OrderRefused("ORDER_NOT_FOUND", refused.text, order_id=request.orderId)

    def _amend(self, connection: Connection, decoded: Decoded) -> None:
        request = message_of(decoded, messages.ProtoOAAmendOrderReq)
        desk = self.server.desk(request.ctidTraderAccountId)
        venue = desk.venue
        order = venue.order(request.orderId)
        if order is None or not order.is_working:
            raise OrderRefused(
                "ORDER_NOT_FOUND",
                f"Order with orderId:{request.orderId} isn't found",
                order_id=request.orderId,
            )
        spec = _spec(venue.prices.spec(order.symbol_id), order.symbol_id)
        quantity = _volume(request.volume, spec) if request.HasField("volume") else order.quantity
        expire_time = (
            convert.from_millis(request.expirationTimestamp)
            if request.HasField("expirationTimestamp")
            else None
        )
        stop_price = _optional_price(request, "stopPrice")
        limit_price = _amended_limit(request, order, spec, stop_price)
        reference = limit_price or stop_price or order.price or order.stop_price
        stop_loss = _optional_price(request, "stopLoss")
        take_profit = _optional_price(request, "takeProfit")
        if reference is not None:
            _check_stops(order.side, reference, stop_loss, take_profit)
        protection = _amended_protection(request, order, stop_loss, take_profit)
        before = Protection.of(order)
        refused: list[str] = []

        def protect(values: Protection) -> None:
            venue.set_order_protection(
                order.order_id,
                values.stop_loss,
                values.take_profit,
                values.relative_stop_loss,
                values.relative_take_profit,
                values.trailing_stop_loss,
                datetime.now(UTC),
            )

        def amend() -> list[Execution]:
            now = datetime.now(UTC)
            if protection != before:
                protect(protection)
            result = venue.replace(
                order.cl_ord_id,
                order.cl_ord_id,
                order.order_id,
                quantity,
                limit_price,
                stop_price,
                expire_time,
                now,
            )
            if isinstance(result, list):
                return result
            if protection != before:
                protect(before)  # a refused amendment changes nothing
            refused.append(result.text)
            return []

        self._execute(connection, decoded, desk, amend)
        if refused:
            raise OrderRefused(convert.error_code(refused[0]), refused[0], order_id=order.order_id)

    # -- positions -----------------------------------------------------------------------------

    def _amend_protection(self, connection: Connection, decoded: Decoded) -> None:
        request = message_of(decoded, messages.ProtoOAAmendPositionSLTPReq)
        ctid = request.ctidTraderAccountId
        desk = self.server.desk(ctid)
        venue = desk.venue
        position = venue.position(request.positionId)
        if position is None:
            raise OrderRefused("POSITION_NOT_FOUND", f"Position {request.positionId} is not found")
        stop_loss = _optional_price(request, "stopLoss")
        take_profit = _optional_price(request, "takeProfit")
        closing_price = market_price(position.side.opposite, venue.quote(position.symbol_id))
        _check_stops(position.side, closing_price, stop_loss, take_profit, position.position_id)
        updated: list[VenuePosition | None] = []

        def amend() -> list[Execution]:
            updated.append(
                venue.set_protection(
                    position.position_id, stop_loss, take_profit, request.trailingStopLoss, datetime.now(UTC)
                )
            )
            return []

        self.server.run_on_venue(connection, decoded.client_msg_id, amend)
        if updated[0] is None:
            raise OrderRefused("POSITION_NOT_FOUND", f"Position {request.positionId} is not found")
        event = messages.ProtoOAExecutionEvent(
            ctidTraderAccountId=ctid,
            executionType=model.ORDER_REPLACED,
            position=convert.position(updated[0]),
        )
        self.server.send_to_account(ctid, [event], (connection.number, decoded.client_msg_id))

    def _close_position(self, connection: Connection, decoded: Decoded) -> None:
        request = message_of(decoded, messages.ProtoOAClosePositionReq)
        desk = self.server.desk(request.ctidTraderAccountId)
        venue = desk.venue
        position = venue.position(request.positionId)
        if position is None:
            raise OrderRefused("POSITION_NOT_FOUND", f"Position {request.positionId} is not found")
        spec = _spec(venue.prices.spec(position.symbol_id), position.symbol_id)
        units = _volume(request.volume, spec)
        if units > position.volume:
            raise OrderRefused(
                "TRADING_BAD_VOLUME",
                f"Close volume {units} exceeds the volume {position.volume} "
                f"of position {position.position_id}",
                position_id=position.position_id,
            )
        place = PlaceRequest(
            cl_ord_id=f"oa-close-{secrets.token_hex(8)}",
            symbol_id=position.symbol_id,
            side=position.side.opposite,
            kind=OrderKind.MARKET,
            quantity=units,
            position_id=position.position_id,
            label=position.label,
            closing=True,
        )
        self._execute(connection, decoded, desk, lambda: venue.place(place, datetime.now(UTC)))


def _amended_protection(
    request: messages.ProtoOAAmendOrderReq,
    order: VenueOrder,
    stop_loss: Decimal | None,
    take_profit: Decimal | None,
) -> Protection:
    """The order's protection after an amendment: an absolute price replaces a distance and the reverse;
    what the request leaves out stays as it was."""
    relative_sl, relative_tp = (
        convert.relative_price(getattr(request, name)) if request.HasField(name) else None
        for name in ("relativeStopLoss", "relativeTakeProfit")
    )
    current = Protection.of(order)
    new_stop = stop_loss is not None or relative_sl is not None
    new_take = take_profit is not None or relative_tp is not None
    return Protection(
        stop_loss if new_stop else current.stop_loss,
        relative_sl if new_stop else current.relative_stop_loss,
        take_profit if new_take else current.take_profit,
        relative_tp if new_take else current.relative_take_profit,
        request.trailingStopLoss if request.HasField("trailingStopLoss") else current.trailing_stop_loss,
    )


def _amended_limit(
    request: messages.ProtoOAAmendOrderReq, order: VenueOrder, spec: SymbolSpec, stop_price: Decimal | None
) -> Decimal | None:
    """The limit price an amendment sets (None: unchanged). A stop-limit's follows slippageInPoints when
    given, else an explicit limitPrice, else a moved stop at the slippage it had."""
    limit_price = _optional_price(request, "limitPrice")
    if order.kind is not OrderKind.STOP_LIMIT or order.price is None or order.stop_price is None:
        return limit_price
    if request.HasField("slippageInPoints"):
        stop = stop_price if stop_price is not None else order.stop_price
        return _stop_limit_price(order.side, spec, stop, request.slippageInPoints)
    if limit_price is None and stop_price is not None:
        return spec.quantize(stop_price) + (order.price - order.stop_price)
    return limit_price


def _named_position(
    request: messages.ProtoOANewOrderReq,
    find: Callable[[int], VenuePosition | None],
    spec: SymbolSpec,
) -> VenuePosition | None:
    """The open position a new order names (positionId) on its symbol, or None when it names none."""
    if not request.HasField("positionId"):
        return None
    position = find(request.positionId)
    if position is None or position.symbol_id != spec.symbol_id:
        raise OrderRefused("POSITION_NOT_FOUND", f"Position {request.positionId} is not found")
    return position


def _order_prices(
    request: messages.ProtoOANewOrderReq, kind: OrderKind, side: Side, spec: SymbolSpec
) -> tuple[Decimal | None, Decimal | None]:
    """(limit price, stop price) of a new order: a limit order needs the one, a stop order the other, a
    stop-limit its stopPrice and slippageInPoints (its limit); a price the order type does not use is
    ignored (the proto: limitPrice for LIMIT orders only)."""
    needs_limit = kind is OrderKind.LIMIT
    needs_stop = kind is OrderKind.STOP or kind is OrderKind.STOP_LIMIT
    price = _optional_price(request, "limitPrice") if needs_limit else None
    stop_price = _optional_price(request, "stopPrice") if needs_stop else None
    if needs_limit and price is None:
        raise OrderRefused("INVALID_REQUEST", f"a {kind} order needs its limitPrice")
    if needs_stop and stop_price is None:
        raise OrderRefused("INVALID_REQUEST", f"a {kind} order needs its stopPrice")
    if kind is OrderKind.STOP_LIMIT and stop_price is not None:
        if not request.HasField("slippageInPoints"):
            raise OrderRefused("INVALID_REQUEST", "a stop_limit order needs its slippageInPoints")
        price = _stop_limit_price(side, spec, stop_price, request.slippageInPoints)
    return price, stop_price


def _stop_limit_price(side: Side, spec: SymbolSpec, stop_price: Decimal, slippage: int) -> Decimal:
    """A stop-limit's limit: `slippage` points beyond its stop in the order's direction."""
    if slippage < 0:
        raise OrderRefused("TRADING_BAD_PRICES", f"slippageInPoints {slippage} is negative")
    distance = spec.point * slippage
    limit = spec.quantize(stop_price) + (distance if side is Side.BUY else -distance)
    if limit <= 0:
        raise OrderRefused(
            "TRADING_BAD_PRICES", f"slippageInPoints {slippage} puts the limit price at {limit}, not positive"
        )
    return limit


def _spec(spec: SymbolSpec | None, symbol_id: int) -> SymbolSpec:
    if spec is None:
        raise OrderRefused("SYMBOL_NOT_FOUND", f"Symbol with id {symbol_id} is not found.")
    return spec


def _expiry(request: messages.ProtoOANewOrderReq, kind: OrderKind, time_in_force: int) -> datetime | None:
    """A pending GOOD_TILL_DATE order's expiry (a market order has none); MARKET_ON_OPEN is not served."""
    if time_in_force in UNSUPPORTED_TIME_IN_FORCE:
        raise OrderRefused("INVALID_REQUEST", "MARKET_ON_OPEN is not supported")
    if time_in_force != model.GOOD_TILL_DATE or kind is OrderKind.MARKET:
        return None
    if not request.HasField("expirationTimestamp"):
        raise OrderRefused("TRADING_BAD_EXPIRATION_DATE", "GOOD_TILL_DATE needs an expirationTimestamp")
    expire_time = convert.from_millis(request.expirationTimestamp)
    if expire_time <= datetime.now(UTC):
        raise OrderRefused("TRADING_BAD_EXPIRATION_DATE", "the expiration time is in the past")
    return expire_time


def _protection(
    request: messages.ProtoOANewOrderReq, side: Side, reference: Decimal
) -> tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None]:
    """(stopLoss, takeProfit, relativeStopLoss, relativeTakeProfit) of a new order, checked against the
    price it would execute at. A market order's may only be distances (the proto: absolute ones are "not
    supported for MARKET orders")."""
    if request.orderType == model.MARKET and (request.HasField("stopLoss") or request.HasField("takeProfit")):
        raise OrderRefused(
            "INVALID_REQUEST",
            "stopLoss and takeProfit are not supported for MARKET orders: use relativeStopLoss and "
            "relativeTakeProfit",
        )
    stop_loss = _optional_price(request, "stopLoss")
    take_profit = _optional_price(request, "takeProfit")
    _check_stops(side, reference, stop_loss, take_profit)
    relative: list[Decimal | None] = []
    for name in ("relativeStopLoss", "relativeTakeProfit"):
        value = convert.relative_price(getattr(request, name)) if request.HasField(name) else None
        if value is not None and value <= 0:
            raise OrderRefused("TRADING_BAD_STOPS", f"{name} must be a positive distance")
        relative.append(value)
    return stop_loss, take_profit, relative[0], relative[1]


def _volume(volume: int, spec: SymbolSpec) -> Decimal:
    """Units of an Open API volume (0.01 units): whole units only, within the symbol's min and steps."""
    if volume <= 0 or volume % convert.CENTS_PER_UNIT != 0:
        raise OrderRefused(
            "TRADING_BAD_VOLUME", f"Volume {volume} is not a positive number of whole units (x100)"
        )
    units = convert.from_cents(volume)
    if units > convert.MAX_VOLUME_UNITS:
        raise OrderRefused("TRADING_BAD_VOLUME", f"Volume {volume} is above the maximum volume")
    error = volume_error(units, spec)
    if error is not None:
        raise OrderRefused("TRADING_BAD_VOLUME", error.partition(":")[2])
    return units


def _optional_price(request: object, name: str) -> Decimal | None:
    if not request.HasField(name):  # type: ignore[attr-defined]
        return None
    value = Decimal(repr(float(getattr(request, name))))
    if not value.is_finite() or value <= 0:
        raise OrderRefused("TRADING_BAD_PRICES", f"{name} {value} is not a valid positive price")
    return value


def _check_stops(
    side: Side,
    reference: Decimal,
    stop_loss: Decimal | None,
    take_profit: Decimal | None,
    position_id: int = 0,
) -> None:
    """A buy's stop loss below and take profit above the reference price, a sell's the other way round."""
    long = side is Side.BUY
    where = f" of position {position_id}" if position_id else ""
    if stop_loss is not None and (stop_loss >= reference if long else stop_loss <= reference):
        raise OrderRefused(
            "TRADING_BAD_STOPS", f"Stop loss {stop_loss}{where} is on the wrong side of {reference}"
        )
    if take_profit is not None and (take_profit <= reference if long else take_profit >= reference):
        raise OrderRefused(
            "TRADING_BAD_STOPS", f"Take profit {take_profit}{where} is on the wrong side of {reference}"
        )

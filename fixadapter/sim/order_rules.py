"""Why the simulated venue refuses a D or a G, as cTrader-like `CODE:description` texts (§2.5 to 2.17).

Pure functions of the request, its symbol and the position it names, so the refusals can be read (and
tested) apart from the state the venue keeps. The bounds below also keep all Decimal arithmetic exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext

from fixadapter.model.enums import Side
from fixadapter.sim.prices import SymbolSpec
from fixadapter.sim.records import OrderKind, PlaceRequest, VenueOrder, VenuePosition

VOLUME_STEP = Decimal("0.01")
# Far above any real order; keeps every Decimal operation exact within the arithmetic context below.
MAX_VOLUME_ADJUSTED_EXPONENT = 11
MAX_PRICE_ADJUSTED_EXPONENT = 9
ARITHMETIC_PRECISION = 48
NOT_AMENDABLE_TEXT = "INVALID_REQUEST:Only pending (limit, stop or stop-limit) orders can be amended."


@dataclass(frozen=True)
class Amendment:
    """The fields of a G; None keeps the order's current value."""

    quantity: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    expire_time: datetime | None


def require_utc(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")


def symbol_not_found(symbol_id: int) -> str:
    return f"SYMBOL_NOT_FOUND:Symbol with id {symbol_id} is not found."


def request_error(req: PlaceRequest, spec: SymbolSpec, now: datetime) -> str | None:
    """The first fault of a D on its own (volume, price fields, expiry), before any state is consulted."""
    return (
        volume_error(req.quantity, spec)
        or price_fields_error(req.kind, req.price, req.stop_price, spec)
        or stop_limit_error(req.kind, req.side, req.price, req.stop_price)
        or expiry_error(req.kind, req.expire_time, now)
    )


def position_error(req: PlaceRequest, position: VenuePosition | None) -> str | None:
    """A named position must be open on the same symbol, and an opposite order must not exceed it.

    Closing more than the open volume is undocumented at cTrader (§2.17); refusing it is the safe choice.
    """
    if req.position_id is None:
        return None
    if position is None or position.symbol_id != req.symbol_id:
        return f"POSITION_NOT_FOUND:Position with id {req.position_id} is not found."
    return close_volume_error(position, req.side, req.quantity)


def duplicate_error(cl_ord_id: str) -> str:
    return f"INVALID_REQUEST:Order with clientOrderId={cl_ord_id} already exists."


def amendment_error(
    order: VenueOrder, amendment: Amendment, spec: SymbolSpec, position: VenuePosition | None, now: datetime
) -> str | None:
    """The first reason to refuse a G on a working pending order (market orders are refused before)."""
    error = volume_error(amendment.quantity, spec) or expiry_error(order.kind, amendment.expire_time, now)
    if error is not None:
        return error
    if amendment.quantity <= order.cum_qty:
        return (
            f"TRADING_BAD_VOLUME:New volume {amendment.quantity} must be above "
            f"the filled volume {order.cum_qty}."
        )
    price = amendment.price if amendment.price is not None else order.price
    stop_price = amendment.stop_price if amendment.stop_price is not None else order.stop_price
    error = price_fields_error(order.kind, price, stop_price, spec) or stop_limit_error(
        order.kind, order.side, price, stop_price
    )
    if error is None and position is not None:
        error = close_volume_error(position, order.side, amendment.quantity - order.cum_qty)
    return error


def is_valid_volume(quantity: Decimal) -> bool:
    if not quantity.is_finite() or quantity <= 0 or quantity.adjusted() > MAX_VOLUME_ADJUSTED_EXPONENT:
        return False
    with localcontext(prec=ARITHMETIC_PRECISION):
        return quantity == quantity.quantize(VOLUME_STEP)


def volume_error(quantity: Decimal, spec: SymbolSpec) -> str | None:
    """Volumes are units with a precision of 0.01 (tag 38, §2.5), at least the symbol's minimum and in its
    steps ([INF] cTrader's code for a bad volume is Open API's TRADING_BAD_VOLUME)."""
    if not is_valid_volume(quantity):
        return f"TRADING_BAD_VOLUME:Order volume {quantity} must be a positive multiple of {VOLUME_STEP}."
    if quantity < spec.min_volume:
        return (
            f"TRADING_BAD_VOLUME:Order volume {quantity} is less than the minimum volume "
            f"{spec.min_volume} of {spec.name}."
        )
    with localcontext(prec=ARITHMETIC_PRECISION):
        if quantity % spec.volume_step != 0:
            return (
                f"TRADING_BAD_VOLUME:Order volume {quantity} is not a multiple of the volume step "
                f"{spec.volume_step} of {spec.name}."
            )
    return None


def price_fields_error(
    kind: OrderKind, price: Decimal | None, stop_price: Decimal | None, spec: SymbolSpec
) -> str | None:
    """Limit needs a price (44), stop a stop price (99), a stop-limit both (Open API only), market neither."""
    stop_limit = kind is OrderKind.STOP_LIMIT
    fields = (
        ("price", price, kind is OrderKind.LIMIT or stop_limit),
        ("stop price", stop_price, kind is OrderKind.STOP or stop_limit),
    )
    for name, value, needed in fields:
        if value is None:
            if needed:
                return f"INVALID_REQUEST:A {kind} order requires a {name}."
            continue
        if not needed:
            return f"INVALID_REQUEST:A {kind} order can't have a {name}."
        if not _is_valid_price(value, spec):
            return f"INVALID_REQUEST:The {name} {value} is not a valid positive price."
    return None


def stop_limit_error(
    kind: OrderKind, side: Side, price: Decimal | None, stop_price: Decimal | None
) -> str | None:
    """A stop-limit's limit lies at or beyond its stop in the order's direction (a buy's at or above, a
    sell's at or below): the Open API sends it as a non-negative slippage from the stop."""
    if kind is not OrderKind.STOP_LIMIT or price is None or stop_price is None:
        return None
    if price < stop_price if side is Side.BUY else price > stop_price:
        where = "below" if side is Side.BUY else "above"
        return (
            f"TRADING_BAD_PRICES:The limit price {price} of a {side} stop-limit is {where} "
            f"its stop price {stop_price}."
        )
    return None


def _is_valid_price(value: Decimal, spec: SymbolSpec) -> bool:
    return value.is_finite() and value.adjusted() <= MAX_PRICE_ADJUSTED_EXPONENT and spec.quantize(value) > 0


def expiry_error(kind: OrderKind, expire_time: datetime | None, now: datetime) -> str | None:
    """Only pending orders can be GTD (126), and the expiry must be a future UTC time."""
    if expire_time is None:
        return None
    if kind is OrderKind.MARKET:
        return "INVALID_REQUEST:A market order can't have an expiration time."
    if expire_time.tzinfo is None or expire_time.utcoffset() is None:
        return "INVALID_REQUEST:Expiration time must be a UTC timestamp."
    if expire_time <= now:
        return f"INVALID_REQUEST:Expiration time {expire_time.isoformat()} is in the past."
    return None


def close_volume_error(position: VenuePosition, side: Side, quantity: Decimal) -> str | None:
    if side is not position.side and quantity > position.volume:
        return (
            f"TRADING_BAD_VOLUME:Order volume {quantity} exceeds the volume {position.volume} "
            f"of position {position.position_id}."
        )
    return None


def not_found_by_cl_ord_id(cl_ord_id: str) -> str:
    return f"ORDER_NOT_FOUND:Order with clientOrderId={cl_ord_id} not found."

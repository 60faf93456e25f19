"""When and at what price the simulated venue executes an order against a quote, and how fills average.

Pure functions, so the crossing rules of §2.5 to 2.17 stay readable apart from the book that applies them.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

from fixadapter.model.enums import Side
from fixadapter.sim.order_rules import VOLUME_STEP
from fixadapter.sim.prices import Quote
from fixadapter.sim.records import OrderKind, VenueOrder


def market_price(side: Side, quote: Quote) -> Decimal:
    """Buys execute at the ask, sells at the bid."""
    return quote.ask if side is Side.BUY else quote.bid


def execution_price(order: VenueOrder, quote: Quote, *, crossing_required: bool) -> Decimal | None:
    """The price the order executes at against quote, or None when a required crossing is missing.

    A buy limit executes when ask <= price and a sell limit when bid >= price, at the limit price. A buy
    stop triggers when ask >= stop price and a sell stop when bid <= stop price, at that quote. A stop-limit
    executes as a limit once triggered (`Venue` marks that); before, only when no crossing is required.
    """
    buy = order.side is Side.BUY
    is_limit = order.kind is OrderKind.LIMIT or order.kind is OrderKind.STOP_LIMIT
    if is_limit and order.price is not None:
        if order.kind is OrderKind.STOP_LIMIT and not order.triggered and crossing_required:
            return None
        crossed = quote.ask <= order.price if buy else quote.bid >= order.price
        return order.price if crossed or not crossing_required else None
    if order.kind is OrderKind.STOP and order.stop_price is not None:
        crossed = stop_reached(order, quote)
        return market_price(order.side, quote) if crossed or not crossing_required else None
    return market_price(order.side, quote) if order.kind is OrderKind.MARKET else None


def stop_reached(order: VenueOrder, quote: Quote) -> bool:
    """A buy stop triggers when the ask reaches its stop price, a sell stop when the bid does."""
    if order.stop_price is None:
        return False
    return quote.ask >= order.stop_price if order.side is Side.BUY else quote.bid <= order.stop_price


def next_part(leaves: Decimal, parts_left: int) -> Decimal:
    """An equal share of the leaves in 0.01 steps (at least 0.01); the last part takes the remainder."""
    if parts_left <= 1:
        return leaves
    share = (leaves / parts_left).quantize(VOLUME_STEP, rounding=ROUND_DOWN)
    return min(max(share, VOLUME_STEP), leaves)


def round_average(value: Decimal, digits: int) -> Decimal:
    """One digit more than the symbol's: a blend of prices is rarely on the grid; this keeps it bounded."""
    return value.quantize(Decimal(1).scaleb(-(digits + 1)), rounding=ROUND_HALF_EVEN)

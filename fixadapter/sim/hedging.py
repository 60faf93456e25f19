"""The simulated account's open positions under cTrader's hedged model (§2.17).

Every order belongs to one position, so a fill opens, increases, reduces or closes exactly that position;
positions of opposite sides on one symbol live side by side. Kept apart from the order book because the
two change at different moments (a fill touches both, a cancel only the book) and persist separately.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from fixadapter.model.enums import Side
from fixadapter.sim.matching import round_average
from fixadapter.sim.order_rules import ARITHMETIC_PRECISION
from fixadapter.sim.records import VenueOrder, VenuePosition


class HedgedPositions:
    """Open positions by id, and the ids changed since the last commit (closed ones included)."""

    def __init__(self) -> None:
        self._open: dict[int, VenuePosition] = {}
        self._changed: set[int] = set()

    def get(self, position_id: int) -> VenuePosition | None:
        return self._open.get(position_id)

    def by_id(self) -> list[VenuePosition]:
        return [self._open[position_id] for position_id in sorted(self._open)]

    def apply_fill(
        self, order: VenueOrder, quantity: Decimal, price: Decimal, digits: int, now: datetime
    ) -> tuple[VenuePosition | None, VenuePosition | None]:
        """Open, increase, reduce or close the order's position: (before, after), None where none is open.

        An order carrying protection (Open API stopLoss/takeProfit, absolute or relative to this fill's
        price) sets it on the position it fills into.
        """
        current = self._open.get(order.position_id)
        if current is None:
            updated: VenuePosition | None = VenuePosition(
                order.position_id,
                order.symbol_id,
                order.side,
                quantity,
                price,
                opened_at=now,
                label=order.label,
                comment=order.comment,
            )
        elif current.side is order.side:
            updated = _increase(current, quantity, price, digits)
        else:
            updated = _reduce(current, quantity, price)
        if updated is not None and updated.side is order.side:
            updated = _protected(updated, order, price, digits)
        if updated is None:
            del self._open[order.position_id]
        else:
            self._open[order.position_id] = updated
        self._changed.add(order.position_id)
        return current, updated

    def set_protection(self, position: VenuePosition) -> None:
        """Replace an open position's protection (the caller built it from the open one)."""
        self._open[position.position_id] = position
        self._changed.add(position.position_id)

    def changes(self) -> list[tuple[int, VenuePosition | None]]:
        """The changed positions by id, None for a closed one (the state file deletes it)."""
        return [(position_id, self._open.get(position_id)) for position_id in sorted(self._changed)]

    def has_changes(self) -> bool:
        return bool(self._changed)

    def forget_changes(self) -> None:
        self._changed.clear()

    def restore(self, positions: Iterable[VenuePosition]) -> None:
        """Replace every position with those committed to the state file."""
        self._open.clear()
        for position in positions:
            self._open[position.position_id] = position
        self._changed.clear()


def _increase(position: VenuePosition, quantity: Decimal, price: Decimal, digits: int) -> VenuePosition:
    with localcontext(prec=ARITHMETIC_PRECISION):
        volume = position.volume + quantity
        entry = round_average((position.entry_price * position.volume + price * quantity) / volume, digits)
    return dataclasses.replace(position, volume=volume, entry_price=entry)


def _reduce(position: VenuePosition, quantity: Decimal, price: Decimal) -> VenuePosition | None:
    """Reduce by an opposite fill (entry unchanged); None when closed.

    Placement refuses to close more than the open volume, but a resting order can outlive part of its
    position; its excess then opens the opposite side under the same id (the orphan-order hazard of §5 #9).
    """
    if quantity < position.volume:
        return dataclasses.replace(position, volume=position.volume - quantity)
    if quantity == position.volume:
        return None
    return dataclasses.replace(
        position,
        side=position.side.opposite,
        volume=quantity - position.volume,
        entry_price=price,
        stop_loss=None,  # the old side's protection means nothing on the other side
        take_profit=None,
        trailing_stop_loss=False,
        trailing_distance=None,
    )


def _protected(position: VenuePosition, order: VenueOrder, price: Decimal, digits: int) -> VenuePosition:
    """The position with the order's protection: absolute prices win over distances from `price`, and
    every price is on the symbol's grid."""
    sign = 1 if order.side is Side.BUY else -1
    point = Decimal(1).scaleb(-digits)
    stop_loss = order.stop_loss
    if stop_loss is None and order.relative_stop_loss is not None:
        stop_loss = price - sign * order.relative_stop_loss
    take_profit = order.take_profit
    if take_profit is None and order.relative_take_profit is not None:
        take_profit = price + sign * order.relative_take_profit
    stop_loss = stop_loss.quantize(point, rounding=ROUND_HALF_EVEN) if stop_loss is not None else None
    take_profit = take_profit.quantize(point, rounding=ROUND_HALF_EVEN) if take_profit is not None else None
    if stop_loss is None and take_profit is None:
        return position
    trailing = order.trailing_stop_loss and stop_loss is not None
    distance = abs(price - stop_loss) if trailing and stop_loss is not None else None
    return dataclasses.replace(
        position,
        stop_loss=stop_loss if stop_loss is not None else position.stop_loss,
        take_profit=take_profit if take_profit is not None else position.take_profit,
        trailing_stop_loss=trailing,
        trailing_distance=distance,
    )

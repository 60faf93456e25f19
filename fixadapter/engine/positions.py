"""Hedged positions kept from fills, so a fill never costs a download of every open position.

Each fill names its position (the venue's position id on the execution report). A fill on the position's
side opens or adds to it, the entry price being the quantity-weighted average (rounded half-even to one
digit past the symbol's, as the venue reports it); an opposite fill reduces it, closes it at zero, and
past zero turns it round at the fill's price. The venue stays the authority: its list replaces this one
after each logon and on a timer, and fills that came after the venue's answer are applied again on top.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import count

from fixadapter.model.enums import PositionSide, Side
from fixadapter.model.orders import Position

JOURNAL_SIZE = 50_000


@dataclass(frozen=True)
class PositionFill:
    position_id: str
    symbol_id: int
    side: Side
    quantity: Decimal
    price: Decimal
    digits: int | None  # the symbol's price digits, when known


def apply_fill(current: Position | None, fill: PositionFill) -> Position | None:
    """The position after `fill`; None when the fill closes it."""
    side = PositionSide.LONG if fill.side is Side.BUY else PositionSide.SHORT
    if current is None:
        return Position(
            position_id=fill.position_id,
            symbol_id=fill.symbol_id,
            side=side,
            quantity=fill.quantity,
            entry_price=fill.price,
        )
    if current.side is side:
        quantity = current.quantity + fill.quantity
        entry = fill.price
        if current.entry_price is not None:
            entry = _rounded(
                (current.entry_price * current.quantity + fill.price * fill.quantity) / quantity, fill.digits
            )
        return current.model_copy(update={"quantity": quantity, "entry_price": entry})
    if fill.quantity < current.quantity:
        return current.model_copy(update={"quantity": current.quantity - fill.quantity})
    if fill.quantity == current.quantity:
        return None
    return current.model_copy(
        update={"side": side, "quantity": fill.quantity - current.quantity, "entry_price": fill.price}
    )


def _rounded(value: Decimal, digits: int | None) -> Decimal:
    if digits is None:
        return value
    return value.quantize(Decimal(1).scaleb(-(digits + 1)), rounding=ROUND_HALF_EVEN)


class PositionBook:
    """The open positions by id, with a numbered journal of recent fills for replay over a venue answer.

    Each fill may carry the arrival mark of the venue message it came from (model/reconciliation.py);
    an answer stamped with its own arrival counts every fill that arrived before it."""

    def __init__(self) -> None:
        self._positions: dict[str, Position] = {}
        self._journal: deque[tuple[int, int | None, PositionFill]] = deque(maxlen=JOURNAL_SIZE)
        self._numbers = count(1)
        self._last = 0
        self._answered_at = 0
        self._answered_arrival: int | None = None

    def all(self) -> list[Position]:
        return [self._positions[key] for key in sorted(self._positions)]

    def apply(self, fill: PositionFill, arrived: int | None = None) -> Position | None:
        self._last = next(self._numbers)
        self._journal.append((self._last, arrived, fill))
        updated = apply_fill(self._positions.get(fill.position_id), fill)
        if updated is None:
            self._positions.pop(fill.position_id, None)
        else:
            self._positions[fill.position_id] = updated
        return updated

    def get(self, position_id: str) -> Position | None:
        return self._positions.get(position_id)

    def protect(self, position_id: str, changes: dict[str, object]) -> Position | None:
        """The position with its protection as the venue now has it (None: no such open position). Not
        journalled: a venue list after it carries the protection itself."""
        current = self._positions.get(position_id)
        if current is None:
            return None
        updated = self._positions[position_id] = current.model_copy(update=changes)
        return updated

    def venue_answered(self, arrived: int | None = None) -> None:
        """The venue's position list is complete: every fill applied so far is in it, or, given the
        answer's arrival mark, every fill that arrived before it."""
        if arrived is None:
            self._answered_at = self._last
            self._answered_arrival = None
        else:
            self._answered_arrival = arrived

    def _in_answer(self, number: int, arrived: int | None) -> bool:
        if self._answered_arrival is not None and arrived is not None:
            return arrived < self._answered_arrival
        return number <= self._answered_at

    def replace(self, venue: list[Position]) -> list[Position]:
        """The venue's list, with the fills applied after its answer replayed on top."""
        self._positions = {p.position_id: p for p in venue}
        for number, arrived, fill in self._journal:
            if not self._in_answer(number, arrived):
                updated = apply_fill(self._positions.get(fill.position_id), fill)
                if updated is None:
                    self._positions.pop(fill.position_id, None)
                else:
                    self._positions[fill.position_id] = updated
        self._journal.clear()
        self._answered_at = self._last
        self._answered_arrival = None
        return self.all()

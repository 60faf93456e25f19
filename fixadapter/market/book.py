"""A depth book kept the way cTrader sends it: entries by MDEntryID, aggregated into price levels.

cTrader never changes an entry in place (no MDUpdateAction=1): a changed level is a Delete of the old id
and a New with a fresh one, and nothing promises one entry per price, so sizes are summed per price.
Levels are maintained incrementally, so an update costs O(1) and only publishing sorts.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from fixadapter.model.market import BookEntry, BookSide, PriceLevel

Entry = tuple[BookSide, Decimal, Decimal]


class OrderBook:
    __slots__ = ("_entries", "_levels", "_sorted")

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._levels: tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]] = ({}, {})
        # Sorted levels per side, rebuilt only for a side that changed (a churn touches one side).
        self._sorted: list[tuple[PriceLevel, ...] | None] = [None, None]

    def __len__(self) -> int:
        return len(self._entries)

    def replace(self, entries: Iterable[BookEntry]) -> None:
        """A full refresh: the book becomes exactly these entries (entries without id or size are skipped)."""
        self._entries = {}
        self._levels = ({}, {})
        self._sorted = [None, None]
        for entry in entries:
            if entry.entry_id is not None and entry.size is not None:
                self.add(entry.entry_id, entry.side, entry.price, entry.size)

    def add(self, entry_id: str, side: BookSide, price: Decimal, size: Decimal) -> bool:
        """Insert an entry; returns False when the id already existed (it is replaced, not doubled)."""
        fresh = self.remove(entry_id) is False
        self._entries[entry_id] = (side, price, size)
        self._sorted[side] = None
        level = self._levels[side]
        level[price] = level.get(price, 0) + size
        return fresh

    def remove(self, entry_id: str) -> bool:
        """Delete an entry; returns False for an id the book does not hold."""
        entry = self._entries.pop(entry_id, None)
        if entry is None:
            return False
        side, price, size = entry
        self._sorted[side] = None
        level = self._levels[side]
        remaining = level[price] - size
        if remaining:
            level[price] = remaining
        else:
            del level[price]
        return True

    def levels(self, side: BookSide, limit: int | None = None) -> tuple[PriceLevel, ...]:
        """Price levels best first: highest bid first, lowest ask first."""
        levels = self._sorted[side]
        if levels is None:
            level = self._levels[side]
            prices = sorted(level, reverse=side is BookSide.BID)
            levels = self._sorted[side] = tuple([PriceLevel(price, level[price]) for price in prices])
        return levels if limit is None else levels[:limit]

    def entries(self) -> dict[str, Entry]:
        return dict(self._entries)

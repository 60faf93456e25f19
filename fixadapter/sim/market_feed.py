"""Depth books of the simulated QUOTE port and the wire content of cTrader's W and X (no QuickFIX here).

A client's book builder is tested against this module, so the book arithmetic lives apart from the
sockets: entry ids, size churn, re-centring on a venue quote, aggregation into levels.

cTrader's depth stream, as the RoE and captured traffic show it (see the reference, sections 2.2-2.3):
* a book is a set of entries `MDEntryID -> (side, price, size)`; ids are large increasing integers;
* there is no MDUpdateAction=1 (Change): a new size at a price is a Delete of the old id and a New with
  a fresh id at the same price, in one X;
* a quote move is one X with the entries that leave the book deleted and the new prices added.

The feed is not locked: its owner (quote_server.py) serialises calls under the lock that also covers
sending, so the wire order equals the order of book changes.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import NamedTuple

from fixadapter.connectors.fix import tags as t
from fixadapter.connectors.fix.wire import SOH, format_decimal
from fixadapter.sim.prices import SymbolSpec, initial_quote

BID = "0"  # MDEntryType
ASK = "1"
NEW = "0"  # MDUpdateAction; cTrader never sends 1 (Change)
DELETE = "2"
SIDE_NAME = {BID: "bid", ASK: "ask"}
FIRST_ENTRY_ID = 2291666392  # the order of magnitude of the ids in captured cTrader traffic
LOT = Decimal(100000)
DEFAULT_LEVELS = 5

Pair = tuple[int, str]
GroupEntry = list[Pair]

# One id sequence per process: ids stay unique across books and across feeds (tests build several).
_process_ids: Iterator[int] = itertools.count(FIRST_ENTRY_ID)


class Entry(NamedTuple):
    """One book entry as the wire carries it: MDEntryType (BID/ASK), MDEntryPx, MDEntrySize in units."""

    side: str
    price: Decimal
    size: Decimal


class Change(NamedTuple):
    """One X entry: a New (the entry that appears) or a Delete (the entry that leaves)."""

    action: str
    entry_id: int
    entry: Entry


class Level(NamedTuple):
    """All entries at one price of one side, sizes summed."""

    price: Decimal
    size: Decimal


class Book:
    """One symbol's entries and the venue quote they are centred on."""

    def __init__(self, spec: SymbolSpec, bid: Decimal, ask: Decimal) -> None:
        self.spec = spec
        self.bid = bid
        self.ask = ask
        self.entries: dict[int, Entry] = {}

    def levels(self, side: str) -> list[Level]:
        """Aggregated levels of one side, best first (highest bid, lowest ask)."""
        sizes: dict[Decimal, Decimal] = {}
        for entry in self.entries.values():
            if entry.side == side:
                sizes[entry.price] = sizes.get(entry.price, Decimal(0)) + entry.size
        return [Level(p, sizes[p]) for p in sorted(sizes, reverse=side == BID)]

    def top(self) -> tuple[Decimal | None, Decimal | None]:
        """Best bid and best ask prices of the entries (what a client's book shows)."""
        bids, asks = self.levels(BID), self.levels(ASK)
        return (bids[0].price if bids else None, asks[0].price if asks else None)


class MarketFeed:
    """Per-symbol depth books that follow the venue's quote, with seeded random sizes.

    Each side has `levels` prices `level_points` points apart; the top prices are exactly the venue's
    bid and ask (the prices it fills at), so a client's best level equals the execution price.
    """

    def __init__(
        self,
        symbols: Sequence[SymbolSpec],
        levels: int = DEFAULT_LEVELS,
        seed: int | None = None,
        level_points: int = 1,
        max_lots: int = 50,
        quotes: Iterable[tuple[int, Decimal, Decimal]] = (),
        ids: Iterator[int] | None = None,
    ) -> None:
        if levels < 1:
            raise ValueError(f"levels must be at least 1, was {levels}")
        if level_points < 1 or max_lots < 1:
            raise ValueError("level_points and max_lots must be at least 1")
        self.levels = levels
        self.level_points = level_points
        self._max_lots = max_lots
        self._ids = ids if ids is not None else _process_ids
        self._random = random.Random(seed)  # noqa: S311, RUF100 - simulated sizes, reproducible on purpose
        pinned = {symbol_id: (bid, ask) for symbol_id, bid, ask in quotes}
        self._books: dict[int, Book] = {}
        for spec in symbols:
            start = initial_quote(spec)  # the random walk's start, until the venue's first quote arrives
            bid, ask = pinned.get(spec.symbol_id) or (start.bid, start.ask)
            book = Book(spec, spec.quantize(bid), spec.quantize(ask))
            for side, price in self._ladder(book):
                book.entries[next(self._ids)] = Entry(side, price, self._size())
            self._books[spec.symbol_id] = book

    def symbol_ids(self) -> list[int]:
        return list(self._books)

    def has(self, symbol_id: int) -> bool:
        return symbol_id in self._books

    def book(self, symbol_id: int) -> Book:
        """The live book (raises KeyError for a symbol the simulator does not list)."""
        return self._books[symbol_id]

    def quote(self, symbol_id: int) -> tuple[Decimal, Decimal]:
        book = self._books[symbol_id]
        return book.bid, book.ask

    def set_quote(self, symbol_id: int, bid: Decimal, ask: Decimal) -> list[Change]:
        """Re-centre on a new venue quote: News for the prices that join, Deletes for those that leave.

        News come first, as in captured cTrader X messages; a client must apply the whole X before it
        publishes its book. Entries whose price still belongs keep their id and size.
        """
        book = self._books[symbol_id]
        bid, ask = book.spec.quantize(bid), book.spec.quantize(ask)
        if (bid, ask) == (book.bid, book.ask):
            return []
        if not 0 < bid < ask:
            raise ValueError(f"need 0 < bid < ask, was {bid} / {ask}")
        book.bid, book.ask = bid, ask
        wanted = self._ladder(book)
        present = {(e.side, e.price) for e in book.entries.values()}
        changes = [
            Change(NEW, next(self._ids), Entry(side, price, self._size()))
            for side, price in wanted
            if (side, price) not in present
        ]
        keep = set(wanted)
        changes += [
            Change(DELETE, entry_id, entry)
            for entry_id, entry in book.entries.items()
            if (entry.side, entry.price) not in keep
        ]
        _apply(book, changes)
        return changes

    def churn(self, symbol_id: int) -> list[Change]:
        """A new size for one random entry: Delete of its id, New with a fresh id at the same price."""
        book = self._books[symbol_id]
        if not book.entries:
            return []
        old_id = self._random.choice(list(book.entries))
        old = book.entries[old_id]
        size = self._size()
        while size == old.size and self._max_lots > 1:
            size = self._size()
        changes = [
            Change(DELETE, old_id, old),
            Change(NEW, next(self._ids), Entry(old.side, old.price, size)),
        ]
        _apply(book, changes)
        return changes

    def _ladder(self, book: Book) -> list[tuple[str, Decimal]]:
        step = book.spec.point * self.level_points
        bids = [(BID, book.bid - i * step) for i in range(self.levels)]
        asks = [(ASK, book.ask + i * step) for i in range(self.levels)]
        return [(side, price) for side, price in bids + asks if price > 0]

    def _size(self) -> Decimal:
        return LOT * self._random.randint(1, self._max_lots)


def _apply(book: Book, changes: Iterable[Change]) -> None:
    for change in changes:
        if change.action == NEW:
            book.entries[change.entry_id] = change.entry
        else:
            book.entries.pop(change.entry_id, None)


# -- wire content ------------------------------------------------------------------------------------


def spot_entries(bid: Decimal, ask: Decimal) -> list[GroupEntry]:
    """A spot W's 268 group: prices only (cTrader sends no 271 and no 278 for spot)."""
    return [
        [(t.MD_ENTRY_TYPE, BID), (t.MD_ENTRY_PX, format_decimal(bid))],
        [(t.MD_ENTRY_TYPE, ASK), (t.MD_ENTRY_PX, format_decimal(ask))],
    ]


def snapshot_entries(book: Book) -> list[GroupEntry]:
    """A depth W's 268 group: one entry per book entry, in book (not price) order, as cTrader's."""
    return [
        [
            (t.MD_ENTRY_TYPE, entry.side),
            (t.MD_ENTRY_PX, format_decimal(entry.price)),
            (t.MD_ENTRY_SIZE, format_decimal(entry.size)),
            (t.MD_ENTRY_ID, str(entry_id)),
        ]
        for entry_id, entry in book.entries.items()
    ]


def incremental_entries(symbol_id: int, changes: Iterable[Change]) -> list[GroupEntry]:
    """An X's 268 group: 279, 269 (New only), 278, 55 on every entry, 270/271 (New only)."""
    symbol = str(symbol_id)
    entries: list[GroupEntry] = []
    for change in changes:
        if change.action == NEW:
            entry = change.entry
            entries.append(
                [
                    (t.MD_UPDATE_ACTION, NEW),
                    (t.MD_ENTRY_TYPE, entry.side),
                    (t.MD_ENTRY_ID, str(change.entry_id)),
                    (t.SYMBOL, symbol),
                    (t.MD_ENTRY_PX, format_decimal(entry.price)),
                    (t.MD_ENTRY_SIZE, format_decimal(entry.size)),
                ]
            )
        else:
            entries.append(
                [(t.MD_UPDATE_ACTION, DELETE), (t.MD_ENTRY_ID, str(change.entry_id)), (t.SYMBOL, symbol)]
            )
    return entries


def group_text(count_tag: int, entries: Sequence[GroupEntry]) -> str:
    """A repeating group as FIX text (`268=n<SOH>269=0<SOH>...`), for building messages from a string."""
    parts = [f"{count_tag}={len(entries)}{SOH}"]
    for entry in entries:
        parts.extend(f"{tag}={value}{SOH}" for tag, value in entry)
    return "".join(parts)

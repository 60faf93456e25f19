"""Market data, normalized: what consumers of the QUOTE session (or the Open API spot stream) receive.

Books and quotes are built on the market-data thread from trusted, already-parsed values, so the hot path
creates them with `model_construct` (no re-validation); everything arriving from outside is validated.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import IntEnum
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict


class PriceLevel(NamedTuple):
    """One aggregated price level: every book entry at this price, sizes summed (units)."""

    price: Decimal
    size: Decimal


class BookSide(IntEnum):
    BID = 0
    ASK = 1


# -- what a connector's codec produces (hot path: plain tuples, built once per message) -----------


class BookEntry(NamedTuple):
    """One entry of a full refresh; spot entries carry neither id nor size."""

    entry_id: str | None
    side: BookSide
    price: Decimal
    size: Decimal | None


class EntryChange(NamedTuple):
    """One entry of an incremental refresh: a New (side, price, size set) or a Delete (only the id)."""

    symbol_id: int
    entry_id: str
    delete: bool
    side: BookSide | None = None
    price: Decimal | None = None
    size: Decimal | None = None


class FullRefresh(NamedTuple):
    """A W: replaces a symbol's book (depth, entries with ids) or its top of book (spot)."""

    symbol_id: int
    time: datetime
    entries: tuple[BookEntry, ...]
    md_req_id: str | None = None

    @property
    def is_depth(self) -> bool:
        return any(entry.entry_id is not None for entry in self.entries)


class IncrementalRefresh(NamedTuple):
    """An X: entry changes, each naming its symbol, applied as one unit."""

    time: datetime
    changes: tuple[EntryChange, ...]


class RequestRejected(NamedTuple):
    """A Y: the subscription with this id was refused."""

    md_req_id: str
    reason: int | None
    text: str | None


class StreamGap(NamedTuple):
    """A market data message was lost (e.g. garbled on the wire): depth books may no longer be exact."""

    reason: str


MarketMessage = FullRefresh | IncrementalRefresh | RequestRejected


# -- what consumers receive ---------------------------------------------------------------------


class _Market(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Quote(_Market):
    """Top of book from a spot subscription (cTrader sends prices only, no sizes)."""

    symbol_id: int
    symbol: str
    time: datetime
    bid: Decimal | None
    ask: Decimal | None
    mid: Decimal | None = None
    spread_pips: Decimal | None = None
    stale: bool = False


class DepthSnapshot(_Market):
    """A depth book as it was at `time`, levels best first, with its DOM figures; stored in `market_depth`.

    `imbalance` is (bid size - ask size) / (bid size + ask size) over the first `imbalance_levels` levels;
    `microprice` weights the best prices by the opposite side's size at the top.
    """

    symbol_id: int
    symbol: str
    time: datetime
    bids: tuple[PriceLevel, ...]
    asks: tuple[PriceLevel, ...]
    mid: Decimal | None = None
    spread_pips: Decimal | None = None
    imbalance: float | None = None
    microprice: Decimal | None = None

    @property
    def best_bid(self) -> PriceLevel | None:
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> PriceLevel | None:
        return self.asks[0] if self.asks else None


class Book(DepthSnapshot):
    """A live book, published after a whole W or X was applied: the snapshot plus its update count and
    whether its stream has gone silent."""

    updates: int = 0
    stale: bool = False


class MarketDataRejected(_Market):
    """The server refused a subscription (35=Y); `text` is cTrader's reason, e.g. INVALID_REQUEST: ..."""

    md_req_id: str
    symbol_id: int | None = None
    symbol: str | None = None
    reason: int | None = None
    text: str | None = None


class MarketDataStale(_Market):
    """A subscribed symbol has been silent for longer than `market_data.stale_after_seconds`."""

    symbol_id: int
    symbol: str
    silent_seconds: float
    stale: bool = True


MarketEvent = Quote | Book | MarketDataRejected | MarketDataStale

"""Simulated prices for the cTrader simulator: a symbol catalogue and a seeded random walk of quotes.

Prices are `Decimal`s quantized to the symbol's digits, as cTrader sends them (SymbolDigits, tag 1008), so the
adapter meets the same precision it will see from a broker. The walk is seeded and every move is explicit, so
tests are reproducible; `set_quote` pins a price exactly where a test needs it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

MAX_DIGITS = 10


@dataclass(frozen=True)
class SymbolSpec:
    """One tradable symbol as cTrader's SecurityList describes it (id, name, digits), plus a start mid."""

    symbol_id: int
    name: str
    digits: int
    mid: Decimal
    spread_points: int = 10
    # Volumes in units, as a broker sets them per symbol (not sent over FIX, reference 2.5); the default is
    # cTrader's precision of tag 38. FX: 0.01 lot (1000 units) and steps of it.
    min_volume: Decimal = Decimal("0.01")
    volume_step: Decimal = Decimal("0.01")

    def __post_init__(self) -> None:
        if not 0 <= self.digits <= MAX_DIGITS:
            raise ValueError(f"{self.name}: digits must be within 0..{MAX_DIGITS}, was {self.digits}")
        if self.spread_points < 1:
            raise ValueError(f"{self.name}: spread_points must be at least 1, was {self.spread_points}")
        if not self.mid.is_finite() or self.mid <= self.point * self.spread_points:
            raise ValueError(f"{self.name}: mid {self.mid} must be above the spread")

    @property
    def point(self) -> Decimal:
        """The smallest price increment, 10**-digits."""
        return Decimal(1).scaleb(-self.digits)

    def quantize(self, price: Decimal) -> Decimal:
        """Round a price to the symbol's digits (half-even), the precision the venue quotes and fills at."""
        return price.quantize(self.point, rounding=ROUND_HALF_EVEN)


# Ids are not contiguous, as in cTrader's SecurityList (1…36, 10001…); the adapter must not hard-code them.
FX_VOLUMES: dict[str, Any] = {"min_volume": Decimal(1000), "volume_step": Decimal(1000)}
DEFAULT_SYMBOLS: tuple[SymbolSpec, ...] = (
    SymbolSpec(1, "EURUSD", 5, Decimal("1.08350"), **FX_VOLUMES),
    SymbolSpec(2, "GBPUSD", 5, Decimal("1.27120"), spread_points=14, **FX_VOLUMES),
    SymbolSpec(3, "EURJPY", 3, Decimal("168.420"), spread_points=16, **FX_VOLUMES),
    SymbolSpec(4, "USDJPY", 3, Decimal("155.440"), spread_points=12, **FX_VOLUMES),
    SymbolSpec(5, "AUDUSD", 5, Decimal("0.66210"), spread_points=12, **FX_VOLUMES),
    SymbolSpec(10026, "XAUUSD", 2, Decimal("2331.50"), spread_points=30),
    SymbolSpec(10001, "US500", 2, Decimal("5282.40"), spread_points=50),
)


@dataclass(frozen=True)
class Quote:
    """Top of book of one symbol; the venue fills buys at the ask and sells at the bid."""

    symbol_id: int
    bid: Decimal
    ask: Decimal


class RandomWalk:
    """Thread-safe random walk of bid/ask quotes, one per symbol, with a constant spread.

    The simulator's clock thread calls `step` while TRADE session and control threads read `quote`; one
    lock keeps every bid/ask pair consistent. (The QUOTE process streams these quotes as they move.)
    """

    def __init__(self, symbols: Sequence[SymbolSpec], seed: int | None = None, step_points: int = 3) -> None:
        if step_points < 0:
            raise ValueError(f"step_points must not be negative, was {step_points}")
        specs = {spec.symbol_id: spec for spec in symbols}
        if len(specs) != len(symbols):
            raise ValueError("symbol ids must be unique")
        self._specs = specs
        self._step_points = step_points
        # Simulated prices, not secrets: a seeded, reproducible generator is wanted. RUF100 because S311 is
        # ignored in pyproject but selected by stricter lint runs over sim/.
        self._random = random.Random(seed)  # noqa: S311, RUF100
        self._lock = threading.Lock()
        self._quotes = {spec.symbol_id: initial_quote(spec) for spec in symbols}

    def symbols(self) -> tuple[SymbolSpec, ...]:
        """The catalogue, in the order it was given."""
        return tuple(self._specs.values())

    def spec(self, symbol_id: int) -> SymbolSpec | None:
        """The symbol's spec, or None when the id is not in the catalogue."""
        return self._specs.get(symbol_id)

    def quote(self, symbol_id: int) -> Quote:
        """The current quote; raises KeyError for an unknown symbol id."""
        with self._lock:
            return self._quotes[self._require(symbol_id).symbol_id]

    def step(self, symbol_id: int) -> Quote:
        """Move the mid by a random whole number of points in [-step_points, step_points], keeping the spread.

        A move that would take the bid to zero or below is clamped to one point, so prices stay positive.
        """
        spec = self._require(symbol_id)
        with self._lock:
            current = self._quotes[symbol_id]
            move = self._random.randint(-self._step_points, self._step_points) * spec.point
            spread = current.ask - current.bid
            bid = max(current.bid + move, spec.point)
            quote = Quote(symbol_id, bid, bid + spread)
            self._quotes[symbol_id] = quote
            return quote

    def set_quote(self, symbol_id: int, bid: Decimal, ask: Decimal) -> Quote:
        """Pin the quote (tests, control endpoint); both prices are quantized, and bid must stay below ask."""
        spec = self._require(symbol_id)
        if not (bid.is_finite() and ask.is_finite()):
            raise ValueError(f"bid and ask must be finite, were {bid} / {ask}")
        quote = Quote(symbol_id, spec.quantize(bid), spec.quantize(ask))
        if quote.bid <= 0 or quote.bid >= quote.ask:
            raise ValueError(f"need 0 < bid < ask at {spec.digits} digits, was {quote.bid} / {quote.ask}")
        with self._lock:
            self._quotes[symbol_id] = quote
        return quote

    def _require(self, symbol_id: int) -> SymbolSpec:
        spec = self._specs.get(symbol_id)
        if spec is None:
            raise KeyError(f"unknown symbol id {symbol_id}")
        return spec


def initial_quote(spec: SymbolSpec) -> Quote:
    """Centre the spread on the spec's mid (the bid rounds half-even for an odd number of spread points)."""
    spread = spec.point * spec.spread_points
    bid = spec.quantize(spec.mid - spread / 2)
    return Quote(spec.symbol_id, bid, bid + spread)

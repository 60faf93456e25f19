"""A symbol's notional in USD, converted crudely: the one conversion the margin and commission rules share.

A symbol quoted in USD (EURUSD, XAUUSD, US500) is volume x price, one based on USD (USDJPY) is the volume
itself, any other (EURJPY) is volume x the mid price of its base in USD when the catalogue has it (EURUSD),
else volume x price. Good enough for a simulator's margin and costs; no real rate source is consulted.
"""

from __future__ import annotations

from decimal import Decimal

from fixadapter.sim.prices import RandomWalk, SymbolSpec

USD = "USD"


def notional_usd(prices: RandomWalk, spec: SymbolSpec, volume: Decimal, price: Decimal) -> Decimal:
    """`volume` units of `spec` at `price`, in USD."""
    name = spec.name
    if name.endswith(USD):
        return volume * price
    if name.startswith(USD):
        return volume
    base = next((s for s in prices.symbols() if s.name == name[:3] + USD), None)
    if base is not None:
        quote = prices.quote(base.symbol_id)
        return volume * (quote.bid + quote.ask) / 2
    return volume * price

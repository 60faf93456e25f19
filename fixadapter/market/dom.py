"""Depth-of-market figures computed on every book or quote update.

Pips come from the symbol's digits (all FIX gives us): FX quoted with 5 or 3 digits has its pip one digit
above the last (EURUSD 0.0001, USDJPY 0.01); anything else (metals, indices) counts the last digit.
"""

from __future__ import annotations

from decimal import Decimal

from fixadapter.model.market import PriceLevel

TWO = Decimal(2)


def pip_size(digits: int) -> Decimal:
    return Decimal(1).scaleb(-(digits - 1) if digits in (3, 5) else -digits)


def mid_and_spread(
    bid: Decimal | None, ask: Decimal | None, digits: int
) -> tuple[Decimal | None, Decimal | None]:
    """Mid price and spread in pips; None when a side is missing."""
    if bid is None or ask is None:
        return None, None
    return (bid + ask) / TWO, (ask - bid) / pip_size(digits)


def imbalance(bids: tuple[PriceLevel, ...], asks: tuple[PriceLevel, ...], levels: int) -> float | None:
    """(bid size - ask size) / (bid size + ask size) over the first `levels` levels, from -1 to +1."""
    bid_size = sum(level.size for level in bids[:levels])
    ask_size = sum(level.size for level in asks[:levels])
    total = bid_size + ask_size
    if not total:
        return None
    return float((bid_size - ask_size) / total)


def microprice(
    bids: tuple[PriceLevel, ...], asks: tuple[PriceLevel, ...], digits: int | None = None
) -> Decimal | None:
    """Best prices weighted by the opposite side's size: leans toward the side about to be taken.

    With `digits`, rounded to three digits below the price grid (a weighted price is rarely on it).
    """
    if not bids or not asks:
        return None
    bid, ask = bids[0], asks[0]
    total = bid.size + ask.size
    if not total:
        return None
    value = (bid.price * ask.size + ask.price * bid.size) / total
    return value if digits is None else value.quantize(Decimal(1).scaleb(-(digits + 3)))

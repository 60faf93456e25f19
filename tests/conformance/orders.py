"""Orders the conformance tests send: EURUSD (1 lot = 100000 units, in steps of 1000 at the simulator)."""

from __future__ import annotations

from decimal import Decimal

from fixadapter.model.requests import NewOrder

SYMBOL = "EURUSD"
FAR_BELOW = Decimal("0.90000")  # a buy limit that rests: the simulator's EURUSD trades near 1.08


def market(side: str = "buy", quantity: int = 10000, **extra: object) -> NewOrder:
    return NewOrder(symbol=SYMBOL, side=side, order_type="market", quantity=quantity, **extra)


def limit(price: Decimal = FAR_BELOW, side: str = "buy", quantity: int = 10000, **extra: object) -> NewOrder:
    return NewOrder(symbol=SYMBOL, side=side, order_type="limit", quantity=quantity, price=price, **extra)

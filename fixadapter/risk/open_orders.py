"""Open-order counts for the risk engine, kept so a check costs O(1) whatever the number of orders.

The engine reads counts through `OpenOrderCounts`; `OpenOrderTracker` keeps them incrementally from every
order change the order engine sees, and `OpenOrders.of` builds a snapshot from a list (tests, start-up).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from fixadapter.model.orders import Order
from fixadapter.model.requests import NewOrder

UNATTRIBUTED = ""


def strategy_of(order: Order | NewOrder) -> str:
    """The strategy an order (or a new order's request) counts against: its `strategy`, else its label,
    else unattributed."""
    return order.strategy or order.label or UNATTRIBUTED


class OpenOrderCounts(Protocol):
    @property
    def total(self) -> int: ...

    def for_strategy(self, strategy: str) -> int: ...


@dataclass(frozen=True)
class OpenOrders:
    """A fixed count: `OpenOrders(total=3, per_strategy={"momo": 2})`."""

    total: int = 0
    per_strategy: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, orders: Iterable[Order]) -> OpenOrders:
        counts = Counter(strategy_of(order) for order in orders if order.is_open)
        return cls(total=sum(counts.values()), per_strategy=dict(counts))

    def for_strategy(self, strategy: str) -> int:
        return self.per_strategy.get(strategy, 0)


class OpenOrderTracker:
    """Live counts: call `update` with every new version of every order (thread-safe)."""

    def __init__(self, orders: Iterable[Order] = ()) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, str] = {}
        self._per_strategy: Counter[str] = Counter()
        for order in orders:
            self.update(order)

    @property
    def total(self) -> int:
        return len(self._open)

    def for_strategy(self, strategy: str) -> int:
        return self._per_strategy[strategy]

    def update(self, order: Order, strategy: str | None = None) -> None:
        """An open order is counted once however often it is updated; a done one stops counting."""
        key = strategy_of(order) if strategy is None else strategy
        with self._lock:
            previous = self._open.pop(order.cl_ord_id, None)
            if previous is not None:
                self._per_strategy[previous] -= 1
                if not self._per_strategy[previous]:
                    del self._per_strategy[previous]
            if order.is_open:
                self._open[order.cl_ord_id] = key
                self._per_strategy[key] += 1

"""The queue in front of the one writer of an Open API connection: orders first, then everything else.

When the rate budget is short, whatever waits should not delay an order (or its cancel) behind a burst of
symbol or history queries: the official SDK drains one FIFO and an order can wait a second behind them.
So the queue keeps one FIFO per priority class and `pick` hands out the first request the limiter lets go
now, looking at orders before queries. A historical request blocked by its own 5/s budget does not hold
up the non-historical ones behind it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from enum import IntEnum
from typing import Generic, Protocol, TypeVar

from fixadapter.connectors.openapi.rate_limit import RateLimiter
from fixadapter.protocols.openapi.generated import OpenApiModelMessages_pb2 as model

__all__ = ["ORDER_PAYLOAD_TYPES", "OutgoingQueue", "Priority", "Queued", "priority_of"]


class Priority(IntEnum):
    """Lower goes first."""

    ORDER = 0  # new, cancel, amend order, amend position SL/TP, close position
    QUERY = 1  # everything else: auth, subscriptions, reconcile, lists, history


ORDER_PAYLOAD_TYPES: frozenset[int] = frozenset(
    {
        model.PROTO_OA_NEW_ORDER_REQ,
        model.PROTO_OA_CANCEL_ORDER_REQ,
        model.PROTO_OA_AMEND_ORDER_REQ,
        model.PROTO_OA_AMEND_POSITION_SLTP_REQ,
        model.PROTO_OA_CLOSE_POSITION_REQ,
    }
)


def priority_of(payload_type: int) -> Priority:
    """The class a request of this payloadType is queued in unless its caller says otherwise."""
    return Priority.ORDER if payload_type in ORDER_PAYLOAD_TYPES else Priority.QUERY


class Queued(Protocol):
    """What the queue needs to know of a request."""

    @property
    def priority(self) -> Priority: ...
    @property
    def historical(self) -> bool: ...


T = TypeVar("T", bound=Queued)


class OutgoingQueue(Generic[T]):
    """FIFO per priority; `changed` is set on every `put` so the writer can sleep until there is work."""

    def __init__(self) -> None:
        self._classes: dict[Priority, deque[T]] = {priority: deque() for priority in Priority}
        self.changed = asyncio.Event()

    def __len__(self) -> int:
        return sum(len(items) for items in self._classes.values())

    def put(self, item: T) -> None:
        self._classes[item.priority].append(item)
        self.changed.set()

    def remove(self, item: T) -> bool:
        """Take `item` out if it is still waiting (a request that timed out or was cancelled)."""
        try:
            self._classes[item.priority].remove(item)
        except ValueError:
            return False
        return True

    def ahead_of(self, item: T) -> int:
        """Requests that would go before `item` (for the text of a timeout); -1 if it is not queued."""
        items = self._classes[item.priority]
        if item not in items:
            return -1
        before = sum(len(self._classes[p]) for p in Priority if p < item.priority)
        return before + items.index(item)

    def pick(self, limiter: RateLimiter) -> tuple[T | None, float | None]:
        """The first request, orders before queries, that the limiter lets go now, taken out of the queue;
        else (None, seconds until one may go), or (None, None) when nothing waits."""
        if not len(self):
            return None, None
        overall = limiter.wait(historical=False)
        if overall > 0.0:
            return None, overall  # nothing of any kind may go before the overall budget has room
        historical_wait: float | None = None
        for priority in Priority:
            items = self._classes[priority]
            for index, item in enumerate(items):
                if item.historical:
                    if historical_wait is None:
                        historical_wait = limiter.wait(historical=True)
                    if historical_wait > 0.0:
                        continue  # it waits for its own budget; what is behind it need not
                del items[index]
                return item, None
        return None, historical_wait

    def drain(self) -> list[T]:
        """Everything still waiting, in the order it would have gone; the queue is left empty."""
        items = [item for priority in Priority for item in self._classes[priority]]
        for queue in self._classes.values():
            queue.clear()
        return items

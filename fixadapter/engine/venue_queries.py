"""The engine's questions to the venue, each bounded by a timeout; the connector matches the answers.

At most `max_status` status queries are in flight at once (an overloaded venue is not flooded); the
others wait their turn, and each order has one query asked or waiting at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from fixadapter.connectors.base import TradeConnector
from fixadapter.metrics import Metrics
from fixadapter.model.orders import Order
from fixadapter.model.reconciliation import MassStatus, OrderStatusAnswer, PositionsReport
from fixadapter.model.reports import Instrument

T = TypeVar("T")


async def _within(timeout: float, answer: Awaitable[T]) -> T:
    async with asyncio.timeout(timeout):
        return await answer


class VenueQueries:
    def __init__(self, connector: TradeConnector, metrics: Metrics, max_status: int = 20) -> None:
        self._status_slots = asyncio.Semaphore(max_status)
        self._asking: set[str] = set()  # orders with a status query in flight or waiting for a slot
        self._holding = 0  # status queries holding a slot (sent or about to be)
        self._connector = connector
        self._metrics = metrics

    async def instruments(self, timeout: float) -> list[Instrument]:
        return await _within(timeout, self._connector.instruments())

    async def mass_status(self, timeout: float) -> MassStatus:
        return await _within(timeout, self._connector.mass_status())

    async def positions(self, timeout: float) -> PositionsReport:
        return await _within(timeout, self._connector.positions())

    async def status(self, order: Order, timeout: float) -> OrderStatusAnswer:
        """The venue's view of one order; waits for a free slot first (the timeout counts from the send)."""
        self._asking.add(order.cl_ord_id)
        try:
            await self._status_slot()
            self._holding += 1
            try:
                self._metrics.status_queries.inc()
                return await _within(timeout, self._connector.order_status(order))
            finally:
                self._holding -= 1
                self._status_slots.release()
        finally:
            self._asking.discard(order.cl_ord_id)

    async def _status_slot(self) -> None:
        waiting = self._metrics.status_queries_waiting
        waiting.inc()
        try:
            await self._status_slots.acquire()
        finally:
            waiting.dec()

    def is_asking_status(self, cl_ord_id: str) -> bool:
        return cl_ord_id in self._asking

    @property
    def status_queries_open(self) -> int:
        """Status queries asked or waiting for a slot."""
        return len(self._asking)

    @property
    def status_queries_in_flight(self) -> int:
        """Status queries sent and not yet answered (at most max_status)."""
        return self._holding

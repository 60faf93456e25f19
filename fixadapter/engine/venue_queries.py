"""Requests the venue answers with one or several messages: instruments, mass status, positions, status.

Each request opens a collection keyed by its id; the engine's report task feeds answers into it
(`pending`), and the asking coroutine waits for the complete answer or its timeout. At most
`max_status` status queries are in flight at once (an overloaded venue is not flooded); the others
wait their turn, and each order has one query asked or waiting at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fixadapter.connectors.base import TradeConnector
from fixadapter.engine.pending import PendingRequests
from fixadapter.errors import VenueRefused
from fixadapter.metrics import Metrics
from fixadapter.model.ids import IdAllocator
from fixadapter.model.reports import BusinessReject, ExecutionReport, Instrument, PositionReport


class VenueQueries:
    def __init__(
        self, connector: TradeConnector, ids: IdAllocator, metrics: Metrics, max_status: int = 20
    ) -> None:
        self.pending = PendingRequests()
        self._status_slots = asyncio.Semaphore(max_status)
        self._asking: set[str] = set()  # orders with a status query in flight or waiting for a slot
        self._holding = 0  # status queries holding a slot (sent or about to be)
        self._connector = connector
        self._ids = ids
        self._metrics = metrics

    async def ask(self, key: str, send: Callable[[], None], timeout: float) -> list[Any]:
        """Send one request and wait for its complete answer."""
        answer = self.pending.open(key)
        try:
            send()
            async with asyncio.timeout(timeout):
                return await answer
        finally:
            answer.cancel()  # a no-op once answered; otherwise it closes the request

    async def instruments(self, timeout: float) -> list[Instrument]:
        request_id = self._ids.next("S")
        send = self._connector.send_instruments_request
        answer = await self.ask(f"instruments:{request_id}", lambda: send(request_id), timeout)
        if answer and not any(report.ok for report in answer):
            raise VenueRefused(
                "the venue refused the security list request (its answer lists no instruments)"
            )
        return [i for report in answer if report.ok for i in report.instruments]

    async def mass_status(self, timeout: float) -> list[ExecutionReport]:
        request_id = self._ids.next("M")
        send = self._connector.send_mass_status_request
        return await self.ask(f"mass:{request_id}", lambda: send(request_id), timeout)

    async def positions(self, timeout: float) -> list[PositionReport]:
        request_id = self._ids.next("P")
        send = self._connector.send_positions_request
        return await self.ask(f"positions:{request_id}", lambda: send(request_id), timeout)

    async def status(self, cl_ord_id: str, timeout: float) -> ExecutionReport | BusinessReject:
        """The venue's view of one order; waits for a free slot first (the timeout counts from the send)."""
        self._asking.add(cl_ord_id)
        try:
            await self._status_slot()
            self._holding += 1
            try:
                self._metrics.status_queries.inc()
                send = self._connector.send_status_request
                (answer,) = await self.ask(f"status:{cl_ord_id}", lambda: send(cl_ord_id), timeout)
                return answer  # type: ignore[no-any-return]
            finally:
                self._holding -= 1
                self._status_slots.release()
        finally:
            self._asking.discard(cl_ord_id)

    async def _status_slot(self) -> None:
        waiting = self._metrics.status_queries_waiting
        waiting.inc()
        try:
            await self._status_slots.acquire()
        finally:
            waiting.dec()

    def is_asking_status(self, cl_ord_id: str) -> bool:
        return cl_ord_id in self._asking or f"status:{cl_ord_id}" in self.pending

    @property
    def status_queries_open(self) -> int:
        """Status queries asked or waiting for a slot."""
        return len(self._asking)

    @property
    def status_queries_in_flight(self) -> int:
        """Status queries sent and not yet answered (at most max_status)."""
        return self._holding

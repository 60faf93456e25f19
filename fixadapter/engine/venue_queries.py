"""Requests the venue answers with one or several messages: instruments, mass status, positions, status.

Each request opens a collection keyed by its id; the engine's report task feeds answers into it
(`pending`), and the asking coroutine waits for the complete answer or its timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from fixadapter.connectors.base import TradeConnector
from fixadapter.engine.pending import PendingRequests
from fixadapter.metrics import Metrics
from fixadapter.model.ids import IdAllocator
from fixadapter.model.reports import BusinessReject, ExecutionReport, Instrument, PositionReport


class VenueQueries:
    def __init__(self, connector: TradeConnector, ids: IdAllocator, metrics: Metrics) -> None:
        self.pending = PendingRequests()
        self.queried_at: dict[str, float] = {}
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
        self._metrics.status_queries.inc()
        self.queried_at[cl_ord_id] = time.monotonic()
        send = self._connector.send_status_request
        (answer,) = await self.ask(f"status:{cl_ord_id}", lambda: send(cl_ord_id), timeout)
        return answer  # type: ignore[no-any-return]

    def is_asking_status(self, cl_ord_id: str) -> bool:
        return f"status:{cl_ord_id}" in self.pending

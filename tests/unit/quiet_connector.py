"""A TradeConnector that hands nothing to a venue: it notes what is sent, and every question waits until
the test answers it (`answer`, `refuse`) or the asker gives up. Live events are the test's to deliver."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from itertools import count
from typing import Any

from fixadapter.connectors.base import Capabilities, Deliver, RequestAlreadyOpen
from fixadapter.model.orders import Order, OrderRequest
from fixadapter.model.reconciliation import MassStatus, OrderStatusAnswer, PositionsReport
from fixadapter.model.reports import ExecutionReport, Instrument


class QuietConnector:
    capabilities = Capabilities(cancel_by_client_id=True, status_query=True, position_reports=True)

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.status_sent: list[str] = []
        self.instruments_sent: list[str] = []
        self.questions: dict[str, asyncio.Future[Any]] = {}
        self.most_in_flight = 0
        self.in_flight: Callable[[], int] = lambda: 0
        self.deliver: Deliver | None = None
        self._numbers = count(1)

    async def start(self, deliver: Deliver) -> None:
        self.deliver = deliver

    async def stop(self) -> None:
        pass

    async def submit(self, order: Order) -> None:
        self.sent.append(("new", order.cl_ord_id))

    async def cancel(self, order: Order, request: OrderRequest) -> None:
        self.sent.append(("cancel", request.request_id))

    async def replace(self, order: Order, request: OrderRequest) -> None:
        self.sent.append(("replace", request.request_id))

    async def order_status(self, order: Order) -> OrderStatusAnswer:
        self.status_sent.append(order.cl_ord_id)
        self.most_in_flight = max(self.most_in_flight, self.in_flight())
        answer: OrderStatusAnswer = await self._ask(f"status:{order.cl_ord_id}")
        return answer

    async def mass_status(self) -> MassStatus:
        answer: MassStatus = await self._ask(f"mass:M{next(self._numbers)}")
        return answer

    async def positions(self) -> PositionsReport:
        answer: PositionsReport = await self._ask(f"positions:P{next(self._numbers)}")
        return answer

    async def instruments(self) -> list[Instrument]:
        request_id = f"S{next(self._numbers)}"
        self.instruments_sent.append(request_id)
        answer: list[Instrument] = await self._ask(f"instruments:{request_id}")
        return answer

    async def cancel_unknown(self, request: OrderRequest) -> ExecutionReport:
        self.sent.append(("cancel", request.request_id))
        answer: ExecutionReport = await self._ask(f"cancel:{request.request_id}")
        return answer

    async def _ask(self, key: str) -> Any:
        if key in self.questions:
            raise RequestAlreadyOpen(f"request {key} is already waiting for its answer")
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.questions[key] = waiter
        try:
            return await waiter
        finally:
            del self.questions[key]

    def answer(self, key: str, value: object) -> None:
        self.questions[key].set_result(value)

    def refuse(self, key: str, error: BaseException) -> None:
        self.questions[key].set_exception(error)

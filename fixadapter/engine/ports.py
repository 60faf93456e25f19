"""What the reconciler, the in-flight watch and the sweep need of the order engine, as protocols.

They take these, never the OrderEngine itself, so engine/orders.py imports them and nothing imports it
back (no import circle); a test can hand them any object with these methods.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

from fixadapter.connectors.base import Capabilities
from fixadapter.engine.instruments import Catalog
from fixadapter.engine.venue_queries import VenueQueries
from fixadapter.metrics import Metrics
from fixadapter.model.orders import Order, Position
from fixadapter.model.reconciliation import OrderStatusReport, PositionsReport
from fixadapter.model.reports import ExecutionReport, Instrument
from fixadapter.model.requests import CancelOrder

T = TypeVar("T")


class WatchedOrders(Protocol):
    """What the in-flight watch asks about and changes."""

    @property
    def ready(self) -> bool: ...

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def queries(self) -> VenueQueries: ...

    def open_orders(self) -> list[Order]: ...

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]: ...

    async def flag_unknown(self, cl_ord_id: str, silent_for: float) -> None: ...

    async def close_unknown(self, cl_ord_id: str, text: str | None, sent: bool = False) -> None: ...

    async def apply_status_answer(self, order: Order, answer: OrderStatusReport) -> bool: ...

    async def settle_lost_request(self, cl_ord_id: str, venue: ExecutionReport | None, why: str) -> None: ...


class ReconciledOrders(WatchedOrders, Protocol):
    """What reconciliation reads from the venue into and marks ready."""

    reconcile_problem: str | None

    @property
    def metrics(self) -> Metrics: ...

    @property
    def catalog(self) -> Catalog: ...

    @property
    def reconcile_timeout(self) -> float: ...

    def mark_ready(self) -> None: ...

    async def load_instruments(self, timeout: float) -> list[Instrument]: ...

    async def caught_up(self, arrived: int) -> None: ...

    async def find(self, cl_ord_id: str | None, order_id: str | None) -> Order | None: ...

    async def save_positions(self, answer: PositionsReport) -> list[Position]: ...

    async def adopt_external(self, report: ExecutionReport) -> Order: ...

    async def apply_venue_view(
        self, order: Order, report: ExecutionReport, arrived: int | None = None
    ) -> Order: ...


class CancellableOrders(Protocol):
    """What the sweep cancels."""

    @property
    def metrics(self) -> Metrics: ...

    def open_orders(self) -> list[Order]: ...

    async def cancel(self, request: CancelOrder) -> Order: ...

    async def get_order(self, cl_ord_id: str) -> Order | None: ...

"""The contract every trade connector (FIX, Open API) fulfils for the engine.

- start(deliver): once; `deliver` is thread-safe. Answered by SessionStatus reports.
- stop(): at shutdown; blocking, so call it from a worker thread.
- send_new_order(order): after the order is persisted as PENDING_NEW.
  Answered by ExecutionReport or BusinessReject.
- send_cancel(request, order_id), send_replace(order, request): after the request is persisted.
  Answered by ExecutionReport, CancelRejected or BusinessReject.
- send_status_request(cl_ord_id): reconciliation and in-flight timeouts; one ExecutionReport or a
  BusinessReject.
- send_mass_status_request(id): after every logon; ExecutionReports carrying the id, or a BusinessReject
  when there are none.
- send_positions_request(id): after every logon and after fills; PositionReports carrying the id.
- send_instruments_request(id): after every logon; one SecurityListReport.

Any of these may instead be answered by RequestRefused: the venue refused the message without naming
our id (FIX: a session-level Reject or a BusinessMessageReject tied back by sequence number).

Every send raises fixadapter.errors.SessionError when the message could not be handed to the venue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from fixadapter.model.orders import Order, OrderRequest
from fixadapter.model.reports import VenueReport

Deliver = Callable[[VenueReport], None]


class TradeConnector(Protocol):
    def start(self, deliver: Deliver) -> None: ...

    def stop(self) -> None: ...

    def send_new_order(self, order: Order) -> None: ...

    def send_cancel(self, request: OrderRequest, order_id: str | None) -> None: ...

    def send_replace(self, order: Order, request: OrderRequest) -> None: ...

    def send_status_request(self, cl_ord_id: str) -> None: ...

    def send_mass_status_request(self, request_id: str) -> None: ...

    def send_positions_request(self, request_id: str) -> None: ...

    def send_instruments_request(self, request_id: str) -> None: ...

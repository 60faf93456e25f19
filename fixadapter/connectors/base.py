"""The contract every trade connector (FIX, Open API) fulfils for the engine.

| method                      | when the engine calls it                        | answered by                  |
|-----------------------------|-------------------------------------------------|------------------------------|
| start(deliver)              | once; `deliver` is thread-safe                  | SessionStatus reports        |
| stop()                      | shutdown (blocking; run in a worker thread)     |                              |
| send_new_order(order)       | after the order is persisted as PENDING_NEW     | ExecutionReport / BusinessReject |
| send_cancel(request, order_id) | after the request is persisted                  | ExecutionReport / CancelRejected / BusinessReject |
| send_replace(order, request)| after the request is persisted                  | same as cancel               |
| send_status_request(id)     | reconciliation and in-flight timeouts           | ExecutionReport / BusinessReject |
| send_mass_status_request(id)| reconciliation after every logon                | ExecutionReports with the id / BusinessReject |
| send_positions_request(id)  | reconciliation and after fills                  | PositionReports with the id  |
| send_instruments_request(id)| first logon                                     | SecurityListReport           |

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

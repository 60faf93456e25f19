"""The contract every trade connector (FIX, Open API) fulfils for the engine: async and answer-returning.

Live events (execution reports, cancel rejects, refusals of an order or a cancel/replace, route status,
unreadable messages) go to the one `deliver` callback given to `start`, in the order the venue sent
them; `deliver` is thread-safe. Questions (status, mass status, positions, instruments, a cancel of an
order we do not know) are answered by the method that asked: the connector matches the venue's answer to
its request itself, and an answer never reaches `deliver`.

Method                   required?             answer
capabilities             yes                   what the connector can do (asked, never hasattr)
start(deliver)           yes                   once; live events and route status follow
stop()                   yes                   logs out; every open question fails (SessionNotReady)
submit(order)            yes                   after the order is stored PENDING_NEW; live events
cancel(order, request)   yes                   after the request is stored; live events
replace(order, request)  yes                   after the request is stored; live events
mass_status()            yes                   MassStatus: working orders (+ positions where given)
instruments()            yes                   the venue's instrument list
order_status(order)      status_query          OrderStatusReport, or OrderUnknown (venue's words)
positions()              position_reports      PositionsReport: every open position
cancel_unknown(request)  cancel_by_client_id   the report of an order we never stored, cancelled
close_position(close)    close_position        after the closing order is stored; live events (its
                                               execution reports under close.cl_ord_id, or a
                                               RequestRefused (CLOSE_POSITION) that rejects it)
amend_position_          position_protection   live events: a PositionProtection (request_id set; also
  protection(change)                           sent unasked when the venue moves a trailing stop), or a
                                               RequestRefused (AMEND_POSITION_PROTECTION) with why
set_market_sink, ...     market_data / depth   MarketDataConnector below

The two position methods are PositionConnector's (below): a connector without the capability need not
have them, and the engine refuses the operation locally, naming the connector, before storing anything.
So it does for a new order asking what the connector cannot send (stop-limit, SL/TP or trailing stop,
comment, an explicit time in force other than the venue's default): `submit` only ever gets orders the
connector declared it can send. A closing order found unsent after a restart is sent again by `submit`
(a market order of the opposite side naming the position, which closes it on cTrader).

Sends raise fixadapter.errors.SessionError when the message could not be handed to the venue (known not
sent: it may be sent again). Questions raise VenueRefused with the venue's reason when it refuses one,
RequestAlreadyOpen when the same question is still open (a request key is never silently replaced),
SessionNotReady when the route dropped before the answer; a caller bounds the wait with a timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fixadapter.errors import SessionError
from fixadapter.model.enums import TimeInForce
from fixadapter.model.market import MarketMessage
from fixadapter.model.orders import Order, OrderRequest, PositionClose, PositionProtectionChange
from fixadapter.model.reconciliation import MassStatus, OrderStatusAnswer, PositionsReport
from fixadapter.model.reports import ExecutionReport, Instrument, VenueReport

Deliver = Callable[[VenueReport], None]


class RequestAlreadyOpen(SessionError):
    """The same question (same request key) is still waiting for its answer: this one was not sent."""


@dataclass(frozen=True)
class Capabilities:
    """What a connector can do, declared: the engine and the API ask these instead of testing attributes."""

    cancel_by_client_id: bool = False  # cancel an order by our id alone (one this adapter never stored)
    status_query: bool = False  # order_status(order)
    position_reports: bool = False  # positions()
    market_data: bool = False  # spot quotes (MarketDataConnector)
    depth: bool = False  # depth of book (MarketDataConnector)
    message_capture: bool = False  # every wire message offered to the compliance record
    positions_in_mass_status: bool = False  # mass_status() carries the positions too
    # A new order may be: stop-limit; carry stop loss / take profit (absolute or relative) and a trailing
    # stop loss; carry a comment.
    stop_limit: bool = False
    order_protection: bool = False
    market_absolute_protection: bool = False  # with order_protection: a market order's SL/TP as prices
    order_comment: bool = False
    # The times in force a new order may name explicitly. One equal to the venue's default for the order
    # (market: IOC, with expire_time: GTD, else GTC) is always taken: it asks nothing the venue would not do.
    time_in_force: frozenset[TimeInForce] = frozenset()
    close_position: bool = False  # close_position(close): PositionConnector
    position_protection: bool = False  # amend_position_protection(change): PositionConnector
    # What the connector calls its trading and market data connections, in words for people (readiness).
    trading_route: str = "trading"
    market_data_route: str = "market data"
    # The connector's name in a refusal ("the FIX connector cannot ...").
    name: str = "account's"


class TradeConnector(Protocol):
    @property
    def capabilities(self) -> Capabilities: ...

    async def start(self, deliver: Deliver) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, order: Order) -> None: ...

    async def cancel(self, order: Order, request: OrderRequest) -> None: ...

    async def replace(self, order: Order, request: OrderRequest) -> None: ...

    async def mass_status(self) -> MassStatus: ...

    async def order_status(self, order: Order) -> OrderStatusAnswer: ...

    async def positions(self) -> PositionsReport: ...

    async def instruments(self) -> list[Instrument]: ...

    async def cancel_unknown(self, request: OrderRequest) -> ExecutionReport: ...


class PositionConnector(Protocol):
    """Position operations (capabilities.close_position, capabilities.position_protection)."""

    async def close_position(self, close: PositionClose) -> None: ...

    async def amend_position_protection(self, change: PositionProtectionChange) -> None: ...


class MarketDataConnector(Protocol):
    """Market data (capabilities.market_data): raw stream items go to the sink set before start()."""

    def set_market_sink(self, sink: Callable[[Any], None]) -> None: ...

    def decode_market_data(self, item: Any) -> MarketMessage: ...

    def send_market_data_request(
        self, md_req_id: str, symbol_id: int, depth: bool, subscribe: bool
    ) -> None: ...


class WireRecorder(Protocol):
    """The compliance record (compliance.capture.MessageRecorder): O(1), thread-safe, never raises."""

    def offer(self, session: str, direction: str, text: str) -> None: ...

    def offer_event(self, session: str, text: str) -> None: ...

    def register_session(self, session: str, prefix: str) -> None: ...

    def offer_frame(self, session: str, direction: str, frame: bytes) -> None: ...


class MessageCaptureConnector(Protocol):
    """Wire capture (capabilities.message_capture): every message goes to the recorder set before start()."""

    def set_message_recorder(self, recorder: WireRecorder) -> None: ...

"""FixConnector: the TradeConnector over QuickFIX (QUOTE + TRADE sessions of one account, on an initiator
it may share with the process's other accounts: connectors/fix/host.py).

QuickFIX hands every message over on its own threads; each is passed to the event loop in arrival
order, where the answers to our questions are kept by `queries` (connectors/fix/queries.py) and every
other report goes to the engine's `deliver` as a live event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fixadapter.config import AdapterConfig
from fixadapter.connectors.base import Capabilities, Deliver, WireRecorder
from fixadapter.connectors.fix import codec, market_codec
from fixadapter.connectors.fix.application import FixApplication
from fixadapter.connectors.fix.host import FixHost
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.connectors.fix.queries import FixQueries
from fixadapter.connectors.fix.session import FixSessions
from fixadapter.errors import SessionError, SessionNotReady
from fixadapter.metrics import Metrics
from fixadapter.model.ids import IdAllocator
from fixadapter.model.market import MarketMessage
from fixadapter.model.orders import Order, OrderRequest
from fixadapter.model.reconciliation import MassStatus, OrderStatusAnswer, PositionsReport
from fixadapter.model.reports import ExecutionReport, Instrument, VenueReport
from fixadapter.model.requests import DEFAULT_ACCOUNT

CAPABILITIES = Capabilities(
    cancel_by_client_id=True,
    status_query=True,
    position_reports=True,
    market_data=True,
    depth=True,
    message_capture=True,
    trading_route="TRADE",
    market_data_route="QUOTE",
    # No stop-limit, SL/TP, comment, explicit time in force nor position operations: cTrader FIX has none
    # (OrdType 40 is 1/2/3, TimeInForce 59 is ignored, SL/TP tags are only reported).
    name="FIX",
)


def record_prefix(account: str) -> str:
    """The account's sessions in the compliance record: QUOTE and TRADE for the default account (the
    names of a single-account store's chains, kept across the upgrade), `<account>:QUOTE` for another."""
    return "" if account == DEFAULT_ACCOUNT else f"{account}:"


class FixConnector:
    def __init__(
        self,
        config: AdapterConfig,
        metrics: Metrics,
        ids: IdAllocator | None = None,
        *,
        account: str | None = None,
        host: FixHost | None = None,
    ) -> None:
        """`account`: which configured account (None: the only one); `host`: the initiator it shares with
        the process's other accounts (None: one of its own)."""
        self._config = config
        self._entry = config.account(account)
        self._fix = config.fix_settings(self._entry.name)
        self._host = host or FixHost(config, [self._entry.name])
        self._metrics = metrics
        for kind in SessionKind:  # a series from the start: an alert on 0 fires before any first logon
            metrics.session_up.labels(kind.value).set(0)
            if self._fix.tls(kind):
                metrics.tls_connected.labels(kind.value).set(0)
        self._ids = ids or IdAllocator()
        self._sessions: FixSessions | None = None
        self._market_sink: Callable[[Any], None] | None = None
        self._recorder: WireRecorder | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deliver: Deliver | None = None
        self.queries = FixQueries()

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def set_market_sink(self, sink: Callable[[Any], None]) -> None:
        """Where QUOTE W/X/Y (raw text) and QUOTE session changes go; set before start()."""
        self._market_sink = sink

    def set_message_recorder(self, recorder: WireRecorder) -> None:
        """Where every message of both sessions goes for the compliance record; set before start()."""
        self._recorder = recorder

    async def start(self, deliver: Deliver) -> None:
        self._loop = asyncio.get_running_loop()
        self._deliver = deliver
        entry = self._entry
        application = FixApplication(self._fix, self._from_venue, self._metrics, self._market_sink)

        def open_sessions() -> None:  # blocking: TLS forwarders, then the initiator's threads
            self._sessions = FixSessions(
                entry.name,
                self._fix,
                self._host,
                application,
                self._metrics,
                messages=self._config.logging.fix_messages,
                recorder=self._recorder,
                record_as=record_prefix(entry.name),
            )
            self._sessions.start()

        await asyncio.to_thread(open_sessions)

    async def stop(self) -> None:
        if self._sessions is not None:
            await asyncio.to_thread(self._sessions.stop)
        self.queries.pending.fail_all(SessionNotReady("the adapter is stopping"))

    def _from_venue(self, report: VenueReport) -> None:
        """QuickFIX threads: O(1), hands the report to the loop in arrival order."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._route, report)

    def _route(self, report: VenueReport) -> None:
        if not self.queries.take(report) and self._deliver is not None:
            self._deliver(report)

    def logon_enabled(self, kind: SessionKind) -> bool:
        """False while a session waits after a refused logon or has stopped trying (see logon_retry)."""
        return self._sessions is not None and self._sessions.is_enabled(kind)

    def _send(self, outbound: codec.Outbound, kind: SessionKind = SessionKind.TRADE) -> None:
        if self._sessions is None:
            raise SessionError("the FIX connector is not started")
        msg_type, body = outbound
        if not self._sessions.send(kind, msg_type, body):
            raise SessionError(f"{kind.value} is not logged on: {msg_type} was not sent")

    async def submit(self, order: Order) -> None:
        self._send(codec.new_order_single(order, datetime.now(UTC)))

    async def cancel(self, order: Order, request: OrderRequest) -> None:
        self._send(codec.order_cancel_request(request, order.order_id))

    async def replace(self, order: Order, request: OrderRequest) -> None:
        self._send(codec.order_cancel_replace_request(order, request))

    async def order_status(self, order: Order) -> OrderStatusAnswer:
        return await self.queries.order_status(
            order, lambda: self._send(codec.order_status_request(order.cl_ord_id))
        )

    async def mass_status(self) -> MassStatus:
        request_id = self._ids.next("M")
        return await self.queries.mass_status(
            request_id, lambda: self._send(codec.order_mass_status_request(request_id))
        )

    async def positions(self) -> PositionsReport:
        request_id = self._ids.next("P")
        return await self.queries.positions(
            request_id, lambda: self._send(codec.request_for_positions(request_id))
        )

    async def instruments(self) -> list[Instrument]:
        request_id = self._ids.next("S")
        return await self.queries.instruments(
            request_id, lambda: self._send(codec.security_list_request(request_id))
        )

    async def cancel_unknown(self, request: OrderRequest) -> ExecutionReport:
        """Cancel by our id alone an order this adapter never stored: the venue decides."""
        return await self.queries.cancel_unknown(
            request.request_id, lambda: self._send(codec.order_cancel_request(request, None))
        )

    def decode_market_data(self, item: Any) -> MarketMessage:
        return market_codec.decode_market_data(item)

    def send_market_data_request(self, md_req_id: str, symbol_id: int, depth: bool, subscribe: bool) -> None:
        if self._sessions is None:
            raise SessionError("the FIX connector is not started")
        msg_type, body, groups = market_codec.market_data_request(
            md_req_id, symbol_id, depth=depth, subscribe=subscribe
        )
        if not self._sessions.send(SessionKind.QUOTE, msg_type, body, groups):
            raise SessionError(f"QUOTE is not logged on: {msg_type} was not sent")

"""FixConnector: the TradeConnector over QuickFIX (QUOTE + TRADE sessions of one account)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fixadapter.config import AdapterConfig
from fixadapter.connectors.base import Deliver
from fixadapter.connectors.fix import codec, market_codec
from fixadapter.connectors.fix.application import FixApplication, MessageLog
from fixadapter.connectors.fix.session import FixSessions
from fixadapter.errors import SessionError
from fixadapter.metrics import Metrics
from fixadapter.model.enums import SessionKind
from fixadapter.model.market import MarketMessage
from fixadapter.model.orders import Order, OrderRequest


class FixConnector:
    def __init__(self, config: AdapterConfig, metrics: Metrics) -> None:
        self._config = config
        self._metrics = metrics
        self._sessions: FixSessions | None = None
        self._market_sink: Callable[[Any], None] | None = None
        self._recorder: MessageLog | None = None

    def set_market_sink(self, sink: Callable[[Any], None]) -> None:
        """Where QUOTE W/X/Y (raw text) and QUOTE session changes go; set before start()."""
        self._market_sink = sink

    def set_message_recorder(self, recorder: MessageLog) -> None:
        """Where every message of both sessions goes for the compliance record; set before start()."""
        self._recorder = recorder

    def start(self, deliver: Deliver) -> None:
        application = FixApplication(self._config.account, deliver, self._metrics, self._market_sink)
        self._sessions = FixSessions(self._config, application, self._metrics, self._recorder)
        self._sessions.start()

    def stop(self) -> None:
        if self._sessions is not None:
            self._sessions.stop()

    def logon_enabled(self, kind: SessionKind) -> bool:
        """False while a session waits after a refused logon or has stopped trying (see logon_retry)."""
        return self._sessions is not None and self._sessions.is_enabled(kind)

    def _send(self, outbound: codec.Outbound, kind: SessionKind = SessionKind.TRADE) -> None:
        if self._sessions is None:
            raise SessionError("the FIX connector is not started")
        msg_type, body = outbound
        if not self._sessions.send(kind, msg_type, body):
            raise SessionError(f"{kind.value} is not logged on: {msg_type} was not sent")

    def send_new_order(self, order: Order) -> None:
        self._send(codec.new_order_single(order, datetime.now(UTC)))

    def send_cancel(self, request: OrderRequest, order_id: str | None) -> None:
        self._send(codec.order_cancel_request(request, order_id))

    def send_replace(self, order: Order, request: OrderRequest) -> None:
        self._send(codec.order_cancel_replace_request(order, request))

    def send_status_request(self, cl_ord_id: str) -> None:
        self._send(codec.order_status_request(cl_ord_id))

    def send_mass_status_request(self, request_id: str) -> None:
        self._send(codec.order_mass_status_request(request_id))

    def send_positions_request(self, request_id: str) -> None:
        self._send(codec.request_for_positions(request_id))

    def send_instruments_request(self, request_id: str) -> None:
        self._send(codec.security_list_request(request_id))

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

"""The simulator's cTrader Open API front: a TLS port speaking Open API protobuf over the same venues as
the FIX ports (one set of accounts, orders and positions; an order's ids are the ones FIX reports).

It runs an asyncio loop on a thread of its own (the FIX side is QuickFIX threads). Requests are executed
on that loop under the TradeServer's lock, as the FIX front does, and their executions come back, with
every other execution of the account (a FIX request, a resting order crossed by a quote, an expiry, a
partial fill on the clock, a stop loss), through TradeServer.execution_listeners: each becomes a
ProtoOAExecutionEvent for every connection on which that account is authorised; the connection whose
request caused it gets the request's clientMsgId on it.

Per connection (reference 1.5 to 1.9): frames of at most `openapi_max_frame` bytes (a larger one, or
garbage, closes the connection with a log line); client heartbeats are never answered but count as
activity; the server sends a ProtoHeartbeatEvent after `openapi_heartbeat_seconds` without sending
anything, and drops a client silent for `openapi_idle_seconds`; 50 requests/s and 5 historical
requests/s. The control port can block or mute a payload type, cut connections and send the server's
disconnect events. Only payload type names and account ids are logged, never a token or a secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any, TypeVar

from google.protobuf.message import Message

from fixadapter.protocols.openapi.framing import FrameDecoder, FramingError
from fixadapter.protocols.openapi.generated import OpenApiCommonMessages_pb2 as common
from fixadapter.protocols.openapi.generated import OpenApiMessages_pb2 as messages
from fixadapter.protocols.openapi.generated import OpenApiModelMessages_pb2 as model
from fixadapter.protocols.openapi.messages import Decoded, FrameError, decode, message_class
from fixadapter.sim.config import SimAccount, SimConfig
from fixadapter.sim.openapi import convert
from fixadapter.sim.openapi.connection import Connection, account_of
from fixadapter.sim.openapi.limits import PayloadGates
from fixadapter.sim.openapi.margin import Ledger, MarginRule
from fixadapter.sim.openapi.requests import RequestHandlers
from fixadapter.sim.openapi.tokens import TokenRegistry
from fixadapter.sim.records import Execution
from fixadapter.sim.trade_server import Desk, TradeServer
from fixadapter.tls.loop_thread import LoopThread

log = logging.getLogger("fixadapter.sim.openapi")

T = TypeVar("T")
READ_CHUNK = 65536
HEARTBEAT_EVENT = common.ProtoHeartbeatEvent().payloadType
APPLICATION_AUTH_REQ = model.PROTO_OA_APPLICATION_AUTH_REQ


def payload_type_number(value: object) -> int:
    """A payload type named by number or by name (PROTO_OA_NEW_ORDER_REQ, or its class ProtoOANewOrderReq)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isdigit():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = model.ProtoOAPayloadType.Value(value)
        except ValueError:
            cls = getattr(messages, value, None) or getattr(common, value, None)
            if cls is None or not hasattr(cls, "DESCRIPTOR"):
                raise ValueError(f"no payload type {value!r}") from None
            number = int(cls().payloadType)
    else:
        raise ValueError(f"payload_type must be a name or a number, was {value!r}")
    if message_class(number) is None:
        raise ValueError(f"no message has payload type {number}")
    return number


class OpenApiServer:
    def __init__(
        self,
        config: SimConfig,
        trade: TradeServer,
        registry: TokenRegistry,
        context: ssl.SSLContext,
    ) -> None:
        self.config = config
        self.trade = trade
        self.registry = registry
        self.gates = PayloadGates()
        self.margin = MarginRule(config.balance, config.leverage, trade.prices)
        self.port = config.openapi_port
        self._context = context
        self._thread = LoopThread("sim-openapi")
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: dict[int, Connection] = {}
        self._numbers = itertools.count(1)
        self._ticker: asyncio.Task[None] | None = None
        # The request being executed under the trade lock: (connection number, clientMsgId).
        self._origin: tuple[int, str | None] | None = None
        self._held: list[tuple[Connection, bytes]] = []  # the hold fault's requests, in arrival order
        self._accounts = {account.ctid_trader_account_id: account for account in config.served_accounts}
        self._desks_by_ctid = {desk.account.ctid_trader_account_id: desk for desk in trade.desks.values()}
        self.ledger = Ledger(
            self.margin, {ctid: desk.venue.deals() for ctid, desk in self._desks_by_ctid.items() if ctid}
        )
        self.requests = RequestHandlers(self)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self._thread.call(self._start())
        self.trade.execution_listeners.append(self._on_executions)
        self.registry.revoked.append(self._on_token_revoked)

    async def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(
            self._serve, self.config.host, self.config.openapi_port, ssl=self._context
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._ticker = asyncio.create_task(self._tick())

    def stop(self) -> None:
        if self._on_executions in self.trade.execution_listeners:
            self.trade.execution_listeners.remove(self._on_executions)
        if self._on_token_revoked in self.registry.revoked:
            self.registry.revoked.remove(self._on_token_revoked)
        if self._loop is not None:
            self._thread.call(self._stop())
        self._thread.stop()

    async def _stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections.values()):
            connection.close("the simulator stops")

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the Open API loop from another thread (the control port) and wait for it."""
        return self._thread.call(coro)

    # -- accounts ------------------------------------------------------------------------------

    def account(self, ctid: int) -> SimAccount | None:
        return self._accounts.get(ctid)

    def accounts(self) -> list[SimAccount]:
        return list(self._accounts.values())

    def desk(self, ctid: int) -> Desk:
        return self._desks_by_ctid[ctid]

    def run_on_venue(self, connection: Connection, client_msg_id: str | None, action: Callable[[], T]) -> T:
        """Run a venue call and the sending of its executions under the trade lock, marking them as this
        request's (its connection gets the clientMsgId on the events)."""
        with self.trade.lock:
            self._origin = (connection.number, client_msg_id)
            try:
                return action()
            finally:
                self._origin = None

    # -- connections ---------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        peer = writer.get_extra_info("peername")
        where = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)
        connection = Connection(next(self._numbers), writer, where, loop.time(), loop.time())
        self._connections[connection.number] = connection
        log.info("openapi #%d: connected from %s", connection.number, connection.peer)
        decoder = FrameDecoder(self.config.openapi_max_frame)
        try:
            while not connection.closed:
                data = await reader.read(READ_CHUNK)
                if not data:
                    connection.close("the client closed the connection")
                    break
                connection.last_in = loop.time()
                for frame in decoder.feed(data):
                    self._receive(connection, frame)
                    if connection.closed:
                        break
        except FramingError as error:
            connection.send(common.ProtoErrorRes(errorCode="FRAME_TOO_LONG", description="message too large"))
            connection.close(f"frame refused: {error}")
        except FrameError as error:
            connection.close(f"not an Open API message: {error}")
        except (ConnectionError, ssl.SSLError, OSError) as error:
            connection.close(f"connection lost: {error.__class__.__name__}")
        except Exception:
            log.exception("openapi #%d: a request failed inside the simulator", connection.number)
            connection.close("the simulator failed on a request (a bug: see the traceback above)")
        finally:
            connection.close("connection ended")
            self._connections.pop(connection.number, None)
            with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
                await writer.wait_closed()

    def _receive(self, connection: Connection, frame: bytes) -> None:
        decoded = decode(frame)
        if decoded.payload_type == HEARTBEAT_EVENT:
            return  # activity only: cTrader answers nothing
        name = payload_name(decoded)
        log.debug("openapi #%d: received %s", connection.number, name)
        if decoded.message is None:
            # A protocol-level refusal: the common ProtoErrorRes, not the Open API's (reference 3.2).
            text = f"payloadType {decoded.payload_type} is not supported"
            refusal = common.ProtoErrorRes(errorCode="UNSUPPORTED_MESSAGE", description=text)
            connection.send(refusal, decoded.client_msg_id)
            return
        if not connection.limiter.admit(decoded.payload_type):
            self.error(
                connection,
                decoded,
                "REQUEST_FREQUENCY_EXCEEDED",
                "You have reached the rate limit of requests",
            )
            return
        blocked = self.gates.blocked_for(decoded.payload_type)
        if blocked is not None:
            error = self._error_res(decoded, "BLOCKED_PAYLOAD_TYPE", f"{name} is blocked")
            error.retryAfter = max(1, round(blocked))
            connection.send(error, decoded.client_msg_id)
            return
        if self.gates.swallow(decoded.payload_type):
            log.info("fault: a %s is never answered (muted)", name)
            return
        if self.gates.holds(decoded.payload_type):
            log.info("fault: a %s is held until released (a slow venue)", name)
            self._held.append((connection, frame))
            return
        if not connection.app_authorised and decoded.payload_type != APPLICATION_AUTH_REQ:
            self.error(connection, decoded, "CH_CLIENT_NOT_AUTHENTICATED", "Client is not authenticated")
            return
        if decoded.missing_required:
            missing = ", ".join(path.rpartition(".")[2] for path in decoded.missing_required)
            self.error(
                connection, decoded, "INVALID_REQUEST", f"required fields missing or invalid: {missing}"
            )
            return
        if self._ignored(connection, decoded):
            return
        self.requests.handle(connection, decoded)

    def _ignored(self, connection: Connection, decoded: Decoded) -> bool:
        """The /scenario ignore_requests fault: the account's next N requests are lost unanswered."""
        ctid = account_of(decoded.message)
        if ctid is None or ctid not in connection.accounts:
            return False
        faults = self.desk(ctid).faults
        with self.trade.lock:
            if faults.openapi_ignore_requests <= 0:
                return False
            faults.openapi_ignore_requests -= 1
        log.info("fault: an Open API request of account %d never reached the venue", ctid)
        return True

    async def _tick(self) -> None:
        """Send heartbeats to connections the server left silent, drop clients silent for too long."""
        config = self.config
        step = min(1.0, config.openapi_heartbeat_seconds / 4, config.openapi_idle_seconds / 4)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(step)
            now = loop.time()
            for connection in list(self._connections.values()):
                if now - connection.last_in >= config.openapi_idle_seconds:
                    connection.close(f"the client sent nothing for {config.openapi_idle_seconds:g}s")
                elif now - connection.last_out >= config.openapi_heartbeat_seconds:
                    connection.send(common.ProtoHeartbeatEvent())

    # -- answers -------------------------------------------------------------------------------

    def _error_res(self, decoded: Decoded, code: str, description: str) -> messages.ProtoOAErrorRes:
        error = messages.ProtoOAErrorRes(errorCode=code, description=description)
        ctid = account_of(decoded.message)
        if ctid is not None:
            error.ctidTraderAccountId = ctid
        return error

    def error(self, connection: Connection, decoded: Decoded, code: str, description: str) -> None:
        """A ProtoOAErrorRes answering `decoded` (its clientMsgId echoed)."""
        log.info("openapi #%d: %s refused: %s", connection.number, payload_name(decoded), code)
        connection.send(self._error_res(decoded, code, description), decoded.client_msg_id)

    def connections_of(self, ctid: int) -> list[Connection]:
        return [c for c in self._connections.values() if ctid in c.accounts and not c.closed]

    def send_to_account(
        self, ctid: int, events: list[Message], origin: tuple[int, str | None] | None = None
    ) -> None:
        """Events to every connection on which the account is authorised (on the loop's thread)."""
        for connection in self.connections_of(ctid):
            client_msg_id = origin[1] if origin is not None and origin[0] == connection.number else None
            for event in events:
                connection.send(event, client_msg_id)

    # -- listeners (called from any thread) ----------------------------------------------------

    def _on_executions(self, desk: Desk, executions: list[Execution]) -> None:
        """TradeServer's execution listener: under the trade lock, in venue order."""
        ctid = desk.account.ctid_trader_account_id
        loop = self._loop
        if ctid is None or loop is None:
            return
        events: list[Message] = []
        for execution in executions:
            profit = balance = Decimal(0)
            if execution.deal is not None:
                profit = self.margin.profit_usd(execution.deal)
                balance = self.ledger.book(ctid, execution.deal)
            event = convert.execution_event(ctid, execution, profit, balance)
            if event is None:
                continue
            if desk.faults.openapi_drop_events > 0:
                desk.faults.openapi_drop_events -= 1
                log.info(
                    "fault: dropped the Open API %s event of order %s",
                    execution.kind,
                    execution.order.order_id,
                )
                continue
            events.append(event)
        if events:
            loop.call_soon_threadsafe(self.send_to_account, ctid, events, self._origin)

    def _on_token_revoked(self, access_token: str, reason: str) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._token_revoked, access_token, reason)

    def _token_revoked(self, access_token: str, reason: str) -> None:
        """Accounts authorised with a token that died lose their authorisation, and are told so."""
        for connection in list(self._connections.values()):
            lost = [ctid for ctid, token in connection.accounts.items() if token == access_token]
            if not lost:
                continue
            for ctid in lost:
                del connection.accounts[ctid]
            event = messages.ProtoOAAccountsTokenInvalidatedEvent(ctidTraderAccountIds=lost, reason=reason)
            connection.send(event)
            log.info("openapi #%d: accounts %s lost their token (%s)", connection.number, lost, reason)

    # -- control port (run on the loop through `call`) -----------------------------------------

    async def release(self, payload_type: int | None) -> int:
        """Execute and answer the held requests (of the type, or all), in the order they arrived, as a
        slow venue would: also those whose connection has closed meanwhile (their answers go nowhere)."""
        self.gates.release(payload_type)
        released = [(c, f) for c, f in self._held if not self.gates.holds(decode(f).payload_type)]
        self._held = [(c, f) for c, f in self._held if self.gates.holds(decode(f).payload_type)]
        for connection, frame in released:
            self.requests.handle(connection, decode(frame))
        return len(released)

    async def cut(self, ctid: int | None) -> int:
        """Close the connections (those with the account authorised, when given): no event, no goodbye."""
        cut = [c for c in self._connections.values() if not c.closed and (ctid is None or ctid in c.accounts)]
        for connection in cut:
            connection.close("cut by the control port")
        return len(cut)

    async def account_disconnect(self, ctid: int) -> int:
        """ProtoOAAccountDisconnectEvent to each connection with the account, which loses it there."""
        connections = self.connections_of(ctid)
        for connection in connections:
            del connection.accounts[ctid]
            connection.send(messages.ProtoOAAccountDisconnectEvent(ctidTraderAccountId=ctid))
        return len(connections)

    async def client_disconnect(self, reason: str) -> int:
        """ProtoOAClientDisconnectEvent to every connection, then close it."""
        connections = [c for c in self._connections.values() if not c.closed]
        for connection in connections:
            connection.send(messages.ProtoOAClientDisconnectEvent(reason=reason))
            connection.close("client disconnect event sent (control port)")
        return len(connections)

    async def connection_count(self) -> int:
        return sum(1 for c in self._connections.values() if not c.closed)


def payload_name(decoded: Decoded) -> str:
    return type(decoded.message).__name__ if decoded.message is not None else str(decoded.payload_type)


__all__ = ["OpenApiServer", "account_of", "payload_type_number"]

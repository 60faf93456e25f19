"""OpenApiConnector: the TradeConnector over the cTrader Open API, for one account seated on a link.

Requests and their answers: every trading request carries a clientMsgId that names what it is for
(`n|<ClOrdID>` for a new order, `c|<request id>` for a cancel, `r|<request id>` for an amend), so a
refusal is tied to its request even when the server sends ids = 0 (ProtoOAOrderErrorEvent, reference
openapi-proto-messages#23). Answers are taken as events, in arrival order, on one path
(`_on_frame`): an order's acceptance is never handled after its fill.

What a send means: `submit` returns once the frame is written. A request refused for the rate limit
(REQUEST_FREQUENCY_EXCEEDED, BLOCKED_PAYLOAD_TYPE) was not executed, and is sent again after the
server's retryAfter (or a doubling wait), at most `retry_rate_limited` times, then refused with the
reason. A request cut by a lost connection after it was written is never resent: its order stays in
flight until reconciliation after the reconnect finds it by clientOrderId (or finds that the venue
never had it). Questions (reconcile, order details, order list) are answered by the method that asked.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from google.protobuf.message import Message

from fixadapter.connectors.base import Capabilities, Deliver, WireRecorder
from fixadapter.connectors.openapi import mapping
from fixadapter.connectors.openapi.account_config import OpenApiAccountConfig
from fixadapter.connectors.openapi.counting import payload_type_name
from fixadapter.connectors.openapi.errors import (
    ConnectionLost,
    ErrorResponse,
    NotConnected,
    OpenApiError,
    RequestTimeout,
    expect,
)
from fixadapter.connectors.openapi.link import OpenApiLink
from fixadapter.connectors.openapi.symbols import SymbolSpec, VolumeError, from_double
from fixadapter.errors import AnswerAwaited, RequestStillQueued, SessionError, SessionNotReady, VenueRefused
from fixadapter.metrics import Metrics
from fixadapter.model.enums import (
    Channel,
    OrderType,
    RequestKind,
    SessionState,
    Side,
    TimeInForce,
    VenueRequest,
)
from fixadapter.model.orders import Order, OrderRequest, PositionClose, PositionProtectionChange
from fixadapter.model.reconciliation import (
    MassStatus,
    OrderStatusAnswer,
    OrderStatusReport,
    OrderUnknown,
    PositionsReport,
    arrival_mark,
)
from fixadapter.model.reports import (
    CancelRejected,
    ConnectionStatus,
    ExecutionReport,
    Instrument,
    PositionProtection,
    RequestRefused,
    VenueReport,
)
from fixadapter.model.requests import DEFAULT_ACCOUNT
from fixadapter.protocols.openapi.generated import OpenApiMessages_pb2 as oa
from fixadapter.protocols.openapi.generated import OpenApiModelMessages_pb2 as model
from fixadapter.protocols.openapi.messages import Decoded, UnknownKind, payload_type_of

__all__ = ["CAPABILITIES", "CONNECTOR_NAME", "OpenApiConnector"]

log = logging.getLogger("fixadapter.openapi")

CONNECTOR_NAME = "openapi"
CAPABILITIES = Capabilities(
    status_query=True,
    position_reports=True,
    positions_in_mass_status=True,
    message_capture=True,
    stop_limit=True,
    order_protection=True,
    market_absolute_protection=False,  # the proto: absolute SL/TP "not supported for MARKET orders"
    order_comment=True,
    time_in_force=frozenset(
        {TimeInForce.GOOD_TILL_CANCEL, TimeInForce.IMMEDIATE_OR_CANCEL, TimeInForce.GOOD_TILL_DATE}
    ),
    close_position=True,
    position_protection=True,
    trading_route="Open API",
    market_data_route="Open API spots",
    name="Open API",
)
RATE_LIMITED = frozenset({"REQUEST_FREQUENCY_EXCEEDED", "BLOCKED_PAYLOAD_TYPE"})
NOT_FOUND = frozenset({"ORDER_NOT_FOUND", "OA_ORDER_NOT_FOUND", "ENTITY_NOT_FOUND"})
REMEMBERED_REQUESTS = 20_000  # clientMsgIds kept to tie late refusals to their request
ORDER_LIST_MARGIN = timedelta(minutes=5)  # the venue's clock and ours may differ a little
SYMBOL_BATCH = 500  # symbol ids per ProtoOASymbolByIdReq
SYMBOLS_RETRY_SECONDS = (1.0, 30.0)  # the first wait after symbols failed to load, doubling up to the last


def record_session(account: str) -> str:
    """The account's Open API frames in the compliance record: OPENAPI for the default account (as FIX's
    are QUOTE and TRADE), `<account>:OPENAPI` for another."""
    return "OPENAPI" if account == DEFAULT_ACCOUNT else f"{account}:OPENAPI"


@dataclass(frozen=True)
class _Sent:
    """What a clientMsgId of ours was for."""

    kind: VenueRequest
    request_id: str  # the ClOrdID of a new order, the request id of a cancel/replace
    cl_ord_id: str
    response_to: RequestKind | None = None


class OpenApiConnector:
    """See the module docstring."""

    def __init__(
        self,
        account: str,
        settings: OpenApiAccountConfig,
        link: OpenApiLink,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.account = account
        self._settings = settings
        self._ctid = settings.ctid_trader_account_id
        self._link = link
        self._metrics = metrics
        metrics.openapi_account_authorised.labels().set(0)  # a series from the start, for an alert on 0
        self._clock = clock
        self._deliver: Deliver | None = None
        self._symbols: dict[int, SymbolSpec] = {}
        self._sent: OrderedDict[str, _Sent] = OrderedDict()
        self._requests_by_order: dict[str, OrderRequest] = {}  # venue order id -> our open cancel/replace
        self._position_symbols: dict[str, int] = {}  # position id -> symbol id, from what the venue said
        self._tasks: set[asyncio.Task[None]] = set()
        self._queued: set[str] = set()  # ClOrdIDs whose new order waits in the writer's queue
        # ClOrdIDs whose new order reached the connection and has had no answer: when it was written, and
        # when that connection was lost (None: it was not).
        self._unanswered: OrderedDict[str, _Unanswered] = OrderedDict()
        self._sends = itertools.count(1)
        self._up = False
        self._announce: asyncio.Task[None] | None = None

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def set_message_recorder(self, recorder: WireRecorder) -> None:
        """Every frame of the account's connection goes to the compliance record; set before start()."""
        self._link.set_recorder(recorder)

    # --- lifetime --------------------------------------------------------------------------------------

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._metrics.openapi_account_authorised.labels().set(0)
        self._link.seat(
            self._ctid,
            self._on_frame,
            self._on_state,
            grant=self._settings.grant,
            on_expiry=self._metrics.openapi_token_expiry.labels().set,
            record_as=record_session(self.account),
        )
        self._link.start()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._announce is not None:
            self._announce.cancel()
        await self._link.unseat(self._ctid)

    def _on_state(self, up: bool, reason: str | None) -> None:
        """The link authorised the account, or lost it: symbols first, then the engine hears of it."""
        self._metrics.openapi_account_authorised.labels().set(1 if up else 0)
        if self._announce is not None:
            self._announce.cancel()
            self._announce = None
        if up:
            self._announce = asyncio.get_running_loop().create_task(self._announce_up())
            return
        if self._up:
            self._up = False
            self._metrics.openapi_reconnects.labels().inc()
        self._emit(self._status(SessionState.LOGGED_OUT, reason))  # down, or still down for a new reason

    async def _announce_up(self) -> None:
        """Symbols, then LOGGED_ON. Symbols that fail to load (a timeout, a refusal) are asked for again,
        with a doubling wait, while the account stays authorised: the account is never left not ready
        with nothing trying (the engine hears why meanwhile)."""
        wait, longest = SYMBOLS_RETRY_SECONDS
        while True:
            try:
                await self._load_symbols()
                break
            except (OpenApiError, SessionError, SessionNotReady) as error:  # a timeout is SessionNotReady
                why = f"symbols not loaded ({error}); asked again in {wait:g}s"
                log.warning("Open API account %d: %s", self._ctid, why)
                self._emit(self._status(SessionState.LOGGED_OUT, why))
            await asyncio.sleep(wait)
            wait = min(wait * 2, longest)
        self._up = True
        self._emit(self._status(SessionState.LOGGED_ON, None))

    def _status(self, state: SessionState, text: str | None) -> ConnectionStatus:
        return ConnectionStatus(connector=CONNECTOR_NAME, channel=Channel.TRADING, state=state, text=text)

    def _emit(self, report: VenueReport) -> None:
        if self._deliver is not None:
            self._deliver(report)

    # --- symbols ---------------------------------------------------------------------------------------

    async def _load_symbols(self) -> None:
        listed = await self._ask(oa.ProtoOASymbolsListReq(ctidTraderAccountId=self._ctid))
        listed = expect(listed, oa.ProtoOASymbolsListRes)
        light = {symbol.symbolId: symbol for symbol in listed.symbol}
        ids = sorted(light)
        specs: dict[int, SymbolSpec] = {}
        for start in range(0, len(ids), SYMBOL_BATCH):
            chunk = ids[start : start + SYMBOL_BATCH]
            answer = await self._ask(oa.ProtoOASymbolByIdReq(ctidTraderAccountId=self._ctid, symbolId=chunk))
            answer = expect(answer, oa.ProtoOASymbolByIdRes)
            for full in answer.symbol:
                if full.symbolId in light:
                    specs[full.symbolId] = SymbolSpec.of(light[full.symbolId], full)
        self._symbols = specs
        log.info("Open API account %d: %d symbols", self._ctid, len(specs))

    def _spec(self, symbol_id: int) -> SymbolSpec:
        spec = self._symbols.get(symbol_id)
        if spec is None:
            raise VolumeError(f"symbol {symbol_id} is not in the account's symbol list")
        return spec

    def _digits(self, symbol_id: int) -> int | None:
        spec = self._symbols.get(symbol_id)
        return spec.digits if spec is not None else None

    async def instruments(self) -> list[Instrument]:
        if not self._symbols:
            await self._load_symbols()
        return [spec.instrument for spec in self._symbols.values()]

    # --- questions -------------------------------------------------------------------------------------

    async def _ask(self, message: Message) -> Message:
        """A question: its answer, or SessionNotReady / VenueRefused saying why there is none."""
        started = self._clock()
        name = payload_type_name(_payload_type(message))
        try:
            answer = await self._link.request(message)
        except ErrorResponse as refused:
            self._metrics.openapi_errors.labels(refused.error_code).inc()
            raise VenueRefused(str(refused)) from None
        except (NotConnected, ConnectionLost) as error:
            raise SessionNotReady(f"Open API {name}: {error}") from None
        except RequestTimeout as error:
            raise SessionNotReady(str(error)) from None
        self._metrics.openapi_request_seconds.labels(name).observe(self._clock() - started)
        return answer

    async def _reconcile(self) -> oa.ProtoOAReconcileRes:
        answer = expect(
            await self._ask(oa.ProtoOAReconcileReq(ctidTraderAccountId=self._ctid)), oa.ProtoOAReconcileRes
        )
        for position in answer.position:
            self._position_symbols[str(position.positionId)] = position.tradeData.symbolId
        return answer

    async def mass_status(self) -> MassStatus:
        answer = await self._reconcile()
        orders = tuple(mapping.status_report(o, self._digits(o.tradeData.symbolId)) for o in answer.order)
        arrived = arrival_mark()  # one answer: its orders and positions arrived together
        positions = PositionsReport(
            tuple(mapping.position(p, self._digits(p.tradeData.symbolId)) for p in answer.position), arrived
        )
        return MassStatus(orders=orders, positions=positions, arrived=arrived)

    async def positions(self) -> PositionsReport:
        answer = await self._reconcile()
        return PositionsReport(
            tuple(mapping.position(p, self._digits(p.tradeData.symbolId)) for p in answer.position)
        )

    async def order_status(self, order: Order) -> OrderStatusAnswer:
        """By the venue's order id when we have it; else looked for by our clientOrderId among the orders
        of the account since it was created (an order whose send was cut, or whose answer was lost).

        Not while its request is still queued here behind the rate limit: the venue cannot have it yet,
        and "unknown" would have it rejected, or sent a second time while the first is about to go.
        RequestStillQueued says so; the watch asks again later. Nor for an order whose request was sent
        and never answered: a slow venue may execute it after the list was made, so one it does not list
        is AnswerAwaited: on a connection still up, for twice the request timeout, then unknown as sent
        (rejected, never sent again: a venue swallowed it); on a connection lost after the send, for
        `lost_order_settle_seconds` after the loss, then unknown (it never arrived: sent again if young)."""
        if order.cl_ord_id in self._queued:
            raise RequestStillQueued(
                f"{order.cl_ord_id}: its request is still queued here for the rate limit"
            )
        if order.order_id:
            try:
                answer = await self._ask(
                    oa.ProtoOAOrderDetailsReq(ctidTraderAccountId=self._ctid, orderId=int(order.order_id))
                )
            except VenueRefused as refused:
                if any(code in str(refused) for code in NOT_FOUND):
                    return OrderUnknown(order.cl_ord_id, str(refused))
                raise
            answer = expect(answer, oa.ProtoOAOrderDetailsRes)
            return OrderStatusReport(mapping.status_report(answer.order, self._digits(order.symbol_id)))
        since = order.created_at - ORDER_LIST_MARGIN
        found = await self._listed(order, since)
        unanswered = self._unanswered.get(order.cl_ord_id)
        if not found and unanswered is not None and self._clock() < self._awaited_until(unanswered):
            raise self._awaited(order.cl_ord_id, since, unanswered)
        self._answered(order.cl_ord_id)
        if not found:
            return OrderUnknown(
                order.cl_ord_id,
                f"ORDER_NOT_FOUND: no order with clientOrderId {order.cl_ord_id} among the account's orders "
                f"since {since.isoformat(timespec='seconds')}",
                sent=unanswered is not None and unanswered.lost_at is None,
            )
        latest = max(found, key=lambda o: o.utcLastUpdateTimestamp)
        return OrderStatusReport(mapping.status_report(latest, self._digits(order.symbol_id)))

    async def _listed(self, order: Order, since: datetime) -> list[model.ProtoOAOrder]:
        """The venue's orders named by our clientOrderId, from its order list since `since`. A list cut
        short (hasMore) that does not name it proves nothing: the minutes around the order's creation are
        asked for alone, to find it; not found there either, the venue cannot say (VenueRefused), never
        "unknown" (which could have the order sent a second time)."""
        windows = (
            (since, datetime.now(UTC) + ORDER_LIST_MARGIN),
            (since, order.created_at + ORDER_LIST_MARGIN),
        )
        for number, (start, end) in enumerate(windows):
            answer = await self._ask(
                oa.ProtoOAOrderListReq(
                    ctidTraderAccountId=self._ctid,
                    fromTimestamp=mapping.timestamp_ms(start),
                    toTimestamp=mapping.timestamp_ms(end),
                )
            )
            answer = expect(answer, oa.ProtoOAOrderListRes)
            found = [o for o in answer.order if o.clientOrderId == order.cl_ord_id]
            if found or (number == 0 and not answer.hasMore):
                return found
        raise VenueRefused(
            f"{order.cl_ord_id}: the venue's order list is cut short (hasMore) and does not name it, nor "
            "does the list of the minutes around its creation: its status cannot be told from the list"
        )

    def _awaited_until(self, unanswered: _Unanswered) -> float:
        """Until when a sent, unanswered order the venue does not list is waited for: twice its answer's
        timeout on a connection still up (a venue slower than that is not believed to execute it still),
        or the settle time after the connection that carried it was lost."""
        if unanswered.lost_at is not None:
            return unanswered.lost_at + self._settings.lost_order_settle_seconds
        return unanswered.written_at + 2 * self._settings.request_timeout_seconds

    def _awaited(self, cl_ord_id: str, since: datetime, unanswered: _Unanswered) -> AnswerAwaited:
        text = (
            f"{cl_ord_id}: its new order was sent and never answered, and the venue lists no order with "
            f"that clientOrderId since {since.isoformat(timespec='seconds')}: it may still be executed, so "
            "it is neither sent again nor closed yet"
        )
        if not unanswered.said:  # said once per order
            unanswered.said = True
            then = (
                "rejected (not sent again) if still unlisted"
                if unanswered.lost_at is None
                else "taken as never received (sent again if young enough) if still unlisted"
            )
            wait = self._awaited_until(unanswered) - self._clock()
            log.warning("Open API: %s; asked again, and %s in %.0fs", text, then, wait)
        return AnswerAwaited(text)

    async def cancel_unknown(self, request: OrderRequest) -> ExecutionReport:
        raise VenueRefused(
            f"the Open API cancels by the venue's order id: {request.cl_ord_id} is not an order of this "
            "adapter"
        )

    # --- trading ---------------------------------------------------------------------------------------

    async def submit(self, order: Order) -> None:
        try:
            message = self._new_order(order)
        except ValueError as refused:  # off the symbol's grid: refused here, with the rule
            self._metrics.openapi_errors.labels("LOCAL_REFUSAL").inc()
            self._emit(
                RequestRefused(
                    request=VenueRequest.NEW_ORDER, request_id=order.cl_ord_id, text=_local_refusal(refused)
                )
            )
            return
        sent = _Sent(VenueRequest.NEW_ORDER, order.cl_ord_id, order.cl_ord_id)
        await self._send(message, self._msg_id("n", order.cl_ord_id), sent)

    async def cancel(self, order: Order, request: OrderRequest) -> None:
        if not order.order_id:
            raise SessionError(
                f"order {order.cl_ord_id} has no venue order id yet (the Open API cancels by it): "
                "cancel again once it is acknowledged"
            )
        self._requests_by_order[order.order_id] = request
        sent = _Sent(VenueRequest.CANCEL, request.request_id, order.cl_ord_id, RequestKind.CANCEL)
        message = oa.ProtoOACancelOrderReq(ctidTraderAccountId=self._ctid, orderId=int(order.order_id))
        try:
            await self._send(message, self._msg_id("c", request.request_id), sent)
        except SessionError:
            self._requests_by_order.pop(order.order_id, None)
            raise

    async def replace(self, order: Order, request: OrderRequest) -> None:
        if not order.order_id:
            raise SessionError(
                f"order {order.cl_ord_id} has no venue order id yet (the Open API amends by it): "
                "amend again once it is acknowledged"
            )
        try:
            message = self._amend(order, request)
        except ValueError as refused:
            self._emit(
                RequestRefused(
                    request=VenueRequest.REPLACE, request_id=request.request_id, text=_local_refusal(refused)
                )
            )
            return
        self._requests_by_order[order.order_id] = request
        sent = _Sent(VenueRequest.REPLACE, request.request_id, order.cl_ord_id, RequestKind.REPLACE)
        try:
            await self._send(message, self._msg_id("r", request.request_id), sent)
        except SessionError:
            self._requests_by_order.pop(order.order_id, None)
            raise

    async def close_position(self, close: PositionClose) -> None:
        """A market order of the opposite side on the position's id, carrying our ClOrdID.

        Not ProtoOAClosePositionReq: the order the venue makes for that one carries no clientOrderId, so a
        close whose answers were lost (a cut connection) could not be found again by our id, and the
        in-flight watch would take it for an order the venue never had and send it again: a second close.
        On a hedged account (cTrader's, and the simulator's) an opposite order naming the position reduces
        or closes it the same way, and the venue keeps our id on it."""
        try:
            volume = self._spec(close.symbol_id).volume(close.quantity)
        except ValueError as refused:
            self._emit(
                RequestRefused(
                    request=VenueRequest.CLOSE_POSITION,
                    request_id=close.cl_ord_id,
                    text=_local_refusal(refused),
                )
            )
            return
        message = oa.ProtoOANewOrderReq(
            ctidTraderAccountId=self._ctid,
            symbolId=close.symbol_id,
            orderType=model.MARKET,
            tradeSide=mapping.SIDE_CODE[close.side],
            volume=volume,
            positionId=int(close.position_id),
            clientOrderId=close.cl_ord_id,
        )
        sent = _Sent(VenueRequest.CLOSE_POSITION, close.cl_ord_id, close.cl_ord_id)
        await self._send(message, self._msg_id("x", close.cl_ord_id), sent)

    async def amend_position_protection(self, change: PositionProtectionChange) -> None:
        """ProtoOAAmendPositionSLTPReq states the whole protection: a price left out is removed."""
        try:
            spec = self._position_spec(change.position_id)
            message = oa.ProtoOAAmendPositionSLTPReq(
                ctidTraderAccountId=self._ctid, positionId=int(change.position_id)
            )
            if change.stop_loss is not None:
                message.stopLoss = (
                    spec.price(change.stop_loss, "stop_loss") if spec else float(change.stop_loss)
                )
            if change.take_profit is not None:
                message.takeProfit = (
                    spec.price(change.take_profit, "take_profit") if spec else float(change.take_profit)
                )
        except ValueError as refused:
            self._emit(
                RequestRefused(
                    request=VenueRequest.AMEND_POSITION_PROTECTION,
                    request_id=change.request_id,
                    text=_local_refusal(refused),
                )
            )
            return
        if change.trailing_stop_loss:
            message.trailingStopLoss = True
        sent = _Sent(VenueRequest.AMEND_POSITION_PROTECTION, change.request_id, change.position_id)
        await self._send(message, self._msg_id("p", change.request_id), sent)

    def _position_spec(self, position_id: str) -> SymbolSpec | None:
        symbol_id = self._position_symbols.get(position_id)
        return self._symbols.get(symbol_id) if symbol_id is not None else None

    def _new_order(self, order: Order) -> oa.ProtoOANewOrderReq:
        spec = self._spec(order.symbol_id)
        message = oa.ProtoOANewOrderReq(
            ctidTraderAccountId=self._ctid,
            symbolId=order.symbol_id,
            tradeSide=mapping.SIDE_CODE[order.side],
            volume=spec.volume(order.quantity),
            clientOrderId=order.cl_ord_id,
        )
        kind = order.order_type
        if kind is OrderType.MARKET:
            message.orderType = model.MARKET
        elif kind is OrderType.LIMIT:
            message.orderType = model.LIMIT
            message.limitPrice = spec.price(_given(order.price, "price"))
        elif kind is OrderType.STOP:
            message.orderType = model.STOP
            message.stopPrice = spec.price(_given(order.stop_price, "stop_price"), "stop_price")
        elif kind is OrderType.STOP_LIMIT:
            # cTrader's stop-limit: triggered at stopPrice, then a limit slippageInPoints away from it.
            stop = _given(order.stop_price, "stop_price")
            message.orderType = model.STOP_LIMIT
            message.stopPrice = spec.price(stop, "stop_price")
            message.slippageInPoints = _slippage(spec, order.side, _given(order.price, "price"), stop)
        else:
            raise ValueError(f"order type {kind} is not one the Open API connector sends")
        if order.time_in_force is not None:
            message.timeInForce = mapping.TIME_IN_FORCE_CODE[order.time_in_force]
        if order.expire_time is not None:
            message.timeInForce = model.GOOD_TILL_DATE
            message.expirationTimestamp = mapping.timestamp_ms(order.expire_time)
        _protect(message, order, spec)
        if order.label:
            message.label = order.label
        if order.comment:
            message.comment = order.comment
        if order.position_id:
            message.positionId = int(order.position_id)
        return message

    def _amend(self, order: Order, request: OrderRequest) -> oa.ProtoOAAmendOrderReq:
        spec = self._spec(order.symbol_id)
        message = oa.ProtoOAAmendOrderReq(
            ctidTraderAccountId=self._ctid, orderId=int(_given(order.order_id, "order_id"))
        )
        if request.quantity is not None:
            message.volume = spec.volume(request.quantity)
        moved = request.price is not None or request.stop_price is not None
        if order.order_type is OrderType.STOP_LIMIT and moved:
            # As on a new one: the trigger, and the limit as a distance from it.
            stop = _given(request.stop_price or order.stop_price, "stop_price")
            message.stopPrice = spec.price(stop, "stop_price")
            limit = _given(request.price or order.price, "price")
            message.slippageInPoints = _slippage(spec, order.side, limit, stop)
        else:
            if request.price is not None:
                message.limitPrice = spec.price(request.price)
            if request.stop_price is not None:
                message.stopPrice = spec.price(request.stop_price, "stop_price")
        if request.expire_time is not None:
            message.expirationTimestamp = mapping.timestamp_ms(request.expire_time)
        return message

    async def _send(self, message: Message, client_msg_id: str, sent: _Sent) -> None:
        """Return once written; SessionError when it is known not to have been (it may be sent again)."""
        written = asyncio.get_running_loop().create_future()
        queued = sent.kind in (VenueRequest.NEW_ORDER, VenueRequest.CLOSE_POSITION)
        if queued:
            self._queued.add(sent.cl_ord_id)

        def on_sent() -> None:
            self._queued.discard(sent.cl_ord_id)
            if queued:
                self._await_answer(sent.cl_ord_id)
            if not written.done():
                written.set_result(None)

        self._remember(client_msg_id, sent)
        task = asyncio.get_running_loop().create_task(
            self._request_with_retries(message, client_msg_id, sent, on_sent)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if queued:  # never written (refused before, cut, cancelled): no longer queued either
            task.add_done_callback(lambda _done: self._queued.discard(sent.cl_ord_id))
        task.add_done_callback(_retrieved)
        await asyncio.wait({written, task}, return_when=asyncio.FIRST_COMPLETED)
        if written.done():
            return
        error = task.exception() if not task.cancelled() else None
        if isinstance(error, _NotSent):
            raise SessionError(str(error))

    async def _request_with_retries(
        self, message: Message, client_msg_id: str, sent: _Sent, on_sent: Callable[[], None]
    ) -> None:
        """The trading request's life after `_send`: rate-limit retries, timeouts and cuts, logged."""
        name = payload_type_name(_payload_type(message))
        msg_id = client_msg_id
        for attempt in range(self._settings.retry_rate_limited + 1):
            started = self._clock()
            try:
                await self._link.request(message, client_msg_id=msg_id, also_event=True, on_sent=on_sent)
            except ErrorResponse as refused:
                if refused.error_code not in RATE_LIMITED:
                    return  # delivered as an event too (also_event): the refusal reaches the engine there
                if attempt == self._settings.retry_rate_limited:
                    self._metrics.openapi_errors.labels(refused.error_code).inc()
                    self._refused(sent, f"{refused.error_code}: still refused after {attempt} resends")
                    return
                self._requeued(sent)
                wait = float(refused.retry_after) if refused.retry_after is not None else float(2**attempt)
                log.warning(
                    "Open API %s %s refused for the rate limit; sent again in %g s",
                    name,
                    sent.request_id,
                    wait,
                )
                await asyncio.sleep(wait)
                msg_id = f"{client_msg_id}/{attempt + 1}"
                self._remember(msg_id, sent)
                continue
            except NotConnected as error:
                raise _NotSent(f"Open API {name} for {sent.request_id} not sent: {error}") from None
            except ConnectionLost as error:
                if not error.sent:
                    raise _NotSent(f"Open API {name} for {sent.request_id} not sent: {error}") from None
                self._lost_after_send(name, sent)
                return
            except RequestTimeout as error:
                if not error.sent:
                    raise _NotSent(str(error)) from None
                self._timed_out_after_send(error, sent)
                return
            self._metrics.openapi_request_seconds.labels(name).observe(self._clock() - started)
            return

    def _timed_out_after_send(self, error: RequestTimeout, sent: _Sent) -> None:
        if sent.kind in (VenueRequest.NEW_ORDER, VenueRequest.CLOSE_POSITION) and (
            sent.cl_ord_id not in self._unanswered
        ):
            self._await_answer(sent.cl_ord_id)  # sent, though its write never reported done
        log.warning("%s; the order's fate is asked of the venue by the in-flight watch", error)

    def _lost_after_send(self, name: str, sent: _Sent) -> None:
        """Its connection died after the request went to it (on_sent may not have run: lost during the
        socket's drain): awaited from now on, never taken for unsent."""
        if sent.kind in (VenueRequest.NEW_ORDER, VenueRequest.CLOSE_POSITION):
            unanswered = self._unanswered.get(sent.cl_ord_id)
            if unanswered is None:
                self._await_answer(sent.cl_ord_id)
                unanswered = self._unanswered[sent.cl_ord_id]
            unanswered.lost_at = self._clock()
        log.warning(
            "Open API %s for %s: the connection was lost after it was sent; its fate is found by "
            "reconciliation, never by sending it again while the venue may still have it",
            name,
            sent.request_id,
        )

    def _await_answer(self, cl_ord_id: str) -> None:
        self._unanswered[cl_ord_id] = _Unanswered(self._clock())
        self._unanswered.move_to_end(cl_ord_id)
        while len(self._unanswered) > REMEMBERED_REQUESTS:
            self._unanswered.popitem(last=False)

    def _answered(self, cl_ord_id: str) -> None:
        self._unanswered.pop(cl_ord_id, None)

    def _requeued(self, sent: _Sent) -> None:
        """A new order refused for the rate limit is not at the venue: it waits here to be sent again."""
        if sent.kind in (VenueRequest.NEW_ORDER, VenueRequest.CLOSE_POSITION):
            self._queued.add(sent.cl_ord_id)

    def _msg_id(self, kind: str, request_id: str) -> str:
        """`n|<ClOrdID>|<n>`: what the request is for, and which sending of it (a resend of an order the
        venue never had, a rate-limited retry), so no two sendings share a clientMsgId."""
        return f"{kind}|{request_id}|{next(self._sends)}"

    def _remember(self, client_msg_id: str, sent: _Sent) -> None:
        self._sent[client_msg_id] = sent
        while len(self._sent) > REMEMBERED_REQUESTS:
            self._sent.popitem(last=False)

    # --- what the venue says ---------------------------------------------------------------------------

    def _on_frame(self, decoded: Decoded) -> None:
        message = decoded.message
        answered = self._sent.get(decoded.client_msg_id or "")
        if answered is not None:
            self._answered(answered.cl_ord_id)
        if isinstance(message, oa.ProtoOAExecutionEvent) and _untrusted(decoded):
            self._on_untrusted_execution(message, _untrusted(decoded))
        elif isinstance(message, oa.ProtoOAExecutionEvent):
            self._on_execution(message, self._sent.get(decoded.client_msg_id or ""))
        elif isinstance(message, oa.ProtoOAOrderErrorEvent):
            self._on_order_error(message, decoded.client_msg_id)
        elif isinstance(message, oa.ProtoOAErrorRes):
            self._on_error(message, decoded.client_msg_id)

    def _on_execution(self, event: oa.ProtoOAExecutionEvent, sent: _Sent | None) -> None:
        if event.HasField("position"):
            position = event.position
            self._position_symbols[str(position.positionId)] = position.tradeData.symbolId
            if not event.HasField("order"):  # a position's protection changed (ours, or a trailing stop)
                self._emit(self._protection(position, sent))
                return
        if not event.HasField("order"):
            return  # swaps, deposits: account part of the API (part 2)
        self._answered(event.order.clientOrderId)
        order_id = str(event.order.orderId)
        request = self._requests_by_order.get(order_id)
        if event.executionType == model.ORDER_CANCEL_REJECTED:
            self._metrics.openapi_errors.labels(event.errorCode or "ORDER_CANCEL_REJECTED").inc()
            if request is None:
                log.warning(
                    "Open API: a cancel/amend of order %s refused, not one of ours: %s",
                    order_id,
                    event.errorCode,
                )
                return
            del self._requests_by_order[order_id]
            self._emit(
                CancelRejected(
                    request_id=request.request_id,
                    orig_cl_ord_id=request.cl_ord_id,
                    order_id=order_id,
                    status=mapping.order_status(event.order),
                    response_to=request.kind,
                    text=event.errorCode or "refused by the venue",
                )
            )
            return
        answers_request = request is not None and (
            (event.executionType == model.ORDER_CANCELLED and request.kind is RequestKind.CANCEL)
            or (event.executionType == model.ORDER_REPLACED and request.kind is RequestKind.REPLACE)
        )
        if request is not None and answers_request:
            del self._requests_by_order[order_id]
            cl_ord_id: str | None = request.request_id
            orig: str | None = request.cl_ord_id
        else:
            cl_ord_id, orig = event.order.clientOrderId or None, None
        if event.executionType == model.ORDER_REJECTED:
            self._metrics.openapi_errors.labels(event.errorCode or "ORDER_REJECTED").inc()
        report = mapping.execution_report(
            event,
            digits=self._digits(event.order.tradeData.symbolId),
            cl_ord_id=cl_ord_id,
            orig_cl_ord_id=orig,
        )
        if report is not None:
            self._emit(report)

    def _on_untrusted_execution(self, event: oa.ProtoOAExecutionEvent, untrusted: list[str]) -> None:
        """An event with a value our protos lack, or a required field missing (reference, Appendix B):
        what it says is not guessed. Its order's own state, when all of it was read, is applied as the
        venue's view of the order (a status report: fills follow from its executed volume); else nothing
        is applied and the order's status is found by the in-flight watch or the next reconciliation."""
        self._metrics.openapi_errors.labels("UNTRUSTED_EVENT").inc()
        where = ", ".join(untrusted)
        intact = event.HasField("order") and not any(".order" in path for path in untrusted)
        if not intact:
            log.warning("Open API execution event not applied: it holds what we cannot read (%s)", where)
            return
        log.warning(
            "Open API execution event with what we cannot read (%s): its order %d applied as a status",
            where,
            event.order.orderId,
        )
        self._answered(event.order.clientOrderId)
        self._emit(mapping.status_report(event.order, self._digits(event.order.tradeData.symbolId)))

    def _protection(self, position: model.ProtoOAPosition, sent: _Sent | None) -> PositionProtection:
        digits = self._digits(position.tradeData.symbolId)
        answered = sent is not None and sent.kind is VenueRequest.AMEND_POSITION_PROTECTION
        return PositionProtection(
            position_id=str(position.positionId),
            request_id=sent.request_id if answered and sent is not None else None,
            stop_loss=from_double(position.stopLoss, digits) if position.HasField("stopLoss") else None,
            take_profit=from_double(position.takeProfit, digits) if position.HasField("takeProfit") else None,
            trailing_stop_loss=position.trailingStopLoss,
        )

    def _on_order_error(self, event: oa.ProtoOAOrderErrorEvent, client_msg_id: str | None) -> None:
        self._metrics.openapi_errors.labels(event.errorCode).inc()
        text = f"{event.errorCode}: {event.description}" if event.description else event.errorCode
        sent = self._sent.get(client_msg_id or "")
        if sent is None and event.orderId:
            request = self._requests_by_order.get(str(event.orderId))
            if request is not None:
                sent = _Sent(
                    _venue_request(request.kind), request.request_id, request.cl_ord_id, request.kind
                )
        if sent is None:
            log.warning(
                "Open API order error %s (orderId %d, positionId %d) tied to no request of ours",
                text,
                event.orderId,
                event.positionId,
            )
            return
        self._refused(sent, text)

    def _on_error(self, error: oa.ProtoOAErrorRes, client_msg_id: str | None) -> None:
        sent = self._sent.get(client_msg_id or "")
        if sent is None:
            return  # a question's refusal: raised where it was asked
        if error.errorCode in RATE_LIMITED:
            return  # sent again by its request's task, or refused there after the last try
        self._metrics.openapi_errors.labels(error.errorCode).inc()
        text = f"{error.errorCode}: {error.description}" if error.description else error.errorCode
        self._refused(sent, text)

    def _refused(self, sent: _Sent, text: str) -> None:
        if sent.kind is not VenueRequest.NEW_ORDER:
            for order_id, request in list(self._requests_by_order.items()):
                if request.request_id == sent.request_id:
                    del self._requests_by_order[order_id]
        self._emit(RequestRefused(request=sent.kind, request_id=sent.request_id, text=text))


class _NotSent(OpenApiError):
    """The request was never written: it may be sent again."""


def _local_refusal(refused: ValueError) -> str:
    """The code the venue would answer with, so a refusal reads the same whether we or the venue made it."""
    code = "TRADING_BAD_VOLUME" if isinstance(refused, VolumeError) else "TRADING_BAD_PRICES"
    return f"{code}: {refused} (refused before sending)"


def _protect(message: oa.ProtoOANewOrderReq, order: Order, spec: SymbolSpec) -> None:
    """Stop loss and take profit: absolute prices, or distances from the fill (1/100000 units)."""
    if order.stop_loss is not None:
        message.stopLoss = spec.price(order.stop_loss, "stop_loss")
    if order.take_profit is not None:
        message.takeProfit = spec.price(order.take_profit, "take_profit")
    if order.stop_loss_distance is not None:
        message.relativeStopLoss = spec.relative(order.stop_loss_distance, "stop_loss_distance")
    if order.take_profit_distance is not None:
        message.relativeTakeProfit = spec.relative(order.take_profit_distance, "take_profit_distance")
    if order.trailing_stop_loss:
        message.trailingStopLoss = True


def _retrieved(task: asyncio.Task[None]) -> None:
    """A resend that could not go out after the first sending was written: said, never left unretrieved
    (the order's fate is then the in-flight watch's to find)."""
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.warning("Open API request ended without an answer: %s", error)


@dataclass
class _Unanswered:
    written_at: float  # the connector's clock
    lost_at: float | None = None  # its connection lost after it was written
    said: bool = False  # the wait was logged (once per order)


def _untrusted(decoded: Decoded) -> list[str]:
    """Where a frame holds an enum value our protos lack, or lacks a required field: the value read
    there is a default, not what the venue said."""
    enums = [
        f"{u.path}.{u.field_name or u.field_number}={u.value}"
        for u in decoded.unknowns
        if u.kind is UnknownKind.ENUM_VALUE
    ]
    return enums + [f"{path} missing" for path in decoded.missing_required]


def _slippage(spec: SymbolSpec, side: Side, limit: Decimal, stop: Decimal) -> int:
    """A stop-limit's limit as cTrader takes it: slippageInPoints beyond the stop, against the trader
    (above it for a buy, below for a sell). A limit on the other side cannot be said, so it is refused,
    never moved to the side the venue would read."""
    beyond = limit - stop if side is Side.BUY else stop - limit
    if beyond < 0:
        where = "below" if side is Side.BUY else "above"
        raise ValueError(
            f"{spec.name}: a {side} stop-limit's limit price {limit} is {where} its stop price {stop}; the "
            f"Open API sets the limit as a distance beyond the stop (slippageInPoints), so a {side}'s limit "
            f"must be {'at or above' if side is Side.BUY else 'at or below'} its stop"
        )
    return spec.points(beyond)


def _given(value: object, name: str) -> Decimal:
    if value is None:
        raise ValueError(f"{name} is required for this order type")
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _venue_request(kind: RequestKind) -> VenueRequest:
    return VenueRequest.CANCEL if kind is RequestKind.CANCEL else VenueRequest.REPLACE


def _payload_type(message: Message) -> int:
    return payload_type_of(message)

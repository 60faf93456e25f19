"""The Open API connector's promises, against a scripted link: what it sends for an order, how each answer
reaches the engine (a refusal with ids = 0 tied to its order by clientMsgId, a cancel's answer tied to the
cancel), what a send that fails means, and that a rate-limited request is sent again within a bound."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
from google.protobuf.message import Message

from fixadapter.connectors.openapi import connector as connector_module
from fixadapter.connectors.openapi.account_config import OpenApiAccountConfig
from fixadapter.connectors.openapi.connector import OpenApiConnector
from fixadapter.connectors.openapi.errors import ConnectionLost, ErrorResponse, NotConnected, RequestTimeout
from fixadapter.connectors.openapi.link import OpenApiLink
from fixadapter.errors import AnswerAwaited, SessionError, SessionNotReady, VenueRefused
from fixadapter.metrics import Metrics
from fixadapter.model.enums import (
    ExecKind,
    OrderStatus,
    OrderType,
    RequestKind,
    SessionState,
    Side,
    VenueRequest,
)
from fixadapter.model.orders import Order, OrderRequest
from fixadapter.model.reconciliation import OrderStatusReport, OrderUnknown
from fixadapter.model.reports import ConnectionStatus, ExecutionReport, RequestRefused, VenueReport
from fixadapter.protocols.openapi.generated import OpenApiMessages_pb2 as oa
from fixadapter.protocols.openapi.generated import OpenApiModelMessages_pb2 as model
from fixadapter.protocols.openapi.generated.OpenApiCommonMessages_pb2 import ProtoMessage
from fixadapter.protocols.openapi.messages import decode, encode

CTID = 20_000_001
Answer = Callable[[Message, str | None], Message | BaseException | None]


def settings(**extra: Any) -> OpenApiAccountConfig:
    return OpenApiAccountConfig(ctid_trader_account_id=CTID, client_id="app", client_secret="s3cret", **extra)  # noqa: S106 - a test value


class ScriptedLink:
    """Answers each request with `answer(message, clientMsgId)`: a message, an exception, or None (sent,
    never answered). Events are pushed with `event`."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.sent: list[tuple[Message, str | None]] = []
        self.on_frame: Callable[[Any], None] | None = None
        self.on_state: Callable[[bool, str | None], None] | None = None
        self.writer_free = asyncio.Event()  # cleared: requests wait in the writer's queue (rate limit)
        self.writer_free.set()

    def seat(self, ctid: int, on_frame: Any, on_state: Any, **_: Any) -> None:
        self.on_frame, self.on_state = on_frame, on_state

    def start(self) -> None:
        pass

    async def unseat(self, ctid: int) -> None:
        pass

    async def request(self, message: Message, **options: Any) -> Message:
        msg_id = options.get("client_msg_id")
        outcome = self.answer(message, msg_id)
        if isinstance(outcome, NotConnected):
            raise outcome
        await self.writer_free.wait()
        self.sent.append((message, msg_id))
        on_sent = options.get("on_sent")
        if on_sent is not None:
            on_sent()
        if isinstance(outcome, BaseException):
            if isinstance(outcome, ErrorResponse) and options.get("also_event"):
                self.event(_error_res(outcome), msg_id)
            raise outcome
        if outcome is None:
            await asyncio.Event().wait()
        assert outcome is not None
        if options.get("also_event"):
            self.event(outcome, msg_id)
        return outcome

    def event(self, message: Message, client_msg_id: str | None = None) -> None:
        assert self.on_frame is not None
        self.on_frame(decode(encode(message, client_msg_id)))


def _error_res(error: ErrorResponse) -> oa.ProtoOAErrorRes:
    res = oa.ProtoOAErrorRes(errorCode=error.error_code, description=error.description or "")
    if error.retry_after is not None:
        res.retryAfter = error.retry_after
    return res


def symbols(message: Message, _msg_id: str | None) -> Message | None:
    if isinstance(message, oa.ProtoOASymbolsListReq):
        return oa.ProtoOASymbolsListRes(
            ctidTraderAccountId=CTID, symbol=[model.ProtoOALightSymbol(symbolId=1, symbolName="EURUSD")]
        )
    if isinstance(message, oa.ProtoOASymbolByIdReq):
        spec = model.ProtoOASymbol(
            symbolId=1, digits=5, pipPosition=4, minVolume=100_000, stepVolume=100_000, maxVolume=10**10
        )
        return oa.ProtoOASymbolByIdRes(ctidTraderAccountId=CTID, symbol=[spec])
    return None


def order(**fields: Any) -> Order:
    base: dict[str, Any] = {
        "cl_ord_id": "CL1",
        "symbol_id": 1,
        "symbol": "EURUSD",
        "side": Side.BUY,
        "order_type": OrderType.MARKET,
        "quantity": Decimal(10000),
    }
    return Order(**{**base, **fields})


async def started(
    link: ScriptedLink, clock: Callable[[], float] | None = None, **extra: Any
) -> tuple[OpenApiConnector, list[VenueReport]]:
    options = {} if clock is None else {"clock": clock}
    connector = OpenApiConnector(
        "desk", settings(**extra), cast(OpenApiLink, link), Metrics(account="desk"), **options
    )
    delivered: list[VenueReport] = []
    await connector.start(delivered.append)
    assert link.on_state is not None
    link.on_state(True, None)
    async with asyncio.timeout(30):  # symbols load first: a bound only a broken connector reaches
        while not delivered:
            await asyncio.sleep(0)
    return connector, delivered


def test_the_account_is_announced_up_only_once_its_symbols_are_known() -> None:
    async def scenario() -> None:
        link = ScriptedLink(symbols)
        connector, delivered = await started(link)
        assert delivered == [
            ConnectionStatus(connector="openapi", channel="trading", state=SessionState.LOGGED_ON)
        ]
        assert [i.name for i in await connector.instruments()] == ["EURUSD"]

    asyncio.run(scenario())


def test_a_new_order_goes_out_in_hundredths_with_our_client_order_id_and_a_client_msg_id_naming_it() -> None:
    async def scenario() -> None:
        link = ScriptedLink(symbols)
        connector, _ = await started(link)
        await connector.submit(order(order_type=OrderType.LIMIT, price=Decimal("1.08000"), label="x"))
        message, msg_id = link.sent[-1]
        assert isinstance(message, oa.ProtoOANewOrderReq)
        assert (message.volume, message.clientOrderId, message.orderType, message.limitPrice) == (
            1_000_000,
            "CL1",
            model.LIMIT,
            1.08,
        )
        assert (message.ctidTraderAccountId, message.label, msg_id) == (CTID, "x", "n|CL1|1")

    asyncio.run(scenario())


def test_an_order_error_with_ids_zero_reaches_its_order_by_the_client_msg_id() -> None:
    async def scenario() -> None:
        link = ScriptedLink(symbols)
        connector, delivered = await started(link)
        await connector.submit(order())
        link.event(
            oa.ProtoOAOrderErrorEvent(
                ctidTraderAccountId=CTID,
                errorCode="TRADING_BAD_STOPS",
                orderId=0,
                positionId=0,
                description="SL",
            ),
            "n|CL1|1",
        )
        assert delivered[-1] == RequestRefused(
            request=VenueRequest.NEW_ORDER, request_id="CL1", text="TRADING_BAD_STOPS: SL"
        )

    asyncio.run(scenario())


def test_a_cancels_answer_names_the_cancel_and_the_order_it_cancelled() -> None:
    async def scenario() -> None:
        link = ScriptedLink(symbols)
        connector, delivered = await started(link)
        working = order(order_type=OrderType.LIMIT, price=Decimal("1.08000"), order_id="9001")
        request = OrderRequest(request_id="C1", cl_ord_id="CL1", kind=RequestKind.CANCEL)
        await connector.cancel(working, request)
        message, msg_id = link.sent[-1]
        assert (
            isinstance(message, oa.ProtoOACancelOrderReq) and message.orderId == 9001 and msg_id == "c|C1|1"
        )
        cancelled = model.ProtoOAOrder(
            orderId=9001,
            tradeData=model.ProtoOATradeData(symbolId=1, volume=1_000_000, tradeSide=model.BUY),
            orderType=model.LIMIT,
            orderStatus=model.ORDER_STATUS_CANCELLED,
            clientOrderId="CL1",
            limitPrice=1.08,
        )
        link.event(
            oa.ProtoOAExecutionEvent(
                ctidTraderAccountId=CTID, executionType=model.ORDER_CANCELLED, order=cancelled
            )
        )
        report = delivered[-1]
        assert isinstance(report, ExecutionReport)
        assert (report.kind, report.status, report.cl_ord_id, report.orig_cl_ord_id) == (
            ExecKind.CANCELLED,
            OrderStatus.CANCELLED,
            "C1",
            "CL1",
        )

    asyncio.run(scenario())


def test_a_cancel_before_the_venue_acknowledged_the_order_is_not_sent_and_says_why() -> None:
    async def scenario() -> None:
        link = ScriptedLink(symbols)
        connector, _ = await started(link)
        request = OrderRequest(request_id="C1", cl_ord_id="CL1", kind=RequestKind.CANCEL)
        with pytest.raises(SessionError, match="no venue order id yet"):
            await connector.cancel(order(), request)

    asyncio.run(scenario())


def test_a_send_while_disconnected_is_known_not_sent() -> None:
    async def scenario() -> None:
        def down(message: Message, msg_id: str | None) -> Message | BaseException | None:
            if isinstance(message, oa.ProtoOANewOrderReq):
                return NotConnected("127.0.0.1:5035: not connected")
            return symbols(message, msg_id)

        connector, _ = await started(ScriptedLink(down))
        with pytest.raises(SessionError, match="not sent"):
            await connector.submit(order())

    asyncio.run(scenario())


def test_a_connection_lost_after_the_order_was_written_is_never_resent() -> None:
    async def scenario() -> None:
        def cut(message: Message, msg_id: str | None) -> Message | BaseException | None:
            if isinstance(message, oa.ProtoOANewOrderReq):
                return ConnectionLost("ProtoOANewOrderReq", msg_id or "", "connection closed", sent=True)
            return symbols(message, msg_id)

        link = ScriptedLink(cut)
        connector, delivered = await started(link)
        await connector.submit(order())
        for task in list(connector._tasks):  # the request's life ends without a resend
            await task
        orders_sent = [m for m, _ in link.sent if isinstance(m, oa.ProtoOANewOrderReq)]
        assert len(orders_sent) == 1
        assert not [r for r in delivered if isinstance(r, RequestRefused)]

    asyncio.run(scenario())


def test_a_rate_limited_order_is_sent_again_after_retry_after_and_refused_after_the_last_try() -> None:
    async def scenario() -> None:
        def limited(message: Message, msg_id: str | None) -> Message | BaseException | None:
            if isinstance(message, oa.ProtoOANewOrderReq):
                return ErrorResponse(
                    "ProtoOANewOrderReq",
                    msg_id or "",
                    "BLOCKED_PAYLOAD_TYPE",
                    answer_payload_type=2142,
                    retry_after=0,
                )
            return symbols(message, msg_id)

        link = ScriptedLink(limited)
        connector, delivered = await started(link, retry_rate_limited=2)
        await connector.submit(order())
        async with asyncio.timeout(30):  # a bound only a broken connector reaches
            while not any(isinstance(r, RequestRefused) for r in delivered):
                await asyncio.sleep(0)
        ids = [msg_id for m, msg_id in link.sent if isinstance(m, oa.ProtoOANewOrderReq)]
        assert ids == ["n|CL1|1", "n|CL1|1/1", "n|CL1|1/2"]
        refusals = [r for r in delivered if isinstance(r, RequestRefused)]
        assert len(refusals) == 1 and "BLOCKED_PAYLOAD_TYPE" in refusals[0].text

    asyncio.run(scenario())


def test_an_order_still_queued_behind_the_rate_limit_is_never_reported_unknown() -> None:
    """The venue cannot have it yet: "unknown" would get it rejected, or sent twice."""

    async def scenario() -> None:
        link = ScriptedLink(symbols)
        connector, _ = await started(link)
        link.writer_free.clear()
        submitting = asyncio.create_task(connector.submit(order()))
        await asyncio.sleep(0)
        with pytest.raises(SessionNotReady, match="still queued here for the rate limit"):
            await connector.order_status(order())
        link.writer_free.set()
        await submitting
        assert "CL1" not in connector._queued

    asyncio.run(scenario())


def test_the_authorised_gauge_is_zero_from_the_start_so_an_alert_on_it_fires() -> None:
    metrics = Metrics(account="desk", connector="openapi")
    OpenApiConnector("desk", settings(), cast(OpenApiLink, ScriptedLink(symbols)), metrics)
    assert metrics.value("fixadapter_openapi_account_authorised") == 0


@pytest.mark.parametrize(
    ("side", "limit", "slippage"),
    [(Side.BUY, "1.10100", 100), (Side.SELL, "1.09900", 100), (Side.BUY, "1.10000", 0)],
)
def test_a_stop_limits_limit_goes_out_as_points_beyond_its_stop_against_the_trader(
    side: Side, limit: str, slippage: int
) -> None:
    async def scenario() -> Message:
        link = ScriptedLink(symbols)
        connector, _ = await started(link)
        stop_limit = order(
            side=side, order_type=OrderType.STOP_LIMIT, price=Decimal(limit), stop_price=Decimal("1.10000")
        )
        await connector.submit(stop_limit)
        return link.sent[-1][0]

    message = asyncio.run(scenario())
    assert isinstance(message, oa.ProtoOANewOrderReq)
    assert (message.orderType, message.stopPrice, message.slippageInPoints) == (
        model.STOP_LIMIT,
        1.1,
        slippage,
    )


@pytest.mark.parametrize(("side", "limit"), [(Side.BUY, "1.09900"), (Side.SELL, "1.10100")])
def test_a_stop_limit_whose_limit_lies_on_the_near_side_of_its_stop_is_refused_never_moved(
    side: Side, limit: str
) -> None:
    """cTrader's slippageInPoints puts the limit beyond the stop, against the trader: a buy limit below its
    stop (a sell's above) cannot be said, and sending the distance would move the limit across the stop."""

    async def scenario() -> tuple[ScriptedLink, list[VenueReport]]:
        link = ScriptedLink(symbols)
        connector, delivered = await started(link)
        stop_limit = order(
            side=side, order_type=OrderType.STOP_LIMIT, price=Decimal(limit), stop_price=Decimal("1.10000")
        )
        await connector.submit(stop_limit)
        return link, delivered

    link, delivered = asyncio.run(scenario())
    assert not any(isinstance(m, oa.ProtoOANewOrderReq) for m, _ in link.sent)
    refusal = delivered[-1]
    assert isinstance(refusal, RequestRefused) and refusal.request_id == "CL1"
    assert "limit must be" in refusal.text and str(limit) in refusal.text


def test_an_order_sent_and_unanswered_is_awaited_while_unlisted_then_unknown_as_sent_never_resendable() -> (
    None
):
    """A slow venue may execute it after its order list was made: not listed is no proof it never came,
    for twice the request timeout after it was sent; then it is unknown, marked sent (never sent again)."""

    def answer(message: Message, msg_id: str | None) -> Message | None:
        if isinstance(message, oa.ProtoOAOrderListReq):
            return oa.ProtoOAOrderListRes(ctidTraderAccountId=CTID, hasMore=False)
        return symbols(message, msg_id)  # the new order: written, never answered

    async def scenario() -> tuple[BaseException | None, Any]:
        clock = [1000.0]
        link = ScriptedLink(answer)
        connector, _ = await started(link, clock=lambda: clock[0], request_timeout_seconds=5.0)
        await connector.submit(order())
        clock[0] += 9.9  # within twice the request timeout
        try:
            await connector.order_status(order())
            awaited: BaseException | None = None
        except AnswerAwaited as exc:
            awaited = exc
        clock[0] += 0.2
        return awaited, await connector.order_status(order())

    awaited, later = asyncio.run(scenario())
    assert awaited is not None and "never answered" in str(awaited)
    assert isinstance(later, OrderUnknown) and later.sent


@pytest.mark.parametrize(
    "failure",
    [
        ErrorResponse("ProtoOASymbolsListReq", "m1", "SERVER_IS_UNDER_MAINTENANCE", answer_payload_type=0),
        RequestTimeout("ProtoOASymbolsListReq", "m1", 2.0, sent=True, queued_ahead=0),
    ],
    ids=["refused", "unanswered"],
)
def test_symbols_that_fail_to_load_are_asked_for_again_until_the_account_is_announced_up(
    monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    """An account authorised whose symbol list was refused or went unanswered is never left not ready
    with nothing trying: the engine hears why, and the list is asked for again."""
    monkeypatch.setattr(connector_module, "SYMBOLS_RETRY_SECONDS", (0.0, 0.0))
    refusals = [failure]

    def answer(message: Message, msg_id: str | None) -> Message | BaseException | None:
        if isinstance(message, oa.ProtoOASymbolsListReq) and refusals:
            return refusals.pop()
        return symbols(message, msg_id)

    async def scenario() -> list[VenueReport]:
        link = ScriptedLink(answer)
        connector = OpenApiConnector("desk", settings(), cast(OpenApiLink, link), Metrics(account="desk"))
        delivered: list[VenueReport] = []
        await connector.start(delivered.append)
        assert link.on_state is not None
        link.on_state(True, None)
        async with asyncio.timeout(30):  # a bound only a connector that gave up reaches
            while not any(
                isinstance(r, ConnectionStatus) and r.state is SessionState.LOGGED_ON for r in delivered
            ):
                await asyncio.sleep(0)
        return delivered

    delivered = asyncio.run(scenario())
    assert [r.state for r in delivered if isinstance(r, ConnectionStatus)] == [
        SessionState.LOGGED_OUT,
        SessionState.LOGGED_ON,
    ]
    down = delivered[0]
    assert isinstance(down, ConnectionStatus) and "symbols not loaded" in (down.text or "")


def _with_execution_type(event: oa.ProtoOAExecutionEvent, value: int) -> bytes:
    """The event as the server would frame it, its executionType (field 3) set to `value` on the wire."""
    body = event.SerializeToString()
    known = bytes([0x18, event.executionType])
    assert body.count(known) == 1
    payload = body.replace(known, bytes([0x18, value]))
    return ProtoMessage(
        payloadType=oa.ProtoOAExecutionEvent().payloadType, payload=payload
    ).SerializeToString()


def test_an_execution_event_with_a_type_our_protos_lack_is_not_guessed_its_order_applied_as_a_status() -> (
    None
):
    """Reference Appendix B: an enum value we do not know reads as the enum's default (here ORDER_ACCEPTED).
    The event is not taken for what it is not; its order's own state (filled, all of it read) is."""

    async def scenario() -> list[VenueReport]:
        link = ScriptedLink(symbols)
        _, delivered = await started(link)
        filled = model.ProtoOAOrder(
            orderId=7,
            tradeData=model.ProtoOATradeData(symbolId=1, volume=1_000_000, tradeSide=model.BUY),
            orderType=model.MARKET,
            orderStatus=model.ORDER_STATUS_FILLED,
            executedVolume=1_000_000,
            clientOrderId="CL1",
        )
        event = oa.ProtoOAExecutionEvent(
            ctidTraderAccountId=CTID, executionType=model.ORDER_FILLED, order=filled
        )
        assert link.on_frame is not None
        link.on_frame(decode(_with_execution_type(event, 99)))
        return delivered

    report = asyncio.run(scenario())[-1]
    assert isinstance(report, ExecutionReport)
    assert (report.kind, report.status, report.cum_qty, report.cl_ord_id) == (
        ExecKind.STATUS,
        OrderStatus.FILLED,
        Decimal(10000),
        "CL1",
    )


def _listing(*answers: oa.ProtoOAOrderListRes) -> tuple[Answer, list[oa.ProtoOAOrderListReq]]:
    """A link whose order lists are `answers`, one per request, in turn; the requests kept."""
    asked: list[oa.ProtoOAOrderListReq] = []
    left = list(answers)

    def answer(message: Message, msg_id: str | None) -> Message | None:
        if isinstance(message, oa.ProtoOAOrderListReq):
            asked.append(message)
            return left.pop(0)
        return symbols(message, msg_id)

    return answer, asked


def _listed(*orders: model.ProtoOAOrder, more: bool) -> oa.ProtoOAOrderListRes:
    return oa.ProtoOAOrderListRes(ctidTraderAccountId=CTID, order=list(orders), hasMore=more)


def _venue_order(cl_ord_id: str) -> model.ProtoOAOrder:
    trade = model.ProtoOATradeData(symbolId=1, volume=1_000_000, tradeSide=model.BUY)
    return model.ProtoOAOrder(
        orderId=9,
        tradeData=trade,
        orderType=model.MARKET,
        orderStatus=model.ORDER_STATUS_FILLED,
        executedVolume=1_000_000,
        clientOrderId=cl_ord_id,
    )


def test_an_order_list_cut_short_that_does_not_name_the_order_is_asked_again_around_its_creation() -> None:
    answer, asked = _listing(
        _listed(_venue_order("OTHER"), more=True), _listed(_venue_order("CL1"), more=False)
    )

    async def scenario() -> Any:
        connector, _ = await started(ScriptedLink(answer))
        return await connector.order_status(order(created_at=datetime.now(UTC) - timedelta(hours=1)))

    status = asyncio.run(scenario())
    assert isinstance(status, OrderStatusReport) and status.report.status is OrderStatus.FILLED
    assert len(asked) == 2 and asked[1].toTimestamp < asked[0].toTimestamp


def test_an_order_list_cut_short_never_makes_an_order_unknown() -> None:
    """Unknown could have it sent a second time: a list that is cut short proves nothing, so the venue is
    said not to be able to tell (the watch asks again, and flags the order unknown if that lasts)."""
    answer, _ = _listing(_listed(more=True), _listed(more=True))

    async def scenario() -> None:
        connector, _ = await started(ScriptedLink(answer))
        await connector.order_status(order())

    with pytest.raises(VenueRefused, match="cut short"):
        asyncio.run(scenario())


def test_asking_an_open_api_account_for_market_data_says_where_market_data_comes_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.fernet import Fernet

    from fixadapter.api import Adapter
    from fixadapter.config import build_config
    from fixadapter.errors import MarketDataError

    monkeypatch.setenv("FIXADAPTER_OPENAPI_TOKEN_KEY", Fernet.generate_key().decode())
    config = build_config(
        {
            "accounts": [{"name": "main", "openapi": {"ctid_trader_account_id": CTID, "client_id": "app"}}],
            "store": {"url": f"sqlite:///{tmp_path / 'a.db'}"},
            "compliance": {"directory": str(tmp_path / "log")},
        },
        environ={"FIXADAPTER_OPENAPI__CLIENT_SECRET": "app-s3cret"},
    )
    with pytest.raises(
        MarketDataError, match=r"account main's Open API connector offers no market data.*FIX"
    ):
        asyncio.run(Adapter(config).subscribe("EURUSD"))


class _CutInDrain(ScriptedLink):
    """The new order goes to the socket and the connection dies before the write reports done: the
    transport's ConnectionLost(sent=True), with on_sent never called."""

    async def request(self, message: Message, **options: Any) -> Message:
        if isinstance(message, oa.ProtoOANewOrderReq):
            self.sent.append((message, options.get("client_msg_id")))
            await asyncio.sleep(0)
            raise ConnectionLost("ProtoOANewOrderReq", options.get("client_msg_id") or "", "reset", sent=True)
        return await super().request(message, **options)


def test_an_order_lost_while_its_write_was_draining_is_awaited_for_the_settle_time_not_unknown_at_once() -> (
    None
):
    """Otherwise the engine would send it again at once while the venue may have it."""

    def answer(message: Message, msg_id: str | None) -> Message | None:
        if isinstance(message, oa.ProtoOAOrderListReq):
            return oa.ProtoOAOrderListRes(ctidTraderAccountId=CTID, hasMore=False)  # not listed (yet)
        return symbols(message, msg_id)

    async def scenario() -> tuple[BaseException | None, Any]:
        clock = [1000.0]
        link = _CutInDrain(answer)
        connector, _ = await started(link, clock=lambda: clock[0], lost_order_settle_seconds=5.0)
        await asyncio.wait({asyncio.ensure_future(connector.submit(order()))}, timeout=5)
        for task in list(connector._tasks):
            await asyncio.gather(task, return_exceptions=True)
        clock[0] += 1.0  # within the settle time
        try:
            await connector.order_status(order())
            awaited: BaseException | None = None
        except AnswerAwaited as exc:
            awaited = exc
        clock[0] += 5.0  # past it: never arrived, so unknown and not sent (the engine may send it again)
        return awaited, await connector.order_status(order())

    awaited, later = asyncio.run(scenario())
    assert awaited is not None
    assert isinstance(later, OrderUnknown) and not later.sent

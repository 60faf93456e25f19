"""The simulator's cTrader Open API front (issue 15, item 7): the same accounts, orders and positions as its
FIX ports, behaving as the reference (shared/reference/ctrader-openapi.md) describes cTrader's server."""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from fixadapter.api import Adapter
from fixadapter.model.enums import OrderStatus
from fixadapter.model.requests import NewOrder
from fixadapter.protocols.openapi.framing import encode_frame
from fixadapter.protocols.openapi.generated import OpenApiMessages_pb2 as messages
from fixadapter.protocols.openapi.generated import OpenApiModelMessages_pb2 as model
from fixadapter.protocols.openapi.generated.OpenApiCommonMessages_pb2 import ProtoErrorRes, ProtoMessage
from fixadapter.sim.process import SimAccountCredentials, SimProcess

from .conftest import ConfigFactory, SimFactory
from .openapi_client import OpenApiClient, authorised

EURUSD = 1
IDLE_SECONDS = 5
HEARTBEAT_SECONDS = 2
ALICE = SimAccountCredentials("alice", "demo.sim.1001", "1001", "alice-secret-1001")
BOB = SimAccountCredentials("bob", "live.sim.2002", "2002", "bob-secret-2002", 30_000_002, is_live=True)
ONE_LOT = 10_000_000  # 100,000 units in 0.01 units
MIN_VOLUME = 100_000  # 1,000 units


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    """One simulator for the module, its prices frozen at a known quote; clients of these tests send a
    heartbeat every second, so the low idle timeout drops only the client that stays silent on purpose."""
    base: Path = tmp_path_factory.mktemp("oa-sim")
    process = SimProcess(
        state_path=base / "venue.sqlite",
        log_path=base / "sim.log",
        accounts=(ALICE, BOB),
        extra_args=(
            *("--openapi-idle-seconds", str(IDLE_SECONDS)),
            *("--openapi-heartbeat-seconds", str(HEARTBEAT_SECONDS)),
            *("--tick-ms", "100"),
        ),
    ).start()
    process.control("/scenario", {"freeze_prices": True})
    set_quote(process, "1.08000", "1.08010")
    yield process
    process.stop()


def set_quote(sim: SimProcess, bid: str, ask: str) -> None:
    sim.control("/quote", {"symbol_id": EURUSD, "bid": bid, "ask": ask})


def run(scenario: object) -> None:
    asyncio.run(scenario)  # type: ignore[arg-type]


def new_order(ctid: int, **fields: object) -> messages.ProtoOANewOrderReq:
    request = messages.ProtoOANewOrderReq(
        ctidTraderAccountId=ctid,
        symbolId=EURUSD,
        orderType=model.MARKET,
        tradeSide=model.BUY,
        volume=MIN_VOLUME,
    )
    for name, value in fields.items():
        setattr(request, name, value)
    return request


def is_execution(kind: int, order_id: int | None = None):
    def accept(message: object) -> bool:
        return (
            isinstance(message, messages.ProtoOAExecutionEvent)
            and message.executionType == kind
            and (order_id is None or message.order.orderId == order_id)
        )

    return accept


# -- application and account authorisation ---------------------------------------------------------


def test_application_auth_takes_the_app_credentials_once_and_refuses_a_wrong_secret(sim: SimProcess):
    async def scenario() -> None:
        client_id, _ = sim.openapi_client()
        async with await OpenApiClient.connect(sim) as client:
            wrong = await client.request(
                messages.ProtoOAApplicationAuthReq(clientId=client_id, clientSecret="nope")
            )
            assert isinstance(wrong, messages.ProtoOAErrorRes) and wrong.errorCode == "CH_CLIENT_AUTH_FAILURE"
            assert "nope" not in wrong.description
            assert isinstance(await client.app_auth(sim), messages.ProtoOAApplicationAuthRes)
            again = await client.app_auth(sim)
            assert isinstance(again, messages.ProtoOAErrorRes)
            assert again.errorCode == "CH_CLIENT_ALREADY_AUTHENTICATED"

    run(scenario())


def test_a_request_before_application_auth_is_refused_as_not_authenticated(sim: SimProcess):
    async def scenario() -> None:
        async with await OpenApiClient.connect(sim) as client:
            answer = await client.request(messages.ProtoOAVersionReq())
            assert isinstance(answer, messages.ProtoOAErrorRes)
            assert answer.errorCode == "CH_CLIENT_NOT_AUTHENTICATED"

    run(scenario())


def test_a_token_lists_the_accounts_it_reaches_with_their_open_api_ids(sim: SimProcess):
    async def scenario() -> None:
        token = sim.openapi_grant()["accessToken"]
        async with await OpenApiClient.connect(sim) as client:
            await client.app_auth(sim)
            answer = await client.request(messages.ProtoOAGetAccountListByAccessTokenReq(accessToken=token))
            assert isinstance(answer, messages.ProtoOAGetAccountListByAccessTokenRes)
            assert answer.permissionScope == model.SCOPE_TRADE
            listed = {a.ctidTraderAccountId: a for a in answer.ctidTraderAccount}
            assert sorted(listed) == [20_000_001, 30_000_002]
            alice, bob = listed[20_000_001], listed[30_000_002]
            assert (alice.isLive, alice.traderLogin, bob.isLive, bob.traderLogin) == (False, 1001, True, 2002)
            assert alice.brokerTitleShort
            assert [a.ctid_trader_account_id for a in sim.served_accounts] == [20_000_001, 30_000_002]

    run(scenario())


def test_account_auth_refuses_an_unknown_or_expired_token_an_unknown_account_and_a_second_auth(
    sim: SimProcess,
):
    async def scenario() -> None:
        ctid = sim.account().ctid_trader_account_id
        assert ctid is not None
        expired = sim.openapi_grant()["accessToken"]
        sim.control("/openapi/expire_token", {"access_token": expired})
        token = sim.openapi_grant()["accessToken"]
        async with await OpenApiClient.connect(sim) as client:
            await client.app_auth(sim)
            invalid = await client.account_auth(ctid, "not-a-token")
            assert (
                isinstance(invalid, messages.ProtoOAErrorRes)
                and invalid.errorCode == "CH_ACCESS_TOKEN_INVALID"
            )
            late = await client.account_auth(ctid, expired)
            assert isinstance(late, messages.ProtoOAErrorRes) and late.errorCode == "CH_ACCESS_TOKEN_INVALID"
            assert late.description == "Access token expired"
            unknown = await client.account_auth(ctid + 1000, token)
            assert isinstance(unknown, messages.ProtoOAErrorRes)
            assert unknown.errorCode == "CH_CTID_TRADER_ACCOUNT_NOT_FOUND"
            not_yet = await client.request(messages.ProtoOATraderReq(ctidTraderAccountId=ctid))
            assert (
                isinstance(not_yet, messages.ProtoOAErrorRes)
                and not_yet.errorCode == "ACCOUNT_NOT_AUTHORIZED"
            )
            assert isinstance(await client.account_auth(ctid, token), messages.ProtoOAAccountAuthRes)
            twice = await client.account_auth(ctid, token)
            assert isinstance(twice, messages.ProtoOAErrorRes) and twice.errorCode == "ALREADY_LOGGED_IN"
            assert twice.description == "Trading account is already authorized in this channel"
            trader = await client.request(messages.ProtoOATraderReq(ctidTraderAccountId=ctid))
            assert isinstance(trader, messages.ProtoOATraderRes)
            assert trader.trader.balance > 0 and trader.trader.moneyDigits == 2
            assert trader.trader.leverageInCents == 10_000 and trader.trader.accountType == model.HEDGED

    run(scenario())


def test_refreshing_the_token_rotates_the_pair_and_invalidates_the_accounts_it_authorised(sim: SimProcess):
    async def scenario() -> None:
        pair = sim.openapi_grant()
        client, ctid, _ = await authorised(sim, pair["accessToken"])
        async with client:
            answer = await client.request(messages.ProtoOARefreshTokenReq(refreshToken=pair["refreshToken"]))
            assert isinstance(answer, messages.ProtoOARefreshTokenRes)
            assert answer.accessToken != pair["accessToken"] and answer.refreshToken != pair["refreshToken"]
            event = await client.event(messages.ProtoOAAccountsTokenInvalidatedEvent)
            assert list(event.ctidTraderAccountIds) == [ctid] and event.reason == "token was refreshed"
            old = await client.account_auth(ctid, pair["accessToken"])
            assert isinstance(old, messages.ProtoOAErrorRes) and old.errorCode == "CH_ACCESS_TOKEN_INVALID"
            reused = await client.request(messages.ProtoOARefreshTokenReq(refreshToken=pair["refreshToken"]))
            assert isinstance(reused, messages.ProtoOAErrorRes)
            assert isinstance(
                await client.account_auth(ctid, answer.accessToken), messages.ProtoOAAccountAuthRes
            )

    run(scenario())


# -- symbols and trading -----------------------------------------------------------------------------


def test_symbols_are_listed_by_their_fix_names_with_volumes_in_hundredths_of_a_unit(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            listed = await client.request(messages.ProtoOASymbolsListReq(ctidTraderAccountId=ctid))
            assert isinstance(listed, messages.ProtoOASymbolsListRes)
            assert {s.symbolId: s.symbolName for s in listed.symbol}[EURUSD] == "EURUSD"
            full = await client.request(
                messages.ProtoOASymbolByIdReq(ctidTraderAccountId=ctid, symbolId=[EURUSD])
            )
            assert isinstance(full, messages.ProtoOASymbolByIdRes)
            eurusd = full.symbol[0]
            assert (eurusd.digits, eurusd.pipPosition) == (5, 4)
            assert (eurusd.minVolume, eurusd.stepVolume, eurusd.lotSize) == (MIN_VOLUME, MIN_VOLUME, ONE_LOT)
            unknown = await client.request(
                messages.ProtoOASymbolByIdReq(ctidTraderAccountId=ctid, symbolId=[999])
            )
            assert isinstance(unknown, messages.ProtoOAErrorRes) and unknown.errorCode == "SYMBOL_NOT_FOUND"

    run(scenario())


def test_a_market_order_is_accepted_then_filled_with_its_deal_and_position_on_every_connection(
    sim: SimProcess,
):
    async def scenario() -> None:
        client, ctid, token = await authorised(sim)
        other, _, _ = await authorised(sim, token)
        async with client, other:
            sent = client.send(new_order(ctid, clientOrderId="oa-market-1", label="spec", comment="why"))
            accepted = await client.answer(sent)
            assert isinstance(accepted.message, messages.ProtoOAExecutionEvent)
            assert accepted.message.executionType == model.ORDER_ACCEPTED
            order_id = accepted.message.order.orderId
            filled = await client.event(
                messages.ProtoOAExecutionEvent, is_execution(model.ORDER_FILLED, order_id)
            )
            order, deal, position = filled.order, filled.deal, filled.position
            assert order.orderStatus == model.ORDER_STATUS_FILLED and order.executedVolume == MIN_VOLUME
            assert order.clientOrderId == "oa-market-1" and order.tradeData.label == "spec"
            assert order.tradeData.comment == "why" and order.executionPrice == pytest.approx(1.0801)
            assert deal.orderId == order_id and deal.positionId == order.positionId and deal.dealId > 0
            assert (
                deal.filledVolume == MIN_VOLUME and deal.dealStatus == model.FILLED and deal.moneyDigits == 2
            )
            assert position.positionId == order.positionId and position.tradeData.volume == MIN_VOLUME
            assert position.positionStatus == model.POSITION_STATUS_OPEN
            # The other connection of the account sees the same events, without the request's clientMsgId.
            seen = await other.wait_for(
                lambda d: (
                    isinstance(d.message, messages.ProtoOAExecutionEvent)
                    and d.message.executionType == model.ORDER_FILLED
                    and d.message.order.orderId == order_id
                )
            )
            assert seen.client_msg_id is None
            details = await client.request(
                messages.ProtoOAOrderDetailsReq(ctidTraderAccountId=ctid, orderId=order_id)
            )
            assert isinstance(details, messages.ProtoOAOrderDetailsRes)
            assert [d.dealId for d in details.deal] == [deal.dealId]
            deals = await client.request(messages.ProtoOADealListReq(ctidTraderAccountId=ctid))
            assert deal.dealId in [d.dealId for d in deals.deal] and deals.hasMore is False
            orders = await client.request(messages.ProtoOAOrderListReq(ctidTraderAccountId=ctid))
            assert order_id in [o.orderId for o in orders.order]
            missing = await client.request(
                messages.ProtoOAOrderDetailsReq(ctidTraderAccountId=ctid, orderId=1)
            )
            assert isinstance(missing, messages.ProtoOAErrorRes) and missing.errorCode == "ORDER_NOT_FOUND"

    run(scenario())


def test_an_order_list_longer_than_the_servers_chunk_is_cut_short_and_says_so(tmp_path: Path):
    """hasMore: "true if truncated" (reference, ProtoOAOrderListRes): a client must not read a cut list
    as the whole."""
    small = SimProcess(log_path=tmp_path / "sim.log", extra_args=("--openapi-list-chunk", "2")).start()

    async def scenario() -> tuple[int, bool]:
        client, ctid, _ = await authorised(small)
        async with client:
            for _ in range(3):
                placed = await client.answer(client.send(new_order(ctid)))
                assert isinstance(placed.message, messages.ProtoOAExecutionEvent)
            listed = await client.request(messages.ProtoOAOrderListReq(ctidTraderAccountId=ctid))
            return len(listed.order), listed.hasMore

    try:
        assert asyncio.run(scenario()) == (2, True)
    finally:
        small.stop()


def test_an_order_placed_over_fix_is_in_open_api_reconcile_with_the_same_ids_and_the_reverse(
    sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client, Adapter(make_config(sim)) as adapter:
            await adapter.wait_ready(30)
            queue = adapter.engine.subscribe()
            try:
                fix_order = await adapter.submit(
                    NewOrder(
                        symbol="EURUSD", side="buy", order_type="limit", quantity=1000, price=Decimal("1.0")
                    )
                )
                async with asyncio.timeout(30):
                    while True:
                        seen = await queue.get()
                        if (
                            seen.order.cl_ord_id == fix_order.cl_ord_id
                            and seen.order.status is OrderStatus.NEW
                        ):
                            break
            finally:
                adapter.engine.unsubscribe(queue)
            accepted = await client.event(
                messages.ProtoOAExecutionEvent,
                lambda m: (
                    m.executionType == model.ORDER_ACCEPTED and m.order.clientOrderId == fix_order.cl_ord_id
                ),
            )
            reconciled = await client.request(messages.ProtoOAReconcileReq(ctidTraderAccountId=ctid))
            assert isinstance(reconciled, messages.ProtoOAReconcileRes)
            listed = next(o for o in reconciled.order if o.clientOrderId == fix_order.cl_ord_id)
            assert listed.orderId == accepted.order.orderId
            assert str(listed.orderId) == seen.order.order_id
            assert str(listed.positionId) == seen.order.position_id
            # The reverse: a position opened over the Open API is in the FIX side's positions, same id.
            await client.answer(client.send(new_order(ctid, clientOrderId="oa-for-fix")))
            filled = await client.event(
                messages.ProtoOAExecutionEvent,
                lambda m: m.executionType == model.ORDER_FILLED and m.order.clientOrderId == "oa-for-fix",
            )
            positions = {p.position_id for p in await adapter.positions(refresh=True)}
            assert str(filled.position.positionId) in positions

    run(scenario())


def test_a_limit_order_rests_is_amended_and_fills_when_a_quote_crosses_it(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            sent = client.send(
                new_order(ctid, orderType=model.LIMIT, limitPrice=1.07000, tradeSide=model.BUY)
            )
            accepted = (await client.answer(sent)).message
            assert isinstance(accepted, messages.ProtoOAExecutionEvent)
            order_id = accepted.order.orderId
            assert accepted.order.orderStatus == model.ORDER_STATUS_ACCEPTED
            amend = messages.ProtoOAAmendOrderReq(
                ctidTraderAccountId=ctid, orderId=order_id, limitPrice=1.07500, volume=2 * MIN_VOLUME
            )
            replaced = (await client.answer(client.send(amend))).message
            assert isinstance(replaced, messages.ProtoOAExecutionEvent)
            assert replaced.executionType == model.ORDER_REPLACED
            assert (
                replaced.order.limitPrice == pytest.approx(1.075)
                and replaced.order.tradeData.volume == 2 * MIN_VOLUME
            )
            set_quote(sim, "1.07480", "1.07490")
            try:
                filled = await client.event(
                    messages.ProtoOAExecutionEvent, is_execution(model.ORDER_FILLED, order_id)
                )
            finally:
                set_quote(sim, "1.08000", "1.08010")
            assert (
                filled.order.executionPrice == pytest.approx(1.075)
                and filled.deal.filledVolume == 2 * MIN_VOLUME
            )

    run(scenario())


def test_a_resting_order_is_cancelled_and_a_finished_one_cannot_be(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            sent = client.send(new_order(ctid, orderType=model.STOP, stopPrice=1.2, tradeSide=model.BUY))
            order_id = (await client.answer(sent)).message.order.orderId  # type: ignore[union-attr]
            cancel = messages.ProtoOACancelOrderReq(ctidTraderAccountId=ctid, orderId=order_id)
            cancelled = (await client.answer(client.send(cancel))).message
            assert isinstance(cancelled, messages.ProtoOAExecutionEvent)
            assert cancelled.executionType == model.ORDER_CANCELLED
            assert cancelled.order.orderStatus == model.ORDER_STATUS_CANCELLED
            again = (await client.answer(client.send(cancel))).message
            assert isinstance(again, messages.ProtoOAOrderErrorEvent) and again.errorCode == "ORDER_NOT_FOUND"
            assert again.orderId == order_id

    run(scenario())


def test_a_partial_close_reduces_the_position_with_a_closing_order(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            sent = client.send(new_order(ctid, volume=3 * MIN_VOLUME))
            await client.answer(sent)
            opened = await client.event(messages.ProtoOAExecutionEvent, is_execution(model.ORDER_FILLED))
            position_id = opened.position.positionId
            close = messages.ProtoOAClosePositionReq(
                ctidTraderAccountId=ctid, positionId=position_id, volume=MIN_VOLUME
            )
            closing_id = client.send(close)
            first = (await client.answer(closing_id)).message
            assert (
                isinstance(first, messages.ProtoOAExecutionEvent)
                and first.executionType == model.ORDER_ACCEPTED
            )
            assert first.order.closingOrder is True and first.order.tradeData.tradeSide == model.SELL
            reduced = await client.event(
                messages.ProtoOAExecutionEvent, is_execution(model.ORDER_FILLED, first.order.orderId)
            )
            assert reduced.position.positionId == position_id
            assert reduced.position.tradeData.volume == 2 * MIN_VOLUME
            assert reduced.deal.closePositionDetail.closedVolume == MIN_VOLUME
            assert reduced.deal.closePositionDetail.entryPrice == pytest.approx(1.0801)
            reconciled = await client.request(messages.ProtoOAReconcileReq(ctidTraderAccountId=ctid))
            volumes = {p.positionId: p.tradeData.volume for p in reconciled.position}
            assert volumes[position_id] == 2 * MIN_VOLUME

    run(scenario())


def test_a_stop_loss_closes_the_position_when_a_quote_crosses_it_on_both_fronts(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            await client.answer(client.send(new_order(ctid, relativeStopLoss=500)))  # 0.00500 below the fill
            opened = await client.event(messages.ProtoOAExecutionEvent, is_execution(model.ORDER_FILLED))
            position_id = opened.position.positionId
            assert opened.position.stopLoss == pytest.approx(1.0751)
            amend = messages.ProtoOAAmendPositionSLTPReq(
                ctidTraderAccountId=ctid, positionId=position_id, stopLoss=1.0760, takeProfit=1.0900
            )
            amended = (await client.answer(client.send(amend))).message
            assert isinstance(amended, messages.ProtoOAExecutionEvent)
            assert amended.position.stopLoss == pytest.approx(
                1.076
            ) and amended.position.takeProfit == pytest.approx(1.09)
            wrong = messages.ProtoOAAmendPositionSLTPReq(
                ctidTraderAccountId=ctid, positionId=position_id, stopLoss=1.0850
            )
            refused = (await client.answer(client.send(wrong))).message
            assert (
                isinstance(refused, messages.ProtoOAOrderErrorEvent)
                and refused.errorCode == "TRADING_BAD_STOPS"
            )
            assert (refused.orderId, refused.positionId) == (0, 0)
            state = sim.control("/state")
            stored = next(p for p in state["positions"] if p["position_id"] == position_id)
            assert Decimal(stored["stop_loss"]) == Decimal("1.07600")
            set_quote(sim, "1.07550", "1.07560")
            try:
                closed = await client.event(
                    messages.ProtoOAExecutionEvent,
                    lambda m: m.executionType == model.ORDER_FILLED and m.position.positionId == position_id,
                )
            finally:
                set_quote(sim, "1.08000", "1.08010")
            assert closed.position.positionStatus == model.POSITION_STATUS_CLOSED and closed.isServerEvent
            assert closed.order.closingOrder is True
            assert position_id not in [p["position_id"] for p in sim.control("/state")["positions"]]

    run(scenario())


# -- refusals ----------------------------------------------------------------------------------------


def test_a_stop_loss_on_the_wrong_side_is_refused_with_ids_zero_and_the_request_id(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            sent = client.send(new_order(ctid, orderType=model.LIMIT, limitPrice=1.07, stopLoss=1.08))
            refused = await client.answer(sent)
            assert isinstance(refused.message, messages.ProtoOAOrderErrorEvent)
            assert refused.message.errorCode == "TRADING_BAD_STOPS"
            assert (refused.message.orderId, refused.message.positionId) == (0, 0)

    run(scenario())


def test_an_absolute_stop_loss_or_take_profit_on_a_market_order_is_refused_distances_are_taken(
    sim: SimProcess,
):
    """The proto says absolute stopLoss/takeProfit are not supported for MARKET orders."""

    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            for field in ("stopLoss", "takeProfit"):
                refused = (await client.answer(client.send(new_order(ctid, **{field: 1.0})))).message
                assert isinstance(refused, messages.ProtoOAOrderErrorEvent), field
                assert refused.errorCode == "INVALID_REQUEST" and "relativeStopLoss" in refused.description
            taken = (await client.answer(client.send(new_order(ctid, relativeStopLoss=500)))).message
            assert isinstance(taken, messages.ProtoOAExecutionEvent)

    run(scenario())


def test_volumes_off_whole_units_or_the_symbol_step_are_refused_as_bad_volume(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            for volume in (MIN_VOLUME + 1, MIN_VOLUME + 100, MIN_VOLUME // 2):
                refused = (await client.answer(client.send(new_order(ctid, volume=volume)))).message
                assert isinstance(refused, messages.ProtoOAOrderErrorEvent), volume
                assert refused.errorCode == "TRADING_BAD_VOLUME"

    run(scenario())


def test_an_order_needing_more_than_the_free_margin_is_refused_not_enough_money(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            refused = (
                await client.answer(client.send(new_order(ctid, volume=2_000 * ONE_LOT // 10)))
            ).message
            assert (
                isinstance(refused, messages.ProtoOAOrderErrorEvent)
                and refused.errorCode == "NOT_ENOUGH_MONEY"
            )

    run(scenario())


def test_closing_an_unknown_position_is_refused_position_not_found(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            close = messages.ProtoOAClosePositionReq(
                ctidTraderAccountId=ctid, positionId=1, volume=MIN_VOLUME
            )
            refused = (await client.answer(client.send(close))).message
            assert (
                isinstance(refused, messages.ProtoOAOrderErrorEvent)
                and refused.errorCode == "POSITION_NOT_FOUND"
            )
            assert (refused.orderId, refused.positionId) == (0, 0)

    run(scenario())


# -- limits and the control port ---------------------------------------------------------------------


def test_sixty_requests_in_one_burst_exceed_the_rate_limit(sim: SimProcess):
    async def scenario() -> None:
        async with await OpenApiClient.connect(sim) as client:
            await client.app_auth(sim)
            sent = [client.send(messages.ProtoOAVersionReq()) for _ in range(60)]
            answers = [(await client.answer(client_msg_id)).message for client_msg_id in sent]
            refused = [a for a in answers if isinstance(a, messages.ProtoOAErrorRes)]
            assert refused and all(a.errorCode == "REQUEST_FREQUENCY_EXCEEDED" for a in refused)
            assert len(answers) - len(refused) <= 50

    run(scenario())


def test_a_blocked_payload_type_is_refused_with_retry_after(sim: SimProcess):
    async def scenario() -> None:
        async with await OpenApiClient.connect(sim) as client:
            await client.app_auth(sim)
            sim.control("/openapi/block", {"payload_type": "PROTO_OA_VERSION_REQ", "seconds": 60})
            try:
                refused = await client.request(messages.ProtoOAVersionReq())
            finally:
                sim.control("/openapi/block", {"payload_type": "PROTO_OA_VERSION_REQ", "seconds": 0.001})
            assert (
                isinstance(refused, messages.ProtoOAErrorRes) and refused.errorCode == "BLOCKED_PAYLOAD_TYPE"
            )
            assert 0 < refused.retryAfter <= 60

    run(scenario())


def test_a_muted_request_type_is_never_answered_nor_executed(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            sim.control("/openapi/mute", {"payload_type": "ProtoOANewOrderReq", "count": 1})
            muted = client.send(new_order(ctid, clientOrderId="oa-muted"))
            answered = client.send(messages.ProtoOAVersionReq())
            version = await client.answer(answered)
            assert isinstance(version.message, messages.ProtoOAVersionRes)
            assert all(d.client_msg_id != muted for d in client.inbox)
            assert "oa-muted" not in [o["cl_ord_id"] for o in sim.control("/state")["orders"]]

    run(scenario())


def test_cut_closes_the_connections_on_which_the_account_is_authorised(sim: SimProcess):
    async def scenario() -> None:
        client, _, _ = await authorised(sim)
        bystander = await OpenApiClient.connect(sim)
        async with client, bystander:
            await bystander.app_auth(sim)
            assert sim.control("/openapi/cut", {"account": sim.account().name}) == {"cut": 1}
            await client.ended()
            assert isinstance(
                await bystander.request(messages.ProtoOAVersionReq()), messages.ProtoOAVersionRes
            )

    run(scenario())


def test_a_client_silent_for_the_idle_time_is_dropped(sim: SimProcess):
    async def scenario() -> None:
        async with await OpenApiClient.connect(sim, keepalive=False) as client:
            await client.app_auth(sim)
            await client.ended()

    run(scenario())


def test_garbage_on_the_wire_closes_that_connection(sim: SimProcess):
    async def scenario() -> None:
        async with await OpenApiClient.connect(sim) as client:
            client.write_raw(encode_frame(b"\xff\xff\xff\xff garbage"))
            await client.ended()

    run(scenario())


def test_a_restarted_simulator_serves_the_open_api_on_the_same_ports_with_the_same_account_ids(
    start_sim: SimFactory,
):
    first = start_sim()
    ports = (first.openapi_port, first.oauth_port)
    ctid = first.account().ctid_trader_account_id
    assert all(ports) and ctid == 20_000_001
    first.stop()
    first.start()
    assert (first.openapi_port, first.oauth_port) == ports
    assert first.account().ctid_trader_account_id == ctid


def test_a_live_account_is_refused_on_this_demo_server(sim: SimProcess):
    async def scenario() -> None:
        token = sim.openapi_grant()["accessToken"]
        async with await OpenApiClient.connect(sim) as client:
            await client.app_auth(sim)
            refused = await client.account_auth(30_000_002, token)
            assert isinstance(refused, messages.ProtoOAErrorRes) and refused.errorCode == "CANT_ROUTE_REQUEST"

    run(scenario())


def test_logout_is_answered_then_completed_by_the_account_disconnect_event(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            answer = await client.request(messages.ProtoOAAccountLogoutReq(ctidTraderAccountId=ctid))
            assert isinstance(answer, messages.ProtoOAAccountLogoutRes)
            event = await client.event(messages.ProtoOAAccountDisconnectEvent)
            assert event.ctidTraderAccountId == ctid
            after = await client.request(messages.ProtoOAReconcileReq(ctidTraderAccountId=ctid))
            assert isinstance(after, messages.ProtoOAErrorRes) and after.errorCode == "ACCOUNT_NOT_AUTHORIZED"

    run(scenario())


def test_an_invalidated_token_takes_its_accounts_off_every_connection(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, token = await authorised(sim)
        async with client:
            answer = sim.control("/openapi/invalidate_token", {"access_token": token, "reason": "revoked"})
            assert answer == {"invalidated": 1}
            event = await client.event(messages.ProtoOAAccountsTokenInvalidatedEvent)
            assert list(event.ctidTraderAccountIds) == [ctid] and event.reason == "revoked"
            after = await client.request(messages.ProtoOAReconcileReq(ctidTraderAccountId=ctid))
            assert isinstance(after, messages.ProtoOAErrorRes) and after.errorCode == "ACCOUNT_NOT_AUTHORIZED"
            again = await client.account_auth(ctid, token)
            assert (
                isinstance(again, messages.ProtoOAErrorRes) and again.errorCode == "CH_ACCESS_TOKEN_INVALID"
            )

    run(scenario())


def test_the_control_port_sends_the_account_and_client_disconnect_events(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, token = await authorised(sim)
        async with client:
            assert sim.control("/openapi/account_disconnect", {"account": "alice"}) == {"disconnected": 1}
            event = await client.event(messages.ProtoOAAccountDisconnectEvent)
            assert event.ctidTraderAccountId == ctid
            assert isinstance(await client.account_auth(ctid, token), messages.ProtoOAAccountAuthRes)
            answer = sim.control("/openapi/client_disconnect", {"reason": "maintenance"})
            assert answer["disconnected"] >= 1
            goodbye = await client.event(messages.ProtoOAClientDisconnectEvent)
            assert goodbye.reason == "maintenance"
            await client.ended()

    run(scenario())


def test_a_view_only_token_cannot_trade(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim, scope="accounts")
        async with client:
            refused = await client.request(new_order(ctid))
            assert (
                isinstance(refused, messages.ProtoOAErrorRes) and refused.errorCode == "TRADING_NOT_ALLOWED"
            )
            assert isinstance(
                await client.request(messages.ProtoOAReconcileReq(ctidTraderAccountId=ctid)),
                messages.ProtoOAReconcileRes,
            )

    run(scenario())


def test_a_good_till_date_order_expires_and_an_unfilled_ioc_limit_is_cancelled(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            expiry = int(time.time() * 1000) + 1000  # a second from now: the clock expires it
            gtd = new_order(
                ctid,
                orderType=model.LIMIT,
                limitPrice=1.05,
                timeInForce=model.GOOD_TILL_DATE,
                expirationTimestamp=expiry,
            )
            accepted = (await client.answer(client.send(gtd))).message
            assert isinstance(accepted, messages.ProtoOAExecutionEvent)
            assert accepted.order.timeInForce == model.GOOD_TILL_DATE
            assert accepted.order.expirationTimestamp == expiry
            expired = await client.event(
                messages.ProtoOAExecutionEvent, is_execution(model.ORDER_EXPIRED, accepted.order.orderId)
            )
            assert expired.order.orderStatus == model.ORDER_STATUS_EXPIRED
            ioc = new_order(
                ctid, orderType=model.LIMIT, limitPrice=1.05, timeInForce=model.IMMEDIATE_OR_CANCEL
            )
            first = (await client.answer(client.send(ioc))).message
            assert isinstance(first, messages.ProtoOAExecutionEvent)
            assert first.executionType == model.ORDER_ACCEPTED
            cancelled = await client.event(
                messages.ProtoOAExecutionEvent, is_execution(model.ORDER_CANCELLED, first.order.orderId)
            )
            assert cancelled.order.executedVolume == 0

    run(scenario())


def test_a_pending_order_takes_a_stop_loss_by_amendment_but_not_on_the_wrong_side(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            sent = client.send(new_order(ctid, orderType=model.LIMIT, limitPrice=1.06, tradeSide=model.BUY))
            order_id = (await client.answer(sent)).message.order.orderId  # type: ignore[union-attr]
            amend = messages.ProtoOAAmendOrderReq(ctidTraderAccountId=ctid, orderId=order_id, stopLoss=1.05)
            replaced = (await client.answer(client.send(amend))).message
            assert isinstance(replaced, messages.ProtoOAExecutionEvent)
            assert replaced.executionType == model.ORDER_REPLACED
            assert replaced.order.stopLoss == pytest.approx(1.05)
            wrong = messages.ProtoOAAmendOrderReq(ctidTraderAccountId=ctid, orderId=order_id, stopLoss=1.07)
            refused = (await client.answer(client.send(wrong))).message
            assert (
                isinstance(refused, messages.ProtoOAOrderErrorEvent)
                and refused.errorCode == "TRADING_BAD_STOPS"
            )
            stored = next(o for o in sim.control("/state")["orders"] if o["order_id"] == order_id)
            assert Decimal(stored["stop_loss"]) == Decimal("1.05")
            await client.answer(
                client.send(messages.ProtoOACancelOrderReq(ctidTraderAccountId=ctid, orderId=order_id))
            )

    run(scenario())


def test_drop_reports_and_ignore_requests_act_on_the_open_api_front_too(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            sim.control("/scenario", {"account": "alice", "drop_reports": 1})
            try:
                client.send(new_order(ctid, clientOrderId="oa-dropped-accept"))
                filled = await client.event(
                    messages.ProtoOAExecutionEvent,
                    lambda m: m.order.clientOrderId == "oa-dropped-accept",
                )
            finally:
                sim.control("/scenario", {"account": "alice", "drop_reports": 0})
            assert filled.executionType == model.ORDER_FILLED  # its ORDER_ACCEPTED never left
            sim.control("/scenario", {"account": "alice", "ignore_requests": 1})
            try:
                lost = client.send(new_order(ctid, clientOrderId="oa-ignored"))
                version = await client.answer(client.send(messages.ProtoOAVersionReq()))
                assert isinstance(version.message, messages.ProtoOAVersionRes)
                reconciled = await client.request(messages.ProtoOAReconcileReq(ctidTraderAccountId=ctid))
            finally:
                sim.control("/scenario", {"account": "alice", "ignore_requests": 0})
            assert isinstance(reconciled, messages.ProtoOAReconcileRes)
            assert all(d.client_msg_id != lost for d in client.inbox)
            assert "oa-ignored" not in [o["cl_ord_id"] for o in sim.control("/state")["orders"]]

    run(scenario())


def test_the_server_sends_heartbeats_when_it_has_nothing_else_to_send(sim: SimProcess):
    async def scenario() -> None:
        async with await OpenApiClient.connect(sim) as client:
            await client.app_auth(sim)
            await client.heartbeat()

    run(scenario())


def test_a_frame_over_the_maximum_size_closes_that_connection(sim: SimProcess):
    async def scenario() -> None:
        async with await OpenApiClient.connect(sim) as client:
            client.write_raw((2 * 1024 * 1024).to_bytes(4, "big"))
            await client.ended()
            refusals = [d.message for d in client.inbox if isinstance(d.message, ProtoErrorRes)]
            assert [r.errorCode for r in refusals] == ["FRAME_TOO_LONG"]

    run(scenario())


def test_an_order_for_an_unknown_symbol_is_refused_symbol_not_found(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            refused = (await client.answer(client.send(new_order(ctid, symbolId=999)))).message
            assert (
                isinstance(refused, messages.ProtoOAOrderErrorEvent)
                and refused.errorCode == "SYMBOL_NOT_FOUND"
            )

    run(scenario())


def test_a_request_missing_a_required_field_is_refused_and_an_unknown_payload_type_unsupported(
    sim: SimProcess,
):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            partial = messages.ProtoOANewOrderReq(
                ctidTraderAccountId=ctid, symbolId=EURUSD, volume=MIN_VOLUME
            )
            frame = ProtoMessage(
                payloadType=model.PROTO_OA_NEW_ORDER_REQ,
                payload=partial.SerializePartialToString(),
                clientMsgId="partial",
            )
            client.write_raw(encode_frame(frame.SerializeToString()))
            refused = (await client.answer("partial")).message
            assert isinstance(refused, messages.ProtoOAErrorRes) and refused.errorCode == "INVALID_REQUEST"
            assert "orderType" in refused.description and "tradeSide" in refused.description
            unknown = ProtoMessage(payloadType=9999, clientMsgId="unknown")
            client.write_raw(encode_frame(unknown.SerializeToString()))
            answer = (await client.answer("unknown")).message
            assert isinstance(answer, ProtoErrorRes) and answer.errorCode == "UNSUPPORTED_MESSAGE"

    run(scenario())


def http_get(url: str) -> tuple[int, dict[str, str], bytes]:
    """One GET without following redirects (the OAuth endpoint answers the authorize step with a 302)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        connection.request("GET", f"{parts.path}?{parts.query}")
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_a_pair_from_the_oauth_endpoint_works_on_the_open_api_and_an_http_refresh_kills_it(sim: SimProcess):
    client_id, secret = sim.openapi_client()
    redirect = "http://127.0.0.1:9/callback"
    status, headers, _ = http_get(
        f"{sim.oauth_base_url}/apps/auth?{urlencode({'client_id': client_id, 'redirect_uri': redirect})}"
    )
    assert status == 302
    code = parse_qs(urlsplit(headers["Location"]).query)["code"][0]
    exchange = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect,
        "client_id": client_id,
        "client_secret": secret,
    }
    _, _, body = http_get(f"{sim.oauth_base_url}/apps/token?{urlencode(exchange)}")
    pair = json.loads(body)
    assert pair["errorCode"] is None

    async def scenario() -> None:
        client, ctid, _ = await authorised(sim, pair["accessToken"])
        async with client:
            refresh = {
                "grant_type": "refresh_token",
                "refresh_token": pair["refreshToken"],
                "client_id": client_id,
                "client_secret": secret,
            }
            _, _, refreshed = await asyncio.to_thread(
                http_get, f"{sim.oauth_base_url}/apps/token?{urlencode(refresh)}"
            )
            assert json.loads(refreshed)["accessToken"] not in (None, pair["accessToken"])
            event = await client.event(messages.ProtoOAAccountsTokenInvalidatedEvent)
            assert list(event.ctidTraderAccountIds) == [ctid]

    run(scenario())


def test_a_limit_order_without_its_price_and_a_close_beyond_the_position_are_refused_before_the_venue(
    sim: SimProcess,
):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            no_price = (await client.answer(client.send(new_order(ctid, orderType=model.LIMIT)))).message
            assert (
                isinstance(no_price, messages.ProtoOAOrderErrorEvent)
                and no_price.errorCode == "INVALID_REQUEST"
            )
            await client.answer(client.send(new_order(ctid, clientOrderId="oa-to-reduce")))
            opened = await client.event(
                messages.ProtoOAExecutionEvent,
                lambda m: m.executionType == model.ORDER_FILLED and m.order.clientOrderId == "oa-to-reduce",
            )
            too_much = new_order(
                ctid, tradeSide=model.SELL, positionId=opened.position.positionId, volume=2 * MIN_VOLUME
            )
            refused = (await client.answer(client.send(too_much))).message
            assert isinstance(refused, messages.ProtoOAOrderErrorEvent)
            assert refused.errorCode == "TRADING_BAD_VOLUME"
            reduce = new_order(ctid, tradeSide=model.SELL, positionId=opened.position.positionId)
            accepted = (await client.answer(client.send(reduce))).message
            assert isinstance(accepted, messages.ProtoOAExecutionEvent) and accepted.order.closingOrder
            closed = await client.event(
                messages.ProtoOAExecutionEvent, is_execution(model.ORDER_FILLED, accepted.order.orderId)
            )
            assert closed.position.positionStatus == model.POSITION_STATUS_CLOSED
            assert closed.position.tradeData.volume == 0

    run(scenario())


def test_a_market_order_filled_in_parts_on_the_clock_gives_partial_fills_then_the_fill(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            sim.control("/scenario", {"account": "alice", "partial_fill_parts": 2})
            try:
                sent = client.send(new_order(ctid, volume=2 * MIN_VOLUME, clientOrderId="oa-parts"))
                accepted = await client.answer(sent)
            finally:
                sim.control("/scenario", {"account": "alice", "partial_fill_parts": 1})
            assert isinstance(accepted.message, messages.ProtoOAExecutionEvent)
            order_id = accepted.message.order.orderId
            part = await client.event(
                messages.ProtoOAExecutionEvent, is_execution(model.ORDER_PARTIAL_FILL, order_id)
            )
            rest = await client.event(
                messages.ProtoOAExecutionEvent, is_execution(model.ORDER_FILLED, order_id)
            )
            assert part.deal.dealStatus == model.PARTIALLY_FILLED and part.deal.filledVolume == MIN_VOLUME
            assert (
                part.order.orderStatus == model.ORDER_STATUS_ACCEPTED
                and part.order.executedVolume == MIN_VOLUME
            )
            assert rest.deal.dealStatus == model.FILLED and rest.deal.dealId == part.deal.dealId + 1
            assert rest.order.executedVolume == 2 * MIN_VOLUME

    run(scenario())


def test_a_closing_deal_books_its_profit_into_the_balance(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            before = await client.request(messages.ProtoOATraderReq(ctidTraderAccountId=ctid))
            await client.answer(
                client.send(new_order(ctid, clientOrderId="oa-profit", volume=10 * MIN_VOLUME))
            )
            opened = await client.event(
                messages.ProtoOAExecutionEvent,
                lambda m: m.executionType == model.ORDER_FILLED and m.order.clientOrderId == "oa-profit",
            )
            set_quote(sim, "1.08510", "1.08520")
            try:
                close = messages.ProtoOAClosePositionReq(
                    ctidTraderAccountId=ctid, positionId=opened.position.positionId, volume=10 * MIN_VOLUME
                )
                accepted = (await client.answer(client.send(close))).message
                closed = await client.event(
                    messages.ProtoOAExecutionEvent, is_execution(model.ORDER_FILLED, accepted.order.orderId)
                )
            finally:
                set_quote(sim, "1.08000", "1.08010")
            detail = closed.deal.closePositionDetail
            assert detail.grossProfit == 5000  # (1.08510 - 1.08010) x 10,000 = 50.00 USD
            assert detail.commission == closed.deal.commission and detail.swap == 0
            after = await client.request(messages.ProtoOATraderReq(ctidTraderAccountId=ctid))
            costs = opened.deal.commission + closed.deal.commission
            assert after.trader.balance == detail.balance == before.trader.balance + 5000 + costs

    run(scenario())


# -- stop-limit orders and commission ---------------------------------------------------------------


async def order_details(client: OpenApiClient, ctid: int, order_id: int) -> model.ProtoOAOrder:
    answer = await client.request(messages.ProtoOAOrderDetailsReq(ctidTraderAccountId=ctid, orderId=order_id))
    assert isinstance(answer, messages.ProtoOAOrderDetailsRes), answer
    return answer.order


def test_a_stop_limit_order_is_accepted_triggered_by_a_quote_and_filled_at_its_limit(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            sent = client.send(
                new_order(ctid, orderType=model.STOP_LIMIT, stopPrice=1.08100, slippageInPoints=5)
            )
            accepted = (await client.answer(sent)).message
            assert isinstance(accepted, messages.ProtoOAExecutionEvent)
            assert accepted.executionType == model.ORDER_ACCEPTED
            order = accepted.order
            assert order.orderType == model.STOP_LIMIT and order.stopPrice == pytest.approx(1.081)
            assert order.slippageInPoints == 5 and not order.HasField("limitPrice")
            try:
                set_quote(sim, "1.08110", "1.08120")  # triggers, but the ask is above the 1.08105 limit
                resting = await order_details(client, ctid, order.orderId)
                assert resting.orderStatus == model.ORDER_STATUS_ACCEPTED
                assert resting.limitPrice == pytest.approx(1.08105)
                set_quote(sim, "1.08095", "1.08104")  # below the stop now, yet it fills: it is a limit
                filled = await client.event(
                    messages.ProtoOAExecutionEvent, is_execution(model.ORDER_FILLED, order.orderId)
                )
            finally:
                set_quote(sim, "1.08000", "1.08010")
            assert filled.deal.executionPrice == pytest.approx(1.08105)
            assert filled.order.orderType == model.STOP_LIMIT

    run(scenario())


def test_a_stop_limit_needs_its_stop_price_and_a_slippage_that_is_not_negative(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            wrong = [
                new_order(ctid, orderType=model.STOP_LIMIT, slippageInPoints=5),
                new_order(ctid, orderType=model.STOP_LIMIT, stopPrice=1.081),
                new_order(ctid, orderType=model.STOP_LIMIT, stopPrice=1.081, slippageInPoints=-1),
            ]
            codes = []
            for request in wrong:
                refused = (await client.answer(client.send(request))).message
                assert isinstance(refused, messages.ProtoOAOrderErrorEvent), refused
                codes.append(refused.errorCode)
            assert codes == ["INVALID_REQUEST", "INVALID_REQUEST", "TRADING_BAD_PRICES"]

    run(scenario())


def test_amending_a_stop_limit_moves_its_stop_and_its_slippage(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            sent = client.send(
                new_order(
                    ctid,
                    orderType=model.STOP_LIMIT,
                    tradeSide=model.SELL,
                    stopPrice=1.07500,
                    slippageInPoints=10,
                )
            )
            accepted = (await client.answer(sent)).message
            assert isinstance(accepted, messages.ProtoOAExecutionEvent)
            order_id = accepted.order.orderId
            moved = messages.ProtoOAAmendOrderReq(
                ctidTraderAccountId=ctid, orderId=order_id, stopPrice=1.07400
            )
            replaced = (await client.answer(client.send(moved))).message
            assert isinstance(replaced, messages.ProtoOAExecutionEvent)
            assert replaced.executionType == model.ORDER_REPLACED
            assert replaced.order.stopPrice == pytest.approx(1.074) and replaced.order.slippageInPoints == 10
            wider = messages.ProtoOAAmendOrderReq(
                ctidTraderAccountId=ctid, orderId=order_id, slippageInPoints=30
            )
            widened = (await client.answer(client.send(wider))).message
            assert isinstance(widened, messages.ProtoOAExecutionEvent)
            assert widened.order.stopPrice == pytest.approx(1.074) and widened.order.slippageInPoints == 30
            cancel = messages.ProtoOACancelOrderReq(ctidTraderAccountId=ctid, orderId=order_id)
            cancelled = (await client.answer(client.send(cancel))).message
            assert isinstance(cancelled, messages.ProtoOAExecutionEvent)
            assert cancelled.executionType == model.ORDER_CANCELLED

    run(scenario())


def test_a_deal_is_charged_a_negative_commission_in_cents_that_the_balance_loses(sim: SimProcess):
    async def scenario() -> None:
        client, ctid, _ = await authorised(sim)
        async with client:
            before = await client.request(messages.ProtoOATraderReq(ctidTraderAccountId=ctid))
            sent = client.send(new_order(ctid, clientOrderId="oa-commission", volume=ONE_LOT))
            await client.answer(sent)
            filled = await client.event(
                messages.ProtoOAExecutionEvent,
                lambda m: m.executionType == model.ORDER_FILLED and m.order.clientOrderId == "oa-commission",
            )
            after = await client.request(messages.ProtoOATraderReq(ctidTraderAccountId=ctid))
            # 100,000 EURUSD at the 1.08010 ask = 108,010 USD; 30 USD per million = 3.2403 -> 3.24 USD
            assert filled.deal.commission == -324 and filled.deal.moneyDigits == 2
            assert after.trader.balance == before.trader.balance - 324
            close = messages.ProtoOAClosePositionReq(
                ctidTraderAccountId=ctid, positionId=filled.position.positionId, volume=ONE_LOT
            )
            await client.answer(client.send(close))

    run(scenario())

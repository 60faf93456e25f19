"""The Open API connector against the simulator's Open API front, over real TLS (issue 15, must show):
tokens that expire are refreshed in-band and the rotated pair survives a restart; a token that cannot be
refreshed raises an alarm that says what to do; an order the venue refuses ends rejected with its reason;
a burst of requests keeps within the server's rate limit; a connection cut with orders in flight loses and
doubles none; what is done over FIX is seen over the Open API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fixadapter.api import Adapter
from fixadapter.config import AdapterConfig, build_config
from fixadapter.connectors.openapi.link import OpenApiLink
from fixadapter.connectors.openapi.tokens import FileTokenStore, TokenPair, grant_key
from fixadapter.errors import FixAdapterError
from fixadapter.model.enums import DONE_STATUSES, OrderStatus, Side
from fixadapter.model.orders import Fill
from fixadapter.model.requests import AmendPositionProtection, ClosePosition, NewOrder
from fixadapter.protocols.openapi.generated import OpenApiMessages_pb2 as oa
from fixadapter.sim.process import SimAccountCredentials, SimProcess

from ..openapi_accounts import ensure_token_key, grant, openapi_settings

WAIT = 30.0


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimProcess]:
    process = SimProcess(
        state_path=tmp_path / "venue.sqlite", log_path=tmp_path / "sim.log", extra_args=("--tick-ms", "100")
    ).start()
    try:
        yield process
    finally:
        process.stop()


def config(
    sim: SimProcess, tmp_path: Path, orders: dict[str, Any] | None = None, **extra: Any
) -> AdapterConfig:
    token_file = tmp_path / "tokens.fernet"
    return build_config(
        {
            "accounts": [{"name": "desk", "openapi": openapi_settings(sim, token_file, **extra)}],
            "store": {"url": f"sqlite:///{tmp_path / 'adapter.db'}"},
            "orders": {"ready_timeout_seconds": WAIT, "reconcile_timeout_seconds": 10, **(orders or {})},
            "compliance": {"directory": str(tmp_path / "openapi-log")},
        },
        environ={},
    )


def stored_pair(sim: SimProcess, tmp_path: Path) -> TokenPair:
    client_id, _ = sim.openapi_client()
    pair = FileTokenStore(tmp_path / "tokens.fernet").load(grant_key(client_id))
    assert pair is not None
    return pair


async def until_final(adapter: Adapter, cl_ord_id: str) -> OrderStatus:
    async with asyncio.timeout(WAIT):
        while True:
            order = await adapter.order(cl_ord_id)
            if order is not None and order.status in DONE_STATUSES:
                return order.status
            await asyncio.sleep(0.05)  # polling the adapter's state for its outcome, not waiting for time


def test_an_expired_access_token_is_refreshed_in_band_and_the_rotated_pair_survives_a_restart(
    sim: SimProcess, tmp_path: Path
) -> None:
    first = grant(sim, tmp_path / "tokens.fernet")
    sim.control("/openapi/expire_token", {"access_token": first.access_token.get_secret_value()})

    async def trade_once() -> None:
        async with Adapter(config(sim, tmp_path)) as adapter:
            await adapter.wait_ready(WAIT)
            order = await adapter.submit(
                NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=1000)
            )
            assert await until_final(adapter, order.cl_ord_id) is OrderStatus.FILLED

    asyncio.run(trade_once())
    rotated = stored_pair(sim, tmp_path)
    assert rotated.refresh_token.get_secret_value() != first.refresh_token.get_secret_value()
    assert rotated.access_token.get_secret_value() != first.access_token.get_secret_value()
    asyncio.run(trade_once())  # a new process: only the stored (rotated) pair can work now
    assert stored_pair(sim, tmp_path).refresh_token == rotated.refresh_token


def test_a_token_that_cannot_be_refreshed_raises_an_alarm_that_says_to_log_in_again(
    sim: SimProcess, tmp_path: Path
) -> None:
    client_id, _ = sim.openapi_client()
    store = tmp_path / "tokens.fernet"
    real = grant(sim, store)
    sim.control("/openapi/expire_token", {"access_token": real.access_token.get_secret_value()})
    dead = TokenPair.issued(
        real.access_token.get_secret_value(), "not-a-refresh-token", 60.0, "bearer", real.expires_at
    )
    FileTokenStore(store).save(grant_key(client_id), dead)

    async def scenario() -> None:
        async with Adapter(config(sim, tmp_path, refresh_before_seconds=3600)) as adapter:
            async with asyncio.timeout(WAIT):
                while not adapter.metrics.alarms.active("openapi_token"):
                    await asyncio.sleep(0.05)  # polling the alarm list, not waiting for time
            (alarm,) = adapter.metrics.alarms.active("openapi_token")
            assert "fixadapter openapi login" in alarm.text
            assert "not-a-refresh-token" not in alarm.text
            assert not adapter.ready

    asyncio.run(scenario())


def test_an_order_the_venue_refuses_ends_rejected_with_the_venues_reason(
    sim: SimProcess, tmp_path: Path
) -> None:
    grant(sim, tmp_path / "tokens.fernet")

    async def scenario() -> None:
        async with Adapter(config(sim, tmp_path)) as adapter:
            await adapter.wait_ready(WAIT)
            # 50 M EURUSD needs about 540 k USD of margin at 1:100; the account holds 100 k.
            huge = NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=Decimal(50_000_000))
            order = await adapter.submit(huge)
            assert await until_final(adapter, order.cl_ord_id) is OrderStatus.REJECTED
            rejected = await adapter.order(order.cl_ord_id)
            assert rejected is not None and "NOT_ENOUGH_MONEY" in (rejected.reason or "")

    asyncio.run(scenario())


def test_an_order_error_the_venue_sends_with_ids_zero_reaches_its_order_with_the_reason(
    sim: SimProcess, tmp_path: Path
) -> None:
    """cTrader sends TRADING_BAD_STOPS with orderId = positionId = 0: the clientMsgId ties it to the order."""
    grant(sim, tmp_path / "tokens.fernet")

    async def scenario() -> None:
        async with Adapter(config(sim, tmp_path)) as adapter:
            await adapter.wait_ready(WAIT)
            bad_stop = NewOrder(
                symbol="EURUSD",
                side="buy",
                order_type="limit",
                quantity=1000,
                price=Decimal("0.90000"),
                stop_loss=Decimal("1.50000"),  # a buy's stop loss above its entry
            )
            order = await adapter.submit(bad_stop)
            assert await until_final(adapter, order.cl_ord_id) is OrderStatus.REJECTED
            rejected = await adapter.order(order.cl_ord_id)
            assert rejected is not None and "TRADING_BAD_STOPS" in (rejected.reason or "")

    asyncio.run(scenario())


def test_an_off_grid_quantity_is_refused_before_sending_with_the_symbols_rule(
    sim: SimProcess, tmp_path: Path
) -> None:
    grant(sim, tmp_path / "tokens.fernet")

    async def scenario() -> None:
        async with Adapter(config(sim, tmp_path)) as adapter:
            await adapter.wait_ready(WAIT)
            order = await adapter.submit(
                NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=1500)
            )
            assert await until_final(adapter, order.cl_ord_id) is OrderStatus.REJECTED
            rejected = await adapter.order(order.cl_ord_id)
            assert rejected is not None and "step of 1000 units" in (rejected.reason or "")
        state = await asyncio.to_thread(sim.control, "/state")
        assert all(o["cl_ord_id"] != order.cl_ord_id for o in state["orders"])

    asyncio.run(scenario())


def test_a_burst_of_200_requests_is_answered_without_a_rate_limit_error(
    sim: SimProcess, tmp_path: Path
) -> None:
    grant(sim, tmp_path / "tokens.fernet")
    settings = config(sim, tmp_path).account("desk").openapi
    assert settings is not None

    async def scenario() -> None:
        link = OpenApiLink(settings, FileTokenStore(tmp_path / "tokens.fernet"))
        up = asyncio.Event()
        link.seat(
            settings.ctid_trader_account_id, lambda _frame: None, lambda ok, _why: up.set() if ok else None
        )
        link.start()
        try:
            async with asyncio.timeout(WAIT):
                await up.wait()
            answers = await asyncio.gather(
                *(
                    link.request(
                        oa.ProtoOATraderReq(ctidTraderAccountId=settings.ctid_trader_account_id), timeout=WAIT
                    )
                    for _ in range(200)
                )
            )
            assert all(isinstance(answer, oa.ProtoOATraderRes) for answer in answers)
        finally:
            await link.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize("run", range(3))
def test_a_connection_cut_with_orders_in_flight_loses_and_doubles_none(
    sim: SimProcess, tmp_path: Path, run: int
) -> None:
    """Orders the cut lost are found unlisted after a short settle time here (the default waits a minute
    and then rejects them): sent again, each reaches the venue once."""
    grant(sim, tmp_path / "tokens.fernet")

    async def scenario() -> None:
        async with Adapter(config(sim, tmp_path, lost_order_settle_seconds=1)) as adapter:
            await adapter.wait_ready(WAIT)
            submits = [
                adapter.submit(NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=1000))
                for _ in range(10)
            ]
            cut = asyncio.to_thread(sim.control, "/openapi/cut", {})
            results = await asyncio.gather(*submits, cut, return_exceptions=True)
            orders = [r for r in results[:-1] if not isinstance(r, BaseException)]
            await adapter.wait_ready(WAIT)
            finals = {o.cl_ord_id: await until_final(adapter, o.cl_ord_id) for o in orders}
        state = await asyncio.to_thread(sim.control, "/state")
        at_venue: dict[str, int] = {}
        for venue_order in state["orders"]:
            at_venue[venue_order["cl_ord_id"]] = at_venue.get(venue_order["cl_ord_id"], 0) + 1
        for cl_ord_id, status in finals.items():
            assert at_venue.get(cl_ord_id, 0) <= 1, f"{cl_ord_id} reached the venue twice"
            if status is OrderStatus.FILLED:
                assert at_venue.get(cl_ord_id) == 1
            else:
                assert status is OrderStatus.REJECTED and cl_ord_id not in at_venue

    asyncio.run(scenario())


def test_an_order_a_slow_venue_answers_late_is_asked_for_and_waited_for_never_sent_twice(
    sim: SimProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The in-flight watch asks for an order the venue has not answered: the venue does not list it yet,
    as it has not executed it. That is no proof it never arrived, so it is not sent again (a second order
    at the venue) but asked for again until the venue's answer comes."""
    grant(sim, tmp_path / "tokens.fernet")
    awaited = "its new order was sent and never answered"
    resent = "was stored but never reached the venue"

    async def scenario() -> tuple[OrderStatus, int]:
        async with Adapter(config(sim, tmp_path, orders={"inflight_timeout_seconds": 0.2})) as adapter:
            await adapter.wait_ready(WAIT)
            await asyncio.to_thread(sim.control, "/openapi/hold", {"payload_type": "PROTO_OA_NEW_ORDER_REQ"})
            order = await adapter.submit(
                NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=1000)
            )
            async with asyncio.timeout(WAIT):  # the watch asked, and the venue listed no such order
                while not any(awaited in r.getMessage() or resent in r.getMessage() for r in caplog.records):
                    await asyncio.sleep(0.05)
            await asyncio.to_thread(sim.control, "/openapi/release", {})
            final = await until_final(adapter, order.cl_ord_id)
        state = await asyncio.to_thread(sim.control, "/state")
        return final, sum(o["cl_ord_id"] == order.cl_ord_id for o in state["orders"])

    with caplog.at_level(logging.INFO):
        final, at_venue = asyncio.run(scenario())
    assert not [r for r in caplog.records if resent in r.getMessage()], "the order was sent a second time"
    assert final is OrderStatus.FILLED
    assert at_venue == 1


def test_an_order_sent_before_a_cut_and_executed_late_is_found_after_the_reconnect_never_sent_twice(
    sim: SimProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The connection is cut while the venue still holds the order unexecuted. Reconciliation after the
    reconnect does not find it yet: within `lost_order_settle_seconds` of the loss it leaves it to the
    in-flight watch (trading resumes) instead of sending it again; the venue executes it late (its answer
    lost with the old connection), and the watch finds it filled."""
    grant(sim, tmp_path / "tokens.fernet")
    resent = "was stored but never reached the venue"
    settings = config(sim, tmp_path, orders={"inflight_timeout_seconds": 0.2}, lost_order_settle_seconds=3600)

    async def scenario() -> tuple[OrderStatus, int]:
        async with Adapter(settings) as adapter:
            await adapter.wait_ready(WAIT)
            await asyncio.to_thread(sim.control, "/openapi/hold", {"payload_type": "PROTO_OA_NEW_ORDER_REQ"})
            order = await adapter.submit(
                NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=1000)
            )
            await asyncio.to_thread(sim.control, "/openapi/cut", {})
            async with asyncio.timeout(WAIT):  # logged on again and reconciled, the order still unlisted
                while caplog.text.count("reconciled in") < 2:
                    await asyncio.sleep(0.05)
            await adapter.wait_ready(WAIT)
            await asyncio.to_thread(sim.control, "/openapi/release", {})
            final = await until_final(adapter, order.cl_ord_id)
        state = await asyncio.to_thread(sim.control, "/state")
        return final, sum(o["cl_ord_id"] == order.cl_ord_id for o in state["orders"])

    with caplog.at_level(logging.INFO):
        final, at_venue = asyncio.run(scenario())
    assert resent not in caplog.text, "the order was sent a second time"
    assert final is OrderStatus.FILLED
    assert at_venue == 1


def test_an_order_lost_with_its_connection_and_still_unlisted_after_the_settle_time_is_sent_again_once(
    sim: SimProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Written, then the connection cut before the venue took it: once the venue still does not list it
    `lost_order_settle_seconds` after the loss, it never arrived, and a young order is sent again."""
    grant(sim, tmp_path / "tokens.fernet")
    settings = config(sim, tmp_path, orders={"inflight_timeout_seconds": 0.2}, lost_order_settle_seconds=1)

    async def scenario() -> tuple[OrderStatus, int]:
        async with Adapter(settings) as adapter:
            await adapter.wait_ready(WAIT)
            muted = {"payload_type": "PROTO_OA_NEW_ORDER_REQ", "count": 1}  # lost as the cut would lose it
            await asyncio.to_thread(sim.control, "/openapi/mute", muted)
            order = await adapter.submit(
                NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=1000)
            )
            await asyncio.to_thread(sim.control, "/openapi/cut", {})
            final = await until_final(adapter, order.cl_ord_id)
        state = await asyncio.to_thread(sim.control, "/state")
        return final, sum(o["cl_ord_id"] == order.cl_ord_id for o in state["orders"])

    with caplog.at_level(logging.INFO):
        final, at_venue = asyncio.run(scenario())
    assert "was stored but never reached the venue" in caplog.text
    assert final is OrderStatus.FILLED
    assert at_venue == 1


def test_an_order_sent_and_never_answered_nor_listed_is_rejected_after_twice_the_timeout_never_resent(
    sim: SimProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A request the venue swallows (reference 4.2, OpenApiPy#47): once the venue still does not list the
    order twice the request timeout after it was sent, it is rejected with that reason, not sent again."""
    grant(sim, tmp_path / "tokens.fernet")
    settings = config(sim, tmp_path, orders={"inflight_timeout_seconds": 0.2}, request_timeout_seconds=3.0)

    async def scenario() -> tuple[OrderStatus, str, int]:
        async with Adapter(settings) as adapter:
            await adapter.wait_ready(WAIT)
            muted = {"payload_type": "PROTO_OA_NEW_ORDER_REQ", "count": 1}
            await asyncio.to_thread(sim.control, "/openapi/mute", muted)
            order = await adapter.submit(
                NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=1000)
            )
            final = await until_final(adapter, order.cl_ord_id)
            ended = await adapter.order(order.cl_ord_id)
            assert ended is not None
        state = await asyncio.to_thread(sim.control, "/state")
        return final, ended.reason or "", sum(o["cl_ord_id"] == order.cl_ord_id for o in state["orders"])

    with caplog.at_level(logging.INFO):
        final, reason, at_venue = asyncio.run(scenario())
    assert "was stored but never reached the venue" not in caplog.text, "the order was sent a second time"
    assert final is OrderStatus.REJECTED
    assert "sent and never answered, and the venue does not list it" in reason
    assert at_venue == 0


def test_an_order_placed_over_fix_is_seen_by_the_open_api_with_the_same_ids(
    sim: SimProcess, tmp_path: Path
) -> None:
    grant(sim, tmp_path / "tokens.fernet")
    fix_config = build_config(
        {"account": sim.adapter_settings(), "store": {"url": f"sqlite:///{tmp_path / 'fix.db'}"}}, environ={}
    )

    async def scenario() -> None:
        async with Adapter(fix_config) as over_fix:
            await over_fix.wait_ready(WAIT)
            order = await over_fix.submit(
                NewOrder(
                    symbol="EURUSD", side="buy", order_type="limit", quantity=2000, price=Decimal("0.90000")
                )
            )
            async with asyncio.timeout(WAIT):
                while (seen := await over_fix.order(order.cl_ord_id)) is None or seen.order_id is None:
                    await asyncio.sleep(0.05)  # polling for the venue's acknowledgement
            async with Adapter(config(sim, tmp_path)) as over_openapi:
                await over_openapi.wait_ready(WAIT)
                adopted = await over_openapi.order(order.cl_ord_id)
                assert adopted is not None, "the Open API reconciliation did not adopt the FIX order"
                assert (adopted.order_id, adopted.quantity, adopted.price) == (
                    seen.order_id,
                    Decimal(2000),
                    Decimal("0.90000"),
                )
            await over_fix.cancel(order.cl_ord_id)

    asyncio.run(scenario())


async def filled_position(adapter: Adapter, quantity: int, **extra: Any) -> str:
    order = await adapter.submit(
        NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=quantity, **extra)
    )
    assert await until_final(adapter, order.cl_ord_id) is OrderStatus.FILLED
    done = await adapter.order(order.cl_ord_id)
    assert done is not None and done.position_id is not None
    return done.position_id


async def position_quantity(sim: SimProcess, position_id: str) -> Decimal | None:
    state = await asyncio.to_thread(sim.control, "/state")
    found = [p for p in state["positions"] if str(p["position_id"]) == position_id]
    return Decimal(str(found[0]["volume"])) if found else None


async def until_position(sim: SimProcess, position_id: str, quantity: Decimal | None) -> None:
    async with asyncio.timeout(WAIT):
        while await position_quantity(sim, position_id) != quantity:
            await asyncio.sleep(0.05)  # polling the venue's record, not waiting for time


def test_a_position_is_closed_in_part_then_in_full_through_closing_orders_the_adapter_stored(
    sim: SimProcess, tmp_path: Path
) -> None:
    grant(sim, tmp_path / "tokens.fernet")

    async def scenario() -> None:
        async with Adapter(config(sim, tmp_path)) as adapter:
            await adapter.wait_ready(WAIT)
            position_id = await filled_position(adapter, 5000)
            await adapter.positions(refresh=True)
            part = await adapter.close_position(ClosePosition(position_id=position_id, quantity=2000))
            assert await until_final(adapter, part.cl_ord_id) is OrderStatus.FILLED
            await until_position(sim, position_id, Decimal(3000))
            await adapter.positions(refresh=True)
            rest = await adapter.close_position(ClosePosition(position_id=position_id))
            assert await until_final(adapter, rest.cl_ord_id) is OrderStatus.FILLED
            closed = await adapter.order(rest.cl_ord_id)
            assert closed is not None and closed.cum_qty == Decimal(3000) and closed.side is Side.SELL
            await until_position(sim, position_id, None)

    asyncio.run(scenario())


def test_a_positions_stop_loss_set_through_the_adapter_closes_it_when_the_market_crosses(
    sim: SimProcess, tmp_path: Path
) -> None:
    grant(sim, tmp_path / "tokens.fernet")

    async def scenario() -> None:
        async with Adapter(config(sim, tmp_path)) as adapter:
            await adapter.wait_ready(WAIT)
            position_id = await filled_position(adapter, 2000)
            await adapter.positions(refresh=True)
            await asyncio.to_thread(sim.control, "/scenario", {"freeze_prices": True})
            quote = (await asyncio.to_thread(sim.control, "/state"))["quotes"]["1"]
            stop = (Decimal(quote["bid"]) - Decimal("0.00500")).quantize(Decimal("0.00001"))
            change = await adapter.amend_position_protection(
                AmendPositionProtection(position_id=position_id, stop_loss=stop)
            )
            async with asyncio.timeout(WAIT):
                while (seen := adapter.position_protection(position_id)) is None or seen.stop_loss != stop:
                    await asyncio.sleep(0.05)  # polling for the venue's answer
            assert seen.request_id == change.request_id
            low = stop - Decimal("0.00010")
            await asyncio.to_thread(
                sim.control, "/quote", {"symbol_id": 1, "bid": str(low), "ask": str(low + Decimal("0.00010"))}
            )
            await until_position(sim, position_id, None)
            await asyncio.to_thread(sim.control, "/scenario", {"freeze_prices": False})

    asyncio.run(scenario())


def test_openapi_login_against_the_simulators_endpoints_stores_a_pair_and_lists_the_accounts(
    sim: SimProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end: the authorize URL, the loopback redirect (the browser is a thread following it), the code
    exchanged at the simulator's token endpoint, the pair stored encrypted, the accounts listed over TLS."""
    from fixadapter import cli

    client_id, secret = sim.openapi_client()
    token_file = tmp_path / "login.fernet"
    ensure_token_key()
    monkeypatch.setenv("FIXADAPTER_OPENAPI__CLIENT_SECRET", secret)
    monkeypatch.setattr("webbrowser.open", follow_in_thread)
    status = cli.main(
        [
            "openapi", "login", "--open-browser", "--client-id", client_id, "--token-file", str(token_file),
            "--authorize-url", f"{sim.oauth_base_url}/apps/auth",
            "--token-url", f"{sim.oauth_base_url}/apps/token",
            "--openapi-host", "127.0.0.1", "--openapi-port", str(sim.openapi_port),
            "--ca-file", str(sim.ca_file),
        ]
    )  # fmt: skip
    out = capsys.readouterr()
    assert status == 0, out.err
    ctid = sim.account().ctid_trader_account_id
    assert str(ctid) in out.out and "demo" in out.out
    stored = FileTokenStore(token_file).load(grant_key(client_id))
    assert stored is not None
    assert stored.access_token.get_secret_value() not in out.out + out.err
    assert secret not in out.out + out.err


def follow_in_thread(url: str) -> bool:
    """A browser: follows the authorize URL and its redirect to the CLI's loopback listener."""
    import threading
    import urllib.request

    def go() -> None:
        with urllib.request.urlopen(url, timeout=WAIT) as answer:  # noqa: S310 - a loopback test URL
            answer.read()

    threading.Thread(target=go, daemon=True).start()
    return True


@pytest.fixture
def live_sim(tmp_path: Path) -> Iterator[SimProcess]:
    live = SimAccountCredentials("live", "live.sim.7", "7", "live-password", 30_000_007, is_live=True)
    process = SimProcess(log_path=tmp_path / "sim.log", accounts=(live,)).start()
    try:
        yield process
    finally:
        process.stop()


def test_a_live_account_configured_on_the_demo_server_is_refused_saying_what_to_change(
    live_sim: SimProcess, tmp_path: Path
) -> None:
    grant(live_sim, tmp_path / "tokens.fernet")

    async def scenario() -> None:
        async with Adapter(config(live_sim, tmp_path)) as adapter:
            async with asyncio.timeout(WAIT):
                while "CANT_ROUTE_REQUEST" not in adapter.readiness():
                    await asyncio.sleep(0.05)  # polling the readiness reason
            assert "environment: live" in adapter.readiness()
            assert not adapter.ready

    asyncio.run(scenario())


def test_a_question_the_server_never_answers_times_out_saying_what_and_after_how_long(
    sim: SimProcess, tmp_path: Path
) -> None:
    grant(sim, tmp_path / "tokens.fernet")

    async def scenario() -> None:
        async with Adapter(config(sim, tmp_path, request_timeout_seconds=1.0)) as adapter:
            await adapter.wait_ready(WAIT)
            await asyncio.to_thread(sim.control, "/openapi/mute", {"payload_type": "ProtoOAReconcileReq"})
            with pytest.raises(FixAdapterError) as caught:
                await adapter.positions(refresh=True)
            assert "ProtoOAReconcileReq" in str(caught.value) and "no answer within 1 s" in str(caught.value)
            await asyncio.to_thread(sim.control, "/openapi/unmute", {})

    asyncio.run(scenario())


def test_a_stop_limit_order_rests_until_its_stop_triggers_then_fills_at_its_limit_with_the_deals_costs(
    sim: SimProcess, tmp_path: Path
) -> None:
    grant(sim, tmp_path / "tokens.fernet")

    async def scenario() -> None:
        async with Adapter(config(sim, tmp_path)) as adapter:
            fills: list[Fill] = []
            adapter.on_event(lambda event: fills.append(event.fill) if event.fill is not None else None)
            await adapter.wait_ready(WAIT)
            await asyncio.to_thread(sim.control, "/scenario", {"freeze_prices": True})
            try:
                ask = Decimal((await asyncio.to_thread(sim.control, "/state"))["quotes"]["1"]["ask"])
                stop, limit = ask + Decimal("0.00200"), ask + Decimal("0.00250")
                order = await adapter.submit(
                    NewOrder(
                        symbol="EURUSD", side="buy", order_type="stop_limit", quantity=1000,
                        stop_price=stop, price=limit,
                    )
                )  # fmt: skip
                async with asyncio.timeout(WAIT):
                    while (
                        resting := await adapter.order(order.cl_ord_id)
                    ) is None or resting.order_id is None:
                        await asyncio.sleep(0.05)  # polling for the venue's acceptance
                assert (resting.status, resting.stop_price, resting.price) == (OrderStatus.NEW, stop, limit)
                triggered = stop + Decimal("0.00010")
                await asyncio.to_thread(
                    sim.control,
                    "/quote",
                    {"symbol_id": 1, "bid": str(triggered - Decimal("0.00010")), "ask": str(triggered)},
                )
                assert await until_final(adapter, order.cl_ord_id) is OrderStatus.FILLED
                filled = await adapter.order(order.cl_ord_id)
                assert filled is not None and filled.avg_px is not None and filled.avg_px <= limit
                (fill,) = [f for f in fills if f.cl_ord_id == order.cl_ord_id]
                assert fill.price == filled.avg_px and fill.commission is not None and fill.commission < 0
            finally:
                await asyncio.to_thread(sim.control, "/scenario", {"freeze_prices": False})

    asyncio.run(scenario())

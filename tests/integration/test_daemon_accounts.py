"""One daemon trades two accounts of one simulated server over Redis (issue 14): each account's orders reach
that account at the venue and come back naming it; HTTP, metrics and the store answer per account; the kill
switch of one account leaves the other trading; an account whose TRADE is down holds its own commands while
the other's are taken, and takes them once it is back."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fixadapter.client import StrategyClient
from fixadapter.config import AdapterConfig, build_config
from fixadapter.daemon.service import Daemon
from fixadapter.model.enums import OrderStatus
from fixadapter.model.requests import NewOrder
from fixadapter.queue.redis_streams import RedisClientTransport
from fixadapter.queue.schema import CommandRejected, OrderUpdate, SubmitCommand, encode
from fixadapter.sim.process import SimAccountCredentials, SimProcess

from .conftest import SimFactory

ALICE = SimAccountCredentials("alice", "demo.sim.1001", "1001", "alice-secret-1001")
BOB = SimAccountCredentials("bob", "demo.sim.2002", "2002", "bob-secret-2002")
WAIT = 30.0


@pytest.fixture
def two(start_sim: SimFactory) -> SimProcess:
    return start_sim(accounts=(ALICE, BOB), extra_args=("--tick-ms", "100"))


def two_account_config(sim: SimProcess, tmp_path: Path, redis_url: str, prefix: str) -> AdapterConfig:
    return build_config(
        {
            "accounts": [
                {"name": "alice", "fix": sim.adapter_settings(account="alice")},
                {"name": "bob", "fix": sim.adapter_settings(account="bob")},
            ],
            "store": {"url": f"sqlite:///{tmp_path / 'desk.db'}"},
            "orders": {"ready_timeout_seconds": 15, "reconcile_timeout_seconds": 3},
            "daemon": {
                "http": {"port": 0},
                "queue": {
                    "kind": "redis",
                    "redis_url": redis_url,
                    "prefix": prefix,
                    "consumer": "test",
                    "strategies": ["momo"],
                },
            },
        },
        environ={},
    )


def market(quantity: int = 10000) -> NewOrder:
    return NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=quantity)


def resting(quantity: int = 10000) -> NewOrder:
    """A buy far below the market: it rests until cancelled."""
    return NewOrder(symbol="EURUSD", side="buy", order_type="limit", quantity=quantity, price=Decimal("0.5"))


async def update_until(client: StrategyClient, cl_ord_id: str, status: OrderStatus) -> OrderUpdate:
    """The order's update in `status`, seen now or later (the client keeps the latest of each order)."""

    def seen() -> OrderUpdate | None:
        if cl_ord_id in client.refused:
            raise AssertionError(f"{cl_ord_id} refused: {client.refused[cl_ord_id].reason}")
        update = client.orders.get(cl_ord_id)
        return update if update is not None and update.order.status is status else None

    found = seen()
    if found is None:
        async with asyncio.timeout(WAIT):
            async for _event in client.events():
                found = seen()
                if found is not None:
                    break
    assert found is not None
    return found


async def refusal_of(client: StrategyClient, command_id: str) -> CommandRejected:
    """The refusal of a command sent after every command whose refusal was awaited before it."""
    async with asyncio.timeout(WAIT):
        async for event in client.events():
            if isinstance(event, CommandRejected) and event.command_id == command_id:
                return event
    raise AssertionError("unreachable")


async def positions_of(http: aiohttp.ClientSession, account: str) -> dict[str, int]:
    """The account's open positions as the daemon keeps them: quantity by position id."""
    async with asyncio.timeout(WAIT):
        while True:  # kept from fills: the fill's position may be stored just after its event
            async with http.get(f"/positions?account={account}") as answer:
                held = {p["position_id"]: int(Decimal(p["quantity"])) for p in await answer.json()}
            if held:
                return held
            await asyncio.sleep(0.1)


def venue_orders(sim: SimProcess, account: str) -> dict[str, dict[str, Any]]:
    return {o["cl_ord_id"]: o for o in sim.control(f"/state?account={account}")["orders"]}


async def until_ready(http: aiohttp.ClientSession, account: str, ready: bool) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        while True:
            async with http.get(f"/readyz?account={account}") as answer:
                body: dict[str, Any] = await answer.json()
                if body["ready"] is ready and (answer.status == 200) is ready:
                    return body
            await asyncio.sleep(0.1)


def test_one_daemon_trades_two_accounts_each_on_its_own_with_its_own_kill_switch_and_outage(
    two: SimProcess, tmp_path: Path, redis_url: str, queue_prefix: str
):
    sim = two
    config = two_account_config(sim, tmp_path, redis_url, queue_prefix)

    async def scenario() -> None:
        daemon = Daemon(config)
        await daemon.start()
        try:
            for adapter in daemon.desk:
                await adapter.wait_ready(WAIT)
            async with (
                aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}") as http,
                StrategyClient.redis(redis_url, "momo", queue_prefix, account="alice") as momo,
            ):
                await trade_on_both(sim, daemon, http, momo, (redis_url, queue_prefix))
                await kill_switch_on_one(sim, http, momo)
                await outage_of_one(sim, http, momo)
        finally:
            await daemon.stop()

    asyncio.run(scenario())


async def trade_on_both(
    sim: SimProcess,
    daemon: Daemon,
    http: aiohttp.ClientSession,
    momo: StrategyClient,
    queue: tuple[str, str],
) -> None:
    on_alice = await momo.submit(market(10000))
    on_bob = await momo.submit(market(20000), account="bob")
    alice_fill = await update_until(momo, on_alice, OrderStatus.FILLED)
    bob_fill = await update_until(momo, on_bob, OrderStatus.FILLED)
    assert (alice_fill.account, bob_fill.account) == ("alice", "bob")
    assert on_alice in venue_orders(sim, "alice") and on_alice not in venue_orders(sim, "bob")
    assert on_bob in venue_orders(sim, "bob") and on_bob not in venue_orders(sim, "alice")

    positions = {account: await positions_of(http, account) for account in ("alice", "bob")}
    assert positions == {
        "alice": {alice_fill.order.position_id: 10000},
        "bob": {bob_fill.order.position_id: 20000},
    }
    venue = {
        a: {str(p["position_id"]) for p in sim.control(f"/state?account={a}")["positions"]} for a in positions
    }
    assert venue == {a: set(held) for a, held in positions.items()}, "each account's positions are its own"

    async with http.get("/orders?account=bob") as answer:
        listed = [o["cl_ord_id"] for o in (await answer.json())["orders"]]
    assert listed == [on_bob]
    assert [o.cl_ord_id for o in await daemon.desk["alice"].orders()] == [on_alice]
    async with http.get("/orders") as answer:
        assert answer.status == 400 and "alice, bob" in (await answer.json())["error"]
    async with http.get("/orders?account=carol") as answer:
        assert answer.status == 404
    async with http.get("/metrics") as answer:
        text = await answer.text()
    for account in ("alice", "bob"):
        assert (
            f'fixadapter_session_logged_on{{account="{account}",connector="fix",session="TRADE"}} 1.0' in text
        )

    raw = RedisClientTransport(*queue)
    try:
        for_carol = SubmitCommand(id="for-carol", strategy="momo", account="carol", order=market())
        await raw.send_command("momo", encode(for_carol))
        await raw.send_command(
            "momo", encode(SubmitCommand(id="for-nobody", strategy="momo", order=market()))
        )
    finally:
        await raw.close()
    assert "does not trade (alice, bob)" in (await refusal_of(momo, "for-carol")).reason
    assert "names no account" in (await refusal_of(momo, "for-nobody")).reason


async def kill_switch_on_one(sim: SimProcess, http: aiohttp.ClientSession, momo: StrategyClient) -> None:
    alice_rests = await momo.submit(resting())
    bob_rests = await momo.submit(resting(), account="bob")
    await update_until(momo, alice_rests, OrderStatus.NEW)
    await update_until(momo, bob_rests, OrderStatus.NEW)

    engage = {"action": "engage", "by": "test", "reason": "bob only", "account": "bob"}
    async with http.post("/kill-switch", json=engage) as answer:
        assert answer.status == 200 and (await answer.json())["account"] == "bob"
    await update_until(momo, bob_rests, OrderStatus.CANCELLED)
    assert venue_orders(sim, "alice")[alice_rests]["status"] == "new", (
        "the other account's order stays working"
    )
    refused_id = await momo.submit(market(), account="bob")
    refused = await update_or_refusal(momo, refused_id)
    assert isinstance(refused, CommandRejected) and refused.rule == "kill_switch" and refused.account == "bob"
    still = await momo.submit(market())
    assert (await update_until(momo, still, OrderStatus.FILLED)).account == "alice"

    release = {"action": "release", "by": "test", "reason": "done", "account": "bob"}
    async with http.post("/kill-switch", json=release) as answer:
        assert answer.status == 200
    await momo.cancel(alice_rests)
    await update_until(momo, alice_rests, OrderStatus.CANCELLED)


async def update_or_refusal(momo: StrategyClient, cl_ord_id: str) -> OrderUpdate | CommandRejected:
    return await asyncio.wait_for(momo.final_state(cl_ord_id), WAIT)


async def outage_of_one(sim: SimProcess, http: aiohttp.ClientSession, momo: StrategyClient) -> None:
    """Alice's TRADE is logged out and cannot reconcile (its mass status refused, status queries unanswered
    while it has a working order): Bob trades on; Alice's command waits and is taken once she is back."""
    alice_rests = await momo.submit(resting())
    await update_until(momo, alice_rests, OrderStatus.NEW)
    sim.control("/scenario", {"account": "alice", "refuse": {"AF": "down for the test"}, "silent": ["H"]})
    sim.control("/logout", {"account": "alice", "session": "TRADE", "reason": "test outage"})
    down = await until_ready(http, "alice", False)
    assert "alice" not in (await until_ready(http, "bob", True))["reason"]
    async with http.get("/readyz") as answer:
        overall = await answer.json()
    assert (
        answer.status == 503
        and overall["accounts"]["bob"]["ready"]
        and not overall["accounts"]["alice"]["ready"]
    )
    assert overall["reason"].startswith("alice: "), overall["reason"]
    assert down["reason"]

    held = await momo.submit(market())  # alice's: held until she is back
    passed = await momo.submit(market(), account="bob")
    assert (await update_until(momo, passed, OrderStatus.FILLED)).account == "bob"
    assert held not in venue_orders(sim, "alice") and momo.final(held) is None

    sim.control("/scenario", {"account": "alice", "refuse": {}, "silent": []})
    await until_ready(http, "alice", True)
    assert (await update_until(momo, held, OrderStatus.FILLED)).account == "alice"
    assert held in venue_orders(sim, "alice")

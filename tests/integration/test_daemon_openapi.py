"""One daemon, two connectors (issue 15 on the connector-neutral core): account alice over FIX and account bob
over the cTrader Open API, both on one simulated server. Commands over Redis reach each account through its
own connector; HTTP, metrics and the compliance record answer for both; the Open API connection cut takes
down bob alone, who comes back reconciled while alice trades on."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fixadapter.client import StrategyClient
from fixadapter.config import AdapterConfig, build_config
from fixadapter.daemon.service import Daemon
from fixadapter.model.enums import OrderStatus
from fixadapter.sim.process import SimAccountCredentials, SimProcess

from ..openapi_accounts import grant, openapi_settings
from .conftest import SimFactory
from .test_daemon_accounts import market, positions_of, until_ready, update_until, venue_orders

ALICE = SimAccountCredentials("alice", "demo.sim.1001", "1001", "alice-secret-1001")
BOB = SimAccountCredentials("bob", "demo.sim.2002", "2002", "bob-secret-2002")
WAIT = 30.0


@pytest.fixture
def two(start_sim: SimFactory) -> SimProcess:
    return start_sim(accounts=(ALICE, BOB), extra_args=("--tick-ms", "100"))


def fix_and_openapi_config(sim: SimProcess, tmp_path: Path, redis_url: str, prefix: str) -> AdapterConfig:
    token_file = tmp_path / "tokens.fernet"
    grant(sim, token_file)
    return build_config(
        {
            "accounts": [
                {"name": "alice", "fix": sim.adapter_settings(account="alice")},
                {"name": "bob", "openapi": openapi_settings(sim, token_file, account="bob")},
            ],
            "store": {"url": f"sqlite:///{tmp_path / 'desk.db'}"},
            "orders": {"ready_timeout_seconds": WAIT, "reconcile_timeout_seconds": 5},
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


def test_one_daemon_trades_an_account_over_fix_and_one_over_the_open_api(
    two: SimProcess, tmp_path: Path, redis_url: str, queue_prefix: str
) -> None:
    sim = two
    config = fix_and_openapi_config(sim, tmp_path, redis_url, queue_prefix)

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
                await each_through_its_connector(sim, http, momo)
                await the_open_api_cut_takes_down_its_account_alone(sim, http, momo)
        finally:
            await daemon.stop()

    asyncio.run(scenario())
    assert_compliance_has_both(tmp_path)


async def each_through_its_connector(
    sim: SimProcess, http: aiohttp.ClientSession, momo: StrategyClient
) -> None:
    over_fix = await momo.submit(market(10000))
    over_openapi = await momo.submit(market(20000), account="bob")
    fix_fill = await update_until(momo, over_fix, OrderStatus.FILLED)
    openapi_fill = await update_until(momo, over_openapi, OrderStatus.FILLED)
    assert (fix_fill.account, openapi_fill.account) == ("alice", "bob")
    assert over_fix in venue_orders(sim, "alice") and over_openapi in venue_orders(sim, "bob")
    assert await positions_of(http, "bob") == {openapi_fill.order.position_id: 20000}
    async with http.get("/readyz") as answer:
        ready: dict[str, Any] = await answer.json()
    assert ready["ready"] is True and set(ready["accounts"]) == {"alice", "bob"}
    async with http.get("/metrics") as answer:
        text = await answer.text()
    assert 'fixadapter_session_logged_on{account="alice",connector="fix",session="TRADE"} 1.0' in text
    assert 'fixadapter_openapi_account_authorised{account="bob",connector="openapi"} 1.0' in text
    assert 'fixadapter_openapi_frames_total{account="bob",connector="openapi",direction="out"' in text


async def the_open_api_cut_takes_down_its_account_alone(
    sim: SimProcess, http: aiohttp.ClientSession, momo: StrategyClient
) -> None:
    await asyncio.to_thread(sim.control, "/openapi/cut", {})
    lost = 'fixadapter_openapi_reconnects_total{account="bob",connector="openapi"} 1.0'
    async with asyncio.timeout(WAIT):
        while lost not in await metrics_text(http):
            await asyncio.sleep(0.05)  # polling until the daemon has seen the connection go
    await until_ready(http, "bob", True)  # back by itself, reconciled
    still = await momo.submit(market(1000))
    back = await momo.submit(market(1000), account="bob")
    assert (await update_until(momo, still, OrderStatus.FILLED)).account == "alice"
    assert (await update_until(momo, back, OrderStatus.FILLED)).account == "bob"


async def metrics_text(http: aiohttp.ClientSession) -> str:
    async with http.get("/metrics") as answer:
        return await answer.text()


def assert_compliance_has_both(tmp_path: Path) -> None:
    """The FIX sessions of alice and the Open API frames of bob in the one hash-chained record, every frame
    of bob's under its session (its logout at the stop too: never a chain of its own)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{tmp_path / 'desk-fix.db'}")
    try:
        with engine.connect() as conn:
            sessions = {row[0] for row in conn.execute(text("SELECT DISTINCT session FROM fix_messages"))}
    finally:
        engine.dispose()
    assert {"alice:TRADE", "bob:OPENAPI"} <= sessions
    assert "OPENAPI" not in sessions

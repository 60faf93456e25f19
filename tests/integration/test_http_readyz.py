"""The daemon's HTTP API in front of an adapter trading with the simulator over real sockets: /readyz
follows the TRADE session, and POST /kill-switch cancels working orders and blocks new ones."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from fixadapter.api import Adapter, Desk
from fixadapter.config import HttpConfig
from fixadapter.daemon.http import HttpApi
from fixadapter.errors import RiskRejected
from fixadapter.model.enums import OrderStatus
from fixadapter.model.requests import NewOrder
from fixadapter.sim.process import SimProcess

from .conftest import ConfigFactory

DEADLINE = 30.0
FAR_BELOW = Decimal("1.00000")  # a buy limit nowhere near the simulator's EURUSD: it rests


def resting_buy() -> NewOrder:
    return NewOrder(symbol="EURUSD", side="buy", order_type="limit", quantity=10000, price=FAR_BELOW)


@dataclass
class Served:
    adapter: Adapter
    client: aiohttp.ClientSession

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.client.get(path) as response:
            return response.status, await response.json()

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        async with self.client.post(path, json=body) as response:
            return response.status, await response.json()

    async def readyz_until(self, status: int) -> dict[str, Any]:
        """Poll /readyz until it answers `status`; fail after DEADLINE seconds."""
        deadline = time.monotonic() + DEADLINE
        while True:
            answer, body = await self.get("/readyz")
            if answer == status:
                return body
            if time.monotonic() > deadline:
                pytest.fail(f"/readyz still {answer} {body} after {DEADLINE:g}s, expected {status}")
            await asyncio.sleep(0.02)


@asynccontextmanager
async def serving(sim: SimProcess, make_config: ConfigFactory) -> AsyncIterator[Served]:
    async with Adapter(make_config(sim)) as adapter:
        api = HttpApi(Desk.of(adapter), HttpConfig(port=0))
        port = await api.start()
        try:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as client:
                yield Served(adapter, client)
        finally:
            await api.stop()


def test_readyz_is_200_once_reconciled_503_after_a_trade_logout_and_200_again_after_the_relogon(
    sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        async with serving(sim, make_config) as served:
            ready = await served.readyz_until(200)
            one = {
                "ready": True,
                "reason": "TRADE logged on and reconciled",
                "kill_switch": False,
                "alarms": {"count": 0, "shown": [], "not_kept": {}},
            }
            assert ready == {**one, "accounts": {"default": one}}

            await asyncio.to_thread(sim.control, "/logout", {"session": "TRADE", "reason": "maintenance"})
            down = await served.readyz_until(503)
            assert down["ready"] is False
            assert down["reason"].startswith("TRADE not logged on and reconciled")
            assert "maintenance" in down["reason"]  # the server's Logout text

            back = await served.readyz_until(200)
            assert back["reason"] == "TRADE logged on and reconciled"
            sample = served.adapter.metrics.value
            assert sample("fixadapter_logons_total", {"session": "TRADE"}) == 2
            assert sample("fixadapter_reconciliations_total", {"outcome": "done"}) == 2

    asyncio.run(scenario())


def test_engage_over_http_cancels_the_resting_order_blocks_new_ones_and_release_lets_them_through(
    sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        async with serving(sim, make_config) as served:
            adapter = served.adapter
            await adapter.wait_ready(DEADLINE)
            resting = await adapter.submit(resting_buy())
            await adapter.wait_for(resting.cl_ord_id, "new")

            status, engaged = await served.post(
                "/kill-switch", {"action": "engage", "by": "alice@desk", "reason": "runaway strategy"}
            )
            assert status == 200, engaged
            assert engaged["state"]["engaged"] is True
            assert engaged["sweep"] == {"sent": [resting.cl_ord_id], "already_cancelling": [], "failed": {}}
            cancelled = await adapter.wait_for(resting.cl_ord_id, "cancelled", timeout=DEADLINE)
            assert cancelled.status is OrderStatus.CANCELLED
            _, ready = await served.get("/readyz")
            assert ready["kill_switch"] is True

            with pytest.raises(RiskRejected) as refused:
                await adapter.submit(resting_buy())
            assert refused.value.rule == "kill_switch"

            status, released = await served.post(
                "/kill-switch", {"action": "release", "by": "bob@desk", "reason": "strategy fixed"}
            )
            assert status == 200, released
            assert released["state"]["engaged"] is False
            after = await adapter.submit(resting_buy())
            accepted = await adapter.wait_for(after.cl_ord_id, "new", timeout=DEADLINE)
            assert accepted.status is OrderStatus.NEW

            _, orders = await served.get("/orders?status=open")
            assert [o["cl_ord_id"] for o in orders["orders"]] == [after.cl_ord_id]
            _, shown = await served.get("/kill-switch")
            assert [e["action"] for e in shown["history"]] == ["released", "engaged"]
            await adapter.cancel(after.cl_ord_id)
            await adapter.wait_for(after.cl_ord_id, "cancelled", timeout=DEADLINE)

    asyncio.run(scenario())

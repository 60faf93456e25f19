"""The daemon's HTTP API over real sockets, in front of a real Adapter whose TRADE session never logs on.

The store, the risk checks and the kill switch are the adapter's own; only the venue is missing, so the
adapter is never ready and an engaged kill switch reports its cancels as waiting for the next logon.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from fixadapter.api import Adapter, Desk
from fixadapter.config import AdapterConfig, HttpConfig, build_config
from fixadapter.daemon.http import HttpApi
from fixadapter.errors import ConfigError
from fixadapter.model.enums import OrderStatus, PositionSide
from fixadapter.model.orders import Order, OrderRequest, Position
from fixadapter.store.repository import OrderStore

from .conftest import T0, make_order
from .quiet_connector import QuietConnector

TOKEN = "s3cret-token"  # noqa: S105 - a test token


class SilentConnector(QuietConnector):
    """A TRADE connector that never logs on and never answers: it only records what was sent."""

    async def cancel(self, order: Order, request: OrderRequest) -> None:
        self.sent.append(("cancel", request.cl_ord_id))

    async def replace(self, order: Order, request: OrderRequest) -> None:
        self.sent.append(("replace", order.cl_ord_id))


# Four orders, one minute apart: the newest is d-cancelled.
ORDERS = [
    make_order(cl_ord_id="a-open", status=OrderStatus.NEW, strategy="alpha", created_at=T0),
    make_order(
        cl_ord_id="b-filled",
        status=OrderStatus.FILLED,
        cum_qty=Decimal(10000),
        strategy="alpha",
        created_at=T0 + timedelta(minutes=1),
    ),
    make_order(
        cl_ord_id="c-open",
        status=OrderStatus.PARTIALLY_FILLED,
        cum_qty=Decimal(4000),
        strategy="beta",
        created_at=T0 + timedelta(minutes=2),
    ),
    make_order(cl_ord_id="d-cancelled", status=OrderStatus.CANCELLED, created_at=T0 + timedelta(minutes=3)),
]
POSITION = Position(
    position_id="721",
    symbol_id=1,
    side=PositionSide.LONG,
    quantity=Decimal(10000),
    entry_price=Decimal("1.085"),
)


def adapter_config(tmp_path: Path) -> AdapterConfig:
    url = f"sqlite:///{tmp_path / 'adapter.db'}"
    store = OrderStore(url)
    store.create_schema()
    for order in ORDERS:
        store.insert_order(order)
    store.replace_positions([POSITION])
    store.close()
    account = {
        "host": "127.0.0.1",
        "sender_comp_id": "demo.test.1",
        "username": "1",
        "password": "unused",
    }
    return build_config({"account": account, "store": {"url": url}}, environ={})


@dataclass
class Served:
    adapter: Adapter
    api: HttpApi
    client: aiohttp.ClientSession


@asynccontextmanager
async def serving(tmp_path: Path, token: str | None = None) -> AsyncIterator[Served]:
    adapter = Adapter(adapter_config(tmp_path), SilentConnector())
    await adapter.start()
    api = HttpApi(Desk.of(adapter), HttpConfig(port=0, token=SecretStr(token) if token else None))
    try:
        port = await api.start()
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as client:
            yield Served(adapter, api, client)
    finally:
        await api.stop()
        await adapter.stop()


def run(tmp_path: Path, scenario: Callable[[Served], Awaitable[None]], token: str | None = None) -> None:
    async def main() -> None:
        async with serving(tmp_path, token) as served:
            await asyncio.wait_for(scenario(served), 20)

    asyncio.run(main())


async def get(served: Served, path: str) -> tuple[int, Any]:
    async with served.client.get(path) as response:
        return response.status, await response.json()


async def post(
    served: Served, body: object, token: str | None = None, raw: bytes | None = None
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else json.dumps(body).encode()
    async with served.client.post("/kill-switch", data=data, headers=headers) as response:
        return response.status, await response.json()


# -- health, readiness, metrics ------------------------------------------------------------------


def test_healthz_answers_ok_while_the_loop_runs(tmp_path: Path):
    async def scenario(served: Served) -> None:
        assert await get(served, "/healthz") == (200, {"status": "ok"})

    run(tmp_path, scenario)


def test_readyz_is_503_with_the_reason_while_trade_is_not_logged_on(tmp_path: Path):
    async def scenario(served: Served) -> None:
        status, body = await get(served, "/readyz")
        assert status == 503
        one = {
            "ready": False,
            "reason": "trading not logged on and reconciled",
            "kill_switch": False,
            "alarms": {"count": 0, "shown": [], "not_kept": {}},
        }
        assert body == {**one, "accounts": {"default": one}}
        assert await get(served, "/readyz?account=default") == (503, one)
        status, unknown = await get(served, "/readyz?account=carol")
        assert status == 404 and "no account named 'carol'; this daemon trades default" in unknown["error"]

    run(tmp_path, scenario)


def test_metrics_are_prometheus_text_with_session_order_queue_and_store_families(tmp_path: Path):
    async def scenario(served: Served) -> None:
        async with served.client.get("/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            text = await response.text()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert {
            "fixadapter_session_logged_on",
            "fixadapter_order_round_trip_seconds",
            "fixadapter_queue_depth",
            "fixadapter_store_seconds",
        } <= set(families)
        assert families["fixadapter_order_round_trip_seconds"].type == "histogram"
        # The adapter's start read its store: those calls are timed by operation.
        operations = {s.labels.get("operation") for s in families["fixadapter_store_seconds"].samples}
        assert "open_orders" in operations

    run(tmp_path, scenario)


# -- orders and positions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["d-cancelled", "c-open", "b-filled", "a-open"]),
        ("?status=all", ["d-cancelled", "c-open", "b-filled", "a-open"]),
        ("?status=open", ["c-open", "a-open"]),
        ("?status=done", ["d-cancelled", "b-filled"]),
        ("?strategy=alpha", ["b-filled", "a-open"]),
        ("?status=open&strategy=alpha", ["a-open"]),
        ("?strategy=nobody", []),
        ("?limit=2", ["d-cancelled", "c-open"]),
    ],
)
def test_orders_are_newest_first_filtered_by_status_and_strategy_and_limited(
    tmp_path: Path, query: str, expected: list[str]
):
    async def scenario(served: Served) -> None:
        status, body = await get(served, f"/orders{query}")
        assert status == 200
        assert [o["cl_ord_id"] for o in body["orders"]] == expected

    run(tmp_path, scenario)


def test_orders_are_the_stored_orders_as_json(tmp_path: Path):
    async def scenario(served: Served) -> None:
        _, body = await get(served, "/orders?status=open&limit=1")
        assert body["orders"] == [ORDERS[2].model_dump(mode="json")]
        assert body["orders"][0]["cum_qty"] == "4000" and body["orders"][0]["status"] == "partially_filled"

    run(tmp_path, scenario)


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("?status=working", "status"),
        ("?limit=0", "limit"),
        ("?limit=ten", "limit"),
        ("?limit=-5", "limit"),
        ("?limit=1001", "limit"),
        ("?before=garbage", "before"),
    ],
)
def test_a_bad_orders_query_is_400_naming_the_parameter(tmp_path: Path, query: str, parameter: str):
    async def scenario(served: Served) -> None:
        status, body = await get(served, f"/orders{query}")
        assert status == 400
        assert body["error"].startswith(f"{parameter} must be")

    run(tmp_path, scenario)


def test_positions_are_the_stored_venue_positions(tmp_path: Path):
    async def scenario(served: Served) -> None:
        status, body = await get(served, "/positions")
        assert status == 200
        # The symbol's name beside its id; null here, where no SecurityList was ever received.
        assert body == [{"symbol": None, **POSITION.model_dump(mode="json")}]

    run(tmp_path, scenario)


# -- the kill switch -----------------------------------------------------------------------------

ENGAGE = {"action": "engage", "by": "alice@desk", "reason": "runaway strategy"}
RELEASE = {"action": "release", "by": "bob@desk", "reason": "strategy fixed"}


def test_engage_then_release_changes_get_kill_switch_and_readyz(tmp_path: Path):
    async def scenario(served: Served) -> None:
        status, before = await get(served, "/kill-switch")
        assert status == 200
        assert before["state"]["engaged"] is False and before["history"] == []

        status, engaged = await post(served, ENGAGE)
        assert status == 200
        assert engaged["changed"] is True
        assert engaged["state"]["engaged"] is True
        assert engaged["state"]["engaged_by"] == "alice@desk"
        # TRADE is down: the two working orders are cancelled after the next logon, and say so.
        assert set(engaged["sweep"]["failed"]) == {"a-open", "c-open"}
        assert engaged["sweep"]["sent"] == []
        assert "TRADE is down" in engaged["sweep"]["failed"]["a-open"]

        _, shown = await get(served, "/kill-switch")
        assert shown["state"] == engaged["state"]
        assert shown["state"]["reason"] == "runaway strategy" and shown["state"]["since"]
        assert [(e["action"], e["by"]) for e in shown["history"]] == [("engaged", "alice@desk")]
        _, ready = await get(served, "/readyz")
        assert ready["kill_switch"] is True

        status, released = await post(served, RELEASE)
        assert status == 200
        assert released == {"account": "default", "state": released["state"], "changed": True}
        assert released["state"]["engaged"] is False

        _, shown = await get(served, "/kill-switch")
        assert shown["state"]["engaged"] is False
        assert shown["state"]["last_release"]["by"] == "bob@desk"
        assert shown["state"]["last_release"]["reason"] == "strategy fixed"
        assert [(e["action"], e["by"]) for e in shown["history"]] == [
            ("released", "bob@desk"),
            ("engaged", "alice@desk"),
        ]
        assert served.adapter.kill_switch().engaged is False

    run(tmp_path, scenario)


def test_engaging_twice_keeps_the_first_engagement(tmp_path: Path):
    async def scenario(served: Served) -> None:
        await post(served, ENGAGE)
        status, again = await post(served, {**ENGAGE, "by": "carol@desk", "reason": "me too"})
        assert status == 200
        assert again["changed"] is False
        assert again["state"]["engaged_by"] == "alice@desk"

    run(tmp_path, scenario)


@pytest.mark.parametrize("token", [None, "wrong-token", ""])
def test_post_kill_switch_without_the_right_token_is_401_and_changes_nothing(
    tmp_path: Path, token: str | None
):
    async def scenario(served: Served) -> None:
        status, body = await post(served, ENGAGE, token=token)
        assert status == 401
        assert "Authorization: Bearer" in body["error"]
        assert TOKEN not in json.dumps(body)
        assert served.adapter.kill_switch().engaged is False
        assert (await get(served, "/readyz"))[0] == 503  # GET needs no token

    run(tmp_path, scenario, token=TOKEN)


def test_post_kill_switch_with_the_token_is_obeyed(tmp_path: Path):
    async def scenario(served: Served) -> None:
        status, body = await post(served, ENGAGE, token=TOKEN)
        assert status == 200 and body["state"]["engaged"] is True
        assert served.adapter.kill_switch().engaged is True

    run(tmp_path, scenario, token=TOKEN)


@pytest.mark.parametrize(
    ("body", "raw", "says"),
    [
        (None, b"not json", "must be a JSON object"),
        (None, b"", "must be a JSON object"),
        (["engage"], None, "body"),
        ({"action": "pause", "by": "a", "reason": "b"}, None, "action"),
        ({"action": "engage", "by": "a"}, None, "reason"),
        ({"action": "engage", "by": "   ", "reason": "b"}, None, "by"),
        ({**ENGAGE, "force": True}, None, "force"),
    ],
)
def test_a_bad_kill_switch_body_is_400_with_the_reason(
    tmp_path: Path, body: object, raw: bytes | None, says: str
):
    async def scenario(served: Served) -> None:
        status, answer = await post(served, body, raw=raw)
        assert status == 400
        assert says in answer["error"]
        assert served.adapter.kill_switch().engaged is False

    run(tmp_path, scenario)


def test_a_kill_switch_body_not_sent_as_json_is_415_so_a_web_page_cannot_post_it(tmp_path: Path):
    async def scenario(served: Served) -> None:
        form = aiohttp.FormData(ENGAGE)
        for data, headers in [
            (json.dumps(ENGAGE), {"Content-Type": "text/plain"}),  # what a cross-site fetch may send
            (form, {}),  # application/x-www-form-urlencoded: an HTML form
        ]:
            async with served.client.post("/kill-switch", data=data, headers=headers) as response:
                assert response.status == 415
                assert "Content-Type: application/json" in (await response.json())["error"]
        assert served.adapter.kill_switch().engaged is False

    run(tmp_path, scenario)


# -- errors --------------------------------------------------------------------------------------


def test_an_unknown_path_is_404_and_a_wrong_method_405_both_as_json(tmp_path: Path):
    async def scenario(served: Served) -> None:
        status, body = await get(served, "/nowhere")
        assert status == 404 and "/nowhere" in body["error"]
        async with served.client.delete("/kill-switch") as response:
            assert response.status == 405
            assert "DELETE" in (await response.json())["error"]

    run(tmp_path, scenario)


def test_a_handler_that_raises_answers_500_and_the_server_keeps_serving(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    async def broken() -> list[Position]:
        raise RuntimeError("database on fire")

    async def scenario(served: Served) -> None:
        served.adapter.reads.positions = broken  # type: ignore[method-assign]
        status, body = await get(served, "/positions")
        assert status == 500
        assert "RuntimeError" in body["error"] and "database on fire" not in body["error"]
        assert await get(served, "/healthz") == (200, {"status": "ok"})

    run(tmp_path, scenario)
    assert "HTTP GET /positions failed" in caplog.text and "database on fire" in caplog.text


def test_a_port_in_use_fails_start_naming_the_port_and_the_setting(tmp_path: Path):
    async def scenario(served: Served) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            second = HttpApi(Desk.of(served.adapter), HttpConfig(port=port))
            with pytest.raises(ConfigError, match=f"port {port} .* already in use.*daemon.http.port"):
                await second.start()
            await second.stop()  # stopping a server that never started is harmless

    run(tmp_path, scenario)


def test_start_returns_the_port_picked_for_port_0_and_logs_the_url(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level("INFO", logger="fixadapter.http")

    async def scenario(served: Served) -> None:
        assert served.api.port is not None and served.api.port > 0
        assert (await get(served, "/healthz"))[0] == 200  # the client reached it on that port

    run(tmp_path, scenario)
    assert "HTTP on http://127.0.0.1:" in caplog.text

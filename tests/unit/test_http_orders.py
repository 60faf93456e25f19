"""GET /orders and /positions: paged in the database, read on a path of their own, behind the token.

A real Adapter (its TRADE session never logs on) and its HTTP API over real sockets, in front of a SQLite
store filled before start.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr
from sqlalchemy import Engine, event, insert

from fixadapter.api import Adapter, Desk
from fixadapter.config import HttpConfig, build_config
from fixadapter.daemon.http import HttpApi
from fixadapter.model.enums import OrderStatus, OrderType, TimeInForce
from fixadapter.model.orders import Order
from fixadapter.store import schema
from fixadapter.store.repository import OrderStore

from .conftest import T0, make_order
from .test_http_api import TOKEN, SilentConnector

OPEN_OR_DONE = (OrderStatus.NEW, OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED, OrderStatus.CANCELLED)


def stored_orders(count: int, same_time_every: int = 1) -> list[Order]:
    """`count` orders; every `same_time_every` consecutive ones share a creation time (ties to page over)."""
    return [
        make_order(
            cl_ord_id=f"o{i:05d}",
            status=OPEN_OR_DONE[i % len(OPEN_OR_DONE)],
            strategy="alpha" if i % 3 else "beta",
            created_at=T0 + timedelta(seconds=i // same_time_every),
        )
        for i in range(count)
    ]


def write_orders(url: str, orders: list[Order]) -> None:
    store = OrderStore(url)
    store.create_schema()
    rows = [
        {**o.model_dump(include={c.name for c in schema.orders.columns}), "status": str(o.status)}
        | {"side": str(o.side), "order_type": str(o.order_type), "account": store.account}
        for o in orders
    ]
    with store.engine.begin() as conn:
        conn.execute(insert(schema.orders), rows)
    store.close()


@asynccontextmanager
async def serving(
    tmp_path: Path, orders: list[Order], token: str | None = None
) -> AsyncIterator[tuple[Adapter, aiohttp.ClientSession]]:
    url = f"sqlite:///{tmp_path / 'adapter.db'}"
    await asyncio.to_thread(write_orders, url, orders)
    account = {"host": "127.0.0.1", "sender_comp_id": "demo.test.1", "username": "1", "password": "unused"}
    adapter = Adapter(
        build_config({"account": account, "store": {"url": url}}, environ={}), SilentConnector()
    )
    await adapter.start()
    api = HttpApi(Desk.of(adapter), HttpConfig(port=0, token=SecretStr(token) if token else None))
    try:
        port = await api.start()
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as client:
            yield adapter, client
    finally:
        await api.stop()
        await adapter.stop()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        await asyncio.wait_for(scenario(), 60)

    asyncio.run(main())


async def get(client: aiohttp.ClientSession, path: str, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with client.get(path, headers=headers) as response:
        return response.status, await response.json()


def test_orders_and_positions_answer_while_the_engines_store_thread_is_held_busy(tmp_path: Path):
    async def scenario() -> None:
        async with serving(tmp_path, stored_orders(50)) as (adapter, client):
            held, release = threading.Event(), threading.Event()

            def busy() -> None:
                held.set()
                release.wait()

            blocked = asyncio.get_running_loop().run_in_executor(adapter.engine._db_thread, busy)
            await asyncio.to_thread(held.wait)
            try:
                status, body = await get(client, "/orders?status=open&limit=10")
                assert status == 200 and len(body["orders"]) == 10
                status, _ = await get(client, "/positions")
                assert status == 200
            finally:
                release.set()
                await blocked

    run(scenario)


def test_orders_are_selected_with_a_limit_in_sql_from_20000_stored_orders(tmp_path: Path):
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()).upper())

    async def scenario() -> None:
        async with serving(tmp_path, stored_orders(20_000)) as (_adapter, client):
            event.listen(Engine, "before_cursor_execute", seen)
            try:
                status, body = await get(client, "/orders?status=open&limit=10")
            finally:
                event.remove(Engine, "before_cursor_execute", seen)
            assert status == 200
            assert len(body["orders"]) == 10 and all(
                o["status"] in ("new", "partially_filled") for o in body["orders"]
            )
            assert body["orders"][0]["cl_ord_id"] == "o19998"  # newest open first

    run(scenario)
    order_reads = [s for s in statements if s.startswith("SELECT") and "FROM ORDERS" in s]
    assert order_reads, "the request read no orders"
    assert all("LIMIT" in s for s in order_reads), order_reads


def test_following_next_returns_every_order_exactly_once_while_new_orders_arrive(tmp_path: Path):
    initial = stored_orders(53, same_time_every=4)

    async def scenario() -> None:
        async with serving(tmp_path, initial) as (adapter, client):
            seen: list[str] = []
            path: str | None = "/orders?limit=7"
            pages = 0
            while path is not None:
                status, body = await get(client, path)
                assert status == 200, body
                seen += [o["cl_ord_id"] for o in body["orders"]]
                path = body["next"]
                pages += 1
                newer = make_order(cl_ord_id=f"new-{pages}", created_at=T0 + timedelta(days=1, seconds=pages))
                assert await asyncio.to_thread(adapter.engine.store.insert_order, newer)
            assert pages == 8  # 7 full pages and one of 4
            assert sorted(seen) == sorted(o.cl_ord_id for o in initial)
            assert len(seen) == len(set(seen))
            expected = sorted(initial, key=lambda o: (o.created_at, o.cl_ord_id), reverse=True)
            assert seen == [o.cl_ord_id for o in expected]

    run(scenario)


def test_next_keeps_the_status_and_strategy_filters(tmp_path: Path):
    initial = stored_orders(40)
    wanted = [o.cl_ord_id for o in reversed(initial) if o.is_open and o.strategy == "alpha"]

    async def scenario() -> None:
        async with serving(tmp_path, initial) as (_adapter, client):
            seen: list[str] = []
            path: str | None = "/orders?status=open&strategy=alpha&limit=3"
            while path is not None:
                _, body = await get(client, path)
                seen += [o["cl_ord_id"] for o in body["orders"]]
                path = body["next"]
            assert seen == wanted

    run(scenario)


def test_orders_and_positions_need_the_token_when_one_is_set_and_probes_do_not(tmp_path: Path):
    async def scenario() -> None:
        async with serving(tmp_path, stored_orders(3), token=TOKEN) as (_adapter, client):
            for path in ("/orders?status=open&limit=10", "/positions", "/kill-switch"):
                status, body = await get(client, path)
                assert status == 401 and "Authorization: Bearer" in body["error"], path
                status, body = await get(client, path, token="wrong")  # noqa: S106 - a wrong token on purpose
                assert status == 401, path
                status, _ = await get(client, path, token=TOKEN)
                assert status == 200, path
            assert (await get(client, "/healthz"))[0] == 200
            assert (await get(client, "/readyz"))[0] == 503  # answered: not logged on
            async with client.get("/metrics") as response:
                assert response.status == 200

    run(scenario)


def test_an_order_with_the_open_api_fields_is_served_with_them(tmp_path: Path):
    order = make_order(
        cl_ord_id="sl-1",
        status=OrderStatus.NEW,
        order_type=OrderType.STOP_LIMIT,
        price=Decimal("1.095"),
        stop_price=Decimal("1.09"),
        time_in_force=TimeInForce.GOOD_TILL_CANCEL,
        stop_loss_distance=Decimal("0.002"),
        take_profit=Decimal("1.12"),
        trailing_stop_loss=True,
        comment="breakout",
    )

    async def scenario() -> None:
        async with serving(tmp_path, [order]) as (_adapter, client):
            status, body = await get(client, "/orders")
            assert status == 200
            served = body["orders"][0]
            assert {name: served[name] for name in SERVED} == {
                "order_type": "stop_limit",
                "price": "1.095",
                "stop_price": "1.09",
                "time_in_force": "good_till_cancel",
                "stop_loss": None,
                "stop_loss_distance": "0.002",
                "take_profit": "1.12",
                "take_profit_distance": None,
                "trailing_stop_loss": True,
                "comment": "breakout",
            }

    run(scenario)


SERVED = (
    "order_type",
    "price",
    "stop_price",
    "time_in_force",
    "stop_loss",
    "stop_loss_distance",
    "take_profit",
    "take_profit_distance",
    "trailing_stop_loss",
    "comment",
)

"""`fixadapter orders`, `positions` and `cancel` against a daemon's HTTP API in front of an adapter trading
with the simulator over real sockets; the HTTP cancel of one order (POST /orders/{id}/cancel, DELETE
/orders/{id}) behind the kill switch's token rule; /positions naming each position's symbol."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from pydantic import SecretStr

from fixadapter.api import Adapter, Desk
from fixadapter.cli import main
from fixadapter.config import HttpConfig, build_config
from fixadapter.daemon.http import HttpApi
from fixadapter.daemon.service import Daemon as DaemonService
from fixadapter.model.enums import OrderStatus
from fixadapter.model.requests import NewOrder
from fixadapter.sim.process import SimAccountCredentials, SimProcess

from .conftest import ConfigFactory, SimFactory

TOKEN = "orders-test-token"  # noqa: S105 - a test token
DEADLINE = 30.0
T = TypeVar("T")


@dataclass
class Daemon:
    adapter: Adapter
    url: str
    loop: asyncio.AbstractEventLoop

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(DEADLINE)


@pytest.fixture
def daemon(sim: SimProcess, make_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    """An adapter logged on to the simulator and its HTTP API with a token, on an event loop in another
    thread, as `fixadapter run` serves them."""
    monkeypatch.delenv("FIXADAPTER_HTTP_TOKEN", raising=False)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="daemon-loop", daemon=True)
    thread.start()
    adapter = Adapter(make_config(sim))
    api = HttpApi(Desk.of(adapter), HttpConfig(port=0, token=SecretStr(TOKEN)))

    async def up() -> int:
        await adapter.start()
        await adapter.wait_ready(DEADLINE)
        return await api.start()

    async def down() -> None:
        await api.stop()
        await adapter.stop()

    port = asyncio.run_coroutine_threadsafe(up(), loop).result(DEADLINE + 10)
    try:
        yield Daemon(adapter, f"http://127.0.0.1:{port}", loop)
    finally:
        asyncio.run_coroutine_threadsafe(down(), loop).result(DEADLINE)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def resting_buy(cl_ord_id: str) -> NewOrder:
    return NewOrder(
        cl_ord_id=cl_ord_id,
        symbol="EURUSD",
        side="buy",
        order_type="limit",
        quantity=10000,
        price=Decimal("1.00000"),  # far below the simulator's EURUSD: it rests
    )


def wait_status(daemon: Daemon, cl_ord_id: str, status: OrderStatus) -> None:
    deadline = time.monotonic() + DEADLINE
    while True:
        order = daemon.run(daemon.adapter.order(cl_ord_id))
        if order is not None and order.status == status:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{cl_ord_id} still {order} after {DEADLINE:g}s, expected {status}")
        time.sleep(0.05)


def test_orders_lists_the_open_order_and_cancel_cancels_it(
    daemon: Daemon, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    daemon.run(daemon.adapter.submit(resting_buy("REST-1")))
    wait_status(daemon, "REST-1", OrderStatus.NEW)
    monkeypatch.setenv("FIXADAPTER_HTTP_TOKEN", TOKEN)

    assert main(["orders", "--status", "open", "--url", daemon.url]) == 0
    out = capsys.readouterr().out
    header, row = out.splitlines()[:2]
    assert header.split()[:4] == ["created", "clordid", "strategy", "symbol"]
    assert "REST-1" in row and "EURUSD" in row and "new" in row and "1.00000" in row

    assert main(["cancel", "REST-1", "--url", daemon.url, "--by", "ops"]) == 0
    said = capsys.readouterr().out
    assert said.startswith("cancel of REST-1 (account default) asked of the venue: the order is ")
    wait_status(daemon, "REST-1", OrderStatus.CANCELLED)

    assert main(["orders", "--status", "open", "--url", daemon.url]) == 0
    assert capsys.readouterr().out.strip() == "no orders"
    assert main(["orders", "--status", "done", "--url", daemon.url, "--json"]) == 0
    assert '"cl_ord_id": "REST-1"' in capsys.readouterr().out

    # Done now: a second cancel is refused by the daemon with the reason (exit 1).
    assert main(["cancel", "REST-1", "--url", daemon.url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fixadapter cancel: HTTP 409: order REST-1 cannot be cancelled: ")
    assert "already cancelled" in err


def test_cancel_of_an_order_the_account_never_had_is_404_and_nothing_is_sent(
    daemon: Daemon, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("FIXADAPTER_HTTP_TOKEN", TOKEN)
    assert main(["cancel", "NOPE-1", "--url", daemon.url]) == 1
    assert capsys.readouterr().err == ("fixadapter cancel: HTTP 404: account default has no order 'NOPE-1'\n")


def test_without_the_token_every_command_is_refused_with_the_hint_and_nothing_is_cancelled(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
):
    daemon.run(daemon.adapter.submit(resting_buy("REST-2")))
    wait_status(daemon, "REST-2", OrderStatus.NEW)
    for argv in (["orders"], ["positions"], ["cancel", "REST-2"]):
        assert main([*argv, "--url", daemon.url]) == 1
        err = capsys.readouterr().err
        assert "HTTP 401: this endpoint needs Authorization: Bearer <daemon.http.token>" in err
        assert "set FIXADAPTER_HTTP_TOKEN" in err
        assert TOKEN not in err
    order = daemon.run(daemon.adapter.order("REST-2"))
    assert order.status == OrderStatus.NEW


def test_http_cancel_by_post_needs_json_and_by_delete_needs_none(daemon: Daemon):
    daemon.run(daemon.adapter.submit(resting_buy("REST-3")))
    daemon.run(daemon.adapter.submit(resting_buy("REST-4")))
    wait_status(daemon, "REST-3", OrderStatus.NEW)
    wait_status(daemon, "REST-4", OrderStatus.NEW)
    auth = {"Authorization": f"Bearer {TOKEN}"}

    async def calls() -> list[tuple[int, dict[str, object]]]:
        answers = []
        async with aiohttp.ClientSession(daemon.url, headers=auth) as client:
            # A form post (what a web page can send without asking) is refused like the kill switch's.
            async with client.post("/orders/REST-3/cancel", data="x=1") as response:
                answers.append((response.status, await response.json()))
            async with client.post("/orders/REST-3/cancel", json={"by": "ops"}) as response:
                answers.append((response.status, await response.json()))
            async with client.delete("/orders/REST-4") as response:
                answers.append((response.status, await response.json()))
            async with client.post("/orders/REST-3/cancel", json={"account": "other"}) as response:
                answers.append((response.status, await response.json()))
        return answers

    refused, posted, deleted, unknown = asyncio.run(calls())
    assert refused[0] == 415
    assert posted[0] == 200 and posted[1]["order"]["cl_ord_id"] == "REST-3"
    assert deleted[0] == 200 and deleted[1]["order"]["cl_ord_id"] == "REST-4"
    assert unknown[0] == 404 and "no account named 'other'" in str(unknown[1]["error"])
    wait_status(daemon, "REST-3", OrderStatus.CANCELLED)
    wait_status(daemon, "REST-4", OrderStatus.CANCELLED)


def test_positions_name_each_symbol_beside_its_id(
    daemon: Daemon, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    market = NewOrder(cl_ord_id="MKT-1", symbol="EURUSD", side="buy", order_type="market", quantity=10000)
    daemon.run(daemon.adapter.submit(market))
    wait_status(daemon, "MKT-1", OrderStatus.FILLED)
    deadline = time.monotonic() + DEADLINE
    while not daemon.run(daemon.adapter.positions()):
        assert time.monotonic() < deadline, "no position after the fill"
        time.sleep(0.05)
    monkeypatch.setenv("FIXADAPTER_HTTP_TOKEN", TOKEN)

    assert main(["positions", "--url", daemon.url, "--json"]) == 0
    (position,) = json.loads(capsys.readouterr().out)
    assert position["symbol"] == "EURUSD" and position["symbol_id"] == 1
    assert position["side"] == "long" and Decimal(position["quantity"]) == 10000

    assert main(["positions", "--url", daemon.url]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:4] == ["position", "symbol", "side", "quantity"]
    assert row.split()[1:4] == ["EURUSD", "long", "10000"]


def test_the_url_and_token_come_from_the_configs_daemon_http_without_any_password(
    daemon: Daemon, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    port = daemon.url.rsplit(":", 1)[1]
    config = tmp_path / "daemon.yaml"
    config.write_text(
        "account:\n  host: 127.0.0.1\n  sender_comp_id: demo.x.1\n  username: '1'\n"  # no password anywhere
        f"daemon:\n  http:\n    port: {port}\n"
    )
    monkeypatch.setenv("FIXADAPTER_DAEMON__HTTP__TOKEN", TOKEN)
    assert main(["orders", "--config", str(config)]) == 0
    assert capsys.readouterr().out.strip() == "no orders"


def test_no_daemon_answering_exits_1_with_the_hint(capsys: pytest.CaptureFixture[str]):
    assert main(["orders", "--url", "http://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fixadapter orders: no daemon answering at http://127.0.0.1:1: ")
    assert "is `fixadapter run` running with daemon.http enabled?" in err


def test_with_two_accounts_each_command_names_one_and_touches_only_its_orders(
    start_sim: SimFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    alice = SimAccountCredentials("alice", "demo.sim.1001", "1001", "alice-secret-1001")
    bob = SimAccountCredentials("bob", "demo.sim.2002", "2002", "bob-secret-2002")
    sim = start_sim(accounts=(alice, bob), extra_args=("--tick-ms", "100"))
    config = build_config(
        {
            "accounts": [
                {"name": "alice", "fix": sim.adapter_settings(account="alice")},
                {"name": "bob", "fix": sim.adapter_settings(account="bob")},
            ],
            "store": {"url": f"sqlite:///{tmp_path / 'desk.db'}"},
            "orders": {"ready_timeout_seconds": 15, "reconcile_timeout_seconds": 3},
            "daemon": {"http": {"port": 0}},
        },
        environ={},
    )
    monkeypatch.delenv("FIXADAPTER_HTTP_TOKEN", raising=False)

    async def cli(*argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(main, list(argv))  # blocking, as from a shell: the loop serves on
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    async def scenario() -> None:
        daemon = DaemonService(config)
        await daemon.start()
        try:
            for adapter in daemon.desk:
                await adapter.wait_ready(DEADLINE)
            url = f"http://127.0.0.1:{daemon.http_port}"
            await daemon.desk["bob"].submit(resting_buy("BOB-1"))

            code, _, err = await cli("orders", "--url", url)
            assert code == 1
            assert "HTTP 400: this daemon trades several accounts (alice, bob): name one with account=" in err
            code, out, _ = await cli("orders", "--url", url, "--account", "bob")
            assert code == 0 and "BOB-1" in out
            assert await cli("orders", "--url", url, "--account", "alice") == (0, "no orders\n", "")

            code, _, err = await cli("cancel", "BOB-1", "--url", url, "--account", "alice")
            assert code == 1 and "HTTP 404: account alice has no order 'BOB-1'" in err
            code, out, _ = await cli("cancel", "BOB-1", "--url", url, "--account", "bob")
            assert code == 0 and out.startswith("cancel of BOB-1 (account bob) asked of the venue")
            async with asyncio.timeout(DEADLINE):
                while (order := await daemon.desk["bob"].order("BOB-1")) is None or not order.is_done:
                    await asyncio.sleep(0.05)
            assert order.status == OrderStatus.CANCELLED
        finally:
            await daemon.stop()

    asyncio.run(scenario())

"""The daemon over Redis Streams, as a separate process: killed with SIGKILL while orders are in flight and
restarted, it loses no order, sends none twice, and every strategy gets the final state of each of its
orders; stopped with SIGTERM it cancels working orders when told to and exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from fixadapter.client import StrategyClient
from fixadapter.model.enums import OrderStatus
from fixadapter.model.requests import NewOrder
from fixadapter.queue.schema import OrderUpdate
from fixadapter.sim.process import SimProcess

STRATEGIES = ("alpha", "beta")


def write_config(tmp_path: Path, sim: SimProcess, redis_url: str, prefix: str, **daemon: Any) -> Path:
    account = {k: v for k, v in sim.adapter_settings().items() if k != "password"}
    path = tmp_path / "daemon.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "account": account,
                "store": {"url": f"sqlite:///{tmp_path / 'daemon.db'}"},
                "orders": {"inflight_timeout_seconds": 1.0, "reconcile_timeout_seconds": 5},
                "daemon": {
                    "queue": {
                        "kind": "redis",
                        "redis_url": redis_url,
                        "prefix": prefix,
                        "consumer": "crash-test",
                        "strategies": list(STRATEGIES),
                    },
                    "http": {"enabled": False},
                    **daemon,
                },
            }
        )
    )
    return path


def start_daemon(config: Path, password: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "FIXADAPTER_ACCOUNT__PASSWORD": password}
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "fixadapter", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env=env,
        )


def market(quantity: int) -> NewOrder:
    return NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=quantity)


def resting() -> NewOrder:
    return NewOrder(symbol="EURUSD", side="buy", order_type="limit", quantity=1000, price=Decimal("1.00000"))


async def collect(client: StrategyClient, seqs: list[int]) -> None:
    async for event in client.events():
        if isinstance(event, OrderUpdate) and event.seq is not None:
            seqs.append(event.seq)


async def until(condition: Any, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; daemon log:\n{log.read_text()[-4000:]}")
        await asyncio.sleep(0.01)


def status(client: StrategyClient, cl_ord_id: str) -> OrderStatus | None:
    update = client.orders.get(cl_ord_id)
    return None if update is None else update.order.status


class Desk:
    """Two strategies' clients and the orders each sent: market orders (filled) and resting limits."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        self.clients = {name: StrategyClient.redis(redis_url, name, prefix) for name in STRATEGIES}
        self.seqs: dict[str, list[int]] = {name: [] for name in STRATEGIES}
        self.markets: dict[str, list[str]] = {name: [] for name in STRATEGIES}
        self.limits: dict[str, list[str]] = {name: [] for name in STRATEGIES}
        self._readers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for name, client in self.clients.items():
            await client.start()
            self._readers.append(asyncio.create_task(collect(client, self.seqs[name])))

    async def close(self) -> None:
        for reader in self._readers:
            reader.cancel()
        for client in self.clients.values():
            await client.close()

    def count(self, kind: dict[str, list[str]], wanted: OrderStatus) -> int:
        return sum(status(self.clients[n], c) is wanted for n in STRATEGIES for c in kind[n])

    def all(self, kind: dict[str, list[str]], wanted: OrderStatus) -> bool:
        return self.count(kind, wanted) == sum(len(ids) for ids in kind.values())

    def every_order(self) -> set[str]:
        return {c for n in STRATEGIES for c in self.markets[n] + self.limits[n]}


def test_sigkill_with_orders_in_flight_then_restart_loses_none_doubles_none_and_tells_every_strategy(
    sim: SimProcess, tmp_path: Path, redis_url: str, queue_prefix: str
):
    config = write_config(tmp_path, sim, redis_url, queue_prefix)
    log = tmp_path / "daemon.log"

    async def scenario() -> None:
        desk = Desk(redis_url, queue_prefix)
        await desk.start()
        for name, client in desk.clients.items():  # queued before the daemon even runs
            desk.limits[name].append(await client.submit(resting()))
        daemon = start_daemon(config, sim.password, log)
        try:
            for i in range(60):
                name = STRATEGIES[i % 2]
                desk.markets[name].append(await desk.clients[name].submit(market(1000 * (1 + i % 10))))
                if i % 15 == 0:
                    desk.limits[name].append(await desk.clients[name].submit(resting()))
            await until(lambda: desk.count(desk.markets, OrderStatus.FILLED) >= 8, 30, "the first fills", log)
            daemon.send_signal(signal.SIGKILL)  # commands queued, orders on the wire, events unpublished
            daemon.wait(10)
            assert desk.count(desk.markets, OrderStatus.FILLED) < 60, (
                "the kill came too late to test anything"
            )
            daemon = start_daemon(config, sim.password, log)

            await until(
                lambda: desk.all(desk.markets, OrderStatus.FILLED) and desk.all(desk.limits, OrderStatus.NEW),
                60,
                "every order's state after the restart",
                log,
            )
            for name, client in desk.clients.items():
                for cl_ord_id in desk.limits[name]:
                    await client.cancel(cl_ord_id)
            await until(lambda: desk.all(desk.limits, OrderStatus.CANCELLED), 30, "the cancels", log)
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(30) == 0, log.read_text()[-4000:]
        finally:
            if daemon.poll() is None:
                daemon.kill()
            await desk.close()

        at_venue = Counter(o["cl_ord_id"] for o in sim.control("/state")["orders"])
        assert set(at_venue) == desk.every_order(), "an order was lost, or the venue has one we never sent"
        assert max(at_venue.values()) == 1, "an order reached the venue twice"
        for name in STRATEGIES:
            assert len(desk.seqs[name]) == len(set(desk.seqs[name])), f"{name} got an event twice"
            assert desk.seqs[name] == sorted(desk.seqs[name]), f"{name} got events out of order"
        text = log.read_text()
        assert sim.password not in text, "the password reached the daemon's log"
        assert "Traceback" not in text, text[max(0, text.index("Traceback") - 2000) :]

    asyncio.run(scenario())


def test_sigterm_with_cancel_on_stop_cancels_working_orders_tells_the_strategy_and_exits_0(
    sim: SimProcess, tmp_path: Path, redis_url: str, queue_prefix: str
):
    config = write_config(tmp_path, sim, redis_url, queue_prefix, cancel_on_stop=True)
    log = tmp_path / "daemon.log"

    async def scenario() -> None:
        async with StrategyClient.redis(redis_url, "alpha", queue_prefix) as client:
            seqs: list[int] = []
            reader = asyncio.create_task(collect(client, seqs))
            daemon = start_daemon(config, sim.password, log)
            try:
                working = [await client.submit(resting()) for _ in range(3)]
                await until(
                    lambda: all(status(client, c) is OrderStatus.NEW for c in working), 30, "acks", log
                )
                daemon.send_signal(signal.SIGTERM)
                assert daemon.wait(30) == 0, log.read_text()[-4000:]
                await until(
                    lambda: all(status(client, c) is OrderStatus.CANCELLED for c in working),
                    10,
                    "cancels",
                    log,
                )
            finally:
                if daemon.poll() is None:
                    daemon.kill()
                reader.cancel()
        venue = {o["cl_ord_id"]: o["status"] for o in sim.control("/state")["orders"]}
        assert all(venue[c] != "new" for c in working), venue
        assert "stopped cleanly" in log.read_text()

    asyncio.run(scenario())

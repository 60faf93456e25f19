"""The daemon over Redis Streams, as a separate process: killed with SIGKILL while orders are in flight and
restarted, it loses no order, sends none twice, and every strategy gets the final state of each of its
orders; so too when it kills itself at each crash point of the durable order path (FIXADAPTER_CRASH_AT,
crash_points.py), on SQLite and PostgreSQL; stopped with SIGTERM it cancels working orders when told to
and exits 0."""

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

import pytest
import yaml

from fixadapter.client import StrategyClient
from fixadapter.crash_points import VARIABLE as CRASH_AT
from fixadapter.crash_points import CrashPoint
from fixadapter.model.enums import OrderStatus
from fixadapter.model.orders import Order
from fixadapter.model.requests import NewOrder
from fixadapter.queue.schema import OrderUpdate
from fixadapter.sim.process import SimProcess
from fixadapter.store.journal import Journal
from fixadapter.store.repository import OrderStore

STRATEGIES = ("alpha", "beta")


DROPPED_REPORTS = 20  # the venue's first execution reports that never leave (orders in flight at the kill)


def write_config(
    tmp_path: Path, sim: SimProcess, redis_url: str, prefix: str, store_url: str | None = None, **daemon: Any
) -> Path:
    account = {k: v for k, v in sim.adapter_settings().items() if k != "password"}
    path = tmp_path / "daemon.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "account": account,
                # With the order journal (named, so a PostgreSQL store has one too): its crash points.
                "store": {
                    "url": store_url or f"sqlite:///{tmp_path / 'daemon.db'}",
                    "journal": {"enabled": True, "directory": str(tmp_path / "journal")},
                },
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


def start_daemon(
    config: Path, password: str, log: Path, crash_at: str | None = None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "FIXADAPTER_ACCOUNT__PASSWORD": password}
    env.pop(CRASH_AT, None)
    if crash_at is not None:
        env[CRASH_AT] = crash_at
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

    def within(self, markets: set[OrderStatus], limits: set[OrderStatus]) -> bool:
        """Every market order's status (as its strategy was told) in `markets`, every limit's in `limits`."""
        return all(
            status(self.clients[n], c) in markets for n in STRATEGIES for c in self.markets[n]
        ) and all(status(self.clients[n], c) in limits for n in STRATEGIES for c in self.limits[n])

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
        # The venue executes every order but its first reports never leave, and it leaves status queries
        # unanswered until the restart: whenever the kill comes, orders are in flight, however fast the
        # daemon got through the rest (a kill timed by the fills alone came too late on a quiet machine).
        sim.control("/scenario", {"drop_reports": DROPPED_REPORTS, "silent": ["H"]})
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
            sim.control("/scenario", {"silent": []})  # the venue answers again: reconciliation can ask
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
            # Killed, not stopped: a clean stop is the SIGTERM test's and the crash-point cases'.
            daemon.kill()
            daemon.wait(30)
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


# Each point fires a few orders into the burst (its count-th time), with orders queued, stored, on the
# wire, reports in and events unpublished around it. A burst reaches each point this often at least:
# order_stored_before_send 20 (once per order), journaled_before_store 20 (once per order journaled: its
# store write may come after its send), report_received_before_store 36, the batch points 9 and
# report_stored_before_publish 6 (fewer when more calls or events go together).
CRASH_COUNTS = {
    CrashPoint.ORDER_STORED_BEFORE_SEND: 5,
    CrashPoint.JOURNALED_BEFORE_STORE: 10,
    CrashPoint.REPORT_RECEIVED_BEFORE_STORE: 8,
    CrashPoint.BATCH_BEFORE_COMMIT: 3,
    CrashPoint.BATCH_COMMITTED_BEFORE_ANSWER: 3,
    CrashPoint.REPORT_STORED_BEFORE_PUBLISH: 3,
}
BURST = 16  # market orders, half per strategy, and four resting limits
FILLED_OR_REJECTED = {OrderStatus.FILLED, OrderStatus.REJECTED}
WORKING_OR_REJECTED = {OrderStatus.NEW, OrderStatus.REJECTED}
ENDED_OR_REJECTED = {OrderStatus.CANCELLED, OrderStatus.REJECTED}
VENUE_STATUS = {"filled": OrderStatus.FILLED, "cancelled": OrderStatus.CANCELLED}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The daemon's store: a SQLite file, or a PostgreSQL schema of this test's own."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'daemon.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


def stored_orders(store_url: str) -> dict[str, Order]:
    store = OrderStore(store_url)
    try:
        return {order.cl_ord_id: order for order in store.orders()}
    finally:
        store.close()


def journaled(tmp_path: Path) -> list[bytes]:
    """The records of the daemon's order journal (new orders durable there before the store has them)."""
    return [entry.payload for entry in Journal(tmp_path / "journal" / "default").read_after(0)]


def check_every_order(desk: Desk, venue_orders: list[dict[str, Any]], stored: dict[str, Order]) -> None:
    """Each order at the venue once at most, and in the state its strategy was told and the store has: a
    market order filled, a limit cancelled; one the venue never received REJECTED (stored, then killed
    before it was sent)."""

    at_venue = Counter(o["cl_ord_id"] for o in venue_orders)
    assert set(at_venue) <= desk.every_order(), "the venue has an order we never sent"
    assert max(at_venue.values()) == 1, f"an order reached the venue twice: {at_venue.most_common(3)}"
    assert len(at_venue) >= len(desk.every_order()) // 2, f"few orders reached the venue: {at_venue}"
    venue = {o["cl_ord_id"]: VENUE_STATUS.get(o["status"], o["status"]) for o in venue_orders}
    for name in STRATEGIES:
        for cl_ord_id in desk.markets[name] + desk.limits[name]:
            told = status(desk.clients[name], cl_ord_id)
            final = OrderStatus.FILLED if cl_ord_id in desk.markets[name] else OrderStatus.CANCELLED
            expected = (final, final) if cl_ord_id in venue else (OrderStatus.REJECTED, None)
            assert (told, venue.get(cl_ord_id)) == expected, (
                f"{name}'s {cl_ord_id}: told {told}, at the venue {venue.get(cl_ord_id)}"
            )
            assert cl_ord_id in stored, f"{cl_ord_id} was lost from the store"
            assert stored[cl_ord_id].status is told, (
                f"{name} was told {told} for {cl_ord_id}, the store has {stored[cl_ord_id].status}"
            )
        assert len(desk.seqs[name]) == len(set(desk.seqs[name])), f"{name} got an event twice"
        assert desk.seqs[name] == sorted(desk.seqs[name]), f"{name} got events out of order"


@pytest.mark.parametrize("point", list(CRASH_COUNTS), ids=[point.value for point in CRASH_COUNTS])
def test_killed_at_a_crash_point_then_restarted_loses_none_doubles_none_and_tells_every_strategy(
    sim: SimProcess, tmp_path: Path, redis_url: str, queue_prefix: str, store_url: str, point: CrashPoint
):
    config = write_config(tmp_path, sim, redis_url, queue_prefix, store_url)
    log = tmp_path / "daemon.log"
    crash_at = f"{point.value}:{CRASH_COUNTS[point]}"

    async def scenario() -> None:
        desk = Desk(redis_url, queue_prefix)
        await desk.start()

        for i in range(BURST):  # all queued before the daemon runs: it takes them as one burst
            name = STRATEGIES[i % 2]
            desk.markets[name].append(await desk.clients[name].submit(market(1000 * (1 + i % 5))))
            if i % 8 < 2:
                desk.limits[name].append(await desk.clients[name].submit(resting()))
        daemon = start_daemon(config, sim.password, log, crash_at)
        try:
            await until(
                lambda: daemon.poll() is not None or desk.within(FILLED_OR_REJECTED, WORKING_OR_REJECTED),
                60,
                f"the crash at {crash_at}",
                log,
            )
            assert daemon.poll() is not None, (
                f"every order settled and the daemon armed with {CRASH_AT}={crash_at} still runs: the point "
                f"was reached fewer times; daemon log:\n{log.read_text()[-4000:]}"
            )
            assert daemon.wait(10) == -signal.SIGKILL, (
                f"the daemon armed with {CRASH_AT}={crash_at} did not die by SIGKILL (exit "
                f"{daemon.returncode}); daemon log:\n{log.read_text()[-4000:]}"
            )
            assert f"crash point {point.value} reached" in log.read_text()
            assert stored_orders(store_url) or journaled(tmp_path), (
                "the crash came before any order was durable"
            )
            assert not desk.within(FILLED_OR_REJECTED, WORKING_OR_REJECTED), (
                "the crash came too late to test anything"
            )
            daemon = start_daemon(config, sim.password, log)

            await until(
                lambda: desk.within(FILLED_OR_REJECTED, WORKING_OR_REJECTED),
                60,
                "every order's state after the restart",
                log,
            )
            for name, client in desk.clients.items():
                for cl_ord_id in desk.limits[name]:
                    if status(client, cl_ord_id) is OrderStatus.NEW:
                        await client.cancel(cl_ord_id)
            await until(lambda: desk.within(FILLED_OR_REJECTED, ENDED_OR_REJECTED), 30, "the cancels", log)
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(30) == 0, log.read_text()[-4000:]
        finally:
            if daemon.poll() is None:
                daemon.kill()
            await desk.close()

        check_every_order(desk, sim.control("/state")["orders"], stored_orders(store_url))
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

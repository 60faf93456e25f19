"""The adapter's order path against the baseline's own acceptor, so the ratio is the adapter's cost alone.

    python -m bench.order_path [--orders 2000] [--burst 5000] [--warmup 200] [--redis-url URL]

Three ways a strategy reaches the venue, each timed from the strategy's submit to the strategy holding the
order's New (risk -> store -> FIX -> acceptor -> ExecutionReport -> normalized event persisted -> delivered):

- api: the Adapter embedded in this process (`await adapter.submit(...)`, events from `engine.subscribe()`);
- queue: the daemon in this process, the strategy on its in-process queue (`StrategyClient.in_process`);
- redis: the daemon as its own process (`fixadapter run`), the strategy here over Redis Streams.

The counterparty is bench/baseline.py's acceptor process (TRADE; a second one serves QUOTE's logon): the
same NewOrderSingle -> ExecutionReport code the raw baseline is measured against, which also answers the
adapter's post-logon questions (instruments, mass status, positions). The store is SQLite, the embedded
default, with compliance recording on, as `make demo` runs. Bursts keep at most BURST_IN_FLIGHT orders
unanswered, as the baseline's do, and every order of a run must be in the store and at the acceptor.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine, text

from bench.baseline import BURST_IN_FLIGHT, CLIENT_COMP_ID, Counterparty, free_port
from bench.figures import Figure, figure, latency_figures, print_table
from fixadapter.api import Adapter
from fixadapter.client import StrategyClient
from fixadapter.config import AdapterConfig, build_config
from fixadapter.daemon.service import Daemon
from fixadapter.model.enums import OrderStatus
from fixadapter.model.requests import NewOrder
from fixadapter.queue.schema import CommandRejected, OrderUpdate
from fixadapter.tls.certs import ensure_server_files

PASSWORD = "bench-password"  # noqa: S105 - the bench acceptor accepts any
READY_TIMEOUT = 60.0
REPLY_TIMEOUT = 10.0
STRATEGY = "bench"
ANSWERED = {OrderStatus.NEW, OrderStatus.REJECTED}
# Generous limits: every rule is evaluated on every order, none refuses one.
RISK = {
    "max_open_orders": 10_000_000,
    "symbol_defaults": {"max_quantity": 10_000_000},
    "strategy_defaults": {
        "allowed_symbols": ["EURUSD"],
        "max_open_orders": 10_000_000,
        "max_orders_per_second": 1_000_000,
    },
}

Submit = Callable[[], Coroutine[Any, Any, str]]


def order() -> NewOrder:
    return NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=10000)


class Venue:
    """The acceptor processes: TRADE answers orders, QUOTE only logs on (no market data in this bench).

    With `tls` (a directory for the certificate), each also serves TLS, terminated in its own process, and
    the adapter connects there through its forwarders, pinning the CA made for the run."""

    def __init__(self, tls: Path | None = None) -> None:
        self.tls = ensure_server_files(tls, ("127.0.0.1",)) if tls is not None else None
        self.trade = Counterparty("TRADE", self.tls)
        self.quote = Counterparty("QUOTE", self.tls)

    def __enter__(self) -> Venue:
        self.trade.start()
        self.quote.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> int:
        """Stop both; the number of NewOrderSingle the TRADE acceptor answered."""
        report = self.trade.stop()
        self.quote.stop()
        if report.get("errors") or report.get("rejects"):
            raise RuntimeError(f"acceptor: errors {report.get('errors')}; rejects {report.get('rejects')}")
        return int(report.get("orders", 0))

    def account(self) -> dict[str, Any]:
        account: dict[str, Any] = {
            "host": "127.0.0.1",
            "sender_comp_id": CLIENT_COMP_ID,
            "username": "1",
            "quote_port": self.quote.port,
            "trade_port": self.trade.port,
            "reconnect_seconds": 1,
        }
        if self.tls is not None:
            account.update(
                quote_port=self.quote.tls_port,
                trade_port=self.trade.tls_port,
                quote_tls=True,
                trade_tls=True,
                tls_ca_file=str(self.tls.ca_file),
            )
        return account


def settings(venue: Venue, workdir: Path, **daemon: Any) -> dict[str, Any]:
    return {
        "account": venue.account(),
        "store": {"url": f"sqlite:///{workdir / 'bench.db'}"},
        "compliance": {"directory": str(workdir / "fixlog")},
        "orders": {"ready_timeout_seconds": READY_TIMEOUT},
        "risk": RISK,
        "daemon": {"http": {"enabled": False}, **daemon},
    }


def adapter_config(venue: Venue, workdir: Path, **daemon: Any) -> AdapterConfig:
    values = settings(venue, workdir, **daemon)
    values["account"]["password"] = PASSWORD
    return build_config(values, environ={})


def stored_orders(workdir: Path) -> int:
    engine = create_engine(f"sqlite:///{workdir / 'bench.db'}")
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM orders")).scalar_one())
    finally:
        engine.dispose()


# -- measuring: one order at a time, then a burst ----------------------------------------------------


class Answers:
    """Answered orders as the strategy sees them: the first New (or reject) per ClOrdID, with its time."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.rejected: list[str] = []
        self._arrived = asyncio.Condition()
        self.room = asyncio.Semaphore(BURST_IN_FLIGHT)
        self.counting: set[str] | None = None  # the burst's orders, once it runs

    async def note(self, cl_ord_id: str, rejected: str | None) -> None:
        if cl_ord_id in self.at:
            return
        self.at[cl_ord_id] = time.perf_counter()
        if rejected is not None:
            self.rejected.append(f"{cl_ord_id}: {rejected}")
        if self.counting is not None:
            self.room.release()
        async with self._arrived:
            self._arrived.notify_all()

    async def wait(self, cl_ord_id: str) -> float:
        async with asyncio.timeout(REPLY_TIMEOUT), self._arrived:
            await self._arrived.wait_for(lambda: cl_ord_id in self.at)
        return self.at[cl_ord_id]


async def ping_pong(submit: Submit, answers: Answers, count: int) -> list[float]:
    latencies: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        cl_ord_id = await submit()
        latencies.append((await answers.wait(cl_ord_id) - started) * 1e6)
    if answers.rejected:
        raise RuntimeError(f"orders were rejected: {answers.rejected[:5]}")
    return latencies


async def burst(submit: Submit, answers: Answers, count: int, concurrent: bool) -> tuple[float, list[str]]:
    """`count` orders, at most BURST_IN_FLIGHT unanswered; orders/s from the first submit to the last answer.

    `concurrent`: each submit is its own task (the Python API awaits the store before it returns; a
    strategy firing a burst does not wait for one order's write before submitting the next)."""
    answers.counting = set()
    answers.room = asyncio.Semaphore(BURST_IN_FLIGHT)
    tasks: list[asyncio.Task[str]] = []
    sent: list[str] = []
    started = time.perf_counter()
    for _ in range(count):
        async with asyncio.timeout(REPLY_TIMEOUT):
            await answers.room.acquire()
        if concurrent:
            tasks.append(asyncio.create_task(submit()))
        else:
            sent.append(await submit())
    sent += await asyncio.gather(*tasks)
    for cl_ord_id in sent:
        await answers.wait(cl_ord_id)
    answers.counting = None
    if answers.rejected:
        raise RuntimeError(f"orders were rejected: {answers.rejected[:5]}")
    return count / (max(answers.at[c] for c in sent) - started), sent


async def measure(
    path: str, submit: Submit, answers: Answers, runs: tuple[int, int, int], concurrent: bool = False
) -> list[Figure]:
    orders, burst_size, warmup = runs
    print(f"{path}: {warmup} warm-up, {orders} one at a time, a burst of {burst_size}...", file=sys.stderr)
    await ping_pong(submit, answers, warmup)
    latencies = await ping_pong(submit, answers, orders)
    throughput, _ = await burst(submit, answers, burst_size, concurrent)
    return [
        *latency_figures(f"{path}.order_round_trip", latencies, "us"),
        figure(f"{path}.burst.throughput", throughput, "orders/s"),
    ]


# -- the three paths ---------------------------------------------------------------------------------


async def api_path(
    venue: Venue, workdir: Path, runs: tuple[int, int, int], path: str = "adapter.api"
) -> list[Figure]:
    return await adapter_path(adapter_config(venue, workdir), path, runs)


async def adapter_path(config: AdapterConfig, path: str, runs: tuple[int, int, int]) -> list[Figure]:
    """Orders through the Python API of an adapter on `config`, answered when the venue accepts them."""
    async with Adapter(config) as adapter:
        await adapter.wait_ready(READY_TIMEOUT)
        answers = Answers()
        queue = adapter.engine.subscribe()

        async def consume() -> None:
            while True:
                event = await queue.get()
                if event.order.status in ANSWERED:
                    await answers.note(event.order.cl_ord_id, event.order.reason)

        async def submit() -> str:
            return (await adapter.submit(order())).cl_ord_id

        consumer = asyncio.create_task(consume())
        try:
            return await measure(path, submit, answers, runs, concurrent=True)
        finally:
            consumer.cancel()
            adapter.engine.unsubscribe(queue)


async def client_answers(client: StrategyClient, answers: Answers) -> None:
    async for event in client.events():
        if isinstance(event, OrderUpdate) and event.order.status in ANSWERED:
            await answers.note(event.order.cl_ord_id, event.order.reason)
        elif isinstance(event, CommandRejected) and event.cl_ord_id:
            await answers.note(event.cl_ord_id, event.reason)


async def client_path(path: str, client: StrategyClient, runs: tuple[int, int, int]) -> list[Figure]:
    answers = Answers()
    consumer = asyncio.create_task(client_answers(client, answers))
    try:
        return await measure(path, lambda: client.submit(order()), answers, runs)
    finally:
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer


async def queue_path(venue: Venue, workdir: Path, runs: tuple[int, int, int]) -> list[Figure]:
    daemon = Daemon(adapter_config(venue, workdir))
    await daemon.start()
    try:
        await daemon.adapter.wait_ready(READY_TIMEOUT)
        async with daemon.client(STRATEGY) as client:
            return await client_path("adapter.queue", client, runs)
    finally:
        await daemon.stop()


@contextlib.asynccontextmanager
async def daemon_process(venue: Venue, workdir: Path, redis_url: str, prefix: str) -> AsyncIterator[None]:
    """`fixadapter run` in its own process, ready (its /readyz says 200) before the strategy starts."""
    port = free_port()
    queue = {
        "kind": "redis",
        "redis_url": redis_url,
        "prefix": prefix,
        "consumer": "bench",
        "strategies": [STRATEGY],
    }
    config = workdir / "daemon.yaml"
    values = settings(venue, workdir, queue=queue, http={"enabled": True, "host": "127.0.0.1", "port": port})
    config.write_text(yaml.safe_dump(values))
    log = workdir / "daemon.log"
    env = {**os.environ, "FIXADAPTER_ACCOUNT__PASSWORD": PASSWORD}
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "fixadapter", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env=env,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not await asyncio.to_thread(_ready, port):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text()[-3000:]
                raise RuntimeError(f"the daemon did not become ready; its log ends:\n{tail}")
            await asyncio.sleep(0.2)
        yield
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


async def redis_path(venue: Venue, workdir: Path, runs: tuple[int, int, int], redis_url: str) -> list[Figure]:
    prefix = f"fxbench-{os.getpid()}-{time.time_ns() % 10**9}"
    try:
        async with (
            daemon_process(venue, workdir, redis_url, prefix),
            StrategyClient.redis(redis_url, STRATEGY, prefix) as client,
        ):
            return await client_path("adapter.redis", client, runs)
    finally:
        await _drop_streams(redis_url, prefix)


async def _drop_streams(redis_url: str, prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def redis_reachable(url: str) -> bool:
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        client = Redis.from_url(url, socket_connect_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except RedisError:
        return False


# -- the run -----------------------------------------------------------------------------------------


def run_path(name: str, runs: tuple[int, int, int], redis_url: str | None = None) -> list[Figure]:
    """One path on fresh acceptors and a fresh store; every order must be stored and at the acceptor."""
    with tempfile.TemporaryDirectory() as tmp, Venue(Path(tmp) / "tls" if name == "tls" else None) as venue:
        workdir = Path(tmp)
        if name == "api":
            result = asyncio.run(api_path(venue, workdir, runs))
        elif name == "tls":
            result = asyncio.run(api_path(venue, workdir, runs, "adapter.tls"))
        elif name == "queue":
            result = asyncio.run(queue_path(venue, workdir, runs))
        else:
            assert redis_url is not None
            result = asyncio.run(redis_path(venue, workdir, runs, redis_url))
        answered = venue.stop()
        stored, sent = stored_orders(workdir), sum(runs)
        if not stored == answered == sent:
            raise RuntimeError(f"{name}: {sent} orders sent, {stored} stored, {answered} at the acceptor")
        print(f"{name}: all {sent} orders stored and answered by the acceptor", file=sys.stderr)
    return result


def run_order_path(
    orders: int = 2000, burst: int = 5000, warmup: int = 200, redis_url: str | None = None
) -> tuple[list[Figure], list[str]]:
    """Figures for every path that can run here, and a note for each that cannot."""
    runs = (orders, burst, warmup)
    # api and tls back to back: the same path, plain TCP then TLS through the forwarders.
    results = run_path("api", runs) + run_path("tls", runs) + run_path("queue", runs)
    notes: list[str] = []
    if redis_url is None:
        notes.append("adapter.redis skipped: no Redis URL (set FIXADAPTER_BENCH_REDIS_URL or --redis-url)")
    elif not redis_reachable(redis_url):
        notes.append(f"adapter.redis skipped: Redis does not answer at {redis_url}")
    else:
        results += run_path("redis", runs, redis_url)
    return results, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000, help="recorded one-at-a-time orders")
    parser.add_argument("--burst", type=int, default=5000, help="orders in the burst")
    parser.add_argument("--warmup", type=int, default=200, help="unrecorded orders first")
    parser.add_argument("--redis-url", default=os.environ.get("FIXADAPTER_BENCH_REDIS_URL"))
    args = parser.parse_args(argv)
    results, notes = run_order_path(args.orders, args.burst, args.warmup, args.redis_url)
    print_table(results)
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

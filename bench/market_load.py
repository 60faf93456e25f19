"""Market data must never starve orders: execution-report latency with and without a depth stream, and
the highest depth update rate the adapter applies without its queue growing.

    python -m bench.market_load [--orders 200] [--rate 2000] [--out bench/results/market_load.json]

The simulator runs in its own process (as in the tests) and both share this machine's cores; every figure
is measured in this run and compared with a baseline from the same run (the ratio), never with a constant.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.figures import figure, percentile, print_table
from fixadapter.api import Adapter
from fixadapter.config import AdapterConfig, build_config
from fixadapter.model.enums import OrderStatus
from fixadapter.model.requests import NewOrder
from fixadapter.sim.process import SimProcess

FAR_BELOW = Decimal("0.50000")
ANSWERED = {OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.REJECTED}
RAMP = (2000, 4000, 6000, 8000, 10000, 12000, 16000, 20000)
STEP_SECONDS = 3.0
QUEUE_LIMIT = 200  # messages waiting at the end of a step: more means the adapter fell behind


def config(sim: SimProcess, workdir: Path) -> AdapterConfig:
    return build_config(
        {
            "account": sim.adapter_settings(),
            "store": {"url": f"sqlite:///{workdir / 'bench.db'}"},
            "orders": {"ready_timeout_seconds": 30},
            "market_data": {"stale_after_seconds": 30},
        },
        environ={},
    )


async def round_trips(adapter: Adapter, count: int) -> list[float]:
    """Limit orders far from the market, one at a time: submit -> the venue's New delivered (ms).

    Resting orders keep the venue's positions unchanged, so every round trip does the same work.
    """
    latencies: list[float] = []
    queue = adapter.engine.subscribe()
    try:
        for i in range(count):
            started = time.perf_counter()
            order = await adapter.submit(
                NewOrder(
                    symbol="EURUSD",
                    side="buy",
                    order_type="limit",
                    price=FAR_BELOW - Decimal(i % 100) / 100000,
                    quantity=Decimal(10000),
                )
            )
            while True:
                event = await asyncio.wait_for(queue.get(), 10)
                if event.order.cl_ord_id == order.cl_ord_id and event.order.status in ANSWERED:
                    break
            latencies.append((time.perf_counter() - started) * 1000)
            while not queue.empty():
                queue.get_nowait()
    finally:
        adapter.engine.unsubscribe(queue)
    return latencies


def applied(adapter: Adapter) -> float:
    value = adapter.metrics.value("fixadapter_market_data_messages_applied_total", {"kind": "incremental"})
    return value or 0.0


async def step(adapter: Adapter, sim: SimProcess, rate: int) -> dict[str, float]:
    """Stream at `rate` for a few seconds; what the simulator sent, what the adapter applied, the backlog."""
    assert adapter.market is not None
    sim.control("/market", {"rate": rate, "paused": False})
    await asyncio.sleep(0.5)  # let the rate settle
    sent0, applied0, t0 = sim.control("/market")["updates_sent"], applied(adapter), time.perf_counter()
    peak = 0
    while time.perf_counter() - t0 < STEP_SECONDS:
        await asyncio.sleep(0.1)
        peak = max(peak, adapter.market.queue_depth)
    elapsed = time.perf_counter() - t0
    sent1, applied1, backlog = (
        sim.control("/market")["updates_sent"],
        applied(adapter),
        adapter.market.queue_depth,
    )
    return {
        "rate": rate,
        "sent_per_s": (sent1 - sent0) / elapsed,
        "applied_per_s": (applied1 - applied0) / elapsed,
        "backlog": backlog,
        "peak_backlog": peak,
    }


async def run(orders: int, rate: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        # No venue state file: its fsync per order would dominate the round trip being measured.
        sim = SimProcess(extra_args=("--md-rate", "0")).start()
        try:
            async with Adapter(config(sim, workdir)) as adapter:
                await adapter.wait_ready(30)
                print(f"warming up ({orders // 4} orders)...", file=sys.stderr)
                await round_trips(adapter, max(10, orders // 4))
                print(f"{orders} orders without market data...", file=sys.stderr)
                quiet = await round_trips(adapter, orders)
                await adapter.subscribe("EURUSD", depth=True)
                await adapter.subscribe("GBPUSD", depth=True)
                sim.control("/market", {"rate": rate, "paused": False})
                await asyncio.sleep(1.0)
                print(f"{orders} orders while depth streams at {rate}/s...", file=sys.stderr)
                sent0, t0 = sim.control("/market")["updates_sent"], time.perf_counter()
                busy = await round_trips(adapter, orders)
                streamed = (sim.control("/market")["updates_sent"] - sent0) / (time.perf_counter() - t0)
                steps = []
                for target in RAMP:
                    print(f"depth at {target}/s for {STEP_SECONDS:g}s...", file=sys.stderr)
                    result = await step(adapter, sim, target)
                    steps.append(result)
                    print(
                        f"  sent {result['sent_per_s']:.0f}/s applied {result['applied_per_s']:.0f}/s "
                        f"backlog {result['backlog']:.0f} (peak {result['peak_backlog']:.0f})",
                        file=sys.stderr,
                    )
                sim.control("/market", {"rate": 0})
        finally:
            sim.stop()
    sustained = [
        s for s in steps if s["backlog"] <= QUEUE_LIMIT and s["applied_per_s"] >= 0.95 * s["sent_per_s"]
    ]
    best = max(sustained, key=lambda s: s["applied_per_s"]) if sustained else None
    fastest_sender = max(s["sent_per_s"] for s in steps)
    q50, q99 = statistics.median(quiet), percentile(quiet, 0.99)
    return [
        figure("er_latency_quiet_p50", q50, "ms"),
        figure("er_latency_quiet_p99", q99, "ms"),
        figure("er_latency_with_depth_p50", statistics.median(busy), "ms", "er_latency_quiet_p50", q50),
        figure("er_latency_with_depth_p99", percentile(busy, 0.99), "ms", "er_latency_quiet_p99", q99),
        figure("depth_rate_during_orders", streamed, "updates/s"),
        figure(
            "depth_rate_sustained",
            best["applied_per_s"] if best else 0.0,
            "updates/s",
            "depth_rate_simulator_max",
            fastest_sender,
        ),
        figure("depth_rate_simulator_max", fastest_sender, "updates/s"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--rate", type=int, default=2000, help="depth updates per second while orders run")
    parser.add_argument("--out", type=Path, default=Path("bench/results/market_load.json"))
    args = parser.parse_args()
    figures = asyncio.run(run(args.orders, args.rate))
    print_table(figures)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

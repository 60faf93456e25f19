"""How many depth updates per second the adapter turns into published books, without sockets.

    python -m bench.depth_processing [--updates 50000] [--out bench/results/depth_processing.json]

Raw X messages shaped like cTrader's (one level's size change = Delete + New) are handed to MarketData
exactly as the QUOTE callback hands them over; the clock stops when the last book is published. The
baseline, measured in the same run, is decoding the same messages alone: the ratio is what books, DOM
figures and publishing cost on top of reading the wire.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.figures import figure, print_table
from fixadapter.config import MarketDataConfig
from fixadapter.connectors.fix.market_codec import decode_market_data
from fixadapter.connectors.fix.wire import frame
from fixadapter.engine.instruments import Catalog
from fixadapter.engine.market_data import MarketData
from fixadapter.metrics import Metrics
from fixadapter.model.enums import Channel, SessionState
from fixadapter.model.market import MarketMessage
from fixadapter.model.reports import ConnectionStatus, Instrument

HEADER = [(49, "CSERVER"), (56, "bench"), (34, "2"), (52, "20250101-10:00:00.123")]
LEVELS = 10


class Feed:
    """The connector side of MarketData without QuickFIX: the benchmark pushes raw messages into `sink`."""

    def __init__(self) -> None:
        self.sink: Callable[[Any], None] | None = None

    def set_market_sink(self, sink: Callable[[Any], None]) -> None:
        self.sink = sink

    def decode_market_data(self, item: Any) -> MarketMessage:
        return decode_market_data(item)

    def send_market_data_request(self, md_req_id: str, symbol_id: int, depth: bool, subscribe: bool) -> None:
        """Nothing to send: the benchmark plays the server and feeds the messages itself."""


def messages(count: int, seed: int = 7) -> tuple[str, list[str]]:
    """A 10-level EURUSD snapshot and `count` X messages churning sizes as cTrader does."""
    rng = random.Random(seed)
    entries: dict[str, tuple[str, str]] = {}
    body = [(55, "1"), (268, str(2 * LEVELS))]
    next_id = 2291666392
    for side, sign in (("0", -1), ("1", 1)):
        for level in range(LEVELS):
            price = f"{1.0835 + sign * (0.00005 + level * 0.00001):.5f}"
            entries[str(next_id)] = (side, price)
            body += [(269, side), (270, price), (271, str(rng.randint(1, 50) * 100000)), (278, str(next_id))]
            next_id += 1
    snapshot = frame("W", HEADER, body)
    updates = []
    for _ in range(count):
        old = rng.choice(list(entries))
        side, price = entries.pop(old)
        new = str(next_id)
        next_id += 1
        entries[new] = (side, price)
        size = str(rng.randint(1, 50) * 100000)
        change = [(268, "2"), (279, "2"), (278, old), (55, "1")]
        change += [(279, "0"), (269, side), (278, new), (55, "1"), (270, price), (271, size)]
        updates.append(frame("X", HEADER, change))
    return snapshot, updates


async def through_books(snapshot: str, updates: list[str]) -> float:
    feed = Feed()
    metrics = Metrics()
    market = MarketData(
        feed, Catalog([Instrument(symbol_id=1, name="EURUSD", digits=5)]), MarketDataConfig(), metrics
    )
    await market.start()
    try:
        assert feed.sink is not None
        feed.sink(
            ConnectionStatus(connector="fix", channel=Channel.MARKET_DATA, state=SessionState.LOGGED_ON)
        )
        task = asyncio.create_task(market.subscribe("EURUSD", depth=True))
        await asyncio.sleep(0.05)
        feed.sink(snapshot)
        await task
        started = time.perf_counter()
        for raw in updates:
            feed.sink(raw)
        while (metrics.value("fixadapter_market_data_book_updates_total", {"symbol": "EURUSD"}) or 0) < len(
            updates
        ) + 1:
            await asyncio.sleep(0.001)
        return len(updates) / (time.perf_counter() - started)
    finally:
        await market.stop()


def decode_only(updates: list[str]) -> float:
    started = time.perf_counter()
    for raw in updates:
        decode_market_data(raw)
    return len(updates) / (time.perf_counter() - started)


def run(count: int) -> list[dict[str, Any]]:
    print(f"generating {count} X messages...", file=sys.stderr)
    snapshot, updates = messages(count)
    print("decoding alone (baseline)...", file=sys.stderr)
    decoded = decode_only(updates)
    print("decode + book + DOM + publish...", file=sys.stderr)
    booked = asyncio.run(through_books(snapshot, updates))
    return [
        figure("depth_decode_only", decoded, "updates/s"),
        figure("depth_into_books", booked, "updates/s", "depth_decode_only", decoded),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=50_000)
    parser.add_argument("--out", type=Path, default=Path("bench/results/depth_processing.json"))
    args = parser.parse_args()
    figures = run(args.updates)
    print_table(figures)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

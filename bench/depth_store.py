"""Depth storage: `latest(symbol)` with a million snapshots stored, and DepthRecorder's write throughput.

    python -m bench.depth_store [--rows 1000000] [--postgres-url URL] [--out bench/results/depth_store.json]
    python bench/depth_store.py ...

SQLite always (a temporary file); PostgreSQL too when --postgres-url or FIXADAPTER_TEST_POSTGRES_URL is set,
in a schema of its own dropped at the end. Every ratio compares two figures measured in the same run: `latest`
against a primary-key lookup of one row, the recorder against the plain bulk insert, never a constant.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, insert, make_url, select, text
from sqlalchemy.schema import CreateSchema, DropSchema

from bench.figures import figure, print_table
from fixadapter.config import DepthStorageConfig
from fixadapter.metrics import Metrics
from fixadapter.model.market import Book, PriceLevel
from fixadapter.store.depth import DepthReader, DepthRecorder, _snapshot, depth_row
from fixadapter.store.repository import OrderStore
from fixadapter.store.schema import market_depth

SYMBOLS = (
    (1, "EURUSD"),
    (2, "GBPUSD"),
    (3, "USDJPY"),
    (4, "AUDUSD"),
    (5, "USDCHF"),
    (6, "XAUUSD"),
    (7, "US500"),
)
LEVELS = 10
STEP = timedelta(milliseconds=10)  # one snapshot per 10 ms across all symbols: 1M rows span ~2.8 hours
LOAD_BATCH = 10_000


def make_book(symbol_id: int, name: str, at: datetime, shift: int = 0) -> Book:
    """A ten-level book around a price that moves with `shift`, built like the market-data thread does."""
    best_bid = Decimal("1.08350") + Decimal(shift % 50).scaleb(-5)
    bids = tuple(
        PriceLevel(best_bid - Decimal(n).scaleb(-5), Decimal(100_000 * (n + 1))) for n in range(LEVELS)
    )
    asks = tuple(
        PriceLevel(best_bid + Decimal(n + 2).scaleb(-5), Decimal(150_000 * (n + 1))) for n in range(LEVELS)
    )
    return Book.model_construct(
        symbol_id=symbol_id,
        symbol=name,
        time=at,
        bids=bids,
        asks=asks,
        mid=best_bid + Decimal("0.00001"),
        spread_pips=Decimal("0.2"),
        imbalance=-0.2,
        microprice=best_bid + Decimal("0.0000112"),
        updates=shift,
        stale=False,
    )


def rows(count: int, start: datetime) -> Iterator[list[dict[str, Any]]]:
    """`count` market_depth rows in LOAD_BATCH lists, round-robin over the symbols, time ascending."""
    templates = [depth_row(make_book(symbol_id, name, start), LEVELS) for symbol_id, name in SYMBOLS]
    for first in range(0, count, LOAD_BATCH):
        yield [
            {**templates[n % len(templates)], "time": start + STEP * n}
            for n in range(first, min(count, first + LOAD_BATCH))
        ]


def bulk_load(engine: Engine, count: int, label: str, start: datetime) -> float:
    """Plain executemany INSERTs of LOAD_BATCH rows, one transaction each; returns rows/s."""
    started = time.perf_counter()
    loaded = 0
    for batch in rows(count, start):
        with engine.begin() as conn:
            conn.execute(insert(market_depth), batch)
        loaded += len(batch)
        if loaded % 100_000 == 0 or loaded == count:
            rate = loaded / (time.perf_counter() - started)
            print(f"{label}: loaded {loaded:,} of {count:,} rows ({rate:,.0f} rows/s)", file=sys.stderr)
    elapsed = time.perf_counter() - started
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return count / elapsed


def timed(call: Callable[[], object], calls: int) -> list[float]:
    """Milliseconds per call, after a short warm-up (connection pool, statement caches)."""
    for _ in range(20):
        call()
    samples = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - started) / 1e6)
    return samples


def latency_figures(label: str, engine: Engine, calls: int) -> list[dict[str, Any]]:
    """`latest` round-robin over the symbols against one random row by primary key (decoded the same way)."""
    reader = DepthReader(engine)
    chooser = random.Random(7)
    with engine.connect() as conn:
        low, high = conn.execute(select(func.min(market_depth.c.id), func.max(market_depth.c.id))).one()
    symbol_ids = [symbol_id for symbol_id, _ in SYMBOLS]
    turn = iter(range(10**9))

    def latest() -> object:
        snapshot = reader.latest(symbol_ids[next(turn) % len(symbol_ids)])
        assert snapshot is not None
        return snapshot

    def by_id() -> object:
        with engine.connect() as conn:
            row = conn.execute(
                select(market_depth).where(market_depth.c.id == chooser.randint(low, high))
            ).one()
        return _snapshot(row)

    base = timed(by_id, calls)
    measured = timed(latest, calls)
    figures = []
    for stat, pick in (("p50", statistics.median), ("p99", _p99), ("max", max)):
        base_name = f"{label}.pk_lookup_{stat}"
        figures.append(figure(base_name, pick(base), "ms"))
        figures.append(figure(f"{label}.latest_{stat}", pick(measured), "ms", base_name, pick(base)))
    return figures


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def recorder_throughput(engine: Engine, count: int, after: datetime) -> tuple[float, float]:
    """Rows/s through DepthRecorder (default batch and flush interval, every update stored), and the mean
    cost of offer() on the feed thread meanwhile (µs)."""
    books = [
        make_book(symbol_id, name, after + STEP * n, n)
        for n, (symbol_id, name) in zip(range(count), _cycle(SYMBOLS), strict=False)
    ]
    config = DepthStorageConfig(sample_interval_ms=0, buffer_size=max(count, 1))
    recorder = DepthRecorder(engine, config, Metrics())
    recorder.start()
    started = time.perf_counter()
    for book in books:
        recorder.offer(book)
    offered = time.perf_counter()
    recorder.close(timeout=120)
    elapsed = time.perf_counter() - started
    return count / elapsed, (offered - started) / count * 1e6


def _cycle(items: tuple[tuple[int, str], ...]) -> Iterator[tuple[int, str]]:
    while True:
        yield from items


def offer_costs(engine: Engine, count: int) -> list[dict[str, Any]]:
    """offer() alone on the feed thread (no writer running): a sampled-out update, and one that is stored."""
    book = make_book(1, "EURUSD", datetime.now(UTC))
    skipped = DepthRecorder(engine, DepthStorageConfig(sample_interval_ms=100), Metrics())
    stored = DepthRecorder(engine, DepthStorageConfig(sample_interval_ms=0, buffer_size=count), Metrics())
    results = []
    for recorder in (skipped, stored):
        started = time.perf_counter()
        for _ in range(count):
            recorder.offer(book)
        results.append((time.perf_counter() - started) / count * 1e6)
    return [
        figure("offer_sampled_out_mean", results[0], "us"),
        figure("offer_stored_mean", results[1], "us", "offer_sampled_out_mean", results[0]),
    ]


def run_backend(label: str, engine: Engine, count: int, calls: int, recorded: int) -> list[dict[str, Any]]:
    # Recent times: the recorder applies the retention (30 days) when it starts.
    start = datetime.now(UTC).replace(microsecond=0) - STEP * (count + recorded) - timedelta(hours=1)
    load_rate = bulk_load(engine, count, label, start)
    figures = [figure(f"{label}.bulk_load", load_rate, "rows/s")]
    figures += latency_figures(label, engine, calls)
    print(f"{label}: {recorded:,} snapshots through DepthRecorder...", file=sys.stderr)
    rate, offer_us = recorder_throughput(engine, recorded, start + STEP * count)
    figures.append(figure(f"{label}.recorder_write", rate, "rows/s", f"{label}.bulk_load", load_rate))
    figures.append(figure(f"{label}.offer_mean_while_writing", offer_us, "us"))
    stored = DepthReader(engine).count()
    assert stored == count + recorded, f"{label}: {stored} rows stored, expected {count + recorded}"
    return figures


def sqlite_figures(count: int, calls: int, recorded: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as workdir:
        store = OrderStore(f"sqlite:///{Path(workdir) / 'depth.db'}")
        try:
            store.create_schema()
            figures = offer_costs(store.engine, 100_000)
            return figures + run_backend("sqlite", store.engine, count, calls, recorded)
        finally:
            store.close()


def postgres_figures(url: str, count: int, calls: int, recorded: int) -> list[dict[str, Any]]:
    schema_name = f"fixadapter_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(CreateSchema(schema_name))
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema_name}"})
    store = OrderStore(scoped.render_as_string(hide_password=False))
    try:
        store.create_schema()
        return run_backend("postgresql", store.engine, count, calls, recorded)
    finally:
        store.close()
        with admin.begin() as conn:
            conn.execute(DropSchema(schema_name, cascade=True))
        admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="snapshots loaded before measuring")
    parser.add_argument("--calls", type=int, default=500, help="latest() calls measured")
    parser.add_argument(
        "--recorded", type=int, default=100_000, help="snapshots written through the recorder"
    )
    parser.add_argument("--postgres-url", default=os.environ.get("FIXADAPTER_TEST_POSTGRES_URL"))
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "results/depth_store.json"
    )
    args = parser.parse_args()
    figures = sqlite_figures(args.rows, args.calls, args.recorded)
    if args.postgres_url:
        figures += postgres_figures(args.postgres_url, args.rows, args.calls, args.recorded)
    else:
        print("PostgreSQL skipped: no --postgres-url or FIXADAPTER_TEST_POSTGRES_URL", file=sys.stderr)
    print_table(figures)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

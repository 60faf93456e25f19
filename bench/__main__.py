"""`make bench`: every benchmark in one run on this machine, one table, and bench/results/latest.json.

    python -m bench [--quick] [--out bench/results/latest.json] [--markdown]

1. baseline: raw QuickFIX ping-pong and burst (bench/baseline.py), the floor for the engine in Python;
   then, on the same session, the durable floor: the same plus one fsynced sqlite3 write per order before
   its send and one per report before it is heard of (bench/floor.py), compared with the raw figures;
2. adapter: the same against the same acceptor through the adapter (bench/order_path.py): Python API,
   the same over TLS (compared with the plain API path, so its ratio is TLS's cost), the daemon's in-process
   queue, the daemon over Redis Streams; each compared with (1)'s raw figures and, in a row named
   `<figure>_vs_floor` (a figure has one baseline), with its durable floor;
3. market data: depth updates into books vs decoding alone (bench/depth_processing.py), execution-report
   latency while depth streams vs quiet, and the depth rate held (bench/market_load.py);
4. store: depth snapshots written and read back, SQLite and (with a URL) PostgreSQL (bench/depth_store.py);
5. Open API frames encoded and decoded per second against protobuf alone (bench/openapi_frames.py);
6. the Open API order path beside FIX against one simulated venue serving both (bench/openapi_path.py):
   the Open API figures compared with FIX's on the same venue.

Every ratio compares two figures of this run; absolute values depend on the machine and are never asserted.
Redis and PostgreSQL figures need FIXADAPTER_BENCH_REDIS_URL / FIXADAPTER_BENCH_POSTGRES_URL (make bench
points them at the local services); without them those rows are skipped with a note.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
from pathlib import Path

from bench import depth_processing, depth_store, market_load, openapi_frames, openapi_path
from bench.baseline import BURST_IN_FLIGHT, run_baseline
from bench.figures import Figure, compared, figure, markdown_table, print_table
from bench.order_path import redis_reachable, run_order_path

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
PATHS = ("api", "tls", "queue", "redis")
MEASURES = ("order_round_trip.p50", "order_round_trip.p99", "order_round_trip.max", "burst.throughput")
VS_FLOOR = "_vs_floor"
# (figure, "ratio" or "value", at most / at least, limit): the goals of issue 6.
GOALS = (
    ("adapter.api.order_round_trip.p50", "ratio", "<=", 1.5),
    ("adapter.api.order_round_trip.p99", "ratio", "<=", 2.0),
    ("adapter.api.burst.throughput", "ratio", ">=", 0.7),
    ("market.depth_into_books", "value", ">=", 10_000),
)
FULL = {
    "orders": 2000,
    "burst": 5000,
    "warmup": 200,
    "updates": 50_000,
    "md_orders": 200,
    "rows": 1_000_000,
    "frames": 100_000,
    "venue_orders": 300,  # the Open API path is held to 50 requests/s: small on purpose
    "venue_burst": 500,
}
QUICK = {
    "orders": 100,
    "burst": 500,
    "warmup": 20,
    "updates": 5_000,
    "md_orders": 20,
    "rows": 20_000,
    "frames": 2_000,
    "venue_orders": 20,
    "venue_burst": 40,
}


def baseline_of(name: str) -> str | None:
    """adapter.<path>.<measure> is compared with baseline.<measure>; adapter.tls with adapter.api (plain TCP,
    same run), so its ratio is the cost of TLS alone; adapter.<path>.<measure>_vs_floor (not tls) with
    floor.<measure>, the durable floor."""
    floor = name.endswith(VS_FLOOR)
    parts = name.removesuffix(VS_FLOOR).split(".", 2)
    if len(parts) < 3 or parts[0] != "adapter" or parts[2] not in MEASURES:
        return None
    if parts[1] == "tls":
        return None if floor else f"adapter.api.{parts[2]}"
    return f"{'floor' if floor else 'baseline'}.{parts[2]}"


def with_floor_rows(adapter: list[Figure]) -> list[Figure]:
    """Each adapter figure compared with the raw baseline followed by the same value as <name>_vs_floor."""
    rows = []
    for item in adapter:
        rows.append(item)
        if baseline_of(item["name"] + VS_FLOOR):
            rows.append(figure(item["name"] + VS_FLOOR, item["value"], item["unit"]))
    return rows


def tls_cost(figures: list[Figure]) -> list[str]:
    """What TLS adds to one order's round trip, in microseconds, from the adapter.tls rows."""
    lines = []
    for item in figures:
        if item["name"].startswith("adapter.tls.order_round_trip.") and item["baseline"]:
            measure = item["name"].rsplit(".", 1)[1]
            added = item["value"] - item["value"] / item["ratio"] if item["ratio"] else 0.0
            lines.append(
                f"TLS adds {added:,.0f} us to the order round trip at {measure} ({item['ratio']:.2f}x)"
            )
    return lines


def prefixed(section: str, figures: list[Figure]) -> list[Figure]:
    return [
        {**f, "name": f"{section}.{f['name']}", "baseline": f["baseline"] and f"{section}.{f['baseline']}"}
        for f in figures
    ]


def goals(figures: list[Figure]) -> list[str]:
    by_name = {f["name"]: f for f in figures}
    lines = []
    for name, field, op, limit in GOALS:
        item = by_name.get(name)
        if item is None or item[field] is None:
            lines.append(f"goal {name} {field} {op} {limit:g}: not measured")
            continue
        met = item[field] <= limit if op == "<=" else item[field] >= limit
        lines.append(f"goal {name} {field} {op} {limit:g}: {item[field]:,.3g} {'met' if met else 'MISSED'}")
    return lines


def run(
    sizes: dict[str, int], redis_url: str | None, postgres_url: str | None
) -> tuple[list[Figure], list[str]]:
    notes: list[str] = []
    print("== baseline: raw QuickFIX, then the durable floor", file=sys.stderr)
    base = run_baseline(sizes["orders"], sizes["burst"], sizes["warmup"])
    print("== adapter order path", file=sys.stderr)
    adapter, skipped = run_order_path(sizes["orders"], sizes["burst"], sizes["warmup"], redis_url)
    notes += skipped
    names = {f["name"]: f for f in base + adapter}
    figures = base + compared(with_floor_rows(adapter), names, baseline_of)
    print("== market data", file=sys.stderr)
    figures += prefixed("market", depth_processing.run(sizes["updates"]))
    figures += prefixed("market", asyncio.run(market_load.run(sizes["md_orders"], 2000)))
    print("== depth store", file=sys.stderr)
    calls, recorded = min(500, sizes["rows"] // 10), min(100_000, sizes["rows"] // 10)
    figures += prefixed("store", depth_store.sqlite_figures(sizes["rows"], calls, recorded))
    if postgres_url:
        figures += prefixed(
            "store", depth_store.postgres_figures(postgres_url, sizes["rows"], calls, recorded)
        )
    else:
        notes.append("store.postgresql skipped: no FIXADAPTER_BENCH_POSTGRES_URL")
    print("== Open API frames", file=sys.stderr)
    figures += prefixed("openapi", openapi_frames.run(sizes["frames"]))
    print("== Open API order path beside FIX, one simulated venue", file=sys.stderr)
    venue_figures, venue_notes = openapi_path.run(
        sizes["venue_orders"], sizes["venue_burst"], sizes["warmup"]
    )
    figures += venue_figures
    notes += venue_notes
    return figures, notes


def postgres_reachable(url: str) -> bool:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return True
    except SQLAlchemyError:
        return False
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the bench runs, not speed")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON list of figures goes")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    parser.add_argument("--redis-url", default=os.environ.get("FIXADAPTER_BENCH_REDIS_URL"))
    parser.add_argument("--postgres-url", default=os.environ.get("FIXADAPTER_BENCH_POSTGRES_URL"))
    args = parser.parse_args(argv)
    redis_url = args.redis_url if args.redis_url and redis_reachable(args.redis_url) else None
    if args.redis_url and redis_url is None:
        print(f"Redis does not answer at {args.redis_url}: the Redis path is skipped", file=sys.stderr)
    postgres_url = args.postgres_url if args.postgres_url and postgres_reachable(args.postgres_url) else None
    if args.postgres_url and postgres_url is None:
        print("PostgreSQL does not answer: its depth store figures are skipped", file=sys.stderr)
    figures, notes = run(QUICK if args.quick else FULL, redis_url, postgres_url)

    cpus = os.cpu_count()
    print(f"\nfixadapter bench on {platform.machine()} with {cpus} CPUs, Python {platform.python_version()}")
    print(f"bursts keep at most {BURST_IN_FLIGHT} orders in flight; latency ratios: lower is better, ")
    print("throughput ratios: higher is better\n")
    print_table(figures)
    print()
    for line in goals(figures) + tls_cost(figures) + notes:
        print(line)
    if args.markdown:
        print("\n" + markdown_table(figures))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

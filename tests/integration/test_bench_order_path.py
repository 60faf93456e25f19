"""The order-path bench runs end to end on tiny sizes: the raw baseline and the adapter's paths against the
same acceptor, every order stored and answered (speed itself is measured by `make bench`, never here)."""

from __future__ import annotations

from bench.baseline import run_baseline
from bench.order_path import run_order_path


def test_the_baseline_and_the_adapter_paths_report_every_figure_with_every_order_stored():
    base = run_baseline(orders=20, burst=60, warmup=5)
    assert [f["name"] for f in base] == [
        "baseline.order_round_trip.p50",
        "baseline.order_round_trip.p99",
        "baseline.order_round_trip.max",
        "baseline.burst.throughput",
    ]
    # run_order_path raises unless each path's orders are all in the store and at the acceptor.
    adapter, notes = run_order_path(orders=20, burst=60, warmup=5, redis_url=None)
    names = [f["name"] for f in adapter]
    for path in ("api", "tls", "queue"):
        assert f"adapter.{path}.order_round_trip.p50" in names
        assert f"adapter.{path}.burst.throughput" in names
    assert all(f["value"] > 0 for f in base + adapter)
    assert notes == ["adapter.redis skipped: no Redis URL (set FIXADAPTER_BENCH_REDIS_URL or --redis-url)"]


def test_the_open_api_path_is_measured_beside_fix_on_one_venue_and_compared_with_it():
    from bench.openapi_path import RATE_NOTE, run

    figures, notes = run(orders=5, burst=10, warmup=2)
    by_name = {f["name"]: f for f in figures}
    for measure in ("order_round_trip.p50", "burst.throughput"):
        assert by_name[f"sim.openapi.{measure}"]["baseline"] == f"sim.fix.{measure}"
        assert by_name[f"sim.openapi.{measure}"]["value"] > 0
    assert notes == [RATE_NOTE]

"""The order-path bench runs end to end on tiny sizes: the raw baseline and the adapter's paths against the
same acceptor, every order stored and answered (speed itself is measured by `make bench`, never here)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bench import baseline
from bench.baseline import run_baseline
from bench.floor import Journal
from bench.order_path import run_order_path


def test_the_baseline_and_the_adapter_paths_report_every_figure_with_every_order_stored():
    base = run_baseline(orders=20, burst=60, warmup=5)
    assert [f["name"] for f in base] == [
        "baseline.order_round_trip.p50",
        "baseline.order_round_trip.p99",
        "baseline.order_round_trip.max",
        "baseline.burst.throughput",
        "floor.order_round_trip.p50",
        "floor.order_round_trip.p99",
        "floor.order_round_trip.max",
        "floor.burst.throughput",
        "floor.group_commit.burst.throughput",
    ]
    # run_baseline raises unless the floor's journals hold one row per order and one per report.
    by_name = {f["name"]: f for f in base}
    assert by_name["floor.order_round_trip.p99"]["baseline"] == "baseline.order_round_trip.p99"
    assert by_name["floor.group_commit.burst.throughput"]["baseline"] == "baseline.burst.throughput"
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


def test_the_durable_floor_commits_each_order_before_its_send_and_each_report_before_the_waiter_wakes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "floor.db"
    at_send: list[tuple[int, int]] = []
    at_wake: list[tuple[int, int]] = []

    def committed(reader: sqlite3.Connection) -> tuple[int, int]:
        """(orders, reports) as another connection sees them: committed rows only."""
        orders = reader.execute("SELECT count(*) FROM orders").fetchone()[0]
        return orders, reader.execute("SELECT count(*) FROM reports").fetchone()[0]

    build = baseline.new_order

    def new_order(cl_ord_id: str) -> object:  # built right before sendToTarget
        at_send.append(committed(reader))
        return build(cl_ord_id)

    class Woken:
        """The ping-pong's reply lock: what is committed when the waiting thread wakes."""

        def __init__(self, lock: Any) -> None:
            self.lock = lock

        def acquire(self, timeout: float) -> bool:
            got = self.lock.acquire(timeout=timeout)
            at_wake.append(committed(reader))
            return got

        def release(self) -> None:
            self.lock.release()

    monkeypatch.setattr(baseline, "new_order", new_order)
    with baseline.logged_on() as app, Journal(path) as journal:
        reader = sqlite3.connect(path)
        app.reply, app.journal = Woken(app.reply), journal
        try:
            baseline.ping_pong(app, app.session_id, 5, "T")
        finally:
            app.journal = None
            reader.close()
    assert at_send == [(i, i - 1) for i in range(1, 6)]
    assert at_wake == [(i, i) for i in range(1, 6)]

"""The bench's table: adapter figures are compared with the baseline measured in the same run, and the
goals read the ratios, not absolute times."""

from __future__ import annotations

from bench.__main__ import baseline_of, goals, prefixed, tls_cost, with_floor_rows
from bench.figures import compared, figure


def test_each_adapter_path_figure_is_compared_with_the_same_baseline_measure():
    assert baseline_of("adapter.redis.order_round_trip.p99") == "baseline.order_round_trip.p99"
    assert baseline_of("adapter.api.burst.throughput") == "baseline.burst.throughput"
    assert baseline_of("market.depth_into_books") is None


def test_each_adapter_path_but_tls_is_compared_with_the_durable_floor_in_a_row_of_its_own():
    assert baseline_of("adapter.api.order_round_trip.p50_vs_floor") == "floor.order_round_trip.p50"
    assert baseline_of("adapter.redis.burst.throughput_vs_floor") == "floor.burst.throughput"
    assert baseline_of("adapter.tls.order_round_trip.p50_vs_floor") is None
    adapter = [
        figure("adapter.api.order_round_trip.p50", 300.0, "us"),
        figure("adapter.tls.order_round_trip.p50", 400.0, "us"),
    ]
    base = {
        "baseline.order_round_trip.p50": figure("baseline.order_round_trip.p50", 100.0, "us"),
        "floor.order_round_trip.p50": figure("floor.order_round_trip.p50", 200.0, "us"),
    }
    rows = [
        (f["name"], f["baseline"], f["ratio"]) for f in compared(with_floor_rows(adapter), base, baseline_of)
    ]
    assert rows == [
        ("adapter.api.order_round_trip.p50", "baseline.order_round_trip.p50", 3.0),
        ("adapter.api.order_round_trip.p50_vs_floor", "floor.order_round_trip.p50", 1.5),
        ("adapter.tls.order_round_trip.p50", None, None),  # adapter.api is not in `base` here
    ]


def test_the_tls_path_is_compared_with_the_plain_api_path_so_its_ratio_is_the_cost_of_tls():
    assert baseline_of("adapter.tls.order_round_trip.p50") == "adapter.api.order_round_trip.p50"
    assert baseline_of("adapter.tls.burst.throughput") == "adapter.api.burst.throughput"


def test_the_tls_cost_is_stated_in_microseconds_added_per_round_trip():
    figures = [
        figure("adapter.tls.order_round_trip.p50", 2500.0, "us", "adapter.api.order_round_trip.p50", 2000.0),
        figure("adapter.tls.burst.throughput", 300.0, "orders/s", "adapter.api.burst.throughput", 340.0),
    ]
    assert tls_cost(figures) == ["TLS adds 500 us to the order round trip at p50 (1.25x)"]


def test_a_ratio_is_the_figure_over_its_baseline_from_the_same_run():
    base = {"baseline.order_round_trip.p50": figure("baseline.order_round_trip.p50", 200.0, "us")}
    adapter = [figure("adapter.api.order_round_trip.p50", 300.0, "us")]
    [result] = compared(
        adapter, base, {"adapter.api.order_round_trip.p50": "baseline.order_round_trip.p50"}.get
    )
    assert result["baseline"] == "baseline.order_round_trip.p50" and result["ratio"] == 1.5


def test_a_figure_without_a_measured_baseline_keeps_no_ratio():
    [result] = compared([figure("adapter.api.burst.throughput", 10.0, "orders/s")], {}, baseline_of)
    assert result["baseline"] is None and result["ratio"] is None


def test_sections_prefix_both_the_name_and_the_baseline():
    [item] = prefixed("market", [figure("depth_into_books", 2.0, "updates/s", "depth_decode_only", 4.0)])
    assert item["name"] == "market.depth_into_books" and item["baseline"] == "market.depth_decode_only"


def test_goals_say_met_or_missed_from_ratios_and_name_what_was_not_measured():
    figures = [
        figure("adapter.api.order_round_trip.p50", 280.0, "us", "baseline.order_round_trip.p50", 200.0),
        figure("adapter.api.burst.throughput", 100.0, "orders/s", "baseline.burst.throughput", 1000.0),
        figure("market.depth_into_books", 12_000.0, "updates/s"),
    ]
    verdicts = {line.split()[1]: line.rsplit(": ", 1)[1] for line in goals(figures)}
    assert verdicts["adapter.api.order_round_trip.p50"].endswith("met")
    assert verdicts["adapter.api.burst.throughput"].endswith("MISSED")
    assert verdicts["adapter.api.order_round_trip.p99"] == "not measured"
    assert verdicts["market.depth_into_books"].endswith("met")


def test_the_open_api_frame_figures_are_each_compared_with_protobuf_alone_in_the_same_run():
    from bench import openapi_frames

    figures = prefixed("openapi", openapi_frames.run(50))
    by_name = {f["name"]: f for f in figures}
    assert by_name["openapi.frames.encode"]["baseline"] == "openapi.frames.encode.protobuf"
    assert by_name["openapi.frames.decode"]["baseline"] == "openapi.frames.decode.protobuf"
    assert all(f["value"] > 0 for f in figures)

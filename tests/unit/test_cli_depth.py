"""Specification of `fixadapter depth replay|latest|purge` against a SQLite store with recorded snapshots."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fixadapter.cli import main
from fixadapter.config import DepthStorageConfig
from fixadapter.model.market import Book, PriceLevel
from fixadapter.model.reports import Instrument
from fixadapter.store import schema
from fixadapter.store.depth import DepthReader, DepthRecorder
from fixadapter.store.repository import OrderStore

D = Decimal
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
RECORD_KEYS = ["symbol_id", "symbol", "time", "bids", "asks", "mid", "spread_pips", "imbalance", "microprice"]


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def book(symbol_id: int, seconds: float, **changes: Any) -> Book:
    values: dict[str, Any] = {
        "symbol_id": symbol_id,
        "symbol": {1: "EURUSD", 2: "GBPUSD"}[symbol_id],
        "time": at(seconds),
        "bids": (PriceLevel(D("1.08355"), D("1000000")), PriceLevel(D("1.08354"), D("2500000"))),
        "asks": (PriceLevel(D("1.08357"), D("500000")),),
        "mid": D("1.08356"),
        "spread_pips": D("0.2"),
        "imbalance": 0.75,
        "microprice": D("1.083563"),
    }
    return Book(**{**values, **changes})


@pytest.fixture
def url(tmp_path: Path) -> str:
    """EURUSD (1) and GBPUSD (2) known; EURUSD at +0s, +2s, +4s and GBPUSD at +1s, +3s recorded."""
    address = f"sqlite:///{tmp_path / 'store.db'}"
    store = OrderStore(address)
    store.create_schema()
    store.replace_instruments(
        [Instrument(symbol_id=1, name="EURUSD", digits=5), Instrument(symbol_id=2, name="GBPUSD", digits=5)]
    )
    recorder = DepthRecorder(store.engine, DepthStorageConfig(sample_interval_ms=0))
    for seconds in range(5):
        recorder.offer(book(1 if seconds % 2 == 0 else 2, seconds))
    recorder.close()
    store.close()
    return address


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["depth", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def records(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def test_depth_replay_prints_every_snapshot_as_json_lines_in_time_order(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "replay", "--store-url", url)

    assert (code, err) == (0, "")
    lines = records(out)
    assert [(r["symbol"], r["time"]) for r in lines] == [
        ("EURUSD", at(0).isoformat(timespec="microseconds")),
        ("GBPUSD", at(1).isoformat(timespec="microseconds")),
        ("EURUSD", at(2).isoformat(timespec="microseconds")),
        ("GBPUSD", at(3).isoformat(timespec="microseconds")),
        ("EURUSD", at(4).isoformat(timespec="microseconds")),
    ]
    assert list(lines[0]) == RECORD_KEYS
    assert lines[0] == {
        "symbol_id": 1,
        "symbol": "EURUSD",
        "time": at(0).isoformat(timespec="microseconds"),
        "bids": [["1.08355", "1000000"], ["1.08354", "2500000"]],
        "asks": [["1.08357", "500000"]],
        "mid": "1.08356",
        "spread_pips": "0.2",
        "imbalance": 0.75,
        "microprice": "1.083563",
    }


def test_depth_replay_filters_by_symbol_name_or_id_and_time_range(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    start, end = at(1).isoformat(), at(4).isoformat()

    by_name = records(
        run(capsys, "replay", "--store-url", url, "--symbol", "eurusd", "--from", start, "--to", end)[1]
    )
    by_id = records(run(capsys, "replay", "--store-url", url, "--symbol", "2")[1])

    assert [(r["symbol"], r["time"]) for r in by_name] == [
        ("EURUSD", at(2).isoformat(timespec="microseconds"))
    ]
    assert [r["symbol_id"] for r in by_id] == [2, 2]


def test_depth_replay_takes_a_time_without_offset_as_utc(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    naive_start = at(3).replace(tzinfo=None).isoformat()

    lines = records(run(capsys, "replay", "--store-url", url, "--from", naive_start)[1])

    assert [r["symbol_id"] for r in lines] == [2, 1]


def test_depth_replay_stops_at_the_limit_and_reports_progress_on_stderr(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "replay", "--store-url", url, "--limit", "4", "--progress-every", "2")

    assert code == 0
    assert len(out.splitlines()) == 4
    assert err.splitlines() == [
        "fixadapter depth replay: 2 of 4 snapshots",
        "fixadapter depth replay: 4 of 4 snapshots",
    ]


def test_depth_replay_as_a_table_has_a_header_and_one_line_per_snapshot(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "replay", "--store-url", url, "--symbol", "GBPUSD", "--format", "table")

    header, *rows = out.splitlines()
    assert code == 0
    columns = "time symbol bid bid size ask ask size mid spread imbalance microprice levels"
    assert " ".join(header.split()) == columns
    assert [row.split()[:6] for row in rows] == [
        [at(1).isoformat(timespec="microseconds"), "GBPUSD", "1.08355", "1000000", "1.08357", "500000"],
        [at(3).isoformat(timespec="microseconds"), "GBPUSD", "1.08355", "1000000", "1.08357", "500000"],
    ]
    assert rows[0].split()[-4:] == ["0.2", "+0.7500", "1.083563", "2/1"]


def test_depth_replay_reads_the_store_url_from_the_config(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "account:\n  host: demo.ctraderapi.com\n  sender_comp_id: demo.icmarkets.1234567\n"
        f"  username: '1234567'\nstore:\n  url: {url}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("FIXADAPTER_ACCOUNT__PASSWORD", "secret")

    code, out, _ = run(capsys, "replay", "--config", str(config), "--symbol", "GBPUSD")

    assert code == 0
    assert len(records(out)) == 2


def test_depth_latest_prints_the_newest_snapshot_of_the_symbol(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "latest", "--store-url", url, "--symbol", "EURUSD")

    assert code == 0
    (latest,) = records(out)
    assert (latest["symbol"], latest["time"]) == ("EURUSD", at(4).isoformat(timespec="microseconds"))


def test_depth_latest_of_a_known_symbol_with_nothing_stored_exits_1(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = OrderStore(url)
    store.replace_instruments([Instrument(symbol_id=10026, name="XAUUSD", digits=2)])
    store.close()

    code, out, err = run(capsys, "latest", "--store-url", url, "--symbol", "XAUUSD")

    assert (code, out) == (1, "")
    assert "no depth stored for XAUUSD (10026)" in err


@pytest.mark.parametrize("command", ["replay", "latest"])
def test_depth_with_an_unknown_symbol_exits_1_naming_the_close_matches(
    url: str, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    code, out, err = run(capsys, command, "--store-url", url, "--symbol", "EURUSF")

    assert (code, out) == (1, "")
    assert err.strip() == "fixadapter depth: unknown symbol 'EURUSF' at this broker; did you mean EURUSD?"


def test_depth_on_a_database_without_recorded_depth_says_so_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = f"sqlite:///{tmp_path / 'older.db'}"
    older = OrderStore(empty)  # a store from before market_depth existed
    schema.instruments.create(older.engine)
    older.close()

    missing = run(capsys, "replay", "--store-url", f"sqlite:///{tmp_path / 'typo.db'}")
    no_table = run(capsys, "replay", "--store-url", empty)

    assert missing[0] == 1
    assert "no database at" in missing[2]
    assert not (tmp_path / "typo.db").exists()
    assert no_table[0] == 1
    assert "no market_depth table" in no_table[2]


def test_depth_purge_refuses_a_cutoff_inside_the_retention_unless_forced(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = OrderStore(url)
    old = DepthRecorder(store.engine, DepthStorageConfig(sample_interval_ms=0))
    old.offer(book(1, -40 * 86400))
    old.close()
    reader = DepthReader(store.engine)

    refused = run(capsys, "purge", "--store-url", url, "--older-than-days", "1")
    assert refused[0] == 1
    assert "retention of 30 days" in refused[2]
    assert reader.count() == 6

    allowed = run(capsys, "purge", "--store-url", url, "--older-than-days", "31")
    assert allowed[0] == 0
    assert allowed[1].startswith("deleted 1 snapshots older than ")
    assert reader.count() == 5

    forced = run(capsys, "purge", "--store-url", url, "--older-than-days", "0", "--force")
    assert forced[0] == 0
    assert reader.count() == 0
    store.close()

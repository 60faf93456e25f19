"""Read-only tools need no trading password: `fixadapter log` and `fixadapter depth` with a config whose
password is nowhere (not in the file, not in the environment) read the store it names; and `log` given the
main store's URL, where no FIX message is, reads the compliance database beside it (`<store>-fix.db`) and
says so, or names that database when it is not there."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixadapter.cli import main
from fixadapter.compliance.writer import ComplianceWriter
from fixadapter.config import DepthStorageConfig
from fixadapter.model.reports import Instrument
from fixadapter.store.depth import DepthRecorder
from fixadapter.store.repository import OrderStore, make_engine

from .test_cli_depth import book
from .test_cli_log import order_flow

PASSWORDLESS = "account:\n  host: demo.ctraderapi.com\n  sender_comp_id: DESK1\n  username: '1234567'\n"


@pytest.fixture(autouse=True)
def no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FIXADAPTER_ACCOUNT__PASSWORD", "FIXADAPTER_ACCOUNTS__DEFAULT__FIX__PASSWORD"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def depth_url(tmp_path: Path) -> str:
    """EURUSD (1) and GBPUSD (2) known, three EURUSD and two GBPUSD snapshots recorded."""
    address = f"sqlite:///{tmp_path / 'depth.db'}"
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


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """An order store `var/fixadapter.db` and, beside it as the adapter records them, its FIX messages in
    `var/fixadapter-fix.db`."""
    var = tmp_path / "var"
    var.mkdir()
    main_store = var / "fixadapter.db"
    orders = OrderStore(f"sqlite:///{main_store}")
    orders.create_schema()
    orders.close()
    engine = make_engine(f"sqlite:///{var / 'fixadapter-fix.db'}")
    assert ComplianceWriter(engine).append_many(order_flow().records()) == 15
    engine.dispose()
    return main_store


def test_log_search_with_a_config_without_any_password_reads_the_compliance_database(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    config = tmp_path / "config.yaml"
    config.write_text(PASSWORDLESS + f"store:\n  url: sqlite:///{store}\n", encoding="utf-8")
    code = main(["log", "search", "--config", str(config), "--cl-ord-id", "ord-1", "--format", "jsonl"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "password" not in captured.err
    assert len(captured.out.splitlines()) >= 2

    assert main(["log", "verify", "--config", str(config)]) == 0
    assert "intact" in capsys.readouterr().out


def test_log_search_given_the_main_store_reads_the_messages_beside_it_and_says_so(
    store: Path, capsys: pytest.CaptureFixture[str]
):
    code = main(
        ["log", "search", "--store-url", f"sqlite:///{store}", "--msg-type", "D", "--format", "jsonl"]
    )
    captured = capsys.readouterr()
    assert code == 0
    beside = store.with_name("fixadapter-fix.db")
    assert captured.err == (
        f"fixadapter log: sqlite:///{store} is the order store: FIX messages are recorded in "
        f"sqlite:///{beside} beside it (compliance.store_url, else <store>-fix.db); reading that one\n"
    )
    assert len(captured.out.splitlines()) == 2  # ord-1 and ord-9

    assert main(["log", "verify", "--store-url", f"sqlite:///{store}"]) == 0
    captured = capsys.readouterr()
    assert f"FIX messages are recorded in sqlite:///{beside}" in captured.err
    assert "intact" in captured.out


def test_log_search_on_a_store_with_no_messages_anywhere_names_the_database_they_would_be_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    alone = tmp_path / "alone.db"
    orders = OrderStore(f"sqlite:///{alone}")
    orders.create_schema()
    orders.close()
    code = main(["log", "search", "--store-url", f"sqlite:///{alone}"])
    err = capsys.readouterr().err
    assert code == 1  # refused: nothing to read there (usage errors are 2)
    assert f"no fix_messages table at sqlite:///{alone}" in err
    assert f"beside a SQLite store they go to sqlite:///{tmp_path / 'alone-fix.db'}" in err


def test_depth_with_a_config_without_any_password_reads_the_store(
    depth_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    config = tmp_path / "config.yaml"
    config.write_text(PASSWORDLESS + f"store:\n  url: {depth_url}\n", encoding="utf-8")
    code = main(["depth", "replay", "--config", str(config), "--symbol", "GBPUSD"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert len(captured.out.splitlines()) == 2
    assert main(["depth", "latest", "--config", str(config), "--symbol", "EURUSD"]) == 0


def test_a_bad_store_section_is_still_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    config = tmp_path / "config.yaml"
    config.write_text(PASSWORDLESS + "store:\n  url: 5\n  colour: blue\n", encoding="utf-8")
    # a bad configuration is a refusal (usage errors are 2)
    assert main(["depth", "latest", "--config", str(config), "--symbol", "EURUSD"]) == 1
    err = capsys.readouterr().err
    assert "store.colour: Extra inputs are not permitted" in err

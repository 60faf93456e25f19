"""`fixadapter db upgrade` on a store written by fixadapter before schema versions (main at d0213b6): orders,
executions, positions and chained compliance rows written by that code, every row and every chain intact
afterwards; and the daemon on such a store refuses, naming the command. SQLite (the compliance record in
`<store>-fix.db` beside it) and PostgreSQL (both in one database, a schema of its own per test)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fixadapter.cli import main
from fixadapter.config import PASSWORD_ENV, load_config
from fixadapter.store.migrations import COMPLIANCE, STORE
from fixadapter.store.repository import OrderStore
from tests.data.migrations.legacy import (
    legacy_contents,
    read_contents,
    stored_records,
    write_legacy_compliance,
    write_legacy_store,
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def config_file(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(PASSWORD_ENV, "unused")
    path = tmp_path / "config.yaml"
    account = {"host": "127.0.0.1", "sender_comp_id": "demo.test.1", "username": "1", "trade_port": 1}
    settings = {
        "account": account,
        "store": {"url": store_url},
        "compliance": {"directory": str(tmp_path / "fixlog")},
        "daemon": {"http": {"enabled": False}},
    }
    path.write_text(yaml.safe_dump(settings))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_db_upgrade_brings_a_store_of_before_versions_to_head_with_every_row_and_chain_intact(
    config_file: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fix_url = load_config(config_file).compliance_store_url
    assert (fix_url != store_url) == store_url.startswith("sqlite")  # SQLite: a database of its own
    write_legacy_store(store_url)
    write_legacy_compliance(fix_url, 40)
    before, records = legacy_contents(store_url), stored_records(fix_url)
    assert run(capsys, "log", "verify", "--config", str(config_file))[0] == 0

    code, out, err = run(capsys, "db", "upgrade", "--config", str(config_file))

    assert (code, err) == (0, "")
    lines = [line.split(" ", 1)[1] for line in out.splitlines()]  # without the time
    assert "store: existing tables kept as 0001_baseline" in lines
    assert (
        "store: applied 0002_account (account on every row: orders, requests, executions, client ids, "
        "reports set aside, positions, instruments)" in lines
    )
    assert "store: rows written so far belong to account 'default'" in lines
    assert "store: orders: 3 rows, each with its account" in lines
    assert "store: executions: 4 rows, each with its account" in lines
    assert (
        "store: applied 0003_order_fields (order fields of the Open API: time in force, SL/TP (absolute or "
        "relative), trailing stop loss, comment)" in lines
    )
    assert (
        "store: orders: time in force, stop loss / take profit, trailing stop loss and comment added" in lines
    )
    assert "store: positions: stop loss, take profit and trailing stop loss added" in lines
    assert f"store schema upgraded to {STORE.head()}" in lines
    assert f"compliance schema upgraded to {COMPLIANCE.head()}" in lines
    assert lines[-1] == "done: every schema is at head"
    store = OrderStore(store_url)
    store.create_schema()  # the daemon's check now passes
    assert read_contents(store) == before
    store.close()
    assert stored_records(fix_url) == records
    code, out, _ = run(capsys, "log", "verify", "--config", str(config_file))
    assert code == 0
    assert out.splitlines()[-1] == "all 4 chain(s) intact"
    code, out, _ = run(capsys, "db", "current", "--config", str(config_file))
    assert code == 0
    assert [line.split(" (", 1)[0] for line in out.splitlines()] == [
        f"store: {STORE.head()}",
        f"compliance: {COMPLIANCE.head()}",
    ]


def test_db_upgrade_gives_the_rows_to_the_account_named(
    config_file: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_legacy_store(store_url)
    before = legacy_contents(store_url)

    code, out, _ = run(capsys, "db", "upgrade", "--config", str(config_file), "--account", "desk_1")

    assert code == 0
    assert any(
        line.endswith("store: rows written so far belong to account 'desk_1'") for line in out.splitlines()
    )
    desk, default = OrderStore(store_url, account="desk_1"), OrderStore(store_url)
    assert read_contents(desk) == before
    assert default.orders() == [] and default.positions() == []
    desk.close()
    default.close()


def test_db_upgrade_of_a_bare_store_url_and_current_before_and_after(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_legacy_store(store_url)
    before = legacy_contents(store_url)

    code, out, _ = run(capsys, "db", "current", "--store-url", store_url)
    assert code == 0
    assert out.startswith("store: made before schema versions (taken as 0001_baseline), behind head ")
    assert "run `fixadapter db upgrade`" in out

    assert run(capsys, "db", "upgrade", "--store-url", store_url)[0] == 0
    code, out, _ = run(capsys, "db", "upgrade", "--store-url", store_url)

    assert code == 0
    assert "store schema is up to date" in out
    store = OrderStore(store_url)
    assert read_contents(store) == before
    store.close()


def test_the_daemon_on_a_store_of_before_versions_refuses_naming_the_command_to_run(
    config_file: Path, store_url: str
) -> None:
    write_legacy_store(store_url)
    before = legacy_contents(store_url)

    result = subprocess.run(
        [sys.executable, "-m", "fixadapter", "run", "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, PASSWORD_ENV: "unused"},
    )

    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("fixadapter run: the store schema at ")
    assert "is made before schema versions (taken as 0001_baseline)" in last
    assert "run `fixadapter db upgrade --config FILE` with the daemon's config" in last
    assert "unused" not in result.stderr
    assert legacy_contents(store_url) == before

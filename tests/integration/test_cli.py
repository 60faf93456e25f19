"""`fixadapter order`: one order from the command line, its events printed until it settles."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from fixadapter.sim.process import SimProcess


def order_command(sim: SimProcess, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    account = {k: v for k, v in sim.adapter_settings().items() if k != "password"}
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({"account": account, "store": {"url": f"sqlite:///{tmp_path / 'a.db'}"}})
    )
    return subprocess.run(
        [sys.executable, "-m", "fixadapter", "order", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "FIXADAPTER_ACCOUNT__PASSWORD": sim.password},
    )


def test_order_command_prints_the_events_of_a_filled_market_order(sim: SimProcess, tmp_path: Path):
    result = order_command(sim, tmp_path, "--symbol", "EURUSD", "--side", "buy", "--quantity", "10000")
    assert result.returncode == 0, result.stderr
    kinds = [line.split()[0] for line in result.stdout.splitlines()]
    assert kinds == ["submitted", "accepted", "filled"]


def test_order_command_reports_an_unknown_symbol_with_close_matches(sim: SimProcess, tmp_path: Path):
    result = order_command(sim, tmp_path, "--symbol", "EURUSX", "--side", "buy", "--quantity", "10000")
    assert result.returncode == 1
    assert "unknown symbol 'EURUSX'" in result.stderr and "EURUSD" in result.stderr

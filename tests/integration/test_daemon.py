"""`fixadapter run`: logs on and reconciles, stops cleanly on SIGTERM, refuses a bad config by name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from fixadapter.sim.process import SimProcess


def run_adapter(config_path: Path, password: str) -> subprocess.Popen[str]:
    env = {**os.environ, "FIXADAPTER_ACCOUNT__PASSWORD": password}
    return subprocess.Popen(
        [sys.executable, "-m", "fixadapter", "run", "--config", str(config_path)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )


def test_daemon_reconciles_then_stops_cleanly_on_sigterm_without_logging_the_password(
    sim: SimProcess, tmp_path: Path
):
    account = {k: v for k, v in sim.adapter_settings().items() if k != "password"}
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "account": account,
                "store": {"url": f"sqlite:///{tmp_path / 'a.db'}"},
                "logging": {"level": "INFO", "fix_messages": True},
            }
        )
    )
    process = run_adapter(config, sim.password)
    assert process.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines.append(process.stderr.readline())
        if "reconciled in" in lines[-1]:
            break
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=30)
    output = "".join(lines) + rest
    assert process.returncode == 0, output
    assert "reconciled in" in output and "TRADE logged out" in output
    assert "554=******" in output  # the Logon was logged, masked
    assert sim.password not in output


def test_daemon_with_a_bad_config_key_exits_non_zero_naming_it(tmp_path: Path):
    config = tmp_path / "config.yaml"
    config.write_text(
        "account:\n  host: 127.0.0.1\n  sender_comp_id: a.b.1\n  username: '1'\n  trade_prot: 5202\n"
    )
    process = run_adapter(config, "x")
    _, errors = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "account.trade_prot" in errors

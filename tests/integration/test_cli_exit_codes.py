"""Exit code 3 of `fixadapter order` (issue 16, item 10): something did not come in time (here: no venue
answering, so no logon within orders.ready_timeout_seconds), said in one line, no traceback. Usage errors
(2) and refusals (1): tests/unit/test_cli_first_steps.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def order(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIXADAPTER_")}
    return subprocess.run(
        [sys.executable, "-m", "fixadapter", "order", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**env, "FIXADAPTER_ACCOUNTS__SIM__FIX__PASSWORD": "x"},
    )


def test_no_logon_in_time_exits_3_saying_it_timed_out(tmp_path: Path):
    port = closed_port()
    config = tmp_path / "config.yaml"
    fix = {
        "host": "127.0.0.1",
        "quote_port": port,
        "trade_port": port,
        "sender_comp_id": "a.b.1",
        "username": "1",
    }
    config.write_text(
        yaml.safe_dump(
            {
                "accounts": [{"name": "sim", "fix": fix}],
                "store": {"url": f"sqlite:///{tmp_path / 'a.db'}"},
                "orders": {"ready_timeout_seconds": 1},
            }
        ),
        encoding="utf-8",
    )

    result = order(config, "--symbol", "EURUSD", "--side", "buy", "--quantity", "10000")

    assert result.returncode == 3, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("fixadapter order: timed out: ")
    assert "is not logged on and reconciled after 1s" in last
    assert "Traceback" not in result.stderr
    assert result.stdout == ""

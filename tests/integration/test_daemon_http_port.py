"""An HTTP port already in use stops `fixadapter run` before it logs on to the broker (the port is bound
first), with exit 1 and the key to change."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from fixadapter.sim.process import SimProcess


def test_an_http_port_in_use_stops_the_daemon_before_any_logon(sim: SimProcess, tmp_path: Path) -> None:
    account = {k: v for k, v in sim.adapter_settings().items() if k != "password"}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "account": account,
                    "store": {"url": f"sqlite:///{tmp_path / 'a.db'}"},
                    "daemon": {"http": {"port": port}},
                }
            )
        )
        result = subprocess.run(
            [sys.executable, "-m", "fixadapter", "run", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "FIXADAPTER_ACCOUNT__PASSWORD": sim.password},
        )

    assert result.returncode == 1, result.stderr  # refused (exit codes: usage errors are 2)
    assert f"HTTP port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "set daemon.http.port to a free port" in result.stderr
    assert "logged on" not in result.stderr and "Initiated logon" not in result.stderr
    assert sim.control("/state")["logons"] == 0

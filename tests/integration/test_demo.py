"""The README's demo command runs end to end: simulator, daemon, the sample strategy over the queue and the
blotter, then a clean stop. Not on a terminal, the blotter prints one line per event and the tables once."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

SIM_PASSWORD = "sim-password"  # noqa: S105 - SimProcess's default, which must never be shown


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, response.read()
    except urllib.error.HTTPError as refused:  # /readyz answers 503 until TRADE is ready
        return refused.code, refused.read()


def test_demo_runs_the_sample_strategy_through_the_daemon_and_exits_cleanly(tmp_path: Path):
    workdir = tmp_path / "demo"
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "fixadapter", "demo", "--workdir", str(workdir), "--duration", "6"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        head = []
        for line in process.stdout:  # up to the line naming the HTTP port, queried while the demo runs
            head.append(line)
            if "HTTP API on" in line:
                break
        found = re.search(r"HTTP API on (http://127\.0\.0\.1:\d+)", "".join(head))
        assert found, "".join(head)
        status, metrics = _get(found.group(1) + "/metrics")
        assert status == 200 and b"# TYPE" in metrics
        status, ready = _get(found.group(1) + "/readyz")
        assert status in (200, 503) and "ready" in json.loads(ready)
        rest, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    stdout = "".join(head) + rest
    elapsed = time.monotonic() - started

    assert process.returncode == 0, stdout + stderr
    assert "finished: the strategy did all its steps" in stdout
    assert len(re.findall(r"order filled +\S+ +sample", stdout)) == 5  # one line per event
    assert "command_rejected submit" in stdout and "rule=max_quantity" in stdout
    assert "rule=price_collar" in stdout
    assert "order replaced" in stdout and "order cancelled" in stdout
    assert (
        "EURUSD long 6,000" in stdout and "GBPUSD long 15,000" in stdout and "EURUSD short 15,000" in stdout
    )
    assert "risk refused: max_quantity, price_collar" in stdout  # the final summary
    assert "orders (8)" in stdout and "positions" in stdout  # the final tables
    assert (workdir / "fixadapter.db").exists()
    # The demo's store, FIX record and logs are this user's only.
    assert stat.S_IMODE(workdir.stat().st_mode) == 0o700
    assert stat.S_IMODE((workdir / "fixadapter.db").stat().st_mode) == 0o600
    for text in (stdout, stderr):
        assert "Traceback" not in text
        assert " ERROR " not in text
        assert SIM_PASSWORD not in text
    assert elapsed < 45

"""The README's demo command runs to the end without an error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_trades_against_the_simulator_and_exits_cleanly(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "fixadapter", "demo", "--workdir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "ORDER_NOT_FOUND" in result.stdout
    assert "long  6000" in result.stdout
    assert "Traceback" not in result.stderr

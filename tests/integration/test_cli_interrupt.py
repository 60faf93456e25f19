"""Ctrl-C (SIGINT) during `fixadapter order` logs both sessions out and exits 130; no "Future exception was
never retrieved" on the way out, even with subscriptions that never got their first snapshot.

The quickfix binding's module init resets SIGINT to SIG_DFL behind Python's back (connectors/fix/__init__.py):
before the repair, a Ctrl-C killed `order` outright, with no logout."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from fixadapter.sim.process import SimProcess


def write_config(sim: SimProcess, tmp_path: Path, **extra: object) -> Path:
    account = {k: v for k, v in sim.adapter_settings().items() if k != "password"}
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({"account": account, "store": {"url": f"sqlite:///{tmp_path / 'a.db'}"}, **extra})
    )
    return config


def order_command(sim: SimProcess, config: Path) -> tuple[list[str], dict[str, str]]:
    command = [sys.executable, "-m", "fixadapter", "order", "--config", str(config)]
    command += ["--symbol", "EURUSD", "--side", "buy", "--quantity", "10000", "--watch-seconds", "60"]
    return command, {**os.environ, "FIXADAPTER_ACCOUNT__PASSWORD": sim.password}


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A port bound and kept, never listening: every connection to it is refused, and no other process can
    take it meanwhile (a port probed free and let go could be)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def test_ctrl_c_while_an_order_waits_for_its_answer_logs_out_and_exits_130(sim: SimProcess, tmp_path: Path):
    sim.control("/scenario", {"silent": ["D"]})  # the venue never answers the order
    command, env = order_command(sim, write_config(sim, tmp_path))
    order = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        submitted = ""
        assert order.stdout is not None
        while "submitted" not in submitted and time.monotonic() < deadline:
            submitted += order.stdout.readline()
        assert "submitted" in submitted
        order.send_signal(signal.SIGINT)
        _, err = order.communicate(timeout=30)
    finally:
        if order.poll() is None:
            order.kill()
            order.wait()

    assert order.returncode == 130, err
    assert "TRADE logged out" in err and "QUOTE logged out" in err
    assert "fixadapter order: interrupted" in err
    assert "never retrieved" not in err and "Traceback" not in err


def test_an_order_with_subscriptions_that_never_got_a_snapshot_exits_without_a_future_exception(
    sim: SimProcess, tmp_path: Path
):
    # QUOTE pointed at a port nobody listens on: the configured subscriptions never get their snapshot.
    config = write_config(
        sim,
        tmp_path,
        market_data={"subscriptions": [{"symbol": "EURUSD", "depth": True}, {"symbol": "GBPUSD"}]},
        risk={"symbol_defaults": {"without_quote": "allow"}},
    )
    settings = yaml.safe_load(config.read_text())
    with refusing_port() as port:
        settings["account"]["quote_port"] = port
        config.write_text(yaml.safe_dump(settings))
        command, env = order_command(sim, config)
        command += ["--quote-wait-seconds", "0"]  # no QUOTE: send without waiting for a first quote
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, env=env)

    assert result.returncode == 0, result.stderr
    assert (
        "QUOTE: cannot connect to 127.0.0.1:" in result.stderr or "QUOTE: TLS to 127.0.0.1:" in result.stderr
    )
    assert "never retrieved" not in result.stderr and "Traceback" not in result.stderr

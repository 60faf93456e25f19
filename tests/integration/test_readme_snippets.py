"""Every ```python block of README.md runs as written: each is saved as a file and run with `python` in a
process of its own, against a simulator and a daemon (`fixadapter run`, Redis queue) this test starts,
with the environment the snippets document (ADAPTER_CONFIG and the account password for the adapter's own
snippets; REDIS_URL and QUEUE_PREFIX for the strategy's). A block not meant to run alone is no python
block."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from fixadapter.sim.process import SimAccountCredentials, SimProcess

from .conftest import SimFactory

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)
DESK = SimAccountCredentials("desk", "demo.sim.3003", "3003", "desk-secret-3003")
DAEMON = SimAccountCredentials("daemon", "demo.sim.4004", "4004", "daemon-secret-4004")
SNIPPET_SECONDS = 120.0
READY_SECONDS = 60.0


def snippets() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def account_file(sim: SimProcess, account: str, path: Path, **sections: object) -> Path:
    """A config for one of the simulator's accounts, its password left to the environment."""
    settings = {k: v for k, v in sim.adapter_settings(account=account).items() if k != "password"}
    path.write_text(yaml.safe_dump({"account": settings, **sections}), encoding="utf-8")
    return path


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIXADAPTER_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**env, **extra}


def wait_ready(daemon: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            pytest.fail(f"the daemon exited with {daemon.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    pytest.fail(f"the daemon was not ready after {READY_SECONDS:g}s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def world(
    start_sim: SimFactory, tmp_path: Path, redis_url: str, queue_prefix: str
) -> Iterator[dict[str, str]]:
    """A simulator serving two accounts: `desk` for the snippets' own adapter, `daemon` for a `fixadapter
    run` whose Redis queue takes strategy momo. Yields the snippets' environment."""
    sim = start_sim(accounts=(DESK, DAEMON), extra_args=("--tick-ms", "100"))
    desk = account_file(
        sim,
        "desk",
        tmp_path / "desk.yaml",
        store={"url": f"sqlite:///{tmp_path / 'desk.db'}"},
        compliance={"directory": str(tmp_path / "desk-fixlog")},
    )
    http_port = free_port()
    daemon_config = account_file(
        sim,
        "daemon",
        tmp_path / "daemon.yaml",
        store={"url": f"sqlite:///{tmp_path / 'daemon.db'}"},
        compliance={"directory": str(tmp_path / "fixlog")},
        daemon={
            "http": {"port": http_port},
            "queue": {"kind": "redis", "prefix": queue_prefix, "strategies": ["momo"]},
        },
    )
    log = tmp_path / "daemon.log"
    with log.open("wb") as output:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "fixadapter", "run", "--config", str(daemon_config)],
            cwd=tmp_path,
            env=environment(
                FIXADAPTER_ACCOUNT__PASSWORD=DAEMON.password, FIXADAPTER_DAEMON__QUEUE__REDIS_URL=redis_url
            ),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(daemon, http_port, log)
        yield environment(
            ADAPTER_CONFIG=str(desk),
            FIXADAPTER_ACCOUNT__PASSWORD=DESK.password,
            REDIS_URL=redis_url,
            QUEUE_PREFIX=queue_prefix,
        )
    finally:
        daemon.terminate()
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(10)


def test_the_readme_has_its_python_snippets_and_each_is_a_whole_program():
    found = snippets()
    assert len(found) >= 3
    for code in found:
        compile(code, "README.md snippet", "exec")  # a top-level `async with` would not compile
        assert "asyncio.run(main())" in code


def test_every_python_snippet_of_the_readme_runs_as_written(world: dict[str, str], tmp_path: Path):
    outputs = []
    for number, code in enumerate(snippets(), 1):
        path = tmp_path / f"snippet_{number}.py"
        path.write_text(code, encoding="utf-8")
        try:
            done = subprocess.run(
                [sys.executable, str(path)],
                cwd=tmp_path,
                env=world,
                capture_output=True,
                text=True,
                timeout=SNIPPET_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"README snippet {number} still running after {SNIPPET_SECONDS:g}s:\n{code}\n{exc}")
        assert done.returncode == 0, (
            f"README snippet {number} exited {done.returncode}:\n{code}\n--- stdout\n{done.stdout}"
            f"\n--- stderr\n{done.stderr[-4000:]}"
        )
        outputs.append(done.stdout)
    order, market, strategy = outputs[:3]
    assert "filled" in order  # the adapter's own market order, to its fill
    assert "EURUSD" in market and "Book EURUSD" in market
    assert "market order: filled" in strategy
    assert "cancelled" in strategy  # the resting order, cancelled through the daemon

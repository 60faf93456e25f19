"""The README's "Connect to your broker" walkthrough runs as written: its first shell block (the simulator)
in the background, its second (the config and two checks) in bash, in an empty directory.

The walkthrough uses the simulator's default ports (5201, 5202, 5280, 5035, 5290); the test is skipped
when one of them is taken on this machine, rather than run against someone else's process.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixadapter.sim.runner import READY_LINE

README = Path(__file__).resolve().parents[2] / "README.md"
DEFAULT_PORTS = (5201, 5202, 5280, 5035, 5290)


def section_blocks(title: str, language: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end > 0 else None]
    return re.findall(rf"^```{language}\n(.*?)^```$", section, flags=re.M | re.S)


def port_taken(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def wait_ready(process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    assert process.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while READY_LINE.encode() not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"the simulator did not get ready: {seen!r}"
        readable, _, _ = select.select([process.stdout], [], [], remaining)
        if readable:
            chunk = os.read(process.stdout.fileno(), 65536)
            assert chunk, f"the simulator ended: {seen!r}"
            seen += chunk


def test_the_connect_to_your_broker_walkthrough_runs_as_written(tmp_path: Path):
    taken = [port for port in DEFAULT_PORTS if port_taken(port)]
    if taken:
        pytest.skip(f"the simulator's default ports {taken} are in use on this machine")
    simulator, checks = section_blocks("Connect to your broker", "sh")[:2]
    assert simulator.strip() == "fixadapter simulate"
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "fixadapter").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m fixadapter "$@"\n')
    (shim / "fixadapter").chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"}
    process = subprocess.Popen(
        ["bash", "-c", simulator],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_ready(process)
        run = subprocess.run(
            ["bash", "-c", checks],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(15)
        if process.stdout is not None:
            process.stdout.close()
    assert run.returncode == 0, run.stdout + run.stderr  # the last command is the echo
    assert "OK: every check passed for default" in run.stdout
    assert re.search(
        r'^  FAILED  TRADE logon {7}the venue refused the Logon: "InternalError: RET_INVALID_DATA"',
        run.stdout,
        flags=re.M,
    )
    assert "what to do: the password is wrong (or the login 1234567)" in run.stdout
    assert run.stdout.rstrip().endswith("exit code 1")
    assert "not-the-password" not in run.stdout + run.stderr
    for shown in section_blocks("Connect to your broker", "text")[:1]:  # the README's sample output
        for line in shown.splitlines():
            step = re.sub(r" \(\d+ ms\)$", "", line).strip()
            if step.startswith("OK "):
                assert step in re.sub(r" \(\d+ ms\)", "", run.stdout)

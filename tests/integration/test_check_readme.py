"""The README's "Connect to your broker" walkthrough runs as written: its first shell block (the simulator)
in the background, its second (the config and two checks) in bash, in an empty directory.

The walkthrough uses the simulator's default ports (5201, 5202, 5280, 5035, 5290). Two runs of the suite
on one machine (two clones, a stress run) take turns through a lock file; the test is skipped when a port
is still taken by someone else's process, rather than run against it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixadapter.sim.runner import READY_LINE

README = Path(__file__).resolve().parents[2] / "README.md"
DEFAULT_PORTS = (5201, 5202, 5280, 5035, 5290)
LOCK_WAIT_SECONDS = 600.0  # the walkthrough takes well under a minute, even on a loaded machine


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


def wait_ready(process: subprocess.Popen[bytes], errors: Path, timeout: float = 60.0) -> None:
    """Until the simulator says it is ready; if it ends or hangs, fail with what it wrote on stderr."""
    assert process.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while READY_LINE.encode() not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, (
            f"the simulator did not get ready: {seen!r}; stderr: {errors.read_text()[-3000:]}"
        )
        readable, _, _ = select.select([process.stdout], [], [], remaining)
        if readable:
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                process.wait(15)
                raise AssertionError(
                    f"the simulator ended (exit {process.returncode}): {seen!r}; stderr: "
                    f"{errors.read_text()[-3000:]}"
                )
            seen += chunk


@pytest.fixture
def default_ports() -> Iterator[None]:
    """The machine's default simulator ports for this test alone: another run of it waits its turn."""
    with open(Path(tempfile.gettempdir()) / "fixadapter-default-ports.lock", "a+b") as lock:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:  # a run that never let go: stuck, which is a failure
                    pytest.fail(
                        f"another test run held {lock.name} (the default ports) for "
                        f"{LOCK_WAIT_SECONDS:.0f}s: is a test run stuck on this machine?"
                    )
                time.sleep(0.5)
        yield
        # The simulator may exit after its shell: the next run must find the ports free.
        free_by = time.monotonic() + 15
        while any(port_taken(port) for port in DEFAULT_PORTS) and time.monotonic() < free_by:
            time.sleep(0.2)
    # the lock is released as the file closes


def test_the_connect_to_your_broker_walkthrough_runs_as_written(tmp_path: Path, default_ports: None):
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
    errors = tmp_path / "simulator.err"
    with open(errors, "wb") as stderr:
        process = subprocess.Popen(
            ["bash", "-c", simulator],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        wait_ready(process, errors)
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

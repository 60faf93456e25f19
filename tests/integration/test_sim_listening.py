"""The simulator listens on the host it prints and nowhere else (issue 16, item 10): with the default
--host 127.0.0.1, every listening TCP socket of the simulator's processes (the QUOTE child included) is
bound to 127.0.0.1, or is a QuickFIX acceptor's every-interface socket tied to the loopback device
(`0.0.0.0%lo`: QuickFIX binds no single address); each port of the ready line is one of them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fixadapter.sim.process import SimProcess

LOOPBACK_ONLY = ("127.0.0.1:", "0.0.0.0%lo:")


def group_members(group: int) -> set[int]:
    """The pids whose process group is `group` (the simulator runs in a session of its own)."""
    members = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == group:
            members.add(int(stat.parent.name))
    return members


def listening(pids: set[int]) -> list[str]:
    """Local addresses of the TCP sockets those processes listen on, as `ss` prints them."""
    output = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True, timeout=30).stdout
    found = []
    for line in output.splitlines():
        owners = {int(pid) for pid in re.findall(r"pid=(\d+)", line)}
        if owners & pids:
            found.append(line.split()[3])
    return found


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to list listening sockets")
def test_every_port_of_the_simulator_listens_on_loopback_only(tmp_path: Path):
    sim = SimProcess(tls=True, tls_dir=tmp_path / "tls", log_path=tmp_path / "sim.log").start()
    try:
        assert sim._process is not None
        addresses = listening(group_members(sim._process.pid))
    finally:
        sim.stop()

    assert addresses, "no listening socket found for the simulator"
    assert [a for a in addresses if not a.startswith(LOOPBACK_ONLY)] == []
    ports = {int(a.rsplit(":", 1)[1]) for a in addresses}
    reported = {
        sim.quote_port,
        sim.trade_port,
        sim.control_port,
        sim.quote_tls_port,
        sim.trade_tls_port,
        sim.openapi_port,
        sim.oauth_port,
    }
    assert reported <= ports, (reported, addresses)

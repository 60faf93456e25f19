"""The simulator process: it binds its own ports and reports them, serves loopback only, and a start that
fails says why (issue 13, items 20 and 21: port races and silent child deaths made tests flaky)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from fixadapter.sim.process import SimProcess, SimulatorFailed, read_ports
from fixadapter.sim.runner import READY_LINE

from .conftest import SimFactory


@contextlib.contextmanager
def occupied_port() -> Iterator[int]:
    """A port some other program listens on (every interface, as a careless server would)."""
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def this_hosts_other_address() -> str | None:
    """A non-loopback address of this machine, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return True
    except OSError:
        return False


def test_a_simulator_asked_for_port_0_prints_the_ports_it_bound(tmp_path):
    command = [sys.executable, "-m", "fixadapter", "simulate"]
    command += [
        "--quote-port",
        "0",
        "--trade-port",
        "0",
        "--control-port",
        "0",
        "--state",
        str(tmp_path / "v.db"),
        "--openapi-port",
        "0",
        "--oauth-port",
        "0",
        "--tls-dir",
        str(tmp_path / "tls"),
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert READY_LINE in line
            ports = read_ports(line)
            assert all(ports[name] for name in ("quote", "trade", "control", "openapi", "oauth"))
            assert f"TRADE 127.0.0.1:{ports['trade']} " in line
            assert connects("127.0.0.1", ports["quote"]) and connects("127.0.0.1", ports["trade"])
        finally:
            process.terminate()
            try:
                assert process.wait(15) == 0  # SIGTERM is a clean stop
            finally:
                process.kill()


def test_a_restarted_simulator_serves_the_ports_it_bound_first(start_sim: SimFactory):
    sim = start_sim()
    ports = (sim.quote_port, sim.trade_port, sim.control_port)
    assert all(ports)
    sim.kill()
    sim.start()
    assert (sim.quote_port, sim.trade_port, sim.control_port) == ports
    assert sim.control("/health") == {"ok": True}


def test_the_fix_ports_take_no_connection_from_another_interface(start_sim: SimFactory):
    other = this_hosts_other_address()
    if other is None:
        pytest.skip("this machine has no non-loopback address to connect from")
    sim = start_sim()
    for port in (sim.quote_port, sim.trade_port, sim.control_port):
        assert connects("127.0.0.1", port)
        assert not connects(other, port), f"port {port} answers on {other}"


@pytest.mark.parametrize(
    ("which", "words"),
    [
        ("quote_port", "Unable to create, bind, or listen to port {port}"),  # QuickFIX, in the QUOTE child
        ("trade_port", "('127.0.0.1', {port}): address already in use"),  # the TRADE front
    ],
)
def test_a_simulator_that_cannot_bind_says_so_with_the_end_of_its_log(tmp_path, which: str, words: str):
    with occupied_port() as port:
        sim = SimProcess(state_path=tmp_path / "v.db", **{which: port})
        with pytest.raises(SimulatorFailed) as failed:
            sim.start()
    message = str(failed.value)
    assert "exited before it was ready (exit code 1)" in message
    assert words.format(port=port) in message


def test_a_simulator_refusing_its_arguments_shows_their_error(tmp_path):
    sim = SimProcess(state_path=tmp_path / "v.db", extra_args=("--no-such-option",))
    with pytest.raises(SimulatorFailed) as failed:
        sim.start()
    assert "exit code 2" in str(failed.value)
    assert "unrecognized arguments: --no-such-option" in str(failed.value)

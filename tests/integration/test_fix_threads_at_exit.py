"""When the adapter has stopped, no QuickFIX thread is left running: a detached engine thread calling into
Python while the interpreter finalizes aborted the process with "FATAL: exception not rethrown" (exit
134; see connectors/fix/native_threads.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import quickfix as fix

from fixadapter.api import Adapter
from fixadapter.connectors.fix.native_threads import native_threads
from fixadapter.sim.process import SimProcess

from .conftest import ConfigFactory


def test_native_threads_are_the_threads_no_python_thread_owns() -> None:
    found = native_threads()
    assert found is not None  # Linux
    assert threading.main_thread().native_id not in found


def test_no_quickfix_thread_outlives_the_adapters_stop(
    sim: SimProcess, make_config: ConfigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="fixadapter.fix")
    before = native_threads()
    assert before is not None

    async def scenario() -> set[int]:
        async with Adapter(make_config(sim)) as adapter:
            await adapter.wait_ready(15)
            assert native_threads() - before  # the initiator's threads
            sim.control("/logout", {})  # one session's connection ends: its thread is detached
            await asyncio.sleep(0.5)
        return (native_threads() or set()) - before

    left = asyncio.run(scenario())
    assert not [r for r in caplog.records if "native thread" in r.getMessage()]  # the host saw them end
    # What is left is a Python thread the OS has not reaped yet (it left threading.enumerate() already).
    deadline = time.monotonic() + 1
    while left and time.monotonic() < deadline:
        time.sleep(0.01)
        left = (native_threads() or set()) - before
    assert left == set()


SLOW_LOGOUT = """
import asyncio, json, sys, threading, time, urllib.request
from fixadapter.api import Adapter
from fixadapter.config import build_config
from fixadapter.connectors.fix.application import FixApplication

settings, control = json.loads(sys.argv[1]), sys.argv[2]
telling = threading.Event()
on_logout = FixApplication.onLogout


def slow_on_logout(self, session_id):
    on_logout(self, session_id)
    if not telling.is_set():
        telling.set()
        time.sleep(1.0)  # the engine thread is still in Python while the adapter stops


FixApplication.onLogout = slow_on_logout


async def main():
    async with Adapter(build_config(settings, environ={})) as adapter:
        await adapter.wait_ready(15)
        request = urllib.request.Request(control + "/logout", data=b"{}", method="POST")
        urllib.request.urlopen(request, timeout=10).read()
        while not telling.is_set():
            await asyncio.sleep(0.01)


asyncio.run(main())
print("stopped", file=sys.stderr)
"""


def test_stopping_while_the_server_ended_connection_is_still_being_told_closes_no_file_twice(
    sim: SimProcess, tmp_path: Path
) -> None:
    """A connection the server ended has its engine thread inside onLogout when the adapter stops: the
    initiator is stopped only after it is out, and the stop is clean. Before, QuickFIX could close that
    socket's number a second time, by then another file's (seen: the compliance log file's, the compliance
    writer failing with EBADF at exit, in a script that started the simulator in-process); which number
    is reused depends on what the process has open, so this guards the clean stop more than it reproduces
    that on every machine."""
    settings = {
        "account": {**sim.adapter_settings(), "reconnect_seconds": 30},
        "store": {"url": f"sqlite:///{tmp_path / 'a.db'}"},
    }
    result = subprocess.run(
        [sys.executable, "-c", SLOW_LOGOUT, json.dumps(settings), f"http://127.0.0.1:{sim.control_port}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "stopped" in result.stderr
    assert "Bad file descriptor" not in result.stderr and "Traceback" not in result.stderr


class SilentServer:
    """Accepts FIX connections and never answers: a Logon stays unanswered, so does a Logout."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.listener.accept()
                self.accepted.append(conn)

    def close(self) -> None:
        self.listener.close()
        for conn in self.accepted:
            conn.close()


def test_a_connection_the_server_never_answers_is_ended_by_its_own_thread_before_the_initiator_stops(
    sim: SimProcess,
    make_config: ConfigFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stopping the initiator with a connection open closed that socket from another thread, and its own
    thread then closed the number again (or read whatever the process opened under it meanwhile: seen as a
    Redis socket failing with EBADF when the daemon stopped). The host shuts such a connection down first:
    by the time the initiator is stopped, the server has seen the end of every stream."""
    caplog.set_level(logging.WARNING, logger="fixadapter.fix")
    server = SilentServer()
    config = make_config(
        sim, quote_port=server.port, trade_port=server.port, quote_tls=False, trade_tls=False
    )
    ended_before_stop: list[bool] = []
    stop = fix.ThreadedSocketInitiator.stop

    def watched_stop(initiator: fix.ThreadedSocketInitiator) -> None:
        ended_before_stop.extend(stream_ended(conn) for conn in server.accepted)
        stop(initiator)

    monkeypatch.setattr(fix.ThreadedSocketInitiator, "stop", watched_stop)

    async def scenario() -> None:
        async with Adapter(config) as adapter:
            host = adapter.connector._host  # type: ignore[attr-defined]
            deadline = time.monotonic() + 30
            # QUOTE and TRADE connected, their Logons unanswered, and the host told of both connections (the
            # server accepts a connection before QuickFIX reports it; one made at the very moment of the
            # stop is the patched QuickFIX's own to end, tests/integration/test_quickfix_patch.py).
            while len(server.accepted) < 2 or len(host._own) < 2:
                assert time.monotonic() < deadline, "the adapter never connected"
                await asyncio.sleep(0.02)

    try:
        asyncio.run(scenario())
    finally:
        server.close()
    assert ended_before_stop == [True, True]
    warned = [r.getMessage() for r in caplog.records if "still running" in r.getMessage()]
    assert warned == []


def stream_ended(conn: socket.socket) -> bool:
    """True when the peer has ended the stream (what it sent is read and dropped); never waits."""
    while True:
        try:
            chunk = conn.recv(65536, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        if not chunk:
            return True

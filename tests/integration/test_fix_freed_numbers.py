"""A FIX connection that ends at a logout (the venue's Logout, or ours answered) keeps its socket's number
until the engine thread that polls it once more has ended: a socket the daemon opens right then (a Redis
connection) never gets that number, so the engine thread never reads another connection's bytes and
nothing is closed twice. The patched quickfix (patches/quickfix-*.patch) shuts the socket down at the
logout and closes it when that thread is done; on a stock build the host holds the freed number instead
(connectors/fix/freed_numbers.py), which leaves a moment open."""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
import threading
from typing import Any

import pytest

from fixadapter.api import Adapter
from fixadapter.connectors.fix import host as host_module
from fixadapter.connectors.fix.application import FixApplication
from fixadapter.connectors.fix.engine_build import is_patched, quickfix_version
from fixadapter.connectors.fix.freed_numbers import FreedNumbers
from fixadapter.connectors.fix.settings import parse_settings
from fixadapter.sim.process import SimProcess

from .conftest import ConfigFactory


class Watch:
    """The adapter's FIX connections, noted (number, socket identity, peer port) as each connects, and in
    each onLogout whether the number of the connection of the session logging out (its latest) is still
    its socket, and what a socket opened right then would get from it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ports: dict[str, int] = {}  # session qualifier -> port it connects to (from its settings)
        self.latest: dict[int, tuple[int, int | None]] = {}  # peer port -> (number, inode) of its latest
        self.seen: set[tuple[int, int | None]] = set()
        self.logouts = 0
        self.checked = 0  # connections checked in the onLogout of their own session
        self.taken: list[int] = []  # connection numbers a socket opened in onLogout got
        self.closed_early: list[int] = []  # connection numbers closed before their session's onLogout

    def rendered(self, text: str) -> None:
        for name, values in parse_settings(text):
            if name == "SESSION":
                self.ports[values["SessionQualifier"]] = int(values["SocketConnectPort"])

    def noted(self, numbers: set[int]) -> None:
        with self.lock:
            for number in sorted(numbers):
                key = (number, inode(number))
                if key not in self.seen:
                    self.seen.add(key)
                    self.latest[peer_port(number)] = key

    def opened_in_on_logout(self, qualifier: str) -> None:
        with self.lock:
            self.logouts += 1
            found = self.latest.get(self.ports[qualifier])
            if found is None:
                return
            number, identity = found
            self.checked += 1
            if inode(number) == identity:
                return  # still that connection's socket
            self.closed_early.append(number)
            got = fcntl.fcntl(0, fcntl.F_DUPFD, number)  # the lowest free number from it
            os.close(got)
            if got == number:
                self.taken.append(number)

    def still_open(self) -> list[int]:
        with self.lock:
            return [number for number, identity in self.seen if inode(number) == identity]


def peer_port(number: int) -> int:
    with socket.socket(fileno=os.dup(number)) as sock:
        return int(sock.getpeername()[1])


def inode(number: int) -> int | None:
    try:
        return os.fstat(number).st_ino
    except OSError:
        return None


def test_a_connection_ended_by_a_logout_keeps_its_number_until_its_engine_thread_is_done(
    sim: SimProcess, make_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch = Watch()
    note, on_logout, render = FreedNumbers.note, FixApplication.onLogout, host_module.render_settings

    def noting(self: FreedNumbers, numbers: set[int]) -> None:
        watch.noted(numbers)
        note(self, numbers)

    def opening(self: FixApplication, session_id: Any) -> None:
        watch.opened_in_on_logout(session_id.getSessionQualifier())  # as the daemon's loop would, then
        on_logout(self, session_id)

    def rendering(*args: Any, **kwargs: Any) -> str:
        text = render(*args, **kwargs)
        watch.rendered(text)
        return text

    monkeypatch.setattr(FreedNumbers, "note", noting)
    monkeypatch.setattr(FixApplication, "onLogout", opening)
    monkeypatch.setattr(host_module, "render_settings", rendering)

    async def scenario() -> None:
        async with Adapter(make_config(sim)) as adapter:
            await adapter.wait_ready(15)
            sim.control("/logout", {"session": "TRADE", "reason": "venue going down"})  # the venue's Logout
            async with asyncio.timeout(15):
                while watch.logouts < 1:
                    await asyncio.sleep(0.01)
                while adapter.engine.ready:  # the loop hears of the logout
                    await asyncio.sleep(0.01)
            await adapter.wait_ready(30)  # logged on again, on a new connection
        # stopped: our Logout to each session, answered by the venue

    assert is_patched(quickfix_version()), (
        f"quickfix {quickfix_version()} is the stock build: install the patched one (make install)"
    )
    asyncio.run(scenario())
    assert watch.logouts >= 3 and watch.checked >= 3  # TRADE, then TRADE again and QUOTE at the stop
    assert watch.taken == [], f"a socket opened during a logout got connection number(s) {watch.taken}"
    assert watch.closed_early == [], (
        f"connection number(s) {watch.closed_early} were closed before onLogout: the engine thread polls them"
    )
    open_after = watch.still_open()
    assert open_after == [], f"connection socket(s) {open_after} still open after the adapter stopped"

"""A socket QuickFIX closes itself at a logout (the venue's Logout, or ours answered) keeps its number until
the engine thread that polls it once more has ended: a socket the daemon opens right then (a Redis
connection) never gets that number, so the engine thread never reads another connection's bytes and
nothing is closed twice (connectors/fix/freed_numbers.py)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from typing import Any

import pytest

from fixadapter.api import Adapter
from fixadapter.connectors.fix.application import FixApplication
from fixadapter.connectors.fix.freed_numbers import FreedNumbers
from fixadapter.sim.process import SimProcess

from .conftest import ConfigFactory


class Watch:
    """The adapter's FIX connections (number and socket identity, noted at each connect), and, in each
    onLogout, what a socket opened right then would get from the number of a connection closed since."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.connections: dict[int, int] = {}  # number -> inode of the connection's socket
        self.logouts = 0
        self.checked = 0
        self.taken: list[int] = []  # connection numbers a socket opened in onLogout got

    def noted(self, numbers: set[int]) -> None:
        with self.lock:
            self.connections = {n: i for n, i in self.connections.items() if inode(n) == i}
            self.connections.update((number, inode(number)) for number in numbers)

    def opened_in_on_logout(self) -> None:
        with self.lock:
            self.logouts += 1
            for number, identity in list(self.connections.items()):
                if inode(number) == identity:
                    continue  # still that connection's socket
                del self.connections[number]  # closed since: this logout's
                self.checked += 1
                got = fcntl.fcntl(0, fcntl.F_DUPFD, number)  # the lowest free number from it
                os.close(got)
                if got == number:
                    self.taken.append(number)


def inode(number: int) -> int | None:
    try:
        return os.fstat(number).st_ino
    except OSError:
        return None


def test_a_socket_opened_while_a_session_logs_out_never_gets_the_number_of_its_connection(
    sim: SimProcess, make_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch = Watch()
    note, on_logout = FreedNumbers.note, FixApplication.onLogout

    def noting(self: FreedNumbers, numbers: set[int]) -> None:
        watch.noted(numbers)
        note(self, numbers)

    def opening(self: FixApplication, session_id: Any) -> None:
        watch.opened_in_on_logout()  # after the host's own onLogout work, as the daemon's loop would
        on_logout(self, session_id)

    monkeypatch.setattr(FreedNumbers, "note", noting)
    monkeypatch.setattr(FixApplication, "onLogout", opening)

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

    asyncio.run(scenario())
    assert watch.logouts >= 3 and watch.checked >= 3  # TRADE, then TRADE again and QUOTE at the stop
    assert watch.taken == [], f"a socket opened during a logout got connection number(s) {watch.taken}"

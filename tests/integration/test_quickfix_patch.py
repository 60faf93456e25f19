"""QuickFIX's own stop closes each connection's socket once, after that connection's thread is done
(patches/quickfix-1.16.0.patch). Stock QuickFIX closed it from the stopping thread, and the connection's
thread, on waking, closed the number again: by then whatever this process had opened under it (here a
descriptor taken the moment the number was free, as a Redis connection of the daemon would be)."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from typing import Any

import quickfix as fix

from fixadapter.connectors.fix.engine_build import is_patched, quickfix_version
from fixadapter.connectors.fix.engine_sockets import numbered_connections_to

from .test_fix_threads_at_exit import SilentServer

SETTINGS = """[DEFAULT]
ConnectionType=initiator
ReconnectInterval=60
StartTime=00:00:00
EndTime=00:00:00
HeartBtInt=30
UseDataDictionary=N
SocketConnectHost=127.0.0.1
SocketConnectPort={port}
[SESSION]
BeginString=FIX.4.4
SenderCompID=PATCH
TargetCompID=SILENT
"""


class Quiet(fix.Application):  # type: ignore[misc]
    def onCreate(self, sessionID: Any) -> None: ...  # noqa: N802, N803 - QuickFIX's names
    def onLogon(self, sessionID: Any) -> None: ...  # noqa: N802, N803
    def onLogout(self, sessionID: Any) -> None: ...  # noqa: N802, N803
    def toAdmin(self, message: Any, sessionID: Any) -> None: ...  # noqa: N802, N803
    def fromAdmin(self, message: Any, sessionID: Any) -> None: ...  # noqa: N802, N803
    def toApp(self, message: Any, sessionID: Any) -> None: ...  # noqa: N802, N803
    def fromApp(self, message: Any, sessionID: Any) -> None: ...  # noqa: N802, N803


def test_stopping_the_initiator_with_a_connection_open_never_closes_a_number_taken_since() -> None:
    assert is_patched(quickfix_version()), f"quickfix {quickfix_version()} is the stock build: make install"
    server = SilentServer()
    settings = fix.SessionSettings()
    settings.setFromString(SETTINGS.format(port=server.port))
    initiator = fix.ThreadedSocketInitiator(Quiet(), fix.MemoryStoreFactory(), settings)
    initiator.start()
    try:
        deadline = time.monotonic() + 30
        while not server.accepted:  # connected; its Logon is never answered
            assert time.monotonic() < deadline, "QuickFIX never connected"
            time.sleep(0.01)
        (number,) = numbered_connections_to({("127.0.0.1", server.port)})
        stopped = threading.Event()
        stopping = threading.Thread(target=lambda: (initiator.stop(), stopped.set()))
        stopping.start()

        spare = os.open(os.devnull, os.O_RDONLY)
        taken: list[tuple[int, int]] = []  # (descriptor, inode) of each copy that got the number
        while not stopped.is_set():  # take the connection's number the moment it is free
            got = fcntl.fcntl(spare, fcntl.F_DUPFD, number)
            if got == number:
                taken.append((got, os.fstat(got).st_ino))
                break
            os.close(got)
        stopping.join(30)
        assert not stopping.is_alive(), "the initiator's stop never returned"
        intact = [fd for fd, ino in taken if _inode(fd) == ino]
        assert intact == [fd for fd, _ in taken], f"descriptor {number}, taken while stopping, was closed"
        for fd, _ in taken:
            os.close(fd)
        os.close(spare)
        assert numbered_connections_to({("127.0.0.1", server.port)}) == {}, "a socket was left open"
    finally:
        server.close()


def _inode(number: int) -> int | None:
    try:
        return os.fstat(number).st_ino
    except OSError:
        return None

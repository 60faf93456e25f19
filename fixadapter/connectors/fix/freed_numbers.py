"""Keeping a socket number QuickFIX closed itself from being reused while its thread may still poll it.

When a logged-on session disconnects on its connection thread (our Logout answered, the venue's Logout, a
garbled logon), QuickFIX's Session::disconnect closes the socket (ThreadedSocketConnection::disconnect),
calls Application.onLogout, and the thread then polls that number once more before it notices the end
(select, then recv). Whatever this process opens in between (a Redis connection of the daemon) gets the
number: the thread polls it and reads its bytes, and the other connection hangs or fails with EBADF. So in
onLogout the host takes each number of its connections that is free again (F_DUPFD, never clobbering a
number someone holds) with a duplicate of a socket at end of stream, so the poll wakes, recv reads 0 and
the thread ends. The duplicate is closed once the thread that took it has ended (it polls it no more).
A number someone opened before onLogout ran (between QuickFIX's close and the callback getting the GIL)
is left alone: that moment is the window left, which only QuickFIX itself could close.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading

from fixadapter.connectors.fix.native_threads import TASKS

log = logging.getLogger("fixadapter.fix")


class FreedNumbers:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ended: socket.socket | None = None  # at end of stream; made at the first connection
        self._identity = (0, 0)
        self._connections: set[int] = set()  # numbers of this host's connections, as last seen open
        self._held: dict[int, int] = {}  # number held -> native id of the thread that may still poll it

    def note(self, numbers: set[int]) -> None:
        """The numbers of this host's connections open now (right after each connect)."""
        with self._lock:
            if self._ended is None:
                ended, peer = socket.socketpair()
                peer.close()  # what is left reads end of stream at once
                self._ended, self._identity = ended, _identity(ended.fileno())
            self._connections |= numbers

    def hold_freed(self) -> int:
        """Called in onLogout, on the thread that disconnected: hold every noted number that is free again
        until this thread has ended; returns how many were held."""
        thread = threading.get_native_id()
        held = 0
        with self._lock:
            if self._ended is None:
                return 0
            for number in sorted(self._connections):
                if _is_open(number):
                    continue
                self._connections.discard(number)
                try:
                    taken = fcntl.fcntl(self._ended.fileno(), fcntl.F_DUPFD, number)
                except OSError as exc:  # out of descriptors: as without the hold
                    log.debug("could not hold descriptor %d: %s", number, exc)
                    continue
                if taken != number:  # someone opened it first: theirs
                    os.close(taken)
                    continue
                self._held[number] = thread
                held += 1
        return held

    def release_ended(self) -> int:
        """Close each held number whose thread has ended; returns how many are still held."""
        if not os.path.isdir(TASKS):
            with self._lock:
                return len(self._held)  # which threads ended cannot be seen: held until close()
        with self._lock:
            for number, thread in list(self._held.items()):
                if os.path.exists(f"{TASKS}/{thread}"):
                    continue
                del self._held[number]
                self._close_if_ours(number)
            return len(self._held)

    def close(self, threads_ended: bool) -> None:
        """At the host's end: with every engine thread ended, close every number still held (those
        whose thread is not known to have ended stay open otherwise: a leak, never a double close)."""
        with self._lock:
            if threads_ended:
                for number in list(self._held):
                    self._close_if_ours(number)
                self._held.clear()
            self._connections.clear()
        self.release_ended()
        with self._lock:
            if self._ended is not None:
                self._ended.close()
                self._ended = None

    def held(self) -> set[int]:
        with self._lock:
            return set(self._held)

    def _close_if_ours(self, number: int) -> None:
        """Close `number` if it still is our duplicate (initiator.stop() may have closed it already,
        and the number may be someone else's since)."""
        try:
            if _identity(number) == self._identity:
                os.close(number)
        except OSError:
            pass


def _is_open(number: int) -> bool:
    try:
        os.fstat(number)
    except OSError:
        return False
    return True


def _identity(number: int) -> tuple[int, int]:
    status = os.fstat(number)
    return (status.st_dev, status.st_ino)

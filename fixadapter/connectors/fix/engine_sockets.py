"""Ending QuickFIX's connections from outside without closing a socket twice.

A connection thread of ThreadedSocketInitiator polls its socket and, when the stream ends, closes it itself
(once). Closing that socket from another thread (what `initiator.stop()` does, and `Session.disconnect()`
from Python) does not wake the poll on Linux; the thread later closes the number again or reads from whatever
this process opened under it meanwhile. Shutting the socket down instead wakes the thread with the end of the
stream, and the owner closes it.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
from collections.abc import Iterable

log = logging.getLogger("fixadapter.fix")

FDS = "/proc/self/fd"
Peer = tuple[str, int]


def resolve_peers(endpoints: Iterable[tuple[str, int]]) -> set[Peer]:
    """The addresses QuickFIX connects to (resolved once, when it starts: never at shutdown)."""
    peers: set[Peer] = set()
    for host, port in endpoints:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            log.debug("cannot resolve %s:%d (%s): its connection is left to the initiator", host, port, exc)
            continue
        peers.update((str(sockaddr[0]), int(sockaddr[1])) for *_, sockaddr in found)
    return peers


def shut_down_connections(peers: set[Peer]) -> int:
    """Shut down (not close) every socket of this process connected to one of `peers`; returns how many.
    Where the process's descriptors cannot be listed (not Linux), none."""
    try:
        names = os.listdir(FDS)
    except OSError:
        return 0
    count = 0
    for name in names:
        try:
            duplicate = os.dup(int(name))
        except (OSError, ValueError):
            continue  # closed since it was listed (or the listing's own descriptor)
        if _shut_if_connected_to(duplicate, peers):
            count += 1
    return count


def _shut_if_connected_to(duplicate: int, peers: set[Peer]) -> bool:
    """Takes `duplicate` (a dup: the original number is never closed here)."""
    try:
        if not stat.S_ISSOCK(os.fstat(duplicate).st_mode):
            os.close(duplicate)
            return False
        sock = socket.socket(fileno=duplicate)
    except OSError:
        os.close(duplicate)
        return False
    with sock:
        try:
            peer = sock.getpeername()
            if not isinstance(peer, tuple) or (str(peer[0]), int(peer[1])) not in peers:
                return False
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            return False
    return True

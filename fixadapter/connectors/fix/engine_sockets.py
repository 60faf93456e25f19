"""Ending QuickFIX's connections from outside without closing a socket twice.

A connection thread of ThreadedSocketInitiator polls its socket and, when the stream ends, closes it itself
(once). Closing that socket from another thread (what `initiator.stop()` does, and `Session.disconnect()`
from Python) does not wake the poll on Linux; the thread later closes the number again or reads from whatever
this process opened under it meanwhile. Shutting the socket down instead wakes the thread with the end of the
stream, and the owner closes it. Only this host's own connections: another initiator in the process
(a second Adapter on the same broker) keeps its own.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
from collections.abc import Iterable, Iterator

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


def connections_to(peers: set[Peer]) -> set[Peer]:
    """The local addresses of this process's sockets connected to one of `peers`."""
    return set(numbered_connections_to(peers).values())


def numbered_connections_to(peers: set[Peer]) -> dict[int, Peer]:
    """Descriptor number -> local address of this process's sockets connected to one of `peers`."""
    found: dict[int, Peer] = {}
    for number, sock in _sockets():
        with sock:
            local = _ends(sock, peers)
            if local is not None:
                found[number] = local
    return found


def shut_down_connections(peers: set[Peer], own: set[Peer]) -> int:
    """Shut down (not close) every socket of this process connected to one of `peers` from one of the
    local addresses `own`; returns how many. Where descriptors cannot be listed (not Linux), none."""
    count = 0
    for _number, sock in _sockets():
        with sock:
            local = _ends(sock, peers)
            if local is None or local not in own:
                continue
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue
            count += 1
    return count


def _sockets() -> Iterator[tuple[int, socket.socket]]:
    """Each socket of this process: its number, and a socket object on a duplicate of its descriptor
    (closing it never closes the original number)."""
    try:
        names = os.listdir(FDS)
    except OSError:
        return
    for name in names:
        try:
            duplicate = os.dup(int(name))
        except (OSError, ValueError):
            continue  # closed since it was listed (or the listing's own descriptor)
        try:
            if not stat.S_ISSOCK(os.fstat(duplicate).st_mode):
                os.close(duplicate)
                continue
            sock = socket.socket(fileno=duplicate)
        except OSError:
            os.close(duplicate)
            continue
        yield int(name), sock


def _ends(sock: socket.socket, peers: set[Peer]) -> Peer | None:
    """The socket's local address when it is connected to one of `peers`."""
    try:
        peer, local = sock.getpeername(), sock.getsockname()
    except OSError:
        return None
    if not isinstance(peer, tuple) or (str(peer[0]), int(peer[1])) not in peers:
        return None
    return (str(local[0]), int(local[1]))

"""Starting a QuickFIX acceptor on port 0 and on loopback only, which QuickFIX itself cannot do.

QuickFIX C++ 1.16 has no SocketAcceptHost (it binds every interface) and no way to ask an acceptor for
its port. Its listening socket is found among this process's descriptors instead (the one that appeared
while the acceptor started), its port is read from it, and for a loopback host it is tied to the
loopback device (SO_BINDTODEVICE), so connections from any other interface are refused. Linux only, as
the simulator's other process handling is.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import stat
from collections.abc import Callable

ANY_HOSTS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - every interface, when asked for explicitly
LOOPBACK_DEVICE = b"lo"


class ListenError(RuntimeError):
    """The acceptor's listening socket cannot be found or restricted."""


def check_host(host: str) -> None:
    """The hosts a QuickFIX acceptor can serve: loopback (via the device) or every interface."""
    if host in ANY_HOSTS or host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ListenError(
            f"the simulator's FIX ports can listen on loopback (127.0.0.1) or on every interface "
            f"(0.0.0.0), not on {host}: QuickFIX binds no single address"
        )


def listening_sockets() -> dict[int, int]:
    """Descriptor -> port of every listening TCP socket of this process."""
    found: dict[int, int] = {}
    for name in os.listdir("/proc/self/fd"):
        descriptor = int(name)
        try:
            if not stat.S_ISSOCK(os.fstat(descriptor).st_mode):
                continue
            with socket.socket(fileno=os.dup(descriptor)) as sock:
                if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
                    continue
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                    found[descriptor] = int(sock.getsockname()[1])
        except OSError:
            continue  # closed meanwhile, or not a socket we can inspect
    return found


def start_listening(start: Callable[[], None], host: str, what: str) -> int:
    """Run `start` (an acceptor's start()) and return the port it listens on, restricted to `host`."""
    check_host(host)
    before = listening_sockets()
    start()
    new = {fd: port for fd, port in listening_sockets().items() if before.get(fd) != port}
    if len(new) != 1:
        raise ListenError(
            f"{what}: expected one new listening socket after start, found {sorted(new.values())}"
        )
    ((descriptor, port),) = new.items()
    if host not in ANY_HOSTS:
        with socket.socket(fileno=os.dup(descriptor)) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, LOOPBACK_DEVICE)
    return port

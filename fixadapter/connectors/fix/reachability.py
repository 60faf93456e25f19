"""Why QuickFIX cannot connect, in words: the engine itself only logs "Connection failed".

A plain session's log says "Connecting to HOST on port PORT" before each attempt and "Initiated logon
request" once the TCP connection is up and our Logon went out; the engine's own log says "Connection
succeeded" or "Connection failed" (QuickFIX 1.16's ThreadedSocketInitiator names no session there).
After a failed attempt (the engine says so, or the next attempt starts with no success in between) one
TCP connection of our own to the same address tells why: refused (nothing listens there), no answer
within the timeout (a firewall, a wrong host or port), or a name that does not resolve. The cause is
logged once per session until it changes or the session connects, and reported to the connector as the
session's last text (what /readyz and a refused order say). TLS sessions connect to a loopback forwarder,
which reports its own failures (tls/forwarder.py); this never probes those: a probe there would be taken
for QuickFIX's connection (the forwarder relays one at a time), open a TLS connection to the broker and
get QuickFIX's own connection refused, which then reads as a logon the venue closed without a word.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
from collections.abc import Callable, Iterable

from fixadapter.connectors.fix.kinds import SessionKind

log = logging.getLogger("fixadapter.fix")

CONNECTING = re.compile(r"Connecting to (\S+) on port (\d+)")
# A session's own words for a connection that is up: older QuickFIX says "Connection succeeded" in the
# session's log; every version says "Initiated logon request" once it sent our Logon on the connection.
CONNECTED = ("Connection succeeded", "Initiated logon request")
PROBE_TIMEOUT_SECONDS = 5.0

Report = Callable[[SessionKind, str], None]  # (session, the cause in words)
Probe = Callable[[str, int, float], str | None]  # why (host, port) cannot be reached; None: it can


def probe(host: str, port: int, timeout: float) -> str | None:
    """One TCP connection to (host, port), closed at once: None when it connects, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except ConnectionRefusedError:
        return "connection refused (nothing listens there)"
    except TimeoutError:
        return (
            f"no answer within {timeout:g} s (a firewall, a wrong host or port, or an IP the broker "
            "does not allow)"
        )
    except socket.gaierror as exc:
        return f"the host name does not resolve ({exc.strerror})"
    except OSError as exc:
        return str(exc.strerror or exc)


def explain(kind: SessionKind, host: str, port: int, cause: str) -> str:
    """What the log and /readyz say: what failed, where, and what to check."""
    return (
        f"cannot connect to {host}:{port}: {cause}; check account.host and account.{kind.value.lower()}_port "
        "against the broker's FIX credentials form, and that the server (or `fixadapter simulate`) is running"
    )


class Reachability:
    """Follows the connection attempts of one account's plain sessions; thread-safe (QuickFIX threads)."""

    def __init__(
        self,
        report: Report,
        *,
        sessions: Iterable[SessionKind] = tuple(SessionKind),
        prober: Probe = probe,
        timeout: float = PROBE_TIMEOUT_SECONDS,
    ) -> None:
        """`sessions`: the plain ones, whose attempts this follows (the others' events are ignored)."""
        self._report = report
        self._sessions = frozenset(sessions)
        self._prober = prober
        self._timeout = timeout
        self._lock = threading.Lock()
        self._pending: dict[SessionKind, tuple[str, int]] = {}  # attempts with no success yet
        self._probing: set[SessionKind] = set()
        self._told: dict[SessionKind, str] = {}

    def event(self, kind: SessionKind | None, text: str) -> None:
        """An event line of a session's log (kind) or of the engine's own log (None); never raises."""
        if kind is None:
            if text.startswith("Connection failed"):
                self._probe_pending()
            return
        if kind not in self._sessions:  # behind a TLS forwarder: it says why itself
            return
        if text.startswith(CONNECTED):
            with self._lock:
                self._pending.pop(kind, None)
            return
        found = CONNECTING.match(text)
        if found is None:
            return
        target = (found.group(1), int(found.group(2)))
        with self._lock:
            failed_before = self._pending.get(kind)
            self._pending[kind] = target
        if failed_before is not None:  # the previous attempt never succeeded
            self._start_probe(kind, failed_before)

    def connected(self, kind: SessionKind) -> None:
        """The session logged on: a later failure is told again."""
        with self._lock:
            self._pending.pop(kind, None)
            self._told.pop(kind, None)

    def last_cause(self, kind: SessionKind) -> str | None:
        with self._lock:
            return self._told.get(kind)

    def _probe_pending(self) -> None:
        with self._lock:
            pending = list(self._pending.items())
        for kind, target in pending:
            self._start_probe(kind, target)

    def _start_probe(self, kind: SessionKind, target: tuple[str, int]) -> None:
        with self._lock:
            if kind in self._probing:
                return
            self._probing.add(kind)
        threading.Thread(
            target=self._probe, args=(kind, target), name=f"fix-probe-{kind.value}", daemon=True
        ).start()

    def _probe(self, kind: SessionKind, target: tuple[str, int]) -> None:
        try:
            cause = self._prober(target[0], target[1], self._timeout)
            if cause is None:  # it answers now: the next attempt tells
                return
            cause = explain(kind, target[0], target[1], cause)
            with self._lock:
                if self._told.get(kind) == cause or kind not in self._pending:
                    return
                self._told[kind] = cause
            log.warning("%s: %s; retrying", kind.value, cause)
            self._report(kind, cause)
        except Exception:
            log.exception("%s: cannot tell why the connection failed", kind.value)
        finally:
            with self._lock:
                self._probing.discard(kind)

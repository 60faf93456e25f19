"""One QuickFIX initiator for the QUOTE and TRADE sessions of every account the process trades.

QuickFIX takes one Application and one LogFactory per initiator, so the host hands each callback to the
account its session belongs to, told apart by SenderCompID and TargetCompID (the config keeps them
distinct). Each account joins when its connector starts and the initiator starts once every expected
account has joined: no session logs on before its account's engine is there to hear it. An account that
leaves is logged out alone; the initiator stops when the last one has left.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import quickfix as fix

from fixadapter.config import AccountConfig, AdapterConfig
from fixadapter.connectors.fix.application import EngineLog, EngineLogFactory, FixApplication
from fixadapter.connectors.fix.engine_build import is_patched, quickfix_version
from fixadapter.connectors.fix.engine_sockets import (
    Peer,
    connections_to,
    numbered_connections_to,
    resolve_peers,
    shut_down_connections,
)
from fixadapter.connectors.fix.freed_numbers import FreedNumbers
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.connectors.fix.native_threads import (
    ConnectionThreads,
    native_threads,
    wait_for_native_threads,
)
from fixadapter.connectors.fix.settings import render_settings
from fixadapter.errors import ConfigError, SessionError

log = logging.getLogger("fixadapter.fix")

LOGOUT_POLL_SECONDS = 0.02
NATIVE_THREADS_EXIT_SECONDS = (
    5.0  # after stop(): QuickFIX's detached threads leave Python (native_threads.py)
)


@dataclass
class Seat:
    """One account's part of the initiator: where its callbacks and log lines go."""

    name: str
    account: AccountConfig
    application: FixApplication
    logs: EngineLogFactory
    connect: dict[SessionKind, tuple[str, int]] = field(default_factory=dict)


class FixHost:
    """Owns the ThreadedSocketInitiator (one native thread per session, reconnecting by itself)."""

    def __init__(self, config: AdapterConfig, names: Sequence[str] | None = None) -> None:
        """`names`: the accounts that will join (default: every configured account)."""
        self._config = config
        self._expected = list(names if names is not None else config.account_names)
        for name in self._expected:
            config.account(name)  # ConfigError for a name the config does not have
        self._lock = threading.Lock()
        self._seats: dict[str, Seat] = {}
        self._by_comp_ids: dict[tuple[str, str], Seat] = {}
        self._session_ids: dict[str, dict[SessionKind, fix.SessionID]] = {}
        self._active: set[str] = set()
        self._initiator: fix.ThreadedSocketInitiator | None = None
        self._application = _Dispatch(self)
        self._log_factory = _DispatchLogs(self)
        self._store_factory = fix.MemoryStoreFactory()
        self._native_before: set[int] | None = None  # native threads before the initiator started
        self.connection_threads = ConnectionThreads()
        self._peers: set[Peer] = set()  # where the sessions connect (the forwarders, for TLS)
        self._foreign: set[Peer] = set()  # local ends already connected there before this host started
        self._own: set[Peer] = set()  # local ends of this host's connections
        self.freed_numbers = FreedNumbers()  # numbers QuickFIX closed and may still poll (freed_numbers.py)

    @property
    def expected(self) -> list[str]:
        return list(self._expected)

    def join(self, seat: Seat) -> None:
        """Blocking (call from a worker thread): the last expected account to join starts the initiator."""
        with self._lock:
            if seat.name not in self._expected:
                raise ConfigError(f"account {seat.name} is not one this FIX host was built for")
            if seat.name in self._seats or self._initiator is not None:
                raise SessionError(f"account {seat.name} has already joined the FIX initiator")
            self._seats[seat.name] = seat
            self._by_comp_ids[(seat.account.sender_comp_id, seat.account.target_comp_id)] = seat
            self._active.add(seat.name)
            if len(self._seats) == len(self._expected):
                self._start_locked()

    def _start_locked(self) -> None:
        connect = {name: seat.connect for name, seat in self._seats.items()}
        settings = fix.SessionSettings()
        try:
            settings.setFromString(render_settings(self._config, connect, self._expected))
        except fix.ConfigError as exc:
            raise ConfigError(f"QuickFIX refused the session settings: {exc}") from exc
        self._peers = resolve_peers(
            (
                settings.get(sid).getString("SocketConnectHost"),
                int(settings.get(sid).getString("SocketConnectPort")),
            )
            for sid in settings.getSessions()
        )
        self._foreign = connections_to(self._peers)
        for sid in settings.getSessions():
            seat = self._by_comp_ids[(sid.getSenderCompID().getValue(), sid.getTargetCompID().getValue())]
            self._session_ids.setdefault(seat.name, {})[SessionKind(sid.getSessionQualifier())] = sid
        self._application.freeze(self._by_comp_ids)
        try:
            initiator = fix.ThreadedSocketInitiator(
                self._application, self._store_factory, settings, self._log_factory
            )
            self._native_before = native_threads()
            initiator.start()
        except (fix.ConfigError, fix.RuntimeError) as exc:
            raise SessionError(f"cannot start the FIX initiator: {exc}") from exc
        self._initiator = initiator
        log.info("FIX initiator started for %s", ", ".join(self._expected))
        version = quickfix_version()
        if not is_patched(version):
            log.warning(
                "quickfix %s is not fixadapter's patched build: a socket it closes at a logout can be polled "
                "and closed again after this process reused its number (a Redis reply lost, EBADF); "
                "install the patched build: python scripts/build_quickfix.py (make install runs it)",
                version,
            )

    def session_id(self, name: str, kind: SessionKind) -> fix.SessionID | None:
        """The account's session, None before the initiator started."""
        return self._session_ids.get(name, {}).get(kind)

    def first_seat(self) -> Seat:
        return self._seats[self._expected[0]]

    def seat_of(self, session_id: fix.SessionID) -> Seat | None:
        key = (session_id.getSenderCompID().getValue(), session_id.getTargetCompID().getValue())
        return self._by_comp_ids.get(key)

    def engine_event(self, text: str) -> None:
        """Every event QuickFIX logs, on the thread that logs it: which threads carry connections, and
        (right after a connect) which local ends are this host's."""
        self.connection_threads.saw(text)
        if text.startswith("Connection succeeded"):
            numbered = numbered_connections_to(self._peers)
            found = {local: number for number, local in numbered.items() if local not in self._foreign}
            with self._lock:
                self._own |= set(found)
            self.freed_numbers.note(set(found.values()))
            self.freed_numbers.release_ended()

    def leave(self, name: str, logout_timeout: float = 5.0) -> None:
        """Log out the account's sessions and wait for them (blocking: call from a worker thread); the
        last account to leave ends every connection still open, waits until each connection thread has
        ended, and only then stops the initiator (see engine_sockets.py and ConnectionThreads: stopping it
        earlier closes a socket twice, the second time on a Redis or HTTP socket of the daemon)."""
        sessions = [
            session
            for session in (
                fix.Session.lookupSession(sid) for sid in self._session_ids.get(name, {}).values()
            )
            if session is not None
        ]
        connected = [session for session in sessions if session.isLoggedOn()]
        for session in sessions:
            session.logout()  # also disables it: the initiator does not reconnect a disabled session
        deadline = time.monotonic() + logout_timeout
        while any(session.isLoggedOn() for session in connected) and time.monotonic() < deadline:
            time.sleep(LOGOUT_POLL_SECONDS)
        if not self._application.disconnects_done(logout_timeout):
            log.warning("a session is still being disconnected after %g s; stopping anyway", logout_timeout)
        with self._lock:
            self._active.discard(name)
            initiator = self._initiator if not self._active else None
            if initiator is not None:
                self._initiator = None
        if initiator is not None:
            # Any still open (a Logout unanswered): shut down, each thread closes its own.
            shut_down_connections(self._peers, self._own)
            left = self.connection_threads.wait_ended(logout_timeout)
            if left:
                log.warning(
                    "%d FIX connection thread(s) still running %g s after their connections were shut down",
                    len(left),
                    logout_timeout,
                )
            initiator.stop()
            left = wait_for_native_threads(self._native_before, NATIVE_THREADS_EXIT_SECONDS)
            if left:
                log.warning(
                    "%d native thread(s) still running %g s after the FIX initiator stopped",
                    len(left),
                    NATIVE_THREADS_EXIT_SECONDS,
                )
            self.freed_numbers.close(threads_ended=not left)


class _Dispatch(fix.Application):  # type: ignore[misc]
    """Each callback to the application of the account whose session it is (what that one raises, e.g.
    DoNotSend, goes back to QuickFIX unchanged)."""

    def __init__(self, host: FixHost) -> None:
        super().__init__()
        self._host = host
        self._only: FixApplication | None = None
        self._lock = threading.Lock()
        self._disconnecting = 0  # engine threads inside onLogout: their connection is ending

    def disconnects_done(self, timeout: float) -> bool:
        """Wait until no engine thread is inside onLogout (a connection the server ended, its thread still
        telling us): stopping the initiator meanwhile closes that socket a second time, on whatever file
        this process opened under its number since (a compliance file, a Redis socket: EBADF)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if not self._disconnecting:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(LOGOUT_POLL_SECONDS)

    def freeze(self, seats: dict[tuple[str, str], Seat]) -> None:
        """With one account, no lookup per message (the common case)."""
        self._only = next(iter(seats.values())).application if len(seats) == 1 else None

    def _app(self, session_id: fix.SessionID) -> FixApplication | None:
        if self._only is not None:
            return self._only
        seat = self._host.seat_of(session_id)
        if seat is None:
            log.error("QuickFIX called back for session %s, of no account here", session_id.toString())
            return None
        return seat.application

    def onCreate(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803 - QuickFIX's names
        app = self._app(sessionID)
        if app is not None:
            app.onCreate(sessionID)

    def onLogon(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        app = self._app(sessionID)
        if app is not None:
            app.onLogon(sessionID)

    def onLogout(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        try:
            self._host.freed_numbers.hold_freed()  # first: the socket was closed just before this call
        except Exception:  # nothing may escape into QuickFIX (it would abort the process)
            log.exception("holding the descriptors of closed FIX connections failed")
        with self._lock:
            self._disconnecting += 1
        try:
            app = self._app(sessionID)
            if app is not None:
                app.onLogout(sessionID)
        finally:
            with self._lock:
                self._disconnecting -= 1

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        app = self._app(sessionID)
        if app is not None:
            app.toAdmin(message, sessionID)

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        app = self._app(sessionID)
        if app is not None:
            app.toApp(message, sessionID)

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        app = self._app(sessionID)
        if app is not None:
            app.fromAdmin(message, sessionID)

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        app = self._app(sessionID)
        if app is not None:
            app.fromApp(message, sessionID)


class _DispatchLogs(fix.LogFactory):  # type: ignore[misc]
    """A session's log from its account's factory; the engine's own log from the first account's."""

    def __init__(self, host: FixHost) -> None:
        super().__init__()
        self._host = host

    def create(self, *args: fix.SessionID) -> EngineLog:
        try:
            seat = self._host.seat_of(args[0]) if args else None
        except Exception:  # a raise here would end the process: the first account's log takes it
            log.exception("cannot tell whose log QuickFIX asks for")
            seat = None
        made = (seat or self._host.first_seat()).logs.create(*args)
        made.watch_events(self._host.engine_event)
        return made

    def destroy(self, made: EngineLog) -> None:
        del made  # the Python object stays alive in its factory until the factory goes

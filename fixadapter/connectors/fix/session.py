"""The QuickFIX initiator for one account's QUOTE and TRADE sessions, and sending by int tag."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import quickfix as fix

from fixadapter.config import AdapterConfig
from fixadapter.connectors.fix.application import (
    EngineLogFactory,
    FixApplication,
    MessageLog,
    session_kind,
)
from fixadapter.connectors.fix.logon_retry import LogonRetry, RefusalPolicy
from fixadapter.connectors.fix.market_codec import RepeatingGroup
from fixadapter.connectors.fix.settings import render_settings
from fixadapter.connectors.fix.wire import Pair
from fixadapter.errors import ConfigError, SessionError
from fixadapter.metrics import Metrics
from fixadapter.model.enums import SessionKind
from fixadapter.tls.forwarder import LOOPBACK, TlsForwarders

log = logging.getLogger("fixadapter.fix")

LOGOUT_POLL_SECONDS = 0.02
# After a session reports logged out its engine thread still has to forget the socket (C++ only, no GIL).
THREAD_UNWIND_SECONDS = 0.2


class FixSessions:
    """Owns the ThreadedSocketInitiator: one native thread per session, reconnecting by itself."""

    def __init__(
        self,
        config: AdapterConfig,
        application: FixApplication,
        metrics: Metrics,
        recorder: MessageLog | None = None,
    ) -> None:
        """`recorder` receives every message of both sessions from the Log (the compliance record)."""
        self._forwarders = TlsForwarders.for_account(config.account, metrics, application.transport_failed)
        connect = {
            kind: (LOOPBACK, self._forwarders.local_port(kind))
            for kind in SessionKind
            if kind in self._forwarders
        }
        settings = fix.SessionSettings()
        try:
            settings.setFromString(render_settings(config, connect))
        except fix.ConfigError as exc:
            self._forwarders.stop()
            raise ConfigError(f"QuickFIX refused the session settings: {exc}") from exc
        except ConfigError:
            self._forwarders.stop()
            raise
        self._settings = settings
        self._application = application
        self._log_factory = EngineLogFactory(
            metrics, messages=config.logging.fix_messages, on_lost=application.message_lost, recorder=recorder
        )
        self._store_factory = fix.MemoryStoreFactory()
        self._session_ids: dict[SessionKind, fix.SessionID] = {
            session_kind(sid): sid for sid in settings.getSessions()
        }
        self._initiator: fix.ThreadedSocketInitiator | None = None
        self.logon_retry = LogonRetry(RefusalPolicy.for_account(config.account), metrics, self._set_enabled)
        application.set_logon_retry(self.logon_retry)

    def start(self) -> None:
        """The TLS forwarders first: QuickFIX connects to them as soon as it starts."""
        self._forwarders.start()
        try:
            self._initiator = fix.ThreadedSocketInitiator(
                self._application, self._store_factory, self._settings, self._log_factory
            )
            self._initiator.start()
        except (fix.ConfigError, fix.RuntimeError) as exc:
            self._forwarders.stop()
            raise SessionError(f"cannot start the FIX initiator: {exc}") from exc

    def stop(self, logout_timeout: float = 5.0) -> None:
        """Log out both sessions and wait for the engine threads (blocking: call from a worker thread).

        The sessions are logged out and seen disconnected before `initiator.stop()`. Left to stop(),
        QuickFIX 1.16 can close a session's socket a second time (ThreadedSocketInitiator::onStop closes
        every socket its threads have not yet forgotten, after the session already closed its own), and
        that second close lands on whatever this process opened meanwhile under the same number: a Redis
        or HTTP socket of the daemon, which then fails with EBADF."""
        self.logon_retry.close()  # no timer may enable a session again while it stops
        if self._initiator is None:
            self._forwarders.stop()
            return
        sessions = [
            session
            for session in (fix.Session.lookupSession(sid) for sid in self._session_ids.values())
            if session is not None
        ]
        connected = [session for session in sessions if session.isLoggedOn()]
        for session in sessions:
            session.logout()  # also disables it: the initiator does not reconnect a disabled session
        deadline = time.monotonic() + logout_timeout
        while any(session.isLoggedOn() for session in connected) and time.monotonic() < deadline:
            time.sleep(LOGOUT_POLL_SECONDS)
        if connected:
            time.sleep(THREAD_UNWIND_SECONDS)
        self._initiator.stop()
        self._initiator = None
        self._forwarders.stop()  # after QuickFIX let go of its loopback connections

    def _set_enabled(self, kind: SessionKind, enabled: bool) -> None:
        """A disabled session is not connected by the initiator; logout() is QuickFIX's way to disable."""
        session = fix.Session.lookupSession(self._session_ids[kind])
        if session is None:
            return
        if enabled:
            session.logon()
        else:
            session.logout()

    def is_enabled(self, kind: SessionKind) -> bool:
        """False while the session waits after a refused logon, or has given up."""
        session = fix.Session.lookupSession(self._session_ids[kind])
        return bool(session is not None and session.isEnabled())

    def is_logged_on(self, kind: SessionKind) -> bool:
        session = fix.Session.lookupSession(self._session_ids[kind])
        return bool(session is not None and session.isLoggedOn())

    def send(
        self, kind: SessionKind, msg_type: str, body: Iterable[Pair], groups: Iterable[RepeatingGroup] = ()
    ) -> bool:
        """Build with integer tags (typed field classes cost 15-30 µs each in the binding) and send."""
        message = fix.Message()
        message.getHeader().setField(35, msg_type)
        for tag, value in body:
            message.setField(tag, value)
        for count_tag, delimiter, entries in groups:
            for entry in entries:
                group = fix.Group(count_tag, delimiter)
                for tag, value in entry:
                    group.setField(tag, value)
                message.addGroup(group)
        try:
            return bool(fix.Session.sendToTarget(message, self._session_ids[kind]))
        except fix.SessionNotFound as exc:
            raise SessionError(f"{kind.value} session is not defined: {exc}") from exc

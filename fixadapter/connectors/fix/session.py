"""One account's QUOTE and TRADE sessions on the shared initiator (connectors/fix/host.py): its TLS
forwarders, its logon retry policy, and sending by int tag."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import quickfix as fix

from fixadapter.config import AccountConfig
from fixadapter.connectors.base import WireRecorder
from fixadapter.connectors.fix.application import EngineLogFactory, FixApplication
from fixadapter.connectors.fix.host import FixHost, Seat
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.connectors.fix.logon_retry import LogonRetry, RefusalPolicy
from fixadapter.connectors.fix.market_codec import RepeatingGroup
from fixadapter.connectors.fix.reachability import Reachability
from fixadapter.connectors.fix.wire import Pair
from fixadapter.errors import SessionError
from fixadapter.metrics import Metrics
from fixadapter.tls.forwarder import LOOPBACK, TlsForwarders

log = logging.getLogger("fixadapter.fix")


class FixSessions:
    def __init__(
        self,
        name: str,
        account: AccountConfig,
        host: FixHost,
        application: FixApplication,
        metrics: Metrics,
        *,
        messages: bool = False,
        recorder: WireRecorder | None = None,
        record_as: str = "",
    ) -> None:
        """`recorder` receives every message of both sessions from the Log (the compliance record), under
        the session names `record_as` + QUOTE/TRADE."""
        self._name = name
        self._host = host
        self._forwarders = TlsForwarders.for_account(account, metrics, application.transport_failed)
        connect = {
            kind: (LOOPBACK, self._forwarders.local_port(kind))
            for kind in SessionKind
            if kind in self._forwarders
        }
        plain = [kind for kind in SessionKind if kind not in self._forwarders]
        self.reachability = Reachability(application.transport_failed, sessions=plain)
        application.set_reachability(self.reachability)
        logs = EngineLogFactory(
            metrics,
            messages=messages,
            on_lost=application.message_lost,
            recorder=recorder,
            record_as=record_as,
            reachability=self.reachability,
        )
        self._seat = Seat(name, account, application, logs, connect)
        self.logon_retry = LogonRetry(RefusalPolicy.for_account(account), metrics, self._set_enabled)
        application.set_logon_retry(self.logon_retry)

    def start(self) -> None:
        """Blocking. The TLS forwarders first: QuickFIX connects to them as soon as it starts."""
        self._forwarders.start()
        try:
            self._host.join(self._seat)
        except BaseException:
            self._forwarders.stop()
            raise

    def stop(self, logout_timeout: float = 5.0) -> None:
        """Log out both sessions and wait for them (blocking: call from a worker thread)."""
        self.logon_retry.close()  # no timer may enable a session again while it stops
        try:
            self._host.leave(self._name, logout_timeout)
        finally:
            self._forwarders.stop()  # after QuickFIX let go of its loopback connections

    def _session(self, kind: SessionKind) -> fix.Session | None:
        sid = self._host.session_id(self._name, kind)
        return fix.Session.lookupSession(sid) if sid is not None else None

    def _set_enabled(self, kind: SessionKind, enabled: bool) -> None:
        """A disabled session is not connected by the initiator; logout() is QuickFIX's way to disable."""
        session = self._session(kind)
        if session is None:
            return
        if enabled:
            session.logon()
        else:
            session.logout()

    def is_enabled(self, kind: SessionKind) -> bool:
        """False while the session waits after a refused logon, or has given up."""
        session = self._session(kind)
        return bool(session is not None and session.isEnabled())

    def is_logged_on(self, kind: SessionKind) -> bool:
        session = self._session(kind)
        return bool(session is not None and session.isLoggedOn())

    def send(
        self, kind: SessionKind, msg_type: str, body: Iterable[Pair], groups: Iterable[RepeatingGroup] = ()
    ) -> bool:
        """Build with integer tags (typed field classes cost 15-30 µs each in the binding) and send."""
        sid = self._host.session_id(self._name, kind)
        if sid is None:
            return False
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
            return bool(fix.Session.sendToTarget(message, sid))
        except fix.SessionNotFound as exc:
            raise SessionError(f"{kind.value} session is not defined: {exc}") from exc

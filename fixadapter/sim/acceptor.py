"""What both simulated CSERVER ports share: cTrader's logon checks and header rules, strict validation.

QuickFIX finds an acceptor session by CompIDs alone, and QUOTE and TRADE share them, so each port
runs in its own process with its own acceptor (see runner.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import quickfix as fix

from fixadapter.connectors.fix import tags as t
from fixadapter.connectors.fix.settings import resolve_path
from fixadapter.logs import mask_secrets
from fixadapter.model.enums import SessionKind
from fixadapter.sim.config import SimConfig

log = logging.getLogger("fixadapter.sim")
Pair = tuple[int, str]
REJECTED_LOGON_PREFIX = "Rejected Logon Attempt: "
RepeatingGroup = tuple[int, int, list[list[Pair]]]  # count tag, delimiter tag, entries
Handler = Callable[[str, str, "fix.SessionID"], None]
SessionHook = Callable[["fix.SessionID"], None]


def acceptor_settings(config: SimConfig, kind: SessionKind) -> fix.SessionSettings:
    text = f"""[DEFAULT]
ConnectionType=acceptor
BeginString=FIX.4.4
SenderCompID={config.comp_id}
StartTime=00:00:00
EndTime=00:00:00
UseDataDictionary=Y
DataDictionary={resolve_path(config.dictionary)}
ValidateUserDefinedFields=Y
AllowUnknownMsgFields=N
ValidateFieldsOutOfOrder=N
ResetOnLogon=Y
ResetOnLogout=Y
ResetOnDisconnect=Y
PersistMessages=N
CheckLatency=N
SocketNodelay=Y
SocketReuseAddress=Y
TimestampPrecision=3
[SESSION]
TargetCompID={config.sender_comp_id}
SocketAcceptHost={config.host}
SocketAcceptPort={config.port(kind)}
"""
    settings = fix.SessionSettings()
    settings.setFromString(text)
    return settings


class CServerApplication(fix.Application):  # type: ignore[misc]
    """Logon as cTrader checks it; 50/57 stamped on everything; `handler` answers application messages."""

    def __init__(
        self, config: SimConfig, kind: SessionKind, handler: Handler, on_logout: SessionHook | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.kind = kind
        self._handler = handler
        self._on_logout = on_logout
        self._client_sub_id: dict[str, str] = {}
        self.session_id: fix.SessionID | None = None
        self.logons = 0
        self.logons_refused = 0  # Logon answered with a Logout: what a broker counts toward a lock

    def onCreate(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        self.session_id = sessionID

    def onLogon(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        self.logons += 1
        log.info("%s: client logged on", self.kind.value)

    def onLogout(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        """Also called by QuickFIX when a logged-on session disconnects: `on_logout` ends its state."""
        log.info("%s: client logged out", self.kind.value)
        if self._on_logout is not None:
            try:
                self._on_logout(sessionID)
            except Exception:
                log.exception("%s: logout hook failed", self.kind.value)

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        try:
            self._stamp(message, sessionID)
            if message.getHeader().getField(t.MSG_TYPE) == "5" and message.isSetField(t.TEXT):
                # QuickFIX prefixes a refused logon's reason; cTrader sends the bare reason.
                text = message.getField(t.TEXT)
                message.setField(t.TEXT, text.removeprefix(REJECTED_LOGON_PREFIX))
        except Exception:
            log.exception("toAdmin failed")

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        try:
            self._stamp(message, sessionID)
        except Exception:
            log.exception("toApp failed")

    def _stamp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        header = message.getHeader()
        header.setField(t.SENDER_SUB_ID, self.kind.value)
        client = self._client_sub_id.get(session_id.toString())
        if client:
            header.setField(t.TARGET_SUB_ID, client)

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        try:
            header = message.getHeader()
            if header.getField(t.MSG_TYPE) != "A":
                return
            reason = self._logon_refusal(message)
            if reason is None and header.isSetField(t.SENDER_SUB_ID):
                self._client_sub_id[sessionID.toString()] = header.getField(t.SENDER_SUB_ID)
        except Exception:
            log.exception("%s: failed to read a logon; refusing it", self.kind.value)
            reason = "InternalError: RET_INVALID_DATA"
        if reason is not None:  # the one exception QuickFIX expects from here: it sends the Logout
            self.logons_refused += 1
            log.warning("%s: logon refused: %s", self.kind.value, reason)
            raise fix.RejectLogon(reason)

    def _logon_refusal(self, message: fix.Message) -> str | None:
        header = message.getHeader()
        expected = self.kind.value
        sub_id = header.getField(t.TARGET_SUB_ID) if header.isSetField(t.TARGET_SUB_ID) else ""
        if sub_id != expected:
            return f"TargetSubID is assigned with the unexpected value '{sub_id}', expected '{expected}'"
        if not message.isSetField(t.USERNAME):
            return "InternalError: RET_INVALID_DATA"
        if message.getField(t.USERNAME) != self.config.username:
            return "RET_NO_SUCH_LOGIN"
        password = message.getField(t.PASSWORD) if message.isSetField(t.PASSWORD) else ""
        if password != self.config.password.get_secret_value():
            return "InternalError: RET_INVALID_DATA"
        return None

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        try:
            raw = message.toString()
            self._handler(message.getHeader().getField(t.MSG_TYPE), raw, sessionID)
        except Exception:
            log.exception("%s: failed to handle %s", self.kind.value, mask_secrets(message.toString()))

    def send(
        self,
        msg_type: str,
        body: Iterable[Pair],
        groups: Iterable[RepeatingGroup] = (),
        session_id: fix.SessionID | None = None,
    ) -> bool:
        target = session_id or self.session_id
        if target is None:
            return False
        message = fix.Message()
        message.getHeader().setField(t.MSG_TYPE, msg_type)
        for tag, value in body:
            message.setField(tag, value)
        for count_tag, delimiter, entries in groups:
            for entry in entries:
                group = fix.Group(count_tag, delimiter)
                for tag, value in entry:
                    group.setField(tag, value)
                message.addGroup(group)
        try:
            return bool(fix.Session.sendToTarget(message, target))
        except fix.SessionNotFound:
            return False

    def logged_on(self) -> bool:
        session = fix.Session.lookupSession(self.session_id) if self.session_id else None
        return bool(session is not None and session.isLoggedOn())

    def force_logout(self, reason: str) -> None:
        """A server-initiated Logout; unlike Session.logout() it leaves the session open to the next logon."""
        if self.logged_on():
            self.send("5", [(t.TEXT, reason)])

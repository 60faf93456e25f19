"""What both simulated CSERVER ports share: cTrader's logon checks and header rules, strict validation.

QuickFIX finds an acceptor session by CompIDs alone, and QUOTE and TRADE share them, so each port
runs in its own process with its own acceptor (see runner.py). cTrader answers in the TargetCompID case
the client used (CSERVER, cServer, CServer: reference 1.4), so each spelling is a session of its own and
QuickFIX's answers carry the client's spelling in 49.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

import quickfix as fix

from fixadapter.connectors.fix import tags as t
from fixadapter.connectors.fix.settings import resolve_path
from fixadapter.logs import mask_secrets
from fixadapter.model.enums import SessionKind
from fixadapter.sim.config import SimConfig
from fixadapter.sim.trade_front import alias

log = logging.getLogger("fixadapter.sim")
Pair = tuple[int, str]
REJECTED_LOGON_PREFIX = "Rejected Logon Attempt: "
RepeatingGroup = tuple[int, int, list[list[Pair]]]  # count tag, delimiter tag, entries
Handler = Callable[[str, str, "fix.SessionID"], None]
SessionHook = Callable[["fix.SessionID"], None]
COMP_ID_SPELLINGS = ("CSERVER", "cServer", "CServer")  # seen on credentials forms and in captures


def comp_ids(config: SimConfig, slots: int = 1) -> list[str]:
    """The server CompIDs a client may address: the configured one and cTrader's spellings of it, each
    with the aliases a front gives to more connections of one account (trade_front.py)."""
    spellings = COMP_ID_SPELLINGS if config.comp_id.upper() == "CSERVER" else ()
    names = list(dict.fromkeys([config.comp_id, *spellings]))
    return [alias(name, slot) for name in names for slot in range(1, slots + 1)]


def acceptor_settings(
    config: SimConfig, kind: SessionKind, port: int | None = None, slots: int = 1
) -> fix.SessionSettings:
    """`port` instead of the configured one (a front serves that), `slots` sessions per CompID pair."""
    accept_port = config.port(kind) if port is None else port
    sessions = "".join(
        f"[SESSION]\nSenderCompID={comp_id}\nTargetCompID={config.sender_comp_id}\n"
        f"SocketAcceptPort={accept_port}\n"
        for comp_id in comp_ids(config, slots)
    )
    text = f"""[DEFAULT]
ConnectionType=acceptor
BeginString=FIX.4.4
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
{sessions}"""
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
        # A refused logon's Logout is stamped as cTrader does: 50 = the qualifier the client asked for (its
        # 57), 57 = the client's 50, whatever port it came to.
        self._refused_sub_ids: dict[str, tuple[str, str]] = {}
        self._sessions: list[fix.SessionID] = []
        self._logged_on: dict[str, fix.SessionID] = {}
        self._sessions_lock = threading.Lock()
        self.logons = 0
        self.logons_refused = 0  # Logon answered with a Logout: what a broker counts toward a lock

    def onCreate(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        self._sessions.append(sessionID)

    def onLogon(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        self.logons += 1
        with self._sessions_lock:
            self._logged_on[sessionID.toString()] = sessionID
        log.info("%s: client logged on as %s", self.kind.value, sessionID.toString())

    def onLogout(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        """Also called by QuickFIX when a logged-on session disconnects: `on_logout` ends its state."""
        log.info("%s: client logged out", self.kind.value)
        with self._sessions_lock:
            self._logged_on.pop(sessionID.toString(), None)
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
        refused = None
        if header.getField(t.MSG_TYPE) == "5":
            refused = self._refused_sub_ids.pop(session_id.toString(), None)
        if refused is not None:
            asked, client = refused
            header.setField(t.SENDER_SUB_ID, asked or self.kind.value)
            if client:
                header.setField(t.TARGET_SUB_ID, client)
            return
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
            client = header.getField(t.SENDER_SUB_ID) if header.isSetField(t.SENDER_SUB_ID) else ""
            if reason is None and client:
                self._client_sub_id[sessionID.toString()] = client
            elif reason is not None:
                asked = header.getField(t.TARGET_SUB_ID) if header.isSetField(t.TARGET_SUB_ID) else ""
                self._refused_sub_ids[sessionID.toString()] = (asked, client)
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

    def logged_on_sessions(self) -> list[fix.SessionID]:
        with self._sessions_lock:
            return list(self._logged_on.values())

    def send(
        self,
        msg_type: str,
        body: Iterable[Pair],
        groups: Iterable[RepeatingGroup] = (),
        session_id: fix.SessionID | None = None,
    ) -> bool:
        """To `session_id`, else to every logged-on session (cTrader copies each report to every
        connection of the account); True if it went to at least one."""
        targets = [session_id] if session_id is not None else self.logged_on_sessions()
        body, groups = list(body), list(groups)
        sent = False
        for target in targets:
            sent = self._send_one(target, msg_type, body, groups) or sent
        return sent

    def _send_one(
        self, target: fix.SessionID, msg_type: str, body: Iterable[Pair], groups: Iterable[RepeatingGroup]
    ) -> bool:
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
        return any(
            session is not None and session.isLoggedOn()
            for session in (fix.Session.lookupSession(sid) for sid in self.logged_on_sessions())
        )

    def force_logout(self, reason: str) -> None:
        """A server-initiated Logout; unlike Session.logout() it leaves the session open to the next logon."""
        if self.logged_on():
            self.send("5", [(t.TEXT, reason)])

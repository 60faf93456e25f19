"""What both simulated CSERVER ports share: cTrader's logon checks and header rules, strict validation.

QuickFIX finds an acceptor session by CompIDs alone, and QUOTE and TRADE share them, so each port
runs in its own process with its own acceptor (see runner.py). cTrader answers in the TargetCompID case
the client used (CSERVER, cServer, CServer: reference 1.4), so each spelling is a session of its own and
QuickFIX's answers carry the client's spelling in 49.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable, Iterable

import quickfix as fix

from fixadapter.connectors.fix import tags as t
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.connectors.fix.settings import resolve_path
from fixadapter.logs import mask_secrets
from fixadapter.sim.config import SimAccount, SimConfig
from fixadapter.sim.trade_front import alias

log = logging.getLogger("fixadapter.sim")
Pair = tuple[int, str]
REJECTED_LOGON_PREFIX = "Rejected Logon Attempt: "
RepeatingGroup = tuple[int, int, list[list[Pair]]]  # count tag, delimiter tag, entries
Handler = Callable[[str, str, "fix.SessionID"], None]
SessionHook = Callable[["fix.SessionID"], None]
COMP_ID_SPELLINGS = ("CSERVER", "cServer", "CServer")  # seen on credentials forms and in captures
NO_SUCH_LOGIN = "RET_NO_SUCH_LOGIN"  # login/CompID mismatch (reference 1.5)


def comp_ids(config: SimConfig, slots: int = 1) -> list[str]:
    """The server CompIDs a client may address: the configured one and cTrader's spellings of it, each
    with the aliases a front gives to more connections of one account (trade_front.py)."""
    spellings = COMP_ID_SPELLINGS if config.comp_id.upper() == "CSERVER" else ()
    names = list(dict.fromkeys([config.comp_id, *spellings]))
    return [alias(name, slot) for name in names for slot in range(1, slots + 1)]


def acceptor_settings(
    config: SimConfig, kind: SessionKind, port: int | None = None, slots: int = 1
) -> fix.SessionSettings:
    """`port` instead of the configured one (a front serves that), `slots` sessions per CompID pair, for
    every account served (QuickFIX finds the session, hence the account, by the client's 49)."""
    accept_port = config.port(kind) if port is None else port
    sessions = "".join(
        f"[SESSION]\nSenderCompID={comp_id}\nTargetCompID={account.sender_comp_id}\n"
        f"SocketAcceptPort={accept_port}\n"
        for account in config.served_accounts
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


def client_comp_id(session_id: fix.SessionID) -> str:
    """The client's SenderCompID (49) of an acceptor session: which account it is."""
    return str(session_id.getTargetCompID().getValue())


class CServerApplication(fix.Application):  # type: ignore[misc]
    """Logon as cTrader checks it; 50/57 stamped on everything; `handler` answers application messages.

    Every account served has its sessions here (the client's SenderCompID names the account); a logon is
    checked against that account's login (553) and password (554), and what is sent to an account goes
    to its connections only.
    """

    def __init__(
        self, config: SimConfig, kind: SessionKind, handler: Handler, on_logout: SessionHook | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.kind = kind
        self.accounts = {account.sender_comp_id: account for account in config.served_accounts}
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
        self.account_logons: dict[str, int] = dict.fromkeys(self._account_names(), 0)
        self.account_logons_refused: dict[str, int] = dict.fromkeys(self._account_names(), 0)

    def _account_names(self) -> list[str]:
        return [account.name for account in self.accounts.values()]

    def account_of(self, session_id: fix.SessionID) -> SimAccount | None:
        return self.accounts.get(client_comp_id(session_id))

    def onCreate(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        self._sessions.append(sessionID)

    def onLogon(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        self.logons += 1
        account = self.account_of(sessionID)
        if account is not None:
            self.account_logons[account.name] += 1
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
        echoed = self._client_sub_id.get(session_id.toString())
        if echoed:
            header.setField(t.TARGET_SUB_ID, echoed)

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        try:
            header = message.getHeader()
            if header.getField(t.MSG_TYPE) != "A":
                return
            reason = self._logon_refusal(message, self.account_of(sessionID))
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
            account = self.account_of(sessionID)
            if account is not None:
                self.account_logons_refused[account.name] += 1
            name = account.name if account is not None else client_comp_id(sessionID)
            log.warning("%s: logon of %s refused: %s", self.kind.value, name, reason)
            raise fix.RejectLogon(reason)

    def _logon_refusal(self, message: fix.Message, account: SimAccount | None) -> str | None:
        header = message.getHeader()
        expected = self.kind.value
        sub_id = header.getField(t.TARGET_SUB_ID) if header.isSetField(t.TARGET_SUB_ID) else ""
        if sub_id != expected:
            return f"TargetSubID is assigned with the unexpected value '{sub_id}', expected '{expected}'"
        if not message.isSetField(t.USERNAME):
            return "InternalError: RET_INVALID_DATA"
        if account is None or message.getField(t.USERNAME) != account.username:
            return NO_SUCH_LOGIN  # a login that is not this SenderCompID's
        password = message.getField(t.PASSWORD) if message.isSetField(t.PASSWORD) else ""
        if not hmac.compare_digest(password.encode(), account.password.get_secret_value().encode()):
            return "InternalError: RET_INVALID_DATA"
        return None

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        try:
            raw = message.toString()
            self._handler(message.getHeader().getField(t.MSG_TYPE), raw, sessionID)
        except Exception:
            log.exception("%s: failed to handle %s", self.kind.value, mask_secrets(message.toString()))

    def logged_on_sessions(self, account: SimAccount | None = None) -> list[fix.SessionID]:
        """The logged-on sessions of `account`, or of every account."""
        with self._sessions_lock:
            sessions = list(self._logged_on.values())
        if account is None:
            return sessions
        return [session for session in sessions if client_comp_id(session) == account.sender_comp_id]

    def send(
        self,
        msg_type: str,
        body: Iterable[Pair],
        groups: Iterable[RepeatingGroup] = (),
        session_id: fix.SessionID | None = None,
        account: SimAccount | None = None,
    ) -> bool:
        """To `session_id`, else to every logged-on session of `account` (cTrader copies each report to
        every connection of the account; None: of every account); True if it went to at least one."""
        targets = [session_id] if session_id is not None else self.logged_on_sessions(account)
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

    def logged_on(self, account: SimAccount | None = None) -> bool:
        """Whether `account` (None: any account) has a session logged on."""
        return any(
            session is not None and session.isLoggedOn()
            for session in (fix.Session.lookupSession(sid) for sid in self.logged_on_sessions(account))
        )

    def force_logout(self, reason: str, account: SimAccount | None = None) -> None:
        """A server-initiated Logout to `account`'s sessions (None: every account's); unlike
        Session.logout() it leaves the session open to the next logon."""
        if self.logged_on(account):
            self.send("5", [(t.TEXT, reason)], account=account)

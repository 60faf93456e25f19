"""The QuickFIX Application and Log: every callback converts, hands off, and never raises.

QuickFIX lends the Message only for the duration of a callback, and an exception escaping a
callback ends the process (the binding calls Py_Exit). So each body is guarded, reads the message
once into our model (one toString() and integer-tag reads of the parsed fields: one C++ call
instead of one per field), and passes the result to `sink`, which must be thread-safe and quick.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import quickfix as fix
from pydantic import ValidationError

from fixadapter.config import AccountConfig
from fixadapter.connectors.base import WireRecorder
from fixadapter.connectors.fix import tags as t
from fixadapter.connectors.fix.codec import DECODERS, decode_refusal, unknown_tags
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.connectors.fix.market_codec import MARKET_MSG_TYPES
from fixadapter.connectors.fix.reachability import Reachability
from fixadapter.connectors.fix.sent import ID_TAGS, SentMessages
from fixadapter.connectors.fix.wire import Fields, WireError, to_int
from fixadapter.logs import mask_secrets
from fixadapter.metrics import Metrics
from fixadapter.model.enums import Channel, SessionState
from fixadapter.model.market import StreamGap
from fixadapter.model.reports import ConnectionStatus, MalformedMessage, RequestRefused, VenueReport

log = logging.getLogger("fixadapter.fix")

CONNECTOR = "fix"  # the `connector` of every status this connector reports
Sink = Callable[[VenueReport], None]
MarketSink = Callable[[object], None]
ORDER_MSG_TYPES = frozenset({"D", "F", "G"})


def session_kind(session_id: fix.SessionID) -> SessionKind:
    return SessionKind(session_id.getSessionQualifier())


class FixApplication(fix.Application):  # type: ignore[misc]
    def __init__(
        self, account: AccountConfig, sink: Sink, metrics: Metrics, market_sink: MarketSink | None = None
    ) -> None:
        super().__init__()
        self._account = account
        self._sink = sink
        self._market_sink = market_sink
        self._metrics = metrics
        self._logout_text: dict[SessionKind, str | None] = {}
        self._logged_on: set[SessionKind] = set()
        self._closed_before_logon: set[SessionKind] = set()
        self._logon_sent: set[SessionKind] = set()  # our Logon went out on the current connection
        self._venue_reached: dict[SessionKind, float] = {}  # TLS connections to the broker, at the last close
        self._logon_retry: LogonWatch | None = None
        self._reachability: Reachability | None = None
        self._sent = SentMessages()  # TRADE requests by MsgSeqNum: what a Reject's RefSeqNum refuses

    def set_reachability(self, reachability: Reachability) -> None:
        """Told of every logon (a later connection failure is explained again)."""
        self._reachability = reachability

    def set_logon_retry(self, watch: LogonWatch) -> None:
        """Told of every refused logon and every logon (holds retries back after refusals)."""
        self._logon_retry = watch

    # -- lifecycle ----------------------------------------------------------------------------

    def onCreate(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803 - QuickFIX's names
        try:
            log.info("session %s created", sessionID.toString())
        except Exception:
            self._failed("onCreate")

    def onLogon(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        try:
            kind = session_kind(sessionID)
            self._logout_text[kind] = None
            self._logged_on.add(kind)
            self._closed_before_logon.discard(kind)
            if kind is SessionKind.TRADE:
                self._sent.clear()  # cTrader restarts sequence numbers at every logon
            if self._logon_retry is not None:
                self._logon_retry.logged_on(kind)
            if self._reachability is not None:
                self._reachability.connected(kind)
            self._metrics.logons.labels(kind.value).inc()
            self._metrics.session_up.labels(kind.value).set(1)
            log.info("%s logged on", kind.value)
            self._status(
                ConnectionStatus(connector=CONNECTOR, channel=kind.channel, state=SessionState.LOGGED_ON)
            )
        except Exception:
            self._failed("onLogon")

    def onLogout(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        try:
            kind = session_kind(sessionID)
            text = self._logout_text.pop(kind, None)
            was_logged_on = kind in self._logged_on
            self._logged_on.discard(kind)
            self._metrics.session_up.labels(kind.value).set(0)
            logon_sent = kind in self._logon_sent
            self._logon_sent.discard(kind)
            reached = self._reached_venue(kind)  # at every close: the next one compares with this one
            if not was_logged_on and text is None and logon_sent and reached:
                self._closed_after_logon(kind)
                return
            if not was_logged_on and text is None:
                # Closed before any answer (a TLS forwarder that could not connect closes this way on every
                # retry, and says why itself): told once until the next logon.
                if kind in self._closed_before_logon:
                    log.debug("%s: connection closed before logon (again)", kind.value)
                    return
                self._closed_before_logon.add(kind)
                log.info("%s: connection closed before logon, retrying", kind.value)
            else:
                log.info("%s logged out%s", kind.value, f": {text}" if text else "")
            self._status(
                ConnectionStatus(
                    connector=CONNECTOR, channel=kind.channel, state=SessionState.LOGGED_OUT, text=text
                )
            )
        except Exception:
            self._failed("onLogout")

    def _reached_venue(self, kind: SessionKind) -> bool:
        """Whether this connection reached the venue itself: always for a plain session; over TLS, when
        the forwarder connected to the broker since the last close (else the forwarder failed: it says so).
        Called at every close, a logged-on session's too: else the first failed reconnect after the venue
        dropped a session would count that session's TLS connection as its own."""
        if not self._account.tls(kind):
            return True
        connected = self._metrics.value("fixadapter_tls_connections_total", {"session": kind.value}) or 0.0
        before = self._venue_reached.get(kind, 0.0)
        self._venue_reached[kind] = connected
        return connected > before

    def _closed_after_logon(self, kind: SessionKind) -> None:
        """The venue closed the connection after our Logon without a Logout: it refused the logon without a
        word, as QuickFIX-based servers do for CompIDs they have no session for. Told once until the next
        logon (and as the session's text, for /readyz), counted as a refused logon; not held back as a
        refused password is, since a server restarting closes connections the same way for a while."""
        text = closed_after_logon_text(kind, self._account)
        self._metrics.logon_failures.labels(kind.value).inc()
        if kind in self._closed_before_logon:
            log.debug("%s: closed right after our Logon (again)", kind.value)
            return
        self._closed_before_logon.add(kind)
        log.warning("%s: %s; retrying every %g s", kind.value, text, self._account.reconnect_seconds)
        state = SessionState.LOGGED_OUT
        self._status(ConnectionStatus(connector=CONNECTOR, channel=kind.channel, state=state, text=text))

    def message_lost(self, kind: SessionKind | None) -> None:
        """The engine dropped a garbled message; on QUOTE it may have been an X, so books must resync."""
        if kind is SessionKind.QUOTE and self._market_sink is not None:
            self._market_sink(StreamGap("the engine dropped a garbled QUOTE message"))

    def transport_failed(self, kind: SessionKind, text: str) -> None:
        """The connection under a session failed before any FIX was exchanged (TLS or TCP): say why."""
        self._status(
            ConnectionStatus(
                connector=CONNECTOR, channel=kind.channel, state=SessionState.LOGGED_OUT, text=text
            )
        )

    def _status(self, status: ConnectionStatus) -> None:
        self._sink(status)
        if status.channel is Channel.MARKET_DATA and self._market_sink is not None:
            self._market_sink(status)  # in stream order with the QUOTE messages

    # -- outbound -----------------------------------------------------------------------------

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        try:
            kind = session_kind(sessionID)
            header = message.getHeader()
            header.setField(t.SENDER_SUB_ID, kind.value)
            header.setField(t.TARGET_SUB_ID, kind.value)
            msg_type = header.getField(t.MSG_TYPE)
            if msg_type == "A":
                self._logon_sent.add(kind)
                message.setField(t.USERNAME, self._account.username)
                message.setField(t.PASSWORD, self._account.password.get_secret_value())
            self._metrics.messages_sent.labels(kind.value, msg_type).inc()
        except Exception:
            self._failed("toAdmin")

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        replay = False
        try:
            kind = session_kind(sessionID)
            header = message.getHeader()
            header.setField(t.SENDER_SUB_ID, kind.value)
            header.setField(t.TARGET_SUB_ID, kind.value)
            msg_type = header.getField(t.MSG_TYPE)
            # Never let the engine replay an order on a ResendRequest: reconciliation recovers state.
            replay = msg_type in ORDER_MSG_TYPES and header.isSetField(t.POSS_DUP_FLAG)
            if not replay:
                self._metrics.messages_sent.labels(kind.value, msg_type).inc()
                if kind is SessionKind.TRADE:
                    self._remember(message, msg_type)
        except Exception:
            self._failed("toApp")
        if replay:
            raise fix.DoNotSend()

    # -- inbound ------------------------------------------------------------------------------

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        try:
            kind = session_kind(sessionID)
            header = message.getHeader()
            msg_type = header.getField(t.MSG_TYPE)
            self._metrics.messages_received.labels(kind.value, msg_type).inc()
            if msg_type == "5" and message.isSetField(t.TEXT):
                text = explain_logout(message.getField(t.TEXT), self._account)
                self._logout_text[kind] = text
                if kind not in self._logged_on:  # a Logout answering our Logon: the logon was refused
                    self._metrics.logon_failures.labels(kind.value).inc()
                    if self._logon_retry is not None:
                        self._logon_retry.refused(kind, text)
                log.warning("%s: server logout: %s", kind.value, text)
            elif msg_type == "3":
                self._metrics.session_rejects.labels(kind.value).inc()
                raw = message.toString()
                log.warning("%s: session reject from server: %s", kind.value, mask_secrets(raw))
                refused = self._refusal(kind, Fields.parse(raw), raw)
                if refused is not None:
                    self._sink(refused)
        except Exception:
            self._failed("fromAdmin")

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        try:
            raw = message.toString()
            kind = session_kind(sessionID)
            if kind is SessionKind.QUOTE and self._market_sink is not None:
                msg_type = _msg_type(raw)
                if msg_type in MARKET_MSG_TYPES:
                    self._metrics.messages_received.labels(kind.value, msg_type).inc()
                    self._market_sink(raw)  # the hot path: decoded on the market-data thread
                    return
            self._receive(kind, raw)
        except Exception:
            self._failed("fromApp")

    def _receive(self, kind: SessionKind, raw: str) -> None:
        msg_type: str | None = None
        try:
            fields = Fields.parse(raw)
            msg_type = fields.require(t.MSG_TYPE)
            self._metrics.messages_received.labels(kind.value, msg_type).inc()
            refused = self._refusal(kind, fields, raw) if msg_type == "j" else None
            if refused is not None:
                self._sink(refused)
                return
            decoder = DECODERS[kind].get(msg_type)
            if decoder is None:
                raise WireError(f"unexpected message type {msg_type} on {kind.value}")
            unknown = unknown_tags(msg_type, fields)
            if unknown:
                self._metrics.unknown_tags.labels(kind.value, msg_type).inc(len(unknown))
                log.warning(
                    "%s %s carries tags our dictionary does not define: %s", kind.value, msg_type, unknown
                )
            report = decoder(fields, raw)
        except (WireError, ValidationError) as exc:
            self._metrics.malformed_messages.labels(kind.value, "unreadable").inc()
            log.error("%s: cannot read message (%s): %s", kind.value, exc, mask_secrets(raw))
            self._sink(MalformedMessage(channel=kind.channel, msg_type=msg_type, error=str(exc), raw=raw))
            return
        self._sink(report)

    def _remember(self, message: fix.Message, msg_type: str) -> None:
        """Which request this message carries, by its MsgSeqNum (set by QuickFIX before toApp)."""
        tag = ID_TAGS.get(msg_type)
        header = message.getHeader()
        if tag is not None and header.isSetField(t.MSG_SEQ_NUM) and message.isSetField(tag[1]):
            self._sent.remember(int(header.getField(t.MSG_SEQ_NUM)), msg_type, message.getField(tag[1]))

    def _refusal(self, kind: SessionKind, fields: Fields, raw: str) -> RequestRefused | None:
        """A Reject, or a BusinessMessageReject naming no id, of a TRADE request we remember sending."""
        if kind is not SessionKind.TRADE or fields.get(t.BUSINESS_REJECT_REF_ID):
            return None
        seq_num = to_int(fields.get(t.REF_SEQ_NUM))
        sent = self._sent.lookup(seq_num) if seq_num is not None else None
        if sent is None:
            return None
        return decode_refusal(fields, sent, raw)

    def _failed(self, where: str) -> None:
        self._metrics.callback_errors.labels(where).inc()
        log.exception("error in QuickFIX callback %s (the session continues)", where)


def _msg_type(raw: str) -> str | None:
    start = raw.find("\x0135=")
    if start < 0:
        return None
    end = raw.find("\x01", start + 4)
    return raw[start + 4 : end] if end > 0 else None


class LogonWatch(Protocol):
    """What is told of refused logons and logons (logon_retry.LogonRetry): quick, thread-safe."""

    def refused(self, kind: SessionKind, text: str) -> None: ...

    def logged_on(self, kind: SessionKind) -> None: ...


CLOSED_AFTER_LOGON = "the server closed the connection right after our Logon, without a Logout"
EXPLAINED_CODES = ("RET_NO_SUCH_LOGIN", "RET_INVALID_DATA")


def venue_words(text: str | None) -> str | None:
    """A session's text as the venue said it: without what explain_logout added, and None for a
    connection closed right after the Logon (the venue said nothing)."""
    if text is None or text.startswith(CLOSED_AFTER_LOGON):
        return None
    for code in EXPLAINED_CODES:
        at = text.find(code)
        if at >= 0 and text[at + len(code) :].startswith(" (the "):
            return text[: at + len(code)]
    return text


def explain_logout(text: str, account: AccountConfig) -> str:
    """The server's Logout text, with what cTrader's refusal codes mean and what to check."""
    if "RET_NO_SUCH_LOGIN" in text:
        return (
            f"{text} (the server has no login {account.username!r} for SenderCompID "
            f"{account.sender_comp_id!r}: check account.username, the bare numeric login, and "
            "account.sender_comp_id against the broker's FIX credentials form)"
        )
    if "RET_INVALID_DATA" in text:
        return f"{text} (the login or the password is wrong: check account.username and the password)"
    return text


def closed_after_logon_text(kind: SessionKind, account: AccountConfig) -> str:
    """What a connection closed right after our Logon, without a Logout, means and what to check."""
    return (
        f"{CLOSED_AFTER_LOGON}: it has no session for "
        f"SenderCompID {account.sender_comp_id!r} with TargetCompID {account.target_comp_id!r} on "
        f"{account.endpoint(kind)}; check account.sender_comp_id and target_comp_id (spelled as on the "
        f"broker's FIX credentials form) and that {kind.value.lower()}_port is the {kind.value} port"
    )


def file_prefix(session_id: fix.SessionID) -> str:
    """QuickFIX's FileLog prefix: BeginString-SenderCompID-TargetCompID[-Qualifier]."""
    parts = [
        session_id.getBeginString().getValue(),
        session_id.getSenderCompID().getValue(),
        session_id.getTargetCompID().getValue(),
    ]
    qualifier = session_id.getSessionQualifier()
    return "-".join([*parts, qualifier] if qualifier else parts)


class EngineLog(fix.Log):  # type: ignore[misc]
    """QuickFIX's own log stream: every message sent and received goes to the compliance recorder (which
    masks it off this thread); counts what the engine drops (garbled, rejected) and masks secrets."""

    def __init__(
        self,
        kind: SessionKind | None,
        metrics: Metrics,
        messages: bool,
        on_lost: Callable[[SessionKind | None], None] | None = None,
        recorder: WireRecorder | None = None,
        record_as: str = "",
        reachability: Reachability | None = None,
    ) -> None:
        """`record_as`: the prefix of the session's name in the compliance record (the account's, when
        one record serves several accounts)."""
        super().__init__()
        self._session = kind
        self._kind = kind.value if kind else "engine"
        self._recorded = record_as + self._kind
        self._metrics = metrics
        self._messages = messages
        self._on_lost = on_lost
        self._recorder = recorder
        self._reachability = reachability
        self._watch: Callable[[str], None] | None = None

    def watch_events(self, watch: Callable[[str], None]) -> None:
        """`watch` sees every event first, on the engine thread that logs it (the host tracks threads)."""
        self._watch = watch

    def clear(self) -> None:
        pass

    def backup(self) -> None:
        pass

    def onIncoming(self, text: str) -> None:  # noqa: N802
        try:
            if self._recorder is not None:
                self._recorder.offer(self._recorded, "in", text)
            if self._messages:
                log.info("%s <- %s", self._kind, mask_secrets(text))
        except Exception:
            self._metrics.callback_errors.labels("log").inc()

    def onOutgoing(self, text: str) -> None:  # noqa: N802
        try:
            if self._recorder is not None:
                self._recorder.offer(self._recorded, "out", text)
            if self._messages:
                log.info("%s -> %s", self._kind, mask_secrets(text))
        except Exception:
            self._metrics.callback_errors.labels("log").inc()

    def onEvent(self, text: str) -> None:  # noqa: N802
        try:
            if self._watch is not None:
                self._watch(text)
            if self._recorder is not None:
                self._recorder.offer_event(self._recorded, text)
            if self._reachability is not None:
                self._reachability.event(self._session, text)
            masked = mask_secrets(text)
            lowered = text.lower()
            if "invalid message" in lowered or "garbled" in lowered:
                self._metrics.malformed_messages.labels(self._kind, "garbled").inc()
                log.error("%s: dropped a garbled message from the server: %s", self._kind, masked)
                if self._on_lost is not None:
                    self._on_lost(self._session)
            elif "message rejected" in lowered or "reject" in lowered:
                self._metrics.malformed_messages.labels(self._kind, "rejected_by_engine").inc()
                log.warning("%s: %s", self._kind, masked)
            else:
                log.debug("%s: %s", self._kind, masked)
        except Exception:
            self._metrics.callback_errors.labels("log").inc()


class EngineLogFactory(fix.LogFactory):  # type: ignore[misc]
    def __init__(
        self,
        metrics: Metrics,
        messages: bool = False,
        on_lost: Callable[[SessionKind | None], None] | None = None,
        recorder: WireRecorder | None = None,
        record_as: str = "",
        reachability: Reachability | None = None,
    ) -> None:
        super().__init__()
        self._metrics = metrics
        self._messages = messages
        self._on_lost = on_lost
        self._recorder = recorder
        self._record_as = record_as
        self._reachability = reachability
        self._logs: list[EngineLog] = []  # QuickFIX holds raw pointers: keep the Python objects alive

    def create(self, *args: fix.SessionID) -> EngineLog:
        try:
            kind = session_kind(args[0]) if args else None
            if kind is not None and self._recorder is not None:
                self._recorder.register_session(self._record_as + kind.value, file_prefix(args[0]))
        except Exception:  # a raise here would end the process: fall back to the engine log
            self._metrics.callback_errors.labels("log").inc()
            log.exception("cannot create the log of %s", args[0].toString() if args else "the engine")
            kind = None
        made = EngineLog(
            kind,
            self._metrics,
            self._messages,
            self._on_lost,
            self._recorder,
            self._record_as,
            self._reachability,
        )
        # The engine keeps the raw pointer; if the Python proxy also owned it, QuickFIX's threads would
        # meet a freed object (a segfault seen on the first log call). Python keeps it alive instead.
        made.thisown = False
        self._logs.append(made)
        return made

    def destroy(self, made: EngineLog) -> None:
        del made  # the Python object stays in self._logs until the factory goes

"""The simulator's QUOTE port says who it turned away: QuickFIX closes a connection whose Logon names
CompIDs it has no session for without a word to the client, and tells only its own (engine) log, as
"Session not found for incoming message: <the Logon>". This log factory logs that at WARNING with the
SenderCompID and TargetCompID the client used (the Logon masked), and nothing else: session logs are
no-ops, so the acceptor's message path pays one empty call per message."""

from __future__ import annotations

import logging

import quickfix as fix

from fixadapter.logs import mask_secrets

log = logging.getLogger("fixadapter.sim")
NOT_FOUND = "Session not found for incoming message"


def field(text: str, tag: int) -> str | None:
    for part in text.split("\x01"):
        key, _, value = part.partition("=")
        if key == str(tag):
            return value
    return None


class _SessionLog(fix.Log):  # type: ignore[misc]
    def clear(self) -> None:
        pass

    def backup(self) -> None:
        pass

    def onIncoming(self, text: str) -> None:  # noqa: N802 - QuickFIX's names
        pass

    def onOutgoing(self, text: str) -> None:  # noqa: N802
        pass

    def onEvent(self, text: str) -> None:  # noqa: N802
        pass


class _EngineLog(_SessionLog):
    def __init__(self, port_name: str) -> None:
        super().__init__()
        self._port_name = port_name

    def onEvent(self, text: str) -> None:  # noqa: N802
        try:
            if not text.startswith(NOT_FOUND):
                return
            message = text[len(NOT_FOUND) :].lstrip(": ")
            log.warning(
                "%s: connection closed without an answer: no session for SenderCompID %r with TargetCompID "
                "%r (its Logon: %s); the client must use an account's sender_comp_id and this port's "
                "TargetCompID",
                self._port_name,
                field(message, 49),
                field(message, 56),
                mask_secrets(message).replace("\x01", "|"),
            )
        except Exception:  # a raise here would end the process
            log.exception("cannot log a refused connection")


class UnknownSessionLogs(fix.LogFactory):  # type: ignore[misc]
    def __init__(self, port_name: str) -> None:
        super().__init__()
        self._port_name = port_name
        self._logs: list[_SessionLog] = []  # QuickFIX holds raw pointers: keep the Python objects alive

    def create(self, *args: fix.SessionID) -> _SessionLog:
        made = _SessionLog() if args else _EngineLog(self._port_name)
        made.thisown = False
        self._logs.append(made)
        return made

    def destroy(self, made: _SessionLog) -> None:
        del made

"""The simulated CSERVER QUOTE port, run in its own process (QuickFIX keys acceptor sessions by CompIDs,
which QUOTE and TRADE share). Logon rules as on TRADE; SecurityListRequest answered.
"""

from __future__ import annotations

import logging
import threading
from multiprocessing.connection import Connection

import quickfix as fix

from fixadapter.connectors.fix import tags as t
from fixadapter.connectors.fix.wire import Fields
from fixadapter.model.enums import SessionKind
from fixadapter.sim.acceptor import CServerApplication, acceptor_settings
from fixadapter.sim.config import SimConfig
from fixadapter.sim.instruments import security_list
from fixadapter.sim.prices import DEFAULT_SYMBOLS, SymbolSpec

log = logging.getLogger("fixadapter.sim.quote")


class QuoteServer:
    def __init__(self, config: SimConfig, symbols: tuple[SymbolSpec, ...] = DEFAULT_SYMBOLS) -> None:
        self.config = config
        self.symbols = symbols
        self.app = CServerApplication(config, SessionKind.QUOTE, self.handle)
        self._acceptor: fix.ThreadedSocketAcceptor | None = None

    def start(self) -> None:
        self._acceptor = fix.ThreadedSocketAcceptor(
            self.app, fix.MemoryStoreFactory(), acceptor_settings(self.config, SessionKind.QUOTE)
        )
        self._acceptor.start()

    def stop(self) -> None:
        if self._acceptor is not None:
            self._acceptor.stop()

    def handle(self, msg_type: str, raw: str, session_id: fix.SessionID) -> None:
        fields = Fields.parse(raw)
        if msg_type == "x":
            body, groups = security_list(fields, self.symbols)
            self.app.send("y", body, groups, session_id)
            return
        self.app.send(
            "j",
            [
                (t.REF_MSG_TYPE, msg_type),
                (t.BUSINESS_REJECT_REASON, "3"),
                (t.TEXT, f"INVALID_REQUEST: {msg_type} is not supported on QUOTE"),
            ],
            session_id=session_id,
        )


def run_quote_process(config: SimConfig, parent: Connection) -> None:
    """Child-process entry: serve until the parent says stop or dies (its pipe closes)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    server = QuoteServer(config)
    server.start()
    parent.send("ready")
    done = threading.Event()
    try:
        while not done.is_set():
            command = parent.recv()
            if command == "stop":
                done.set()
            elif isinstance(command, tuple) and command[0] == "logout":
                server.app.force_logout(command[1])
    except (EOFError, OSError):
        log.info("simulator parent is gone: stopping the QUOTE port")
    server.stop()

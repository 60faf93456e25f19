"""The parent's end of the pipe to the QUOTE process (see quote_server.py for the protocol).

The clock thread (venue quotes) and the control port's threads (logout, book and market requests) all
write to one multiprocessing Connection, which is not safe for concurrent writers: one lock serialises
writes, another keeps one request/response exchange at a time, and a sequence number discards the late
answer of a request that timed out.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from multiprocessing.connection import Connection
from typing import Any

from fixadapter.sim.prices import Quote

log = logging.getLogger("fixadapter.sim")
CALL_SECONDS = 10.0


class QuoteLinkError(RuntimeError):
    """The QUOTE process is gone or did not answer."""


class QuoteRequestRefused(QuoteLinkError):
    """The QUOTE process answered a request with an error; `not_found` for an unknown symbol or call."""

    def __init__(self, text: str, not_found: bool) -> None:
        super().__init__(text)
        self.not_found = not_found


class QuoteLink:
    def __init__(self, connection: Connection, call_seconds: float = CALL_SECONDS) -> None:
        self._connection = connection
        self._call_seconds = call_seconds
        self._write_lock = threading.Lock()
        self._call_lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._broken = False

    def send_quotes(self, quotes: list[Quote]) -> None:
        """One pipe message per clock tick: the quotes that moved, as text (Decimals stay exact).

        Never raises: the venue keeps trading when the QUOTE process is gone (logged once).
        """
        if self._broken:
            return
        with contextlib.suppress(QuoteLinkError):
            self._send(("quotes", [(q.symbol_id, format(q.bid, "f"), format(q.ask, "f")) for q in quotes]))

    def logout(self, reason: str, sender_comp_id: str | None = None) -> None:
        """A Logout to the QUOTE sessions of the account with this SenderCompID (None: of every account)."""
        self._send(("logout", reason, sender_comp_id))

    def stop(self) -> None:
        self._send("stop")

    def call(self, name: str, **args: Any) -> Any:
        """Run `name` in the QUOTE process and return its answer (raises QuoteLinkError)."""
        with self._call_lock:
            number = next(self._numbers)
            self._send(("call", number, name, args))
            while self._connection.poll(self._call_seconds):
                answer_number, ok, value = self._connection.recv()
                if answer_number != number:
                    continue  # the late answer of an earlier request that timed out
                if not ok:
                    kind, text = value
                    raise QuoteRequestRefused(text, not_found=kind == "not_found")
                return value
            raise QuoteLinkError(f"the QUOTE process did not answer {name} within {self._call_seconds:g}s")

    def _send(self, message: object) -> None:
        try:
            with self._write_lock:
                self._connection.send(message)
        except OSError:
            if not self._broken:
                log.error("the QUOTE process is gone: market data and QUOTE control requests are lost")
            self._broken = True
            raise QuoteLinkError("the QUOTE process is gone") from None

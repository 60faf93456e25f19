"""The gate new orders wait on: the account's trading route up and reconciled; and, when it is shut, why.

The trading connection logging on clears what it last said and lets the engine reconcile; only a
reconciliation that succeeds opens the gate (`mark_ready`). Logging off shuts it at once. The route's
last text and the reconciliation's last failure are kept so a refused order, /readyz and the blotter can
say why, naming the route as its connector does (FIX: TRADE).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from fixadapter.errors import SessionNotReady
from fixadapter.metrics import Metrics
from fixadapter.model.enums import Channel, SessionState
from fixadapter.model.reports import ConnectionStatus

log = logging.getLogger("fixadapter.engine")

SessionCallback = Callable[[ConnectionStatus], None]


class Readiness:
    def __init__(self, metrics: Metrics, timeout: float, route: str = "trading") -> None:
        """`route`: the trading connection as its connector names it (FIX: TRADE)."""
        self.route = route
        self.trade_up = False
        self.last_session_text: str | None = None
        self.reconcile_problem: str | None = None  # why the last reconciliation failed, while it retries
        self._metrics = metrics
        self._timeout = timeout
        self._ready = asyncio.Event()
        self._callbacks: list[SessionCallback] = []

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def mark_ready(self) -> None:
        self._ready.set()
        self._metrics.ready.set(1)

    def clear(self) -> None:
        """Shut the gate (stopping, or a send found the session gone) until the next reconciliation."""
        self._ready.clear()
        self._metrics.ready.set(0)

    async def until_ready(self) -> None:
        await self._ready.wait()

    async def wait(self, timeout: float | None = None) -> None:
        """Wait for the gate, up to `timeout` (the configured wait by default); SessionNotReady says why.
        An open gate costs no wait_for (a task and a timer on every order)."""
        if self._ready.is_set():
            return
        wait = self._timeout if timeout is None else timeout
        try:
            await asyncio.wait_for(self._ready.wait(), wait)
        except TimeoutError:
            if self.trade_up and self.reconcile_problem:
                raise SessionNotReady(
                    f"{self.route} is logged on but not reconciled after {wait:g}s: reconciliation: "
                    f"{self.reconcile_problem}; it is retried until the venue answers "
                    "(see the log; ask the broker if it persists)"
                ) from None
            reason = f" (last: {self.last_session_text})" if self.last_session_text else ""
            raise SessionNotReady(
                f"{self.route} is not logged on and reconciled after {wait:g}s{reason}; "
                "check host, ports and credentials, or retry when the session is back"
            ) from None

    def not_ready_reason(self) -> str:
        """Why new orders wait, in words (for /readyz and the blotter)."""
        if self.ready:
            return f"{self.route} logged on and reconciled"
        if self.trade_up and self.reconcile_problem:
            return f"{self.route} logged on, not reconciled: reconciliation: {self.reconcile_problem}"
        text = self.last_session_text
        return f"{self.route} not logged on and reconciled" + (f" (last: {text})" if text else "")

    def on_session(self, callback: SessionCallback) -> None:
        self._callbacks.append(callback)

    def session_changed(self, status: ConnectionStatus) -> bool | None:
        """Tell the on_session callbacks (one that raises is counted and ignored), then follow the trading
        connection: True when it logged on (reconcile now), False when it went down, None for another."""
        for callback in self._callbacks:
            try:
                callback(status)
            except Exception:
                self._metrics.callback_errors.labels("session_callback").inc()
                log.exception("an on_session callback raised (ignored)")
        if status.channel is not Channel.TRADING:
            return None
        if status.state is SessionState.LOGGED_ON:
            self.trade_up = True
            self.last_session_text = None
            self.reconcile_problem = None
            return True
        self.trade_up = False
        self._ready.clear()
        self._metrics.ready.set(0)
        self.last_session_text = status.text or self.last_session_text
        return False

"""Backing off after the server refuses a logon, and giving up after a few refusals.

QuickFIX reconnects every ReconnectInterval for ever; a logon the server refuses (a wrong password,
login or SenderCompID) would then be retried every few seconds, and a broker may lock the account for
it. So each refusal disables the session (the initiator does not connect a disabled session) and enables
it again after a wait that doubles from `reconnect_seconds` up to `logon_retry_max_seconds`; after
`logon_refusals_max` refusals in a row the session stays disabled and a blocking alarm says why and what
to do. A successful logon resets the count.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from fixadapter.config import AccountConfig
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.logs import mask_secrets
from fixadapter.metrics import Metrics

log = logging.getLogger("fixadapter.fix")
ALARM_KIND = "logon_refused"

# Enables (True) or disables (False) a session's logon attempts.
Enable = Callable[[SessionKind, bool], None]


@dataclass(frozen=True)
class RefusalPolicy:
    first_wait: float
    max_wait: float
    max_refusals: int

    @classmethod
    def for_account(cls, account: AccountConfig) -> RefusalPolicy:
        return cls(
            first_wait=float(account.reconnect_seconds),
            max_wait=account.logon_retry_max_seconds,
            max_refusals=account.logon_refusals_max,
        )

    def wait_after(self, refusals: int) -> float | None:
        """Seconds before the next attempt after `refusals` refusals in a row; None: stop trying."""
        if refusals >= self.max_refusals:
            return None
        return float(min(self.first_wait * 2**refusals, self.max_wait))


def refusal_advice(kind: SessionKind, refusals: int, text: str) -> str:
    return (
        f"{kind.value} logon refused {refusals} times in a row by the server ({text}); stopped trying so "
        "the broker does not lock the account. Check account.username (553, the bare numeric login), the "
        "password (FIXADAPTER_ACCOUNT__PASSWORD) and sender_comp_id/target_comp_id against the broker's "
        "FIX credentials form, then restart the adapter"
    )


class LogonRetry:
    """Counts refusals per session and holds its next attempt back; thread-safe (QuickFIX, timers)."""

    def __init__(self, policy: RefusalPolicy, metrics: Metrics, enable: Enable) -> None:
        self._policy = policy
        self._metrics = metrics
        self._enable = enable
        self._lock = threading.Lock()
        self._refusals: dict[SessionKind, int] = {}
        self._timers: dict[SessionKind, threading.Timer] = {}
        self._given_up: set[SessionKind] = set()
        self._closed = False

    def refused(self, kind: SessionKind, text: str) -> None:
        """The server answered our Logon with a Logout (called from the QuickFIX thread, never raises)."""
        text = mask_secrets(text)
        with self._lock:
            if self._closed:
                return
            refusals = self._refusals.get(kind, 0) + 1
            self._refusals[kind] = refusals
            wait = self._policy.wait_after(refusals)
            self._enable(kind, False)  # before the initiator's next reconnect tick
            if wait is None:
                self._given_up.add(kind)
            else:
                self._schedule(kind, wait)
        if wait is None:
            self._metrics.alarms.raise_alarm(
                ALARM_KIND, kind.value, refusal_advice(kind, refusals, text), blocking=True
            )
        else:
            log.warning(
                "%s: logon refused (%d of %d): %s; next attempt in %g s",
                kind.value,
                refusals,
                self._policy.max_refusals,
                text,
                wait,
            )

    def logged_on(self, kind: SessionKind) -> None:
        with self._lock:
            self._refusals.pop(kind, None)
            self._given_up.discard(kind)
            timer = self._timers.pop(kind, None)
        if timer is not None:
            timer.cancel()
        self._metrics.alarms.clear(ALARM_KIND, kind.value)

    def refusals(self, kind: SessionKind) -> int:
        with self._lock:
            return self._refusals.get(kind, 0)

    def given_up(self, kind: SessionKind) -> bool:
        with self._lock:
            return kind in self._given_up

    def close(self) -> None:
        """No session is enabled again after this (the adapter is stopping)."""
        with self._lock:
            self._closed = True
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()

    def _schedule(self, kind: SessionKind, wait: float) -> None:
        previous = self._timers.pop(kind, None)
        if previous is not None:
            previous.cancel()
        timer = threading.Timer(wait, self._resume, args=(kind,))
        timer.name = f"fix-logon-retry-{kind.value}"
        timer.daemon = True
        self._timers[kind] = timer
        timer.start()

    def _resume(self, kind: SessionKind) -> None:
        try:
            with self._lock:
                if self._closed or self._timers.get(kind) is not threading.current_thread():
                    return
                del self._timers[kind]
                self._enable(kind, True)
            log.info("%s: trying to log on again", kind.value)
        except Exception:
            log.exception("%s: could not enable the session again", kind.value)

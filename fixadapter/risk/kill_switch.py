"""The kill switch: one flag that blocks every new order and replace until someone releases it.

It only records and answers; cancelling is the order engine's job. `engage` says so in its answer
(`cancel_working_orders`), on every call: a second engage sweeps an order that passed a risk check on
another thread just before the first one. Who/why/when are kept for the HTTP view and the audit log.
Thread-safe: HTTP, CLI and the order engine call it from different threads.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

HISTORY_SIZE = 100


class KillSwitchAction(StrEnum):
    ENGAGED = "engaged"
    RELEASED = "released"


@dataclass(frozen=True)
class KillSwitchEvent:
    """One engage or release, as it was asked for."""

    action: KillSwitchAction
    by: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class KillSwitchState:
    """A snapshot: while `engaged`, `engaged_by/reason/since` describe the engagement that is in force."""

    engaged: bool
    engaged_by: str | None = None
    reason: str | None = None
    since: datetime | None = None
    last_release: KillSwitchEvent | None = None
    changed: bool = False

    @property
    def cancel_working_orders(self) -> bool:
        """True after an engage: the caller must cancel every working order now."""
        return self.engaged

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (times as ISO 8601) for the HTTP endpoint."""
        data = asdict(self)
        data.pop("changed")
        data["since"] = self.since.isoformat() if self.since else None
        if self.last_release is not None:
            data["last_release"]["at"] = self.last_release.at.isoformat()
        return data


class KillSwitch:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = KillSwitchState(engaged=False)
        self._history: deque[KillSwitchEvent] = deque(maxlen=HISTORY_SIZE)

    @property
    def engaged(self) -> bool:
        """Read on every order check: a plain attribute read, no lock (the state object is immutable)."""
        return self._state.engaged

    def state(self) -> KillSwitchState:
        return self._state

    def history(self) -> tuple[KillSwitchEvent, ...]:
        """The last HISTORY_SIZE engages and releases, oldest first (repeated engages included)."""
        with self._lock:
            return tuple(self._history)

    def engage(self, *, by: str, reason: str, at: datetime) -> KillSwitchState:
        """Block new orders and replaces. Engaging again keeps the first who/why/since (`changed` False)."""
        event = _event(KillSwitchAction.ENGAGED, by, reason, at)
        with self._lock:
            self._history.append(event)
            current = self._state
            if current.engaged:
                return replace(current, changed=False)
            self._state = KillSwitchState(
                engaged=True,
                engaged_by=event.by,
                reason=event.reason,
                since=event.at,
                last_release=current.last_release,
            )
            return replace(self._state, changed=True)

    def release(self, *, by: str, reason: str, at: datetime) -> KillSwitchState:
        """Let orders through again; releasing a released switch changes nothing (`changed` False)."""
        event = _event(KillSwitchAction.RELEASED, by, reason, at)
        with self._lock:
            if not self._state.engaged:
                return replace(self._state, changed=False)
            self._history.append(event)
            self._state = KillSwitchState(engaged=False, last_release=event)
            return replace(self._state, changed=True)


def _event(action: KillSwitchAction, by: str, reason: str, at: datetime) -> KillSwitchEvent:
    # An anonymous or unexplained kill switch is useless in a post-mortem: refuse it up front.
    if not by.strip() or not reason.strip():
        raise ValueError(f"the kill switch is {action} only with who (by) and why (reason)")
    if at.tzinfo is None:
        raise ValueError("the kill switch time must carry a timezone")
    return KillSwitchEvent(action=action, by=by.strip(), reason=reason.strip(), at=at)

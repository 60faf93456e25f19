"""Conditions an operator must see: raised by any part of the adapter, shown by /readyz and metrics.

An alarm is something that needs a person (an order whose fate the venue never told, a report the store
could not take, a daemon task that keeps dying, an overfill). Each is logged at ERROR once when raised,
counted, and listed until cleared. A *blocking* alarm also makes the adapter not ready: /readyz answers
503 while it is active, so a load balancer or supervisor stops sending work. `kind` is a fixed word chosen
by the code (a metric label, so never user data); `key` tells one instance from another (an order id, a
task name) and is never a label. Alarms are an account's: their metrics carry the `account` label, and one
registry may hold the alarms of several accounts.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar, cast

from prometheus_client import CollectorRegistry, Counter, Gauge

log = logging.getLogger("fixadapter.alarms")
SHOWN = 20  # alarms listed by describe(); the count says how many more
# Alarms held per kind: a venue flooding bad reports must not grow memory without bound. Past it an alarm
# is still logged and counted, and describe() says how many were not kept.
MAX_PER_KIND = 1000

_Shared = TypeVar("_Shared")
_SHARED: weakref.WeakKeyDictionary[CollectorRegistry, dict[Callable[..., object], object]] = (
    weakref.WeakKeyDictionary()
)
_SHARED_LOCK = threading.Lock()


def shared_on(registry: CollectorRegistry, build: Callable[[CollectorRegistry], _Shared]) -> _Shared:
    """What `build(registry)` made when first asked for on this registry (metric families register once).

    Held only while the registry lives, so every adapter (and every test) with its own registry starts clean.
    """
    with _SHARED_LOCK:
        made = _SHARED.setdefault(registry, {})
        if build not in made:
            made[build] = build(registry)
        return cast(_Shared, made[build])  # keyed by its own builder, so of its type


class _AlarmFamilies:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.active = Gauge(
            "fixadapter_alarms_active",
            "Alarms active now, by account and kind (see /readyz)",
            ["account", "kind"],
            registry=registry,
        )
        self.raised = Counter(
            "fixadapter_alarms_raised_total",
            "Alarms raised, by account and kind",
            ["account", "kind"],
            registry=registry,
        )


@dataclass(frozen=True)
class Alarm:
    kind: str
    key: str
    text: str
    blocking: bool
    since: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "key": self.key,
            "text": self.text,
            "blocking": self.blocking,
            "since": self.since.isoformat(),
        }


class Alarms:
    def __init__(self, registry: CollectorRegistry, account: str = "default") -> None:
        self.account = account
        self._active: dict[tuple[str, str], Alarm] = {}
        self._held: dict[str, int] = {}  # alarms held, by kind
        self._not_kept: dict[str, int] = {}  # alarms raised past MAX_PER_KIND, by kind
        families = shared_on(registry, _AlarmFamilies)
        self._gauge = families.active
        self._raised = families.raised

    def raise_alarm(self, kind: str, key: str, text: str, blocking: bool = False) -> None:
        """Raise (or update the text of) the alarm `kind`/`key`; logged and counted the first time."""
        current = self._active.get((kind, key))
        if current is not None:
            if current.text != text or current.blocking != blocking:
                self._active[(kind, key)] = Alarm(kind, key, text, blocking, current.since)
            return
        self._raised.labels(self.account, kind).inc()
        if self._held.get(kind, 0) >= MAX_PER_KIND:
            self._not_kept[kind] = self._not_kept.get(kind, 0) + 1
            if self._not_kept[kind] == 1:
                log.error(
                    "ALARM %s: more than %d active; the rest are counted, not logged", kind, MAX_PER_KIND
                )
            return
        log.error("ALARM %s %s: %s", kind, key, text)
        self._active[(kind, key)] = Alarm(kind, key, text, blocking)
        self._held[kind] = self._held.get(kind, 0) + 1
        self._gauge.labels(self.account, kind).inc()

    def clear(self, kind: str, key: str) -> bool:
        """Clear one alarm; True if it was active."""
        alarm = self._active.pop((kind, key), None)
        if alarm is None:
            return False
        self._held[kind] -= 1
        self._gauge.labels(self.account, kind).dec()
        log.warning("alarm cleared: %s %s (raised %s)", kind, key, alarm.since.isoformat())
        return True

    def is_active(self, kind: str, key: str) -> bool:
        return (kind, key) in self._active

    def active(self, kind: str | None = None) -> list[Alarm]:
        """Active alarms, oldest first (only of `kind` when given)."""
        # list() copies in one C call: an alarm raised meanwhile on another thread (a QuickFIX callback)
        # cannot change the dict under the iteration.
        alarms = [a for a in list(self._active.values()) if kind is None or a.kind == kind]
        return sorted(alarms, key=lambda a: a.since)

    def blocking(self) -> list[Alarm]:
        return [a for a in self.active() if a.blocking]

    def describe(self) -> dict[str, object]:
        """What /readyz shows: the first alarms (blocking ones first) and how many there are."""
        ordered = sorted(self.active(), key=lambda a: (not a.blocking, a.since))
        return {
            "count": len(ordered),
            "shown": [a.as_dict() for a in ordered[:SHOWN]],
            "not_kept": dict(self._not_kept),
        }

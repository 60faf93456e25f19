"""Crash points: named places on the durable order path where a test can have the process SIGKILLed.

In the style of fail-rs and FoundationDB's buggify, for the crash tests only (tests/integration/
test_daemon_crash.py): `FIXADAPTER_CRASH_AT=order_stored_before_send:5` makes the process kill itself
with SIGKILL the 5th time it reaches that point (several, comma-separated: `a:5,b:3`), after one line on
stderr naming the point. Built once, in the composition root (wiring.py), and handed to the code that
has the points; unset, every point is a method that does nothing.
"""

from __future__ import annotations

import enum
import os
import signal
import threading
from collections.abc import Callable, Mapping

from fixadapter.errors import ConfigError

VARIABLE = "FIXADAPTER_CRASH_AT"


class CrashPoint(enum.StrEnum):
    ORDER_STORED_BEFORE_SEND = "order_stored_before_send"
    """A new order is durable (journaled, or its insert committed); its message is not yet sent."""
    JOURNALED_BEFORE_STORE = "journaled_before_store"
    """The store thread is about to write a journaled record (its order may be at the venue already)."""
    REPORT_RECEIVED_BEFORE_STORE = "report_received_before_store"
    """An execution report is taken from the inbox; nothing of it is stored yet."""
    BATCH_BEFORE_COMMIT = "batch_before_commit"
    """The calls of a store-thread batch of more than one call ran; the batch is not committed."""
    BATCH_COMMITTED_BEFORE_ANSWER = "batch_committed_before_answer"
    """A batch of more than one call is committed; none of its callers has its answer."""
    REPORT_STORED_BEFORE_PUBLISH = "report_stored_before_publish"
    """Order events are stored; the relay has not yet published them (to Redis)."""


class CrashPoints:
    """No point armed: `hit` does nothing (the object every production process gets)."""

    def hit(self, point: CrashPoint) -> None:
        """`point` is reached."""


NO_CRASH = CrashPoints()


def _sigkill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class ArmedCrashPoints(CrashPoints):
    """Kills the process the `count`-th time an armed point is reached (thread-safe: the store thread
    reaches points too)."""

    def __init__(self, armed: Mapping[CrashPoint, int], kill: Callable[[], None] = _sigkill) -> None:
        self.armed = dict(armed)
        self._reached = dict.fromkeys(self.armed, 0)
        self._kill = kill
        self._lock = threading.Lock()

    def hit(self, point: CrashPoint) -> None:
        count = self.armed.get(point)
        if count is None:
            return
        with self._lock:
            self._reached[point] += 1
            reached = self._reached[point]
        if reached == count:
            # Straight to the file descriptor: nothing buffered may be lost with the process.
            os.write(2, f"fixadapter: crash point {point.value} reached {count} time(s): SIGKILL\n".encode())
            self._kill()


def parse_crash_points(spec: str, kill: Callable[[], None] = _sigkill) -> CrashPoints:
    """`name:count[,name:count...]` -> the armed points; empty -> NO_CRASH; anything else is a ConfigError
    naming the variable and the known points."""
    if not spec.strip():
        return NO_CRASH
    known = ", ".join(point.value for point in CrashPoint)
    armed: dict[CrashPoint, int] = {}
    for part in spec.split(","):
        name, colon, count = part.strip().partition(":")
        problem = None
        if not colon:
            problem = f"{part.strip()!r} is not name:count"
        elif name not in {point.value for point in CrashPoint}:
            problem = f"no crash point {name!r}"
        elif not count.isdigit() or int(count) < 1:
            problem = f"the count of {name} must be a whole number from 1, not {count!r}"
        elif CrashPoint(name) in armed:
            problem = f"{name} is given twice"
        if problem is not None:
            raise ConfigError(
                f"{VARIABLE}={spec!r}: {problem}; write name:count (SIGKILL the count-th time the point is "
                f"reached), several separated by commas; known points: {known}"
            )
        armed[CrashPoint(name)] = int(count)
    return ArmedCrashPoints(armed, kill)


def crash_points_from(environ: Mapping[str, str]) -> CrashPoints:
    """The crash points `FIXADAPTER_CRASH_AT` in `environ` arms (unset: none)."""
    return parse_crash_points(environ.get(VARIABLE, ""))

"""Waiting for QuickFIX's own threads to end before Python does.

The rare "FATAL: exception not rethrown" abort (exit 134) at the end of a run, as far as we could tell (it
was not reproduced on demand): when a session's connection ends, ThreadedSocketInitiator *detaches* its
thread, which then still disconnects the session, calling Application.onLogout and Log.onEvent, that is
into Python. `initiator.stop()` joins only the threads it still lists, so it can return while a detached
one is in (or about to enter) a Python callback. If the interpreter is finalizing by then, taking the GIL
makes CPython end that thread with pthread_exit(), whose forced unwind is an exception to C++; a
`catch (...)` that does not rethrow on its way makes glibc abort the process with that message. (An
exception escaping a Python callback aborts too, "terminate called without an active exception", exit
134: every callback of ours is guarded, see application.py.)

So after stopping the initiator the host waits, bounded, until every native thread that appeared since
it started (one that no Python thread owns) has ended (Linux: /proc/self/task; elsewhere a short sleep).
"""

from __future__ import annotations

import os
import threading
import time

TASKS = "/proc/self/task"
POLL_SECONDS = 0.01
FALLBACK_SECONDS = 0.2  # without /proc: the time an engine thread takes to unwind


def native_threads() -> set[int] | None:
    """Ids of this process's threads that no Python thread owns; None where /proc is not there."""
    try:
        tasks = {int(name) for name in os.listdir(TASKS)}
    except (OSError, ValueError):
        return None
    python = {thread.native_id for thread in threading.enumerate() if thread.native_id is not None}
    return tasks - python


def wait_for_native_threads(before: set[int] | None, timeout: float) -> set[int]:
    """Wait until the native threads started since `before` (native_threads() then) have all ended, up to
    `timeout` seconds; returns those still running (empty: all gone)."""
    if before is None:
        time.sleep(FALLBACK_SECONDS)
        return set()
    deadline = time.monotonic() + timeout
    while True:
        left = (native_threads() or set()) - before
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(POLL_SECONDS)


class ConnectionThreads:
    """The engine threads that have carried a connection, noted from the events they log.

    A connection thread forgets its socket in ThreadedSocketInitiator only after closing it, and
    `initiator.stop()` closes the socket of every thread still listed, a second time: on whatever this
    process opened meanwhile under that number (a Redis or HTTP socket of the daemon, which then fails with
    EBADF). So the host stops the initiator only once each of these threads has ended (a thread ends after
    forgetting its socket).
    """

    EVENTS = ("Connection succeeded", "Connection failed", "Disconnecting")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: set[int] = set()

    def saw(self, text: str) -> None:
        """Called by the engine's log for every event, on the thread that logs it."""
        if text.startswith(self.EVENTS) and isinstance(threading.current_thread(), threading._DummyThread):
            with self._lock:
                self._ids.add(threading.get_native_id())

    def wait_ended(self, timeout: float) -> set[int]:
        """Wait until every thread noted has ended, up to `timeout` seconds; returns those still running."""
        if not os.path.isdir(TASKS):
            time.sleep(FALLBACK_SECONDS)
            return set()
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                self._ids = {tid for tid in self._ids if os.path.exists(f"{TASKS}/{tid}")}
                left = set(self._ids)
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(POLL_SECONDS)

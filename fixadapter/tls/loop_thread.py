"""An asyncio loop on a thread of its own, so relaying never waits behind the engine's loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)
SETTLE_ROUNDS = 5  # loop iterations for aborted transports to run their close callbacks


class LoopThread:
    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            loop.run_forever()
            try:
                loop.run_until_complete(_settle(self._name))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._thread.start()
        started.wait()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run `coro` on the loop and wait for its result (from any other thread)."""
        if self._loop is None:
            coro.close()
            raise RuntimeError(f"{self._name} is not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._loop = None
        self._thread = None


async def _settle(name: str) -> None:
    """Abort every connection still on the loop before it closes.

    Its owner closes what it opened before stopping the loop; this is the net under that. A transport
    left closing when the loop closes keeps its socket until the garbage collector finds it (an
    "unclosed transport" warning, at any later moment of the process). The selector loop keeps a weak
    map of its transports; a loop without one (another implementation) is left as it is."""
    transports = getattr(asyncio.get_running_loop(), "_transports", None)
    if transports is None:
        return
    left = [transport for transport in list(transports.values()) if transport is not None]
    still_open = sum(1 for transport in left if not transport.is_closing())
    if still_open:
        log.warning("%s: %d connection(s) still open at stop were aborted", name, still_open)
    for transport in left:
        transport.abort()  # a no-op for one already finished
    for _ in range(SETTLE_ROUNDS):
        await asyncio.sleep(0)

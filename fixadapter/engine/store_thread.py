"""The one thread that runs the engine's store calls.

One worker keeps writes in the order they were asked for, and the loop never blocks on the database (an
in-memory SQLite database exists only on this thread). Each call is timed by its name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from fixadapter.metrics import Metrics

P = ParamSpec("P")
T = TypeVar("T")


class StoreThread:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fixadapter-store")

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` on the store thread, timed under its name."""
        timer = self.metrics.store_seconds.labels(getattr(fn, "__name__", "other"))

        def timed() -> T:
            with timer.time():
                return fn(*args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(self.executor, timed)

    async def shutdown(self) -> None:
        """Wait for the calls already asked for, then end the thread (off the loop)."""
        await asyncio.to_thread(self.executor.shutdown, True)

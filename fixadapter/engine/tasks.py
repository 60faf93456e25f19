"""The only place tasks are created: each is named, kept referenced, and its failure logged and counted.

A critical task (the command dispatcher, the event relay) is supervised: one that raises is logged with
its traceback, counted in `fixadapter_task_restarts_total{task}` and started again after a backoff
(0.5 s doubling to 30 s). From its failure until it runs healthily again (it reports progress, or runs
HEALTHY_SECONDS without failing) a blocking alarm `task_failed` keyed by its name makes the adapter not
ready, so a dead or dying task is never silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from fixadapter.metrics import Metrics

log = logging.getLogger("fixadapter.tasks")
T = TypeVar("T")

TASK_FAILED = "task_failed"
FIRST_RESTART_SECONDS = 0.5
MAX_RESTART_SECONDS = 30.0
HEALTHY_SECONDS = 30.0
CANCEL_WAIT_SECONDS = 10.0

Progress = Callable[[], None]
Supervised = Callable[[Progress], Awaitable[None]]


class _Supervision:
    """One supervised task's backoff and alarm."""

    def __init__(self, name: str, metrics: Metrics) -> None:
        self._name = name
        self._metrics = metrics
        self._restarts = metrics.task_restarts.labels(name)
        self._failures = 0
        self.delay = FIRST_RESTART_SECONDS

    def healthy(self) -> None:
        """The task did useful work (or ran long enough): reset the backoff and clear its alarm."""
        self.delay = FIRST_RESTART_SECONDS
        self._failures = 0
        self._metrics.alarms.clear(TASK_FAILED, self._name)

    def failed(self, error: Exception) -> float:
        """Log, count and alarm; returns the wait before the restart."""
        self._failures += 1
        self._restarts.inc()
        delay, self.delay = self.delay, min(self.delay * 2, MAX_RESTART_SECONDS)
        log.error(
            "task %s failed (%d in a row): %r; restarting in %gs",
            self._name,
            self._failures,
            error,
            delay,
            exc_info=error,
        )
        self._metrics.alarms.raise_alarm(
            TASK_FAILED,
            self._name,
            f"task {self._name} failed {self._failures} time(s) in a row ({type(error).__name__}: "
            f"{str(error)[:200]}); restarted automatically after a backoff, see the daemon log's "
            "traceback if this stays",
            blocking=True,
        )
        return delay


def cancelling() -> bool:
    """True while the running task is being cancelled: an error caught then may be a library's rewording
    of the cancellation, and a loop that goes on after it never stops (redis-py's reads do this)."""
    current = asyncio.current_task()
    return current is not None and current.cancelling() > 0


def raise_if_cancelled() -> None:
    """Raise CancelledError when the running task is being cancelled although the call it awaited has
    just returned normally. On Python 3.11 asyncio.wait_for (under redis-py's send, and our own waits)
    returns the inner result when the cancellation meets an inner call that has just finished (CPython
    gh-86296): the cancellation is spent, and a loop that goes on has nothing left to stop it. Call it
    after such an await inside a loop. The answer obtained is dropped: the caller ends as if the
    cancellation had come a moment later, while the answer was on its way, which it already has to bear."""
    if cancelling():
        raise asyncio.CancelledError


async def cancel_and_wait(task: asyncio.Future[Any]) -> None:
    """Cancel `task` and wait until it has ended. Its cancellation is expected and absorbed; the caller's
    own is not: a bare suppress(CancelledError) around that await also swallows a stop of the caller
    arriving meanwhile, and the caller then goes on as if nobody had asked it to stop. What else the task
    raised is raised."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        if cancelling():
            raise


class TaskGroup:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def supervise(self, run: Supervised, name: str) -> asyncio.Task[None]:
        """Run `run(progress)` until it returns, starting it again whenever it raises; `run` calls
        `progress()` after useful work, which ends the task's alarm."""
        return self.spawn(self._supervised(run, name), name=name)

    async def _supervised(self, run: Supervised, name: str) -> None:
        supervision = _Supervision(name, self._metrics)
        loop = asyncio.get_running_loop()
        while True:
            timer = loop.call_later(HEALTHY_SECONDS, supervision.healthy)
            try:
                await run(supervision.healthy)
                return
            except Exception as error:  # a critical task is restarted, whatever it raised
                if cancelling():
                    # Being stopped: a library turned the cancellation into its own error; a restart
                    # here would swallow the stop and the task would run on forever.
                    raise asyncio.CancelledError from error
                delay = supervision.failed(error)
            finally:
                timer.cancel()
            await asyncio.sleep(delay)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self._metrics.callback_errors.labels(f"task:{task.get_name().split('-')[0]}").inc()
            log.error("task %s failed: %r", task.get_name(), error, exc_info=error)

    async def cancel_all(self, timeout: float = CANCEL_WAIT_SECONDS) -> None:
        """Cancel every task and wait for them, at most `timeout`: a task that swallows its cancellation
        (a library call that does) is named in the log and left behind, so stopping never hangs on it."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        if pending:
            names = ", ".join(sorted(task.get_name() for task in pending))
            log.error("tasks still running %gs after being cancelled, left behind: %s", timeout, names)
        for task in tasks:
            if task.done() and not task.cancelled():
                with contextlib.suppress(Exception):
                    task.result()  # retrieved: its failure was logged by _finished

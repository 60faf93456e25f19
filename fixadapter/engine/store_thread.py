"""The one thread that runs the engine's store calls, committing the calls that wait together at once.

One worker keeps calls in the order they were asked for, and the loop never blocks on the database (an
in-memory SQLite database exists only on this thread). Calls on a store that can batch (OrderStore.batch)
found waiting together, the orders and reports of one burst, share one transaction: one commit for all,
and every caller hears its result only once that commit is done (nobody acts on a write the store might
still lose). A batch in which a call fails is rolled back and run again call by call, so each failure
reaches its own caller and is handled as it always is; a batch whose commit fails is not run again (it
may have landed): each of its callers gets the store error. Each call is timed by its name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar, cast

from fixadapter.crash_points import NO_CRASH, CrashPoint, CrashPoints
from fixadapter.metrics import Metrics
from fixadapter.store.repository import BatchAborted, CommitUnconfirmed

log = logging.getLogger("fixadapter.engine")

P = ParamSpec("P")
T = TypeVar("T")

MAX_BATCH = 256  # calls in one transaction: bounds how long the first of them waits for the commit
RETRY_FIRST_SECONDS = 0.1  # a posted call that failed is run again after this, then twice as long...
RETRY_MAX_SECONDS = 5.0
STOP_RETRY_SECONDS = 5.0  # ...and, once the thread is asked to stop, for this long at most
# Journaled writes in hand and nobody waiting: how long to wait for more to share their commit. The
# journal has them already; only a read asked meanwhile (it ends the wait) could notice the delay.
POSTED_LINGER_SECONDS = 0.005


class Batching(Protocol):
    def batch(self) -> contextlib.AbstractContextManager[None]: ...


@dataclass
class _Call:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    # Exactly one of the two: a thread's Future (submit), or an asyncio caller's future, answered on its
    # loop (run: no Future and its Condition per call, a tenth of the loop's time per order in a burst).
    answer: Future[Any] | None = None
    waiter: asyncio.Future[Any] | None = None
    result: Any = None
    error: BaseException | None = None
    posted: bool = False  # nobody waits (`post`): run until it succeeds, since the journal holds it
    position: int = 0  # a posted call's journal position

    def starts(self) -> bool:
        """False for a call whose caller gave up before it ran (dropped). An asyncio caller that gives up
        as it starts still has it run, as a Future past set_running does."""
        if self.waiter is not None:
            return not self.waiter.cancelled()
        return self.answer is None or self.answer.set_running_or_notify_cancel()

    @property
    def store(self) -> Batching | None:
        """The store whose batch this call may join: a method of it that goes through its transactions."""
        owner = getattr(self.fn, "__self__", None)
        if not callable(getattr(owner, "batch", None)):
            return None
        if getattr(self.fn, "__name__", "") in getattr(owner, "UNBATCHED", ()):
            return None
        return cast(Batching, owner)


class StoreThread(Executor):
    """Also an Executor, for readers that share the thread (`loop.run_in_executor(store_thread, ...)`)."""

    def __init__(
        self, metrics: Metrics, max_batch: int = MAX_BATCH, crash_points: CrashPoints = NO_CRASH
    ) -> None:
        self.metrics = metrics
        self._crash_points = crash_points
        self._max_batch = max_batch
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self.applied = 0  # the journal position of the last posted call committed (read from any thread)
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="fixadapter-store", daemon=True)
        self._thread.start()

    @property
    def executor(self) -> Executor:
        return self

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        answer: Future[T] = Future()
        self._put(_Call(fn, args, kwargs, answer=answer))
        return answer

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` on the store thread, timed under its name; its result once committed.
        The answers of calls run together reach the loop in one wake-up, not one each."""
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._put(_Call(fn, args, kwargs, waiter=waiter))
        return await waiter

    def post(self, position: int, fn: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
        """`fn(*args, **kwargs)` on the store thread with nobody waiting: the writes of the journal record
        at `position`. It keeps its place among the calls (a read asked for later sees it) and is run
        again until it succeeds, holding back the calls after it: it must be idempotent (the journal
        position it notes makes it so). `applied` reaches `position` once it is committed."""
        self._put(_Call(fn, args, kwargs, posted=True, position=position))

    def _put(self, call: _Call) -> _Call:
        with self._lock:
            if self._closed:
                raise RuntimeError("the store thread has stopped")
            self._calls.put(call)
        return call

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Run the calls already asked for, then end the thread."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._calls.put(None)
        if wait and self._thread is not threading.current_thread():
            self._thread.join()

    async def stop(self) -> None:
        """`shutdown()` off the loop."""
        await asyncio.to_thread(self.shutdown, True)

    # -- the thread ---------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            first = self._calls.get()
            if first is None:
                return
            waiting = [first, *self._waiting()]
            if all(call is not None and call.posted for call in waiting):
                waiting += self._more_posted(len(waiting))
            stop = waiting[-1] is None
            # A call whose caller gave up before it ran is dropped (an asyncio caller cancelled).
            calls = [c for c in waiting if c is not None and c.starts()]
            for group in _groups(calls):
                try:
                    self._run_group(group)
                except BaseException as exc:  # never the thread's end: every caller still hears
                    log.exception("store thread: a batch of %d call(s) failed as a whole", len(group))
                    for call in group:
                        call.result, call.error = None, exc
                self._note_applied(group)
            _deliver(calls)
            if stop:
                return

    def _note_applied(self, group: list[_Call]) -> None:
        for call in group:
            if call.posted and call.error is None and call.position > self.applied:
                self.applied = call.position

    def _more_posted(self, taken: int) -> Iterator[_Call | None]:
        """Nobody waits for the calls in hand (journaled writes): wait up to POSTED_LINGER_SECONDS for
        more, so the writes of a burst share a commit rather than paying one each. A call somebody waits
        for ends the wait at once."""
        deadline = time.monotonic() + POSTED_LINGER_SECONDS
        while taken < self._max_batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                call = self._calls.get(timeout=remaining)
            except queue.Empty:
                return
            yield call
            taken += 1
            if call is None:
                return
            if not call.posted:
                for more in self._waiting_up_to(self._max_batch - taken):
                    yield more
                    if more is None:
                        return
                return

    def _waiting(self) -> Iterator[_Call | None]:
        return self._waiting_up_to(self._max_batch - 1)

    def _waiting_up_to(self, count: int) -> Iterator[_Call | None]:
        for _ in range(count):
            try:
                call = self._calls.get_nowait()
            except queue.Empty:
                return
            yield call
            if call is None:
                return

    def _run_group(self, group: list[_Call]) -> None:
        store = group[0].store
        if store is None or len(group) == 1:
            for call in group:
                self._run_alone(call)
            return
        try:
            with store.batch():
                self._execute_batch(group)
        except BatchAborted:  # rolled back: certain, so each call runs again alone
            for call in group:
                call.result, call.error = None, None
                self._run_alone(call)
            return
        except CommitUnconfirmed as exc:  # may have landed: nothing runs again, every caller hears it
            for call in group:
                call.result, call.error = None, exc
                if call.posted:  # but a journaled record, whose position says whether it landed
                    call.error = None
                    self._run_alone(call)
        else:
            self._crash_points.hit(CrashPoint.BATCH_COMMITTED_BEFORE_ANSWER)  # answered by _work, after
            self._retry_posted(group)
        self.metrics.store_batch_calls.observe(len(group))

    def _execute_batch(self, group: list[_Call]) -> None:
        """The calls of a batch, in order, inside its transaction (not committed yet)."""
        for run in _bulk_runs(group):
            if len(run) > 1:
                self._execute_bulk(run)
            else:
                self._execute(run[0])
        self._crash_points.hit(CrashPoint.BATCH_BEFORE_COMMIT)

    def _retry_posted(self, group: list[_Call]) -> None:
        """A journaled write that failed before reaching the database (the batch committed without it)
        is run again on its own until it succeeds."""
        for call in group:
            if call.posted and call.error is not None:
                self._run_alone(call)

    def _execute_bulk(self, run: list[_Call]) -> None:
        """Consecutive journaled writes of one kind as one call of the store's bulk form (in a batch): a
        failure makes the batch run again call by call, where each is handled as always."""
        first = run[0]
        owner = getattr(first.fn, "__self__", None)
        bulk = getattr(owner, _bulk_name(first) or "", None)
        if bulk is None:
            raise BatchAborted(RuntimeError(f"no bulk form of {first.fn}"))
        for _ in run:
            self._crash_points.hit(CrashPoint.JOURNALED_BEFORE_STORE)
        with self.metrics.store_seconds.labels(bulk.__name__).time():
            try:
                bulk([call.args for call in run])
            except BatchAborted:
                raise
            except Exception as exc:
                raise BatchAborted(exc) from exc

    def _run_alone(self, call: _Call) -> None:
        self._execute(call)
        if call.posted and call.error is not None:
            self._until_done(call)

    def _until_done(self, call: _Call) -> None:
        """Run a posted call again, with a growing pause, until it succeeds (the database is back)."""
        pause, failures, started = RETRY_FIRST_SECONDS, 1, time.monotonic()
        while call.error is not None and not self._closing_for(started):
            if failures == 1 or failures % 10 == 0:
                log.error(
                    "store thread: writing a journaled record failed %d time(s) (%s); retried every %.1fs, "
                    "every store call waits behind it: check the database",
                    failures,
                    call.error,
                    pause,
                )
            time.sleep(pause)
            pause = min(pause * 2, RETRY_MAX_SECONDS)
            call.error = None
            self._execute(call)
            failures += 1
        if call.error is not None:
            log.error(
                "store thread: stopping with a journaled record not written (%s): it is written from the "
                "journal at the next start",
                call.error,
            )
        else:
            log.warning("store thread: the journaled record was written after %d failure(s)", failures - 1)

    def _closing_for(self, started: float) -> bool:
        """Stopping, and the retries had their grace: the journal keeps the record for the next start."""
        return self._closed and time.monotonic() - started > STOP_RETRY_SECONDS

    def _execute(self, call: _Call) -> None:
        """Runs the call; a BatchAborted goes on to the batch (outside one, it cannot be raised)."""
        if call.posted:
            self._crash_points.hit(CrashPoint.JOURNALED_BEFORE_STORE)
        timer = self.metrics.store_seconds.labels(getattr(call.fn, "__name__", "other"))
        with timer.time():
            try:
                call.result = call.fn(*call.args, **call.kwargs)
            except Exception as exc:
                call.error = exc


def _groups(calls: list[_Call]) -> Iterator[list[_Call]]:
    """Runs of consecutive calls on one batching store (order kept); any other call alone."""
    group: list[_Call] = []
    for call in calls:
        store = call.store
        if group and (store is None or store is not group[0].store):
            yield group
            group = []
        group.append(call)
        if store is None:
            yield group
            group = []
    if group:
        yield group


def _bulk_name(call: _Call) -> str | None:
    """The store's bulk form of a journaled write (its `BULK` names them), None for any other call."""
    if not call.posted:
        return None
    owner = getattr(call.fn, "__self__", None)
    bulk: dict[str, str] = getattr(owner, "BULK", {})
    return bulk.get(getattr(call.fn, "__name__", ""))


def _bulk_runs(group: list[_Call]) -> Iterator[list[_Call]]:
    """The group in order, consecutive journaled writes with the same bulk form together."""
    run: list[_Call] = []
    for call in group:
        name = _bulk_name(call)
        if run and (name is None or name != _bulk_name(run[0])):
            yield run
            run = []
        if name is None:
            yield [call]
        else:
            run.append(call)
    if run:
        yield run


def _deliver(calls: list[_Call]) -> None:
    """Every call's answer, once all of them ran (and what they wrote is committed): futures at once, the
    asyncio callers of each loop in one wake-up."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Call]] = {}
    for call in calls:
        if call.answer is not None:
            if call.error is not None:
                call.answer.set_exception(call.error)
            else:
                call.answer.set_result(call.result)
        if call.waiter is not None:
            by_loop.setdefault(call.waiter.get_loop(), []).append(call)
    for loop, answered in by_loop.items():
        with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, answered)


def _settle(answered: list[_Call]) -> None:
    """On the callers' loop."""
    for call in answered:
        waiter = call.waiter
        if waiter is None or waiter.done():
            continue  # cancelled meanwhile
        if call.error is not None:
            waiter.set_exception(call.error)
        else:
            waiter.set_result(call.result)

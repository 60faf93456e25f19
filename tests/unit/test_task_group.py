"""Stopping the daemon's tasks never hangs: a supervised task whose library turns its cancellation into
another error is not restarted, and a task that ignores cancellation is named and left behind."""

from __future__ import annotations

import asyncio
import logging

import pytest

from fixadapter.engine.tasks import TaskGroup, cancel_and_wait
from fixadapter.metrics import Metrics


def test_a_supervised_task_cancelled_inside_a_library_that_raises_its_own_error_is_not_restarted():
    starts = 0

    async def run(progress: object) -> None:
        nonlocal starts
        starts += 1
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise ConnectionError("connection closed by the cancelled read") from None

    async def scenario() -> None:
        tasks = TaskGroup(Metrics())
        task = tasks.supervise(run, "poller")
        await asyncio.sleep(0.01)
        await tasks.cancel_all(timeout=5)
        assert task.cancelled()

    asyncio.run(scenario())
    assert starts == 1


def test_a_task_that_ignores_cancellation_is_named_and_left_behind(caplog: pytest.LogCaptureFixture):
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    async def scenario() -> None:
        tasks = TaskGroup(Metrics())
        task = tasks.spawn(stubborn(), "stubborn")
        await asyncio.sleep(0.01)
        with caplog.at_level(logging.ERROR):
            await tasks.cancel_all(timeout=0.1)
        assert not task.done()
        release.set()
        task.cancel()
        await asyncio.wait({task})

    asyncio.run(scenario())
    assert "left behind: stubborn" in caplog.text


def test_stopping_a_task_absorbs_its_cancellation_but_not_a_stop_of_the_caller():
    """cancel_and_wait: the task it stops ends cancelled and the caller goes on; a caller itself cancelled
    while it waits for a task that takes its time to end is cancelled too (a bare
    suppress(CancelledError) around the wait swallowed that stop, and the caller went on)."""
    release = asyncio.Event()

    async def slow_to_end() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await release.wait()
            raise

    async def stopper(task: asyncio.Task[None]) -> str:
        await cancel_and_wait(task)
        return "went on"

    async def scenario() -> None:
        quick = asyncio.ensure_future(asyncio.sleep(3600))
        await asyncio.sleep(0)
        assert await stopper(quick) == "went on"
        assert quick.cancelled()

        slow = asyncio.ensure_future(slow_to_end())
        await asyncio.sleep(0)
        caller = asyncio.ensure_future(stopper(slow))
        await asyncio.sleep(0)  # the caller waits for `slow`, which is ending
        caller.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert caller.cancelled()
        assert slow.cancelled()

    asyncio.run(scenario())


def test_stopping_a_task_raises_what_it_raised_on_its_way_out():
    async def fails_when_stopped() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    async def scenario() -> None:
        task = asyncio.ensure_future(fails_when_stopped())
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="cleanup failed"):
            await cancel_and_wait(task)

    asyncio.run(scenario())

"""Stopping the daemon's tasks never hangs: a supervised task whose library turns its cancellation into
another error is not restarted, and a task that ignores cancellation is named and left behind."""

from __future__ import annotations

import asyncio
import logging

import pytest

from fixadapter.engine.tasks import TaskGroup
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

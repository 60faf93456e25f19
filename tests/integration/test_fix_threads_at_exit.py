"""When the adapter has stopped, no QuickFIX thread is left running: a detached engine thread calling into
Python while the interpreter finalizes aborted the process with "FATAL: exception not rethrown" (exit
134; see connectors/fix/native_threads.py)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from fixadapter.api import Adapter
from fixadapter.connectors.fix.native_threads import native_threads
from fixadapter.sim.process import SimProcess

from .conftest import ConfigFactory


def test_native_threads_are_the_threads_no_python_thread_owns() -> None:
    found = native_threads()
    assert found is not None  # Linux
    assert threading.main_thread().native_id not in found


def test_no_quickfix_thread_outlives_the_adapters_stop(
    sim: SimProcess, make_config: ConfigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="fixadapter.fix")
    before = native_threads()
    assert before is not None

    async def scenario() -> set[int]:
        async with Adapter(make_config(sim)) as adapter:
            await adapter.wait_ready(15)
            assert native_threads() - before  # the initiator's threads
            sim.control("/logout", {})  # one session's connection ends: its thread is detached
            await asyncio.sleep(0.5)
        return (native_threads() or set()) - before

    left = asyncio.run(scenario())
    assert not [r for r in caplog.records if "native thread" in r.getMessage()]  # the host saw them end
    # What is left is a Python thread the OS has not reaped yet (it left threading.enumerate() already).
    deadline = time.monotonic() + 1
    while left and time.monotonic() < deadline:
        time.sleep(0.01)
        left = (native_threads() or set()) - before
    assert left == set()

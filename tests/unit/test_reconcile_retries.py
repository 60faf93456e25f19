"""Reconciliation retries whatever fails transiently, the store included, until it succeeds."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fixadapter.engine import reconciler
from fixadapter.errors import StoreError
from fixadapter.metrics import Metrics


class Engine:
    """What reconcile() uses of the engine besides the steps (replaced below)."""

    def __init__(self) -> None:
        self.metrics = Metrics()
        self.reconcile_problem: str | None = None
        self.ready = asyncio.Event()

    def mark_ready(self) -> None:
        self.ready.set()


def test_a_store_outage_during_reconciliation_is_retried_and_the_task_does_not_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts: list[int] = []

    async def once(engine: Any, notes: reconciler.Notes) -> None:
        attempts.append(len(attempts))
        if len(attempts) == 1:
            raise StoreError("database error: OperationalError: server closed the connection unexpectedly")

    monkeypatch.setattr(reconciler, "_reconcile_once", once)
    monkeypatch.setattr(reconciler, "RETRY_SECONDS", 0.0)
    engine = Engine()

    async def scenario() -> None:
        async with asyncio.timeout(10):
            await reconciler.reconcile(engine)  # type: ignore[arg-type]

    asyncio.run(scenario())
    assert engine.ready.is_set() and len(attempts) == 2
    sample = engine.metrics.value
    assert sample("fixadapter_reconciliations_total", {"outcome": "failed"}) == 1
    assert engine.reconcile_problem is None

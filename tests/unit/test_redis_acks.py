"""Acknowledgements to Redis: those asked for together go in one MULTI/EXEC, and each caller hears of its
own once that transaction is answered (or of its failure)."""

from __future__ import annotations

import asyncio

from redis.exceptions import ResponseError

from fixadapter.metrics import Metrics
from fixadapter.queue.transport import Delivery
from tests.unit.test_queue_cancellation import CancelReworded, _command_source


def delivery(n: int) -> Delivery:
    return Delivery(entry_id=f"{n}-0", data=b"{}", strategy="momo")


def test_acknowledgements_asked_for_together_cost_one_transaction() -> None:
    async def scenario() -> list[str]:
        redis = CancelReworded()
        source = await _command_source(redis, Metrics(), group_ready=True)
        await asyncio.gather(*(source.ack(delivery(n)) for n in range(50)))
        await source.ack(delivery(50))  # alone: a transaction of its own
        return redis.calls

    assert asyncio.run(scenario()) == ["execute", "execute"]


def test_an_acknowledgement_that_fails_fails_for_every_caller_of_its_transaction() -> None:
    class Refusing(CancelReworded):
        async def call(self, name: str) -> object:
            self.calls.append(name)
            raise ResponseError("NOPERM this user has no permissions to run the 'xack' command")

    async def scenario() -> list[BaseException | None]:
        source = await _command_source(Refusing(), Metrics(), group_ready=True)
        results = await asyncio.gather(*(source.ack(delivery(n)) for n in range(3)), return_exceptions=True)
        return list(results)

    results = asyncio.run(scenario())
    assert all(isinstance(result, ResponseError) for result in results), results


def test_the_sender_cancelled_leaves_every_acknowledgement_of_its_transaction_unacknowledged() -> None:
    """Each caller ends cancelled, none believing its command acknowledged (they come back, harmless)."""

    async def scenario() -> list[bool]:
        redis = CancelReworded("execute")
        source = await _command_source(redis, Metrics(), group_ready=True)
        tasks = [asyncio.ensure_future(source.ack(delivery(n))) for n in range(3)]
        await asyncio.wait_for(redis.called.wait(), 10)
        tasks[0].cancel()  # the first asked sends the transaction
        await asyncio.wait(tasks, timeout=10)
        return [task.cancelled() for task in tasks]

    assert asyncio.run(scenario()) == [True, True, True]

"""The event relay: order events that wait together go out as one step, in the order the engine made
them, with the last sequence number; a publish that fails loses nothing and doubles nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from fixadapter.daemon.relay import EventRelay
from fixadapter.metrics import Metrics
from fixadapter.model.enums import OrderEventKind
from fixadapter.model.orders import OrderEvent, Position
from fixadapter.queue.schema import decode_event
from fixadapter.queue.transport import Published
from tests.unit.conftest import make_order


class Sink:
    """Records each step the relay takes; `fail` makes the next publish_many raise."""

    def __init__(self) -> None:
        self.steps: list[list[tuple[str, int | None]] | str] = []
        self.fail = 0

    async def publish_many(self, events: Sequence[Published]) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("redis went away (simulated)")
        self.steps.append([(strategy, seq) for strategy, _, seq in events])
        for _, data, _ in events:
            assert decode_event(data).type == "order"

    async def publish(self, strategy: str, data: bytes, seq: int | None) -> None:
        await self.publish_many([(strategy, data, seq)])

    async def publish_positions(self, data: bytes) -> None:
        self.steps.append("positions")


class Engine:
    def __init__(self) -> None:
        self.on_event: Callable[[OrderEvent], None] = lambda _event: None
        self.on_positions: Callable[[Sequence[Position]], None] = lambda _positions: None


def relay_over(sink: Sink, published: int | None = 0) -> tuple[EventRelay, Engine]:
    engine = Engine()
    adapter = SimpleNamespace(
        account="default",
        metrics=Metrics(),
        on_event=lambda callback: setattr(engine, "on_event", callback),
        on_positions=lambda callback: setattr(engine, "on_positions", callback),
    )
    relay = EventRelay(adapter, sink)  # type: ignore[arg-type]
    relay._replayed_through = published
    return relay, engine


def event(seq: int, strategy: str = "momo") -> OrderEvent:
    order = make_order(cl_ord_id=f"ord-{seq}", strategy=strategy)
    return OrderEvent(kind=OrderEventKind.ACCEPTED, order=order, seq=seq)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_events_waiting_together_go_out_in_one_step_in_order_and_positions_keep_their_place() -> None:
    sink = Sink()
    relay, engine = relay_over(sink)

    async def scenario() -> None:
        for seq in (1, 2, 3):
            engine.on_event(event(seq))
        engine.on_positions([])
        engine.on_event(event(4, strategy="arb"))
        engine.on_event(event(5))
        task = asyncio.create_task(relay.run())
        await asyncio.sleep(0)  # running: drain() asks it to end
        await relay.drain(10)
        await task

    run(scenario())
    assert sink.steps == [
        [("momo", 1), ("momo", 2), ("momo", 3)],
        "positions",
        [("arb", 4), ("momo", 5)],
    ]


def test_a_failed_publish_is_tried_again_first_and_nothing_is_published_twice() -> None:
    sink = Sink()
    sink.fail = 1
    relay, engine = relay_over(sink)

    async def scenario() -> None:
        for seq in (1, 2):
            engine.on_event(event(seq))
        with pytest.raises(ConnectionError):
            await relay.run()  # the supervisor restarts it
        engine.on_event(event(3))
        task = asyncio.create_task(relay.run())
        await asyncio.sleep(0)  # running: drain() asks it to end
        await relay.drain(10)
        await task

    run(scenario())
    assert sink.steps == [[("momo", 1), ("momo", 2)], [("momo", 3)]]


def test_events_published_before_the_restart_are_not_published_again() -> None:
    sink = Sink()
    relay, engine = relay_over(sink, published=2)  # replayed by prepare() up to 2

    async def scenario() -> None:
        for seq in (1, 2, 3):
            engine.on_event(event(seq))
        await relay.drain(10)  # run() never started: drain publishes

    run(scenario())
    assert sink.steps == [[("momo", 3)]]


def test_an_event_of_no_strategy_is_not_published_and_holds_nothing_up() -> None:
    sink = Sink()
    relay, engine = relay_over(sink)

    async def scenario() -> None:
        engine.on_event(event(1, strategy=""))
        engine.on_event(event(2))
        await relay.drain(10)

    run(scenario())
    assert sink.steps == [[("momo", 2)]]

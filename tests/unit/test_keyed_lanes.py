"""Report lanes: reports about different orders are handled side by side, those about one order one after
another in arrival order; a report of no known order waits for everything before it; at stop nothing
taken is lost."""

from __future__ import annotations

import asyncio
from typing import Any

from fixadapter.engine.inbox import Arrival
from fixadapter.engine.keyed_lanes import KeyedLanes


class Handler:
    """Handles an arrival when its gate opens (open unless closed first); records starts and ends."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.gates: dict[int, asyncio.Event] = {}
        self.put_back: list[Arrival] = []

    def hold(self, mark: int) -> asyncio.Event:
        self.gates[mark] = asyncio.Event()
        return self.gates[mark]

    async def __call__(self, arrival: Arrival) -> None:
        mark = arrival[0]
        self.log.append(f"start {mark}")
        gate = self.gates.get(mark)
        if gate is not None:
            await gate.wait()
        self.log.append(f"end {mark}")

    def back(self, arrivals: list[Arrival]) -> None:
        self.put_back += arrivals


def arrival(mark: int) -> Arrival:
    return (mark, Any)  # type: ignore[return-value]  # the report itself is the handler's business


async def until(condition: Any) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


def test_another_orders_report_is_handled_while_one_order_waits_and_each_orders_reports_keep_order() -> None:
    async def scenario() -> list[str]:
        handler = Handler()
        lanes = KeyedLanes[Arrival](handler, handler.back)
        gate = handler.hold(1)
        await lanes.add(("A",), arrival(1))
        await lanes.add(("A",), arrival(2))
        await lanes.add(("B",), arrival(3))
        await until(lambda: "end 3" in handler.log)
        assert "start 2" not in handler.log  # A's second report waits for A's first
        gate.set()
        await lanes.settle()
        return handler.log

    log = asyncio.run(scenario())
    assert log.index("end 1") < log.index("start 2")
    assert log.index("end 3") < log.index("end 1")


def test_a_fill_waits_for_the_last_fill_of_its_position_as_well_as_for_its_order() -> None:
    async def scenario() -> list[str]:
        handler = Handler()
        lanes = KeyedLanes[Arrival](handler, handler.back)
        gate = handler.hold(1)
        await lanes.add(("A", "position 7"), arrival(1))  # A's fill on position 7, held
        await lanes.add(("B",), arrival(2))  # B's acknowledgement: free to go
        await lanes.add(("B", "position 7"), arrival(3))  # B's fill on the same position waits for A's
        await until(lambda: "end 2" in handler.log)
        assert "start 3" not in handler.log
        gate.set()
        await lanes.settle()
        return handler.log

    log = asyncio.run(scenario())
    assert log.index("end 1") < log.index("start 3")


def test_a_report_of_no_known_order_waits_for_everything_before_it_and_holds_what_follows() -> None:
    async def scenario() -> list[str]:
        handler = Handler()
        lanes = KeyedLanes[Arrival](handler, handler.back)
        gate = handler.hold(1)
        await lanes.add(("A",), arrival(1))
        barrier = asyncio.create_task(lanes.add(None, arrival(2)))
        await until(lambda: "start 1" in handler.log)
        assert "start 2" not in handler.log
        gate.set()
        await barrier
        await lanes.add(("B",), arrival(3))
        await lanes.settle()
        return handler.log

    assert asyncio.run(scenario()) == ["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"]


def test_at_stop_the_items_waiting_are_put_back_in_the_order_handed_over_and_the_one_in_hand_ends() -> None:
    async def scenario() -> Handler:
        handler = Handler()
        lanes = KeyedLanes[Arrival](handler, handler.back)
        gate = handler.hold(1)
        await lanes.add(("A",), arrival(1))
        await lanes.add(("A",), arrival(3))
        await lanes.add(("A",), arrival(2))
        await until(lambda: "start 1" in handler.log)
        closing = asyncio.create_task(lanes.close())
        await until(lambda: handler.put_back)
        gate.set()
        await closing
        return handler

    handler = asyncio.run(scenario())
    assert [mark for mark, _ in handler.put_back] == [3, 2]  # the inbox sorts by arrival itself
    assert handler.log == ["start 1", "end 1"]


def test_a_report_taken_while_the_lanes_are_full_is_put_back_when_stopped_there() -> None:
    async def scenario() -> Handler:
        handler = Handler()
        lanes = KeyedLanes[Arrival](handler, handler.back, limit=1)
        handler.hold(1)
        await lanes.add(("A",), arrival(1))
        waiting = asyncio.create_task(lanes.add(("B",), arrival(2)))
        await until(lambda: "start 1" in handler.log)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        return handler

    handler = asyncio.run(scenario())
    assert [mark for mark, _ in handler.put_back] == [2]


def test_an_item_handed_over_at_once_waits_its_turn_in_its_lanes_and_is_refused_when_they_are_full() -> None:
    async def scenario() -> tuple[Handler, list[bool]]:
        handler = Handler()
        lanes = KeyedLanes[Arrival](handler, handler.back, limit=2)
        first = handler.hold(1)
        await lanes.add(("A",), arrival(1))
        taken = [lanes.add_now(("A",), arrival(2))]  # room for one more: behind 1, in A
        taken.append(lanes.add_now(("B",), arrival(3)))  # full: refused, nothing started
        await until(lambda: "start 1" in handler.log)
        assert "start 2" not in handler.log
        first.set()
        await lanes.settle()
        taken.append(lanes.add_now(("B",), arrival(3)))  # room again
        await lanes.settle()
        return handler, taken

    handler, taken = asyncio.run(scenario())
    assert taken == [True, False, True]
    assert handler.log == ["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"]
    assert handler.put_back == []


def test_an_item_waiting_for_room_is_put_back_at_once_when_the_lanes_stop_taking() -> None:
    """Whoever hands items over is never held by lanes that will not move (a store that does not answer):
    stopped, the wait for room ends, the item is put back unstarted, and nothing more is taken."""

    async def scenario() -> tuple[Handler, bool, bool]:
        handler = Handler()
        lanes = KeyedLanes[Arrival](handler, handler.back, limit=1)
        handler.hold(1)  # never opens
        await lanes.add(("A",), arrival(1))
        waiting = asyncio.ensure_future(lanes.add(("B",), arrival(2)))
        await until(lambda: "start 1" in handler.log)
        assert not waiting.done()  # no room
        lanes.stop_taking()
        taken = await asyncio.wait_for(waiting, 10)
        later = lanes.add_now(("C",), arrival(3))
        await lanes.close(grace=0)
        return handler, taken, later

    handler, taken, later = asyncio.run(scenario())
    assert not taken and not later
    assert handler.put_back == [arrival(2)]
    assert handler.log == ["start 1"]  # 2 and 3 never started


def test_lanes_closing_when_cancelled_still_end_the_items_in_hand() -> None:
    """None goes on after its owner has ended: a close cut short during its grace cancels what it waited
    for, and waits for it to end, before the cancellation goes on."""

    async def scenario() -> tuple[list[str], list[asyncio.Task[Any]]]:
        ended: list[str] = []

        async def handle(item: Arrival) -> None:
            try:
                await asyncio.Event().wait()  # in hand until cancelled
            except asyncio.CancelledError:
                ended.append(f"cancelled {item[0]}")
                raise

        lanes = KeyedLanes[Arrival](handle, lambda _items: None)
        await lanes.add(("A",), arrival(1))
        await until(lambda: lanes._started)
        closing = asyncio.ensure_future(lanes.close(grace=3600))
        await asyncio.sleep(0)
        closing.cancel()
        await asyncio.gather(closing, return_exceptions=True)
        left = [t for t in asyncio.all_tasks() if t.get_name() == "lane" and not t.done()]
        return ended, left

    ended, left = asyncio.run(scenario())
    assert ended == ["cancelled 1"]
    assert left == []

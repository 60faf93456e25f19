"""The command dispatcher handles one account's commands about different orders side by side (a burst's
orders reach the store together) and the commands about one order, position or command id in the order
queued; one command failing unexpectedly lets those being handled finish, acknowledges none it did not
handle, and is raised."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from types import SimpleNamespace
from typing import Any

import pytest

from fixadapter.daemon import dispatcher as dispatcher_module
from fixadapter.daemon.dispatcher import CommandDispatcher, command_lanes
from fixadapter.metrics import Metrics
from fixadapter.model.requests import CancelOrder, NewOrder
from fixadapter.queue.schema import (
    AmendPositionProtectionCommand,
    AnyCommand,
    CancelCommand,
    ClosePositionCommand,
    ReplaceCommand,
    SubmitCommand,
    encode,
)
from fixadapter.queue.transport import Delivery
from fixadapter.store.repository import OrderStore
from tests.unit.queue_fakes import Commands, Published, engine_on

STEP_SECONDS = 10.0  # generous: what happens, happens at once


class Venue:
    """An account whose order operations wait for their gate (open unless held); logs starts and ends."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.fail: set[str] = set()

    def hold(self, name: str) -> asyncio.Event:
        self.gates[name] = asyncio.Event()
        return self.gates[name]

    async def _do(self, name: str) -> None:
        self.log.append(f"start {name}")
        gate = self.gates.get(name)
        if gate is not None:
            await gate.wait()
        if name in self.fail:
            self.log.append(f"broke {name}")
            raise RuntimeError(f"{name} broke")
        self.log.append(f"end {name}")

    async def order(self, cl_ord_id: str) -> Any:
        if any(entry == f"end submit {cl_ord_id}" for entry in self.log):
            return SimpleNamespace(strategy="momo", cl_ord_id=cl_ord_id)
        return None

    async def submit(self, order: NewOrder, command: object = None) -> None:
        await self._do(f"submit {order.cl_ord_id}")

    async def cancel(self, request: CancelOrder) -> None:
        await self._do(f"cancel {request.cl_ord_id}")


def submit(cl_ord_id: str) -> SubmitCommand:
    order = NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=1000, cl_ord_id=cl_ord_id)
    return SubmitCommand(id=f"s-{cl_ord_id}", strategy="momo", order=order)


def cancel(cl_ord_id: str) -> CancelCommand:
    return CancelCommand(id=f"c-{cl_ord_id}", strategy="momo", cl_ord_id=cl_ord_id)


def dispatcher_for(venue: Venue, source: Commands, store: OrderStore) -> CommandDispatcher:
    metrics = Metrics()
    engine = engine_on(store)
    adapter = SimpleNamespace(
        account="default",
        metrics=metrics,
        engine=engine,
        order=venue.order,
        submit=venue.submit,
        cancel=venue.cancel,
    )
    return CommandDispatcher({"default": adapter}, source, Published(), metrics)  # type: ignore[dict-item,arg-type]


async def until(condition: Any, what: str) -> None:
    async with asyncio.timeout(STEP_SECONDS):
        while not condition():
            await asyncio.sleep(0.001)
    assert condition(), what


def test_another_orders_command_is_handled_while_one_order_waits_and_one_orders_commands_keep_order(
    sqlite_store: OrderStore,
) -> None:
    async def scenario() -> list[str]:
        venue = Venue()
        held = venue.hold("submit A")
        source = Commands(*map(encode, [submit("A"), cancel("A"), submit("B"), cancel("B")]))
        dispatcher = dispatcher_for(venue, source, sqlite_store)
        running = asyncio.ensure_future(dispatcher.run())
        try:
            await until(lambda: "end cancel B" in venue.log, "B's commands were held up by A's")
            assert "start cancel A" not in venue.log  # A's cancel waits for A's submit
            assert source.acked == ["3-0", "4-0"]
            held.set()
            await asyncio.wait_for(source.all_acked.wait(), STEP_SECONDS)
        finally:
            dispatcher.stop_taking()
            await asyncio.wait_for(running, STEP_SECONDS)
        return venue.log

    log = asyncio.run(scenario())
    assert log.index("end submit A") < log.index("start cancel A")
    assert log.index("end submit B") < log.index("start cancel B")


def test_an_unexpected_failure_lets_the_commands_in_hand_finish_acknowledges_none_waiting_and_is_raised(
    sqlite_store: OrderStore,
) -> None:
    async def scenario() -> tuple[Commands, BaseException | None]:
        venue = Venue()
        venue.fail.add("submit A")
        breaking = venue.hold("submit A")
        slow = venue.hold("submit B")
        source = Commands(*map(encode, [submit("A"), submit("B"), cancel("A")]))
        dispatcher = dispatcher_for(venue, source, sqlite_store)
        running = asyncio.ensure_future(dispatcher.run())
        await until(lambda: "start submit B" in venue.log, "B was not handled beside A")
        breaking.set()
        await until(lambda: "broke submit A" in venue.log, "A did not break")
        await asyncio.sleep(0.05)  # a dispatcher that would not wait for B would end now
        assert not running.done(), "the dispatcher ended with B still in hand"
        slow.set()  # B, in hand when A broke, finishes
        await asyncio.wait({running}, timeout=STEP_SECONDS)
        assert running.done(), "the dispatcher did not end after the failure"
        return source, running.exception()

    source, raised = asyncio.run(scenario())
    assert isinstance(raised, RuntimeError) and str(raised) == "submit A broke"
    assert source.acked == ["2-0"]  # B handled; A failed; A's cancel never started: both come back


@pytest.mark.parametrize(
    ("command", "lanes"),
    [
        (submit("A"), ("command momo s-A", "order A")),
        (
            CancelCommand(id="c1", strategy="momo", cl_ord_id="A", request_id="A2"),
            ("command momo c1", "order A", "order A2"),
        ),
        (
            ReplaceCommand(id="r1", strategy="momo", cl_ord_id="A", quantity=2000, request_id="A3"),
            ("command momo r1", "order A", "order A3"),
        ),
        (
            ClosePositionCommand(id="x1", strategy="momo", position_id="721"),
            ("command momo x1", "order x1", "position 721"),
        ),
        (
            AmendPositionProtectionCommand(id="p1", strategy="momo", position_id="721"),
            ("command momo p1", "position 721"),
        ),
    ],
)
def test_a_command_waits_for_those_before_it_with_its_id_order_request_id_or_position(
    command: AnyCommand, lanes: tuple[str, ...]
) -> None:
    assert command_lanes(command) == lanes


def test_a_command_read_while_its_account_has_nothing_waiting_is_handed_on_by_the_reader_itself(
    sqlite_store: OrderStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The account's server, which waits until the account trades, runs only for a command that must wait
    (the account not trading, or too many in hand): the reader hands the others on itself, a turn of the
    loop fewer per command."""

    async def scenario() -> tuple[Venue, list[str]]:
        venue = Venue()
        source = Commands(encode(submit("A")))
        dispatcher = dispatcher_for(venue, source, sqlite_store)
        engine = dispatcher._adapters["default"].engine
        engine.ready = False  # type: ignore[attr-defined]
        trading = asyncio.Event()
        engine.until_ready = trading.wait  # type: ignore[attr-defined]
        served: list[str] = []
        until_ready = dispatcher._until_ready

        async def serving(adapter: Any, lane: Any) -> bool:
            served.append("server")
            return await until_ready(adapter, lane)

        monkeypatch.setattr(dispatcher, "_until_ready", serving)
        running = asyncio.ensure_future(dispatcher.run())
        try:
            await until(lambda: served == ["server"], "A did not wait for the account to trade")
            assert venue.log == []
            engine.ready = True  # type: ignore[attr-defined]
            trading.set()
            await asyncio.wait_for(source.all_acked.wait(), STEP_SECONDS)
            source.add(encode(submit("B")))
            source.add(encode(cancel("B")))
            await asyncio.wait_for(source.all_acked.wait(), STEP_SECONDS)
        finally:
            dispatcher.stop_taking()
            await asyncio.wait_for(running, STEP_SECONDS)
        return venue, served

    venue, served = asyncio.run(scenario())
    assert served == ["server"]  # B's commands never went through it
    assert venue.log == [
        "start submit A",
        "end submit A",
        "start submit B",
        "end submit B",
        "start cancel B",
        "end cancel B",
    ]


@pytest.mark.parametrize("ends_by", ["stop", "reader failure"])
def test_with_the_accounts_lanes_full_a_stop_or_a_reader_failure_ends_the_dispatcher_after_the_grace(
    sqlite_store: OrderStore, monkeypatch: pytest.MonkeyPatch, ends_by: str
) -> None:
    """The account's server waiting for room (every command in hand stuck on a store or venue that does
    not answer) must not hold the dispatcher: a stop ends it after the grace, a reader failure is raised
    (so its supervisor runs it again); the command that found no room is never started nor acknowledged."""
    monkeypatch.setattr(dispatcher_module, "IN_HAND", 1)
    monkeypatch.setattr(dispatcher_module, "STOP_GRACE_SECONDS", 0.01)

    class Breaking(Commands):
        broken = False

        async def deliveries(self) -> AsyncGenerator[Delivery, None]:
            async for delivery in super().deliveries():
                if self.broken:
                    raise ConnectionError("the queue went away")
                yield delivery

    async def scenario() -> tuple[Venue, Breaking, BaseException | None]:
        venue = Venue()
        stuck = venue.hold("submit A")
        source = Breaking(encode(submit("A")))
        dispatcher = dispatcher_for(venue, source, sqlite_store)
        running = asyncio.ensure_future(dispatcher.run())
        try:
            await until(lambda: "start submit A" in venue.log, "A was not handled")
            source.add(encode(submit("B")))  # no room: the account's server waits with B
            lane = dispatcher._lanes["default"]
            await until(lambda: not lane._items and not lane._idle, "B was not taken")
            if ends_by == "stop":
                dispatcher.stop_taking()
            else:
                source.broken = True
                source.add(encode(submit("C")))
            await asyncio.wait({running}, timeout=STEP_SECONDS)
            assert running.done(), f"the dispatcher still runs after a {ends_by} with its lanes full"
        finally:
            stuck.set()
            if not running.done():
                dispatcher.stop_taking()
                running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        return venue, source, None if running.cancelled() else running.exception()

    venue, source, raised = asyncio.run(scenario())
    if ends_by == "stop":
        assert raised is None
    else:
        assert isinstance(raised, ConnectionError)
    assert "start submit B" not in venue.log
    assert source.acked == []  # A was cut at the grace, B never started: both come back


def test_a_stop_during_a_refusals_acknowledgement_lets_it_finish_so_the_refusal_is_never_sent_twice(
    sqlite_store: OrderStore,
) -> None:
    """The reader is stopped between deliveries, not inside one: a refusal published and not yet
    acknowledged would come back on the next start and be refused (published) again."""

    class SlowAck(Commands):
        def __init__(self, *commands: bytes) -> None:
            super().__init__(*commands)
            self.gate = asyncio.Event()

        async def ack(self, delivery: Delivery) -> None:
            await self.gate.wait()
            await super().ack(delivery)

    async def scenario() -> tuple[SlowAck, list[Any]]:
        venue = Venue()
        source = SlowAck(b"not json")
        published = Published()
        first = dispatcher_for(venue, source, sqlite_store)
        first._sink = published
        running = asyncio.ensure_future(first.run())
        await until(lambda: len(published.events) == 1, "the invalid command was not refused")
        first.stop_taking()  # its acknowledgement is on its way
        source.gate.set()
        await asyncio.wait_for(running, STEP_SECONDS)
        source.add(b"also not json")  # handed out after anything the first start left unacknowledged
        second = dispatcher_for(venue, source, sqlite_store)  # the next start, on the same queue
        second._sink = published
        running = asyncio.ensure_future(second.run())
        await until(lambda: "2-0" in source.acked, "the second invalid command was not refused")
        second.stop_taking()
        await asyncio.wait_for(running, STEP_SECONDS)
        return source, published.events

    source, events = asyncio.run(scenario())
    assert source.acked == ["1-0", "2-0"]
    assert len(events) == 2  # one refusal each


def test_a_failure_in_one_account_ends_the_dispatcher_while_another_account_waits_to_trade(
    sqlite_store: OrderStore,
) -> None:
    """Account b does not trade and its server waits with b's command; a's command fails unexpectedly:
    the dispatcher ends (its supervisor runs it again) instead of waiting until b trades, maybe hours."""

    async def scenario() -> tuple[bool, list[str]]:
        metrics = Metrics()
        venue_a, venue_b = Venue(), Venue()
        venue_a.fail.add("submit A1")
        b_trading = asyncio.Event()
        adapters = {}
        for name, venue in (("a", venue_a), ("b", venue_b)):
            engine = engine_on(sqlite_store)
            adapters[name] = SimpleNamespace(
                account=name,
                metrics=metrics,
                engine=engine,
                order=venue.order,
                submit=venue.submit,
                cancel=venue.cancel,
            )
        adapters["b"].engine.ready = False
        adapters["b"].engine.until_ready = b_trading.wait
        commands = [
            submit("B1").model_copy(update={"account": "b"}),
            submit("A1").model_copy(update={"account": "a"}),
        ]
        source = Commands(*map(encode, commands))
        dispatcher = CommandDispatcher(adapters, source, Published(), metrics)  # type: ignore[arg-type]
        running = asyncio.ensure_future(dispatcher.run())
        try:
            await until(lambda: "broke submit A1" in venue_a.log, "A1 did not break")
            await asyncio.wait({running}, timeout=STEP_SECONDS)
            return running.done(), venue_b.log
        finally:
            b_trading.set()
            adapters["b"].engine.ready = True
            dispatcher.stop_taking()
            await asyncio.gather(running, return_exceptions=True)

    ended, b_log = asyncio.run(scenario())
    assert ended, "the dispatcher still waits for account b to trade after account a's command failed"
    assert b_log == []  # b's command never ran: unacknowledged, it comes back

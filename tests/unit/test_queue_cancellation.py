"""Stopping the daemon never waits on a queue loop: redis-py can turn an asyncio cancellation that
arrives during a call into its own ConnectionError, and a loop that retries such errors would then never
stop. The Redis transport raises it as the cancellation it is (never counted as an outage, never retried),
and the command dispatcher does not count it as a failure of the command in hand. A call can also answer
as if the cancellation had not come at all (Python 3.11's asyncio.wait_for, under redis-py's send and in
the transport's backoff, CPython gh-86296): the cancellation is spent, so every loop around a Redis call
(the backlog watch, the command reader, the acknowledgements, the publishes, a strategy client's reads and
sends) raises it itself, and makes no further call.

The Redis stand-ins below answer like redis-py does when the awaiting task is cancelled mid-call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from types import SimpleNamespace, TracebackType
from typing import Any, Literal

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from fixadapter.client import StrategyClient
from fixadapter.config import QueueConfig
from fixadapter.daemon.dispatcher import MAX_ATTEMPTS, CommandDispatcher
from fixadapter.daemon.relay import EventRelay
from fixadapter.daemon.service import watch_backlog
from fixadapter.metrics import Metrics
from fixadapter.queue.redis_streams import RedisClientTransport, RedisCommandSource, RedisEventSink
from fixadapter.queue.schema import CancelCommand, encode
from fixadapter.queue.transport import Delivery
from fixadapter.store.repository import OrderStore
from tests.unit.queue_fakes import engine_on

STOP_SECONDS = 10.0  # generous: a task that stops does so at once; one that does not never does
CONFIG = QueueConfig(kind="redis", strategies=("momo",), redis_url="redis://127.0.0.1:1/0")


class CancelReworded:
    """A Redis client: a call named in `hanging` waits for an answer that never comes and, when its task
    is cancelled, raises redis-py's ConnectionError instead of CancelledError, as redis-py can; any other
    call answers `answers[name]` (None when not given) at once."""

    def __init__(self, *hanging: str, answers: dict[str, Any] | None = None) -> None:
        self.hanging = set(hanging)
        self.answers = answers or {}
        self.calls: list[str] = []
        self.called = asyncio.Event()

    async def call(self, name: str) -> Any:
        self.calls.append(name)
        if name not in self.hanging:
            return self.answers.get(name)
        self.called.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RedisConnectionError("Connection closed by server.") from None
        raise AssertionError("unreachable")

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        async def command(*args: Any, **kwargs: Any) -> Any:
            return await self.call(name)

        return command

    def pipeline(self, transaction: bool = True) -> _Pipeline:
        return _Pipeline(self)

    async def aclose(self) -> None:
        return None


class CancelSwallowed(CancelReworded):
    """A Redis client whose first call named in `hanging` answers `answers[name]` when its task is
    cancelled, as if the cancellation had not come: redis-py sends each command under asyncio.wait_for,
    which on Python 3.11 returns the send's result when the cancellation arrives after the send finished
    and before wait_for resumes (CPython gh-86296). Every call after that, whatever its name, sets
    `called`, waits and ends cancelled: a loop that went on is seen at its next call, and stopped there."""

    def __init__(self, *hanging: str, answers: dict[str, Any] | None = None) -> None:
        super().__init__(*hanging, answers=answers)
        self.swallowed = False

    async def call(self, name: str) -> Any:
        self.calls.append(name)
        if name not in self.hanging and not self.swallowed:
            return self.answers.get(name)
        self.called.set()
        if self.swallowed:
            await asyncio.Event().wait()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        self.swallowed = True
        return self.answers.get(name)


class Unreachable(CancelReworded):
    """A Redis client that cannot be reached: every call fails at once with redis-py's ConnectionError,
    after `meanwhile()` (what else happens as the call fails)."""

    def __init__(self, meanwhile: Callable[[], None]) -> None:
        super().__init__()
        self.meanwhile = meanwhile

    async def call(self, name: str) -> Any:
        self.calls.append(name)
        self.meanwhile()
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")


class _ClosedByAStop(asyncio.Event):
    """A transport's closed flag, set by a stop that also cancels `task`: the cancellation reaches the
    task just as its wait for the close (asyncio.wait_for in the outage backoff) ends, which on Python
    3.11 makes wait_for return as if the cancellation had not come (CPython gh-86296)."""

    def __init__(self) -> None:
        super().__init__()
        self.task: asyncio.Future[Any] | None = None

    async def wait(self) -> Literal[True]:
        await super().wait()
        assert self.task is not None
        self.task.cancel()  # its wait_for is still waiting: it resumes with this wait already done
        return True


class _Pipeline:
    def __init__(self, redis: CancelReworded) -> None:
        self._redis = redis

    async def __aenter__(self) -> _Pipeline:
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        return None

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None  # queued in the MULTI: sent by execute()

    async def execute(self) -> Any:
        return await self._redis.call("execute")


async def _cancelled_while_waiting(
    redis: CancelReworded, work: Awaitable[Any], close: Callable[[], Awaitable[None]]
) -> asyncio.Task[Any]:
    """Run `work` until it waits on Redis, cancel it, and give it STOP_SECONDS to end; the transport is
    closed afterwards either way (so a loop that did not stop ends and the test fails instead of hanging)."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.wait_for(redis.called.wait(), STOP_SECONDS)
        task.cancel()
        await asyncio.wait({task}, timeout=STOP_SECONDS)
        return task
    finally:
        await close()
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_SECONDS)


async def _cancelled_as_redis_answers(
    redis: CancelSwallowed,
    work: Awaitable[Any],
    close: Callable[[], Awaitable[None]],
    meanwhile: Callable[[], None] = lambda: None,
) -> asyncio.Task[Any]:
    """Run `work` until it waits on Redis, call `meanwhile()` and cancel it there (the call answers
    anyway), then wait until it ends or calls Redis again; one that called again is cancelled again
    (that call ends cancelled) and given STOP_SECONDS to end. The transport is closed afterwards."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.wait_for(redis.called.wait(), STOP_SECONDS)
        redis.called.clear()
        meanwhile()
        task.cancel()
        called_again = asyncio.ensure_future(redis.called.wait())
        await asyncio.wait({task, called_again}, return_when=asyncio.FIRST_COMPLETED)
        called_again.cancel()
        return task
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_SECONDS)
        await close()


def _queue_errors(metrics: Metrics, where: str) -> float:
    return metrics.value("fixadapter_queue_errors_total", {"where": where}) or 0.0


async def _command_source(redis: CancelReworded, metrics: Metrics, group_ready: bool) -> RedisCommandSource:
    source = RedisCommandSource(CONFIG, metrics)
    await source._redis.aclose()  # never connected: the stand-in answers instead
    source._redis = redis  # type: ignore[assignment]
    source._group_ready = group_ready
    return source


async def _take_all(deliveries: AsyncGenerator[Delivery, None]) -> None:
    async for _delivery in deliveries:
        pass


@pytest.mark.parametrize(
    ("waiting_in", "group_ready"),
    [
        ("xgroup_create", False),  # creating the consumer group (first start, or after it was lost)
        ("xautoclaim", True),  # claiming what a dead consumer left
        ("xreadgroup", True),  # the blocked read for new commands
    ],
)
def test_the_command_reader_cancelled_while_redis_is_answering_stops_instead_of_retrying(
    waiting_in: str, group_ready: bool
) -> None:
    async def scenario() -> None:
        redis = CancelReworded(waiting_in, answers={"xreadgroup": [], "xautoclaim": ["0-0", []]})
        metrics = Metrics()
        source = await _command_source(redis, metrics, group_ready)
        task = await _cancelled_while_waiting(redis, _take_all(source.deliveries()), source.close)
        assert task.cancelled(), f"the reader went on after its cancellation: {redis.calls}"
        assert redis.calls.count(waiting_in) == 1
        assert _queue_errors(metrics, "commands") == 0

    asyncio.run(scenario())


def test_an_acknowledgement_cancelled_while_redis_is_answering_stops_instead_of_retrying() -> None:
    async def scenario() -> None:
        redis = CancelReworded("execute")
        metrics = Metrics()
        source = await _command_source(redis, metrics, group_ready=True)
        delivery = Delivery(entry_id="1-0", data=b"{}", strategy="momo")
        task = await _cancelled_while_waiting(redis, source.ack(delivery), source.close)
        assert task.cancelled(), f"the acknowledgement went on after its cancellation: {redis.calls}"
        assert redis.calls == ["execute"]
        assert _queue_errors(metrics, "commands") == 0

    asyncio.run(scenario())


def test_a_command_source_whose_start_is_cancelled_while_redis_is_answering_is_cancelled() -> None:
    async def scenario() -> None:
        redis = CancelReworded("xgroup_create")
        metrics = Metrics()
        source = await _command_source(redis, metrics, group_ready=False)
        task = await _cancelled_while_waiting(redis, source.start(), source.close)
        assert task.cancelled(), "start() returned as if Redis were down: the daemon's start went on"
        assert _queue_errors(metrics, "commands") == 0

    asyncio.run(scenario())


@pytest.mark.parametrize("what", ["order event", "positions"])
def test_a_publish_cancelled_while_redis_is_answering_stops_instead_of_retrying(what: str) -> None:
    async def scenario() -> None:
        redis = CancelReworded("execute", "xadd", "get")
        metrics = Metrics()
        sink = RedisEventSink(CONFIG, metrics)
        await sink._redis.aclose()  # never connected: the stand-in answers instead
        sink._redis = redis  # type: ignore[assignment]
        work = sink.publish("momo", b"{}", 7) if what == "order event" else sink.publish_positions(b"{}")
        task = await _cancelled_while_waiting(redis, work, sink.close)
        assert task.cancelled(), f"the publish went on after its cancellation: {redis.calls}"
        assert len(redis.calls) == 1
        assert _queue_errors(metrics, "events") == 0

    asyncio.run(scenario())


def test_a_backlog_watch_cancelled_in_a_redis_call_that_answers_anyway_ends_cancelled() -> None:
    """The cancellation is spent: a watch that polled on would have nothing left to stop it (a daemon
    stop waited 10 s for it, then left it behind)."""

    async def scenario() -> None:
        redis = CancelSwallowed("xinfo_groups", answers={"xinfo_groups": []})
        metrics = Metrics()
        source = await _command_source(redis, metrics, group_ready=True)
        watch = asyncio.ensure_future(watch_backlog(source, metrics))
        await redis.called.wait()
        redis.called.clear()
        watch.cancel()
        polled_again = asyncio.ensure_future(redis.called.wait())
        await asyncio.wait({watch, polled_again}, return_when=asyncio.FIRST_COMPLETED)
        polled_again.cancel()
        if not watch.done():
            watch.cancel()  # the call it is in now ends cancelled
            await asyncio.wait({watch})
        await source.close()
        assert redis.calls == ["xinfo_groups"], "the watch polled Redis again after its cancellation"
        assert watch.cancelled()
        assert _queue_errors(metrics, "commands") == 0

    asyncio.run(scenario())


@pytest.mark.parametrize("work", ["deliveries", "start"])
def test_a_command_source_cancelled_in_a_group_creation_that_answers_anyway_ends_cancelled(work: str) -> None:
    """The reader (or start) stops at the answer: reading on, the cancelled reader would have polled
    Redis until the dispatcher itself was cancelled (and start() would have let the daemon's start go on)."""

    async def scenario() -> None:
        redis = CancelSwallowed("xgroup_create", answers={"xreadgroup": [], "xautoclaim": ["0-0", []]})
        metrics = Metrics()
        source = await _command_source(redis, metrics, group_ready=False)
        taken: list[Delivery] = []
        task = await _cancelled_as_redis_answers(
            redis,
            _take_into(taken, source.deliveries()) if work == "deliveries" else source.start(),
            source.close,
        )
        assert redis.calls == ["xgroup_create"], "the source called Redis again after its cancellation"
        assert task.cancelled(), f"{work} went on after its cancellation"
        assert taken == []
        assert _queue_errors(metrics, "commands") == 0

    asyncio.run(scenario())


def test_a_command_reader_cancelled_in_a_claim_that_answers_anyway_hands_nothing_out_and_ends_cancelled() -> (
    None
):
    """What the claim took stays pending for this consumer, as after a crash: the next start reads it."""

    async def scenario() -> None:
        claimed = ["0-0", [[b"1-0", {b"data": b"{}"}]]]
        redis = CancelSwallowed("xautoclaim", answers={"xreadgroup": [], "xautoclaim": claimed})
        metrics = Metrics()
        source = await _command_source(redis, metrics, group_ready=True)
        taken: list[Delivery] = []
        task = await _cancelled_as_redis_answers(redis, _take_into(taken, source.deliveries()), source.close)
        assert redis.calls == ["xreadgroup", "xautoclaim"], "the reader read on after its cancellation"
        assert taken == []
        assert task.cancelled()

    asyncio.run(scenario())


def test_an_acknowledgement_cancelled_in_a_send_that_answers_anyway_sends_no_further_batch() -> None:
    """The batch on the wire was acknowledged; the sender is cancelled, and the acknowledgement that
    joined meanwhile is not sent (it comes back, as an acknowledgement cancelled on the wire does)."""

    async def scenario() -> None:
        redis = CancelSwallowed("execute")
        metrics = Metrics()
        source = await _command_source(redis, metrics, group_ready=True)
        later: list[asyncio.Future[None]] = []

        def another_joins() -> None:  # while the first batch is on the wire: it waits for the next
            later.append(
                asyncio.ensure_future(source.ack(Delivery(entry_id="2-0", data=b"{}", strategy="momo")))
            )

        first = source.ack(Delivery(entry_id="1-0", data=b"{}", strategy="momo"))
        task = await _cancelled_as_redis_answers(redis, first, source.close, meanwhile=another_joins)
        await asyncio.wait(later)
        assert redis.calls == ["execute"], "the cancelled sender sent another batch"
        assert task.cancelled()
        assert later[0].cancelled()
        assert _queue_errors(metrics, "commands") == 0

    asyncio.run(scenario())


def test_a_relay_cancelled_in_a_publish_that_answers_anyway_publishes_nothing_more() -> None:
    """Relaying on, it would have published what waits and then waited for more, with nothing left to
    stop it (a daemon stop waited 10 s for it, then left it behind)."""

    async def scenario() -> None:
        redis = CancelSwallowed("xadd")
        metrics = Metrics()
        sink = await _event_sink(redis, metrics)
        positions: list[Any] = []
        adapter = SimpleNamespace(
            account="default", metrics=metrics, on_event=lambda _callback: None, on_positions=positions.append
        )
        relay = EventRelay(adapter, sink)  # type: ignore[arg-type]
        positions[0](())
        positions[0](())  # two updates waiting: the relay takes both, publishes the first
        task = await _cancelled_as_redis_answers(redis, relay.run(), sink.close)
        assert redis.calls == ["xadd"], "the relay published again after its cancellation"
        assert task.cancelled()
        assert _queue_errors(metrics, "events") == 0

    asyncio.run(scenario())


@pytest.mark.parametrize("what", ["order event", "positions"])
def test_a_publish_cancelled_in_its_outage_wait_as_the_sink_closes_ends_cancelled(what: str) -> None:
    """A stop closes the sink and cancels the publish together: the publish is not returned as done."""

    async def scenario() -> None:
        closed = _ClosedByAStop()
        redis = Unreachable(meanwhile=closed.set)
        metrics = Metrics()
        sink = await _event_sink(redis, metrics)
        sink._closed = sink._outage._closed = closed
        work = sink.publish("momo", b"{}", 7) if what == "order event" else sink.publish_positions(b"{}")
        task = closed.task = asyncio.ensure_future(work)
        await asyncio.wait({task}, timeout=STOP_SECONDS)
        await sink.close()
        assert task.cancelled(), f"the publish returned as if done: {_outcome(task)}"
        assert len(redis.calls) == 1
        assert _queue_errors(metrics, "events") == 1  # the failed attempt before the stop

    asyncio.run(scenario())


@pytest.mark.parametrize("waiting_in", ["xinfo_stream", "xread"])
def test_a_strategy_clients_read_cancelled_in_a_call_that_answers_anyway_reads_no_more(
    waiting_in: str,
) -> None:
    """A strategy waiting for an order's end under a timeout: the timeout's cancellation ends the wait
    (reading on, final_state would never end: the timeout had fired)."""

    async def scenario() -> None:
        answers = {"xread": [], "xinfo_stream": {"last-generated-id": b"0-0"}}
        redis = CancelSwallowed(waiting_in, answers=answers)
        client = StrategyClient(await _client_transport(redis), "momo")
        task = await _cancelled_as_redis_answers(redis, client.final_state("ord-1"), client.close)
        assert redis.calls.count(waiting_in) == 1, f"the client read on after its cancellation: {redis.calls}"
        assert task.cancelled()

    asyncio.run(scenario())


def test_a_strategy_clients_send_cancelled_in_a_call_that_answers_anyway_ends_cancelled() -> None:
    """A sending loop stops there (the command went out; its id makes sending it again harmless)."""

    async def scenario() -> None:
        redis = CancelSwallowed("xadd")
        transport = await _client_transport(redis)
        task = await _cancelled_as_redis_answers(
            redis, transport.send_command("momo", b"{}"), transport.close
        )
        assert task.cancelled(), "the send returned as if not cancelled"
        assert redis.calls == ["xadd"]

    asyncio.run(scenario())


async def _take_into(taken: list[Delivery], deliveries: AsyncGenerator[Delivery, None]) -> None:
    async for delivery in deliveries:
        taken.append(delivery)


async def _event_sink(redis: CancelReworded, metrics: Metrics) -> RedisEventSink:
    sink = RedisEventSink(CONFIG, metrics)
    await sink._redis.aclose()  # never connected: the stand-in answers instead
    sink._redis = redis  # type: ignore[assignment]
    return sink


async def _client_transport(redis: CancelReworded) -> RedisClientTransport:
    transport = RedisClientTransport(CONFIG.redis_url.get_secret_value())
    await transport._redis.aclose()  # never connected: the stand-in answers instead
    transport._redis = redis  # type: ignore[assignment]
    return transport


class _OneCommand:
    """A command source holding one command (then waiting for more, as a queue does)."""

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery
        self.acked: list[Delivery] = []

    async def deliveries(self) -> AsyncGenerator[Delivery, None]:
        yield self.delivery
        await asyncio.Event().wait()

    async def ack(self, delivery: Delivery) -> None:
        self.acked.append(delivery)


class _Publishes:
    """An event sink over a transport that rewords a cancellation mid-publish as its own error."""

    def __init__(self) -> None:
        self.redis = CancelReworded("publish")

    async def publish(self, strategy: str, data: bytes, seq: int | None) -> None:
        await self.redis.call("publish")


def test_a_dispatcher_cancelled_while_publishing_a_refusal_ends_cancelled_and_never_drops_the_command(
    sqlite_store: OrderStore,
) -> None:
    """Cancelled that way MAX_ATTEMPTS times (a restarted dispatcher gets the command again), the command
    is not counted as failed, refused or acknowledged: the next start takes it."""

    async def scenario() -> None:
        metrics = Metrics()
        engine = engine_on(sqlite_store)
        adapter = SimpleNamespace(account="default", metrics=metrics, engine=engine, order=_no_order)
        command = CancelCommand(id="c1", strategy="momo", cl_ord_id="not-momos")  # refused: not its order
        source = _OneCommand(Delivery(entry_id="1-0", data=encode(command), strategy="momo"))
        sink = _Publishes()
        dispatcher = CommandDispatcher({"default": adapter}, source, sink, metrics)  # type: ignore[dict-item,arg-type]
        for attempt in range(1, MAX_ATTEMPTS + 1):
            sink.redis.called.clear()
            task = await _cancelled_while_waiting(sink.redis, dispatcher.run(), _nothing)
            assert task.cancelled(), f"run {attempt} did not end cancelled: {_outcome(task)}"
        assert sink.redis.calls == ["publish"] * MAX_ATTEMPTS  # only the refusal, never a give-up notice
        assert source.acked == []
        failed = {"type": "cancel", "outcome": "failed"}
        assert metrics.value("fixadapter_queue_commands_total", failed) is None

    asyncio.run(scenario())


async def _no_order(cl_ord_id: str) -> None:
    return None


async def _nothing() -> None:
    return None


def _outcome(task: asyncio.Task[Any]) -> str:
    if not task.done():
        return f"still running {STOP_SECONDS:g}s after its cancellation"
    return f"raised {task.exception()!r}" if task.exception() else "returned"

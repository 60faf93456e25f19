"""The Redis Streams transport against the machine's Redis (FIXADAPTER_TEST_REDIS_URL), one key prefix per
test: commands are delivered until acknowledged, survive a restart or a dead consumer, events reach the
client in order without gaps, and an outage is waited out, counted, and logged without the password."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from fixadapter.config import QueueConfig
from fixadapter.metrics import Metrics
from fixadapter.queue.redis_streams import (
    RedisClientTransport,
    RedisCommandSource,
    RedisEventSink,
    mask_url,
)
from fixadapter.queue.transport import ORDERS, POSITIONS, Delivery
from tests.integration.test_compliance_capture import TcpProxy

UNREACHABLE = "redis://:s3cret@127.0.0.1:1/0"
QUIET_SECONDS = 1.5  # long enough for a read, a claim check and a second read to have come back


def config(url: str, prefix: str, **overrides: Any) -> QueueConfig:
    settings = {"consumer": "daemon-a", "strategies": ("momo", "meanrev"), **overrides}
    return QueueConfig(kind="redis", redis_url=url, prefix=prefix, **settings)


async def take(deliveries: AsyncIterator[Delivery], timeout: float = 5) -> Delivery:
    return await asyncio.wait_for(anext(deliveries), timeout)


async def nothing_within(deliveries: AsyncIterator[Delivery], seconds: float = QUIET_SECONDS) -> bool:
    try:
        await asyncio.wait_for(anext(deliveries), seconds)
    except TimeoutError:
        return True
    return False


def errors(metrics: Metrics, where: str) -> float:
    return metrics.value("fixadapter_queue_errors_total", {"where": where}) or 0.0


def test_a_command_is_delivered_once_and_not_again_after_its_ack(redis_url: str, queue_prefix: str) -> None:
    async def scenario() -> None:
        client = RedisClientTransport(redis_url, queue_prefix)
        source = RedisCommandSource(config(redis_url, queue_prefix), Metrics())
        await source.start()
        await client.send_command("momo", b'{"id": "c1"}')
        deliveries = source.deliveries()
        delivery = await take(deliveries)
        assert (delivery.data, delivery.redelivered) == (b'{"id": "c1"}', False)
        await source.ack(delivery)
        assert await nothing_within(deliveries)
        await source.close()

        restarted = RedisCommandSource(config(redis_url, queue_prefix), Metrics())
        await restarted.start()
        assert await nothing_within(restarted.deliveries())
        assert await restarted.backlog() == 0
        await restarted.close()
        await client.close()

    asyncio.run(scenario())


def test_an_unacknowledged_command_comes_back_redelivered_after_a_restart(
    redis_url: str, queue_prefix: str
) -> None:
    async def scenario() -> None:
        client = RedisClientTransport(redis_url, queue_prefix)
        await client.send_command("momo", b"first")
        await client.send_command("momo", b"second")
        source = RedisCommandSource(config(redis_url, queue_prefix), Metrics())
        await source.start()
        deliveries = source.deliveries()
        first = await take(deliveries)
        await source.ack(first)
        second = await take(deliveries)
        assert second.data == b"second"
        await source.close()  # dies before acknowledging `second`

        restarted = RedisCommandSource(config(redis_url, queue_prefix), Metrics())
        await restarted.start()
        again = restarted.deliveries()
        redelivered = await take(again)
        assert redelivered == Delivery(
            entry_id=second.entry_id, data=b"second", strategy="momo", redelivered=True
        )
        await restarted.ack(redelivered)
        assert await nothing_within(again)
        await restarted.close()
        await client.close()

    asyncio.run(scenario())


def test_a_command_left_by_a_dead_consumer_is_claimed_after_claim_idle_seconds(
    redis_url: str, queue_prefix: str
) -> None:
    async def scenario() -> None:
        client = RedisClientTransport(redis_url, queue_prefix)
        dead = RedisCommandSource(config(redis_url, queue_prefix, consumer="daemon-dead"), Metrics())
        await dead.start()
        await client.send_command("momo", b"orphan")
        taken = await take(dead.deliveries())
        await dead.close()

        survivor = RedisCommandSource(config(redis_url, queue_prefix, claim_idle_seconds=0.2), Metrics())
        await survivor.start()
        deliveries = survivor.deliveries()
        claimed = await take(deliveries, timeout=3)
        assert claimed == Delivery(entry_id=taken.entry_id, data=b"orphan", strategy="momo", redelivered=True)
        assert await nothing_within(deliveries, 1.0), "a command in hand is not claimed by its own holder"
        await survivor.ack(claimed)
        assert await survivor.backlog() == 0
        await survivor.close()
        await client.close()

    asyncio.run(scenario())


def test_an_entry_without_data_is_delivered_with_empty_data_to_be_refused(
    redis_url: str, queue_prefix: str
) -> None:
    async def scenario() -> None:
        source = RedisCommandSource(config(redis_url, queue_prefix), Metrics())
        await source.start()
        raw = redis.asyncio.Redis.from_url(redis_url)
        entry_id = (await raw.xadd(f"{queue_prefix}:commands:momo", {"payload": "not ours"})).decode()
        await raw.aclose()
        deliveries = source.deliveries()
        delivery = await take(deliveries)
        assert (delivery.entry_id, delivery.data) == (entry_id, b"")
        await source.ack(delivery)
        assert await source.backlog() == 0
        await source.close()

    asyncio.run(scenario())


def test_backlog_counts_commands_waiting_and_taken_but_unacknowledged(
    redis_url: str, queue_prefix: str
) -> None:
    async def scenario() -> None:
        client = RedisClientTransport(redis_url, queue_prefix)
        source = RedisCommandSource(config(redis_url, queue_prefix, batch_size=1), Metrics())
        await source.start()
        assert await source.backlog() == 0
        for number in range(3):
            await client.send_command("momo", f"c{number}".encode())
        assert await source.backlog() == 3
        deliveries = source.deliveries()
        taken = await take(deliveries)
        assert await source.backlog() == 3  # one taken (unacknowledged) and two waiting
        await source.ack(taken)
        assert await source.backlog() == 2
        await source.close()
        await client.close()

    asyncio.run(scenario())


def test_a_source_creates_its_group_again_when_the_stream_is_lost(redis_url: str, queue_prefix: str) -> None:
    async def scenario() -> None:
        client = RedisClientTransport(redis_url, queue_prefix)
        source = RedisCommandSource(config(redis_url, queue_prefix), Metrics())
        await source.start()
        deliveries = source.deliveries()
        await client.send_command("momo", b"before")
        await source.ack(await take(deliveries))
        raw = redis.asyncio.Redis.from_url(redis_url)
        await raw.delete(f"{queue_prefix}:commands:momo")  # as a Redis restarted without persistence
        await raw.aclose()
        await client.send_command("momo", b"after")
        assert (await take(deliveries)).data == b"after"
        await source.close()
        await client.close()

    asyncio.run(scenario())


def test_close_ends_deliveries_promptly(redis_url: str, queue_prefix: str) -> None:
    async def scenario() -> None:
        source = RedisCommandSource(config(redis_url, queue_prefix), Metrics())
        await source.start()
        reading = asyncio.create_task(anext(source.deliveries()))
        await asyncio.sleep(0.2)
        await source.close()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(reading, 0.5)

    asyncio.run(scenario())


def test_events_published_with_seq_reach_the_client_in_order_and_mark_the_last_seq(
    redis_url: str, queue_prefix: str
) -> None:
    async def scenario() -> None:
        sink = RedisEventSink(config(redis_url, queue_prefix), Metrics())
        await sink.start()
        assert await sink.published_seq() is None
        for seq in (1, 2, 3):
            await sink.publish("momo", f"event {seq}".encode(), seq)
        await sink.publish("momo", b"rejected", None)
        await sink.publish("other", b"not momo's", 4)
        assert await sink.published_seq() == 4

        client = RedisClientTransport(redis_url, queue_prefix)
        cursor = {ORDERS: "0", POSITIONS: "0"}
        records = await client.read_events("momo", cursor, timeout=1)
        assert [(r.stream, r.data) for r in records] == [
            (ORDERS, b"event 1"),
            (ORDERS, b"event 2"),
            (ORDERS, b"event 3"),
            (ORDERS, b"rejected"),
        ]
        assert cursor[ORDERS] == records[-1].entry_id
        assert await client.read_events("momo", cursor, timeout=0.1) == []
        await sink.close()
        await client.close()

    asyncio.run(scenario())


def test_events_published_together_arrive_in_order_as_one_step_with_the_last_seq(
    redis_url: str, queue_prefix: str
) -> None:
    async def scenario() -> None:
        sink = RedisEventSink(config(redis_url, queue_prefix), Metrics())
        await sink.start()
        together = [("momo", b"event 1", 1), ("other", b"event 2", 2), ("momo", b"rejected", None)]
        await sink.publish_many([*together, ("momo", b"3", 3)])
        assert await sink.published_seq() == 3
        await sink.publish("momo", b"an older event published again", 2)
        assert await sink.published_seq() == 3  # the marker never goes back
        client = RedisClientTransport(redis_url, queue_prefix)
        momo = await client.read_events("momo", {ORDERS: "0", POSITIONS: "0"}, timeout=1)
        other = await client.read_events("other", {ORDERS: "0", POSITIONS: "0"}, timeout=1)
        assert [r.data for r in momo] == [b"event 1", b"rejected", b"3", b"an older event published again"]
        assert [r.data for r in other] == [b"event 2"]
        await sink.close()
        await client.close()

    asyncio.run(scenario())


def test_a_dollar_cursor_misses_nothing_published_between_two_reads(
    redis_url: str, queue_prefix: str
) -> None:
    async def scenario() -> None:
        sink = RedisEventSink(config(redis_url, queue_prefix), Metrics())
        await sink.publish("momo", b"before the client", 1)
        client = RedisClientTransport(redis_url, queue_prefix)
        cursor = {ORDERS: "$", POSITIONS: "$"}
        assert await client.read_events("momo", cursor, timeout=0.05) == []
        assert "$" not in cursor.values()
        await sink.publish("momo", b"between the reads", 2)
        await sink.publish_positions(b"positions between the reads")
        records = await client.read_events("momo", cursor, timeout=1)
        assert [(r.stream, r.data) for r in records] == [
            (ORDERS, b"between the reads"),
            (POSITIONS, b"positions between the reads"),
        ]
        await sink.close()
        await client.close()

    asyncio.run(scenario())


def test_positions_reach_every_client_while_it_waits(redis_url: str, queue_prefix: str) -> None:
    async def scenario() -> None:
        sink = RedisEventSink(config(redis_url, queue_prefix), Metrics())
        clients = [RedisClientTransport(redis_url, queue_prefix) for _ in range(2)]
        cursors = [{ORDERS: "$", POSITIONS: "$"} for _ in clients]
        for client, cursor, strategy in zip(clients, cursors, ("momo", "meanrev"), strict=True):
            await client.read_events(strategy, cursor, timeout=0)
        waiting = [
            asyncio.create_task(client.read_events(strategy, cursor, timeout=3))
            for client, cursor, strategy in zip(clients, cursors, ("momo", "meanrev"), strict=True)
        ]
        await asyncio.sleep(0.1)
        await sink.publish_positions(b'{"type": "positions"}')
        for records in await asyncio.gather(*waiting):
            assert [(r.stream, r.data) for r in records] == [(POSITIONS, b'{"type": "positions"}')]
        for client in clients:
            await client.close()
        await sink.close()

    asyncio.run(scenario())


def test_an_unreachable_redis_is_retried_and_counted_never_raised_nor_logged_with_its_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> Metrics:
        metrics = Metrics()
        source = RedisCommandSource(config(UNREACHABLE, "fxtest-down"), metrics)
        sink = RedisEventSink(config(UNREACHABLE, "fxtest-down"), metrics)
        await source.start()
        reading = asyncio.create_task(anext(source.deliveries()))
        publishing = asyncio.create_task(sink.publish("momo", b"event", 1))
        await asyncio.sleep(1.0)
        assert not reading.done() and not publishing.done()
        await source.close()
        await sink.close()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(reading, 1)
        await asyncio.wait_for(publishing, 1)  # gives up quietly once closed
        return metrics

    with caplog.at_level(logging.INFO, logger="fixadapter.queue.redis"):
        metrics = asyncio.run(scenario())
    assert errors(metrics, "commands") >= 3  # start, then retries with a growing backoff
    assert errors(metrics, "events") >= 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, "one warning per outage and per side, not one per attempt"
    assert all("redis://:******@127.0.0.1:1/0" in r.getMessage() for r in warnings)
    assert "s3cret" not in caplog.text


def test_a_source_and_a_sink_wait_out_an_outage_and_resume_where_they_were(
    redis_url: str, queue_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    target = urlsplit(redis_url)
    proxy = TcpProxy((target.hostname or "127.0.0.1", target.port or 6379))
    userinfo = target.netloc.rpartition("@")[0]
    via_proxy = target._replace(netloc=f"{userinfo}{'@' if userinfo else ''}127.0.0.1:{proxy.port}").geturl()

    async def scenario() -> Metrics:
        metrics = Metrics()
        source = RedisCommandSource(config(via_proxy, queue_prefix), metrics)
        sink = RedisEventSink(config(via_proxy, queue_prefix), metrics)
        client = RedisClientTransport(redis_url, queue_prefix)
        await source.start()
        deliveries = source.deliveries()
        await client.send_command("momo", b"before")
        await source.ack(await take(deliveries))

        proxy.cut()
        await client.send_command("momo", b"lost")
        raw = redis.asyncio.Redis.from_url(redis_url)  # a read whose answer the outage swallowed:
        await raw.xreadgroup("fixadapter", "daemon-a", {f"{queue_prefix}:commands:momo": ">"}, count=1)
        await raw.aclose()
        await client.send_command("momo", b"during")
        reading = asyncio.create_task(take(deliveries, timeout=15))
        publishing = asyncio.create_task(sink.publish("momo", b"event", 7))
        await asyncio.sleep(1.0)
        assert not reading.done() and not publishing.done()

        proxy.restore()
        lost = await reading
        assert (lost.data, lost.redelivered) == (b"lost", True)  # not waiting claim_idle_seconds (30 s)
        await source.ack(lost)
        during = await take(deliveries, timeout=15)
        assert (during.data, during.redelivered) == (b"during", False)
        await source.ack(during)
        await asyncio.wait_for(publishing, 15)
        assert await sink.published_seq() == 7
        assert [r.data for r in await client.read_events("momo", {ORDERS: "0", POSITIONS: "0"}, 1)] == [
            b"event"
        ]
        for closing in (source, sink, client):
            await closing.close()
        return metrics

    try:
        with caplog.at_level(logging.INFO, logger="fixadapter.queue.redis"):
            metrics = asyncio.run(scenario())
    finally:
        proxy.cut()
    assert errors(metrics, "commands") >= 1
    assert errors(metrics, "events") >= 1
    messages = [(r.levelname, r.getMessage().split(":")[0]) for r in caplog.records]
    assert sorted(messages) == [  # one warning per outage and side, then one "reachable again" each
        ("INFO", "queue (commands)"),
        ("INFO", "queue (events)"),
        ("WARNING", "queue (commands)"),
        ("WARNING", "queue (events)"),
    ]


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:******@127.0.0.1:6379/0"),
        ("rediss://user:p%40ss@redis.example:6380/1", "rediss://user:******@redis.example:6380/1"),
        ("redis://127.0.0.1:6379/0?password=s3cret&db=2", "redis://127.0.0.1:6379/0?password=******&db=2"),
        ("redis://user@127.0.0.1/0", "redis://user@127.0.0.1/0"),
        ("unix:///run/redis.sock?db=0", "unix:///run/redis.sock?db=0"),
    ],
)
def test_mask_url_hides_the_password_and_keeps_the_rest(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_an_acknowledged_command_is_gone_from_its_stream(redis_url: str, queue_prefix: str) -> None:
    async def scenario() -> None:
        client = RedisClientTransport(redis_url, queue_prefix)
        source = RedisCommandSource(config(redis_url, queue_prefix), Metrics())
        await source.start()
        await client.send_command("momo", b"x" * 100_000)
        await client.send_command("momo", b"kept until handled")
        deliveries = source.deliveries()
        handled = await take(deliveries)
        await source.ack(handled)
        raw = redis.asyncio.Redis.from_url(redis_url)
        left = await raw.xrange(f"{queue_prefix}:commands:momo")
        await raw.aclose()
        assert [fields[b"data"] for _, fields in left] == [b"kept until handled"]
        await source.close()
        await client.close()

    asyncio.run(scenario())


def test_each_delivery_names_the_strategy_whose_stream_carried_it(redis_url: str, queue_prefix: str) -> None:
    async def scenario() -> None:
        client = RedisClientTransport(redis_url, queue_prefix)
        source = RedisCommandSource(config(redis_url, queue_prefix), Metrics())
        await source.start()
        await client.send_command("momo", b"from momo")
        await client.send_command("meanrev", b"from meanrev")
        await client.send_command("stranger", b"nobody reads this stream")
        deliveries = source.deliveries()
        got = {(d.strategy, d.data) for d in [await take(deliveries), await take(deliveries)]}
        assert got == {("momo", b"from momo"), ("meanrev", b"from meanrev")}
        assert await nothing_within(deliveries)
        await source.close()
        await client.close()

    asyncio.run(scenario())


def test_a_new_iteration_hands_out_again_what_an_abandoned_one_took(
    redis_url: str, queue_prefix: str
) -> None:
    async def scenario() -> None:
        client = RedisClientTransport(redis_url, queue_prefix)
        source = RedisCommandSource(config(redis_url, queue_prefix), Metrics())
        await source.start()
        await client.send_command("momo", b"in hand when the dispatcher failed")
        abandoned = source.deliveries()
        taken = await take(abandoned)
        await abandoned.aclose()
        again = await take(source.deliveries())
        assert (again.entry_id, again.data, again.redelivered) == (taken.entry_id, taken.data, True)
        await source.close()
        await client.close()

    asyncio.run(scenario())


def test_the_published_seq_marker_of_an_older_version_is_moved_out_of_the_event_namespace_once(
    redis_url: str, queue_prefix: str
) -> None:
    async def scenario() -> None:
        raw = redis.asyncio.Redis.from_url(redis_url)
        await raw.set(f"{queue_prefix}:events:published_seq", 41)
        sink = RedisEventSink(config(redis_url, queue_prefix, strategies=("published_seq",)), Metrics())
        await sink.start()
        assert await sink.published_seq() == 41, "the replay position is kept"
        assert await raw.exists(f"{queue_prefix}:events:published_seq") == 0
        await sink.publish("published_seq", b"an event of the strategy named published_seq", 42)
        assert await sink.published_seq() == 42
        await sink.close()
        restarted = RedisEventSink(config(redis_url, queue_prefix), Metrics())
        await restarted.start()  # nothing left to move: the strategy's stream stays
        assert await restarted.published_seq() == 42
        assert await raw.type(f"{queue_prefix}:events:published_seq") == b"stream"
        await restarted.close()
        await raw.aclose()

    asyncio.run(scenario())


class _OwnTransactions:
    """Counts the MULTI/EXECs a command source sends on its own connection."""

    def __init__(self, source: RedisCommandSource) -> None:
        self.count = 0
        pipeline = source._redis.pipeline

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return pipeline(*args, **kwargs)

        source._redis.pipeline = counted  # type: ignore[method-assign]


@contextlib.asynccontextmanager
async def _one_command_taken(
    redis_url: str, prefix: str
) -> AsyncIterator[tuple[RedisClientTransport, RedisCommandSource, RedisEventSink, AsyncIterator[Delivery]]]:
    """A strategy's command queued, and a source and a sink carrying its acknowledgements, all closed
    after."""
    client = RedisClientTransport(redis_url, prefix)
    source = RedisCommandSource(config(redis_url, prefix), Metrics())
    sink = RedisEventSink(config(redis_url, prefix), Metrics(), acks=source)
    try:
        await source.start()
        await client.send_command("momo", b'{"id": "c1"}')
        yield client, source, sink, source.deliveries()
    finally:
        for closing in (sink, source, client):
            await closing.close()


async def _pending(redis_url: str, stream: str) -> tuple[int, int]:
    """(entries in the command stream, entries pending in its group)."""
    raw = redis.asyncio.Redis.from_url(redis_url)
    try:
        summary = await raw.xpending(stream, "fixadapter")
        return await raw.xlen(stream), int(summary["pending"])
    finally:
        await raw.aclose()


def test_a_command_acknowledged_as_its_event_is_published_rides_in_the_event_transaction(
    redis_url: str, queue_prefix: str
) -> None:
    """One round trip for the acknowledgement and the event, not one each: the source sends nothing."""

    async def scenario() -> None:
        async with _one_command_taken(redis_url, queue_prefix) as (client, source, sink, deliveries):
            own = _OwnTransactions(source)
            delivery = await take(deliveries)
            await asyncio.wait_for(
                asyncio.gather(source.ack(delivery), sink.publish("momo", b"submitted", 1)), 10
            )
            assert own.count == 0
            assert await _pending(redis_url, f"{queue_prefix}:commands:momo") == (0, 0)
            cursor = {ORDERS: "0", POSITIONS: "0"}
            assert [r.data for r in await client.read_events("momo", cursor, 1)] == [b"submitted"]
            assert await sink.published_seq() == 1
            assert await nothing_within(deliveries)

    asyncio.run(scenario())


def test_an_acknowledgement_whose_event_transaction_fails_is_sent_on_its_own(
    redis_url: str, queue_prefix: str
) -> None:
    """The event's failure is the relay's; the command is still acknowledged, once, by the source."""

    async def scenario() -> None:
        raw = redis.asyncio.Redis.from_url(redis_url)
        await raw.set(f"{queue_prefix}:events:momo", "not a stream")  # XADD answers WRONGTYPE
        await raw.aclose()
        async with _one_command_taken(redis_url, queue_prefix) as (_, source, sink, deliveries):
            own = _OwnTransactions(source)
            delivery = await take(deliveries)
            acked, published = await asyncio.wait_for(
                asyncio.gather(
                    source.ack(delivery), sink.publish("momo", b"submitted", 1), return_exceptions=True
                ),
                10,
            )
            assert acked is None
            assert isinstance(published, redis.exceptions.ResponseError)
            assert "WRONGTYPE" in str(published)
            assert own.count == 1
            assert await _pending(redis_url, f"{queue_prefix}:commands:momo") == (0, 0)
            assert await nothing_within(deliveries)

    asyncio.run(scenario())

"""The daemon's queue side under hostile or broken input: no strategy name reaches an internal key, no
input kills the command dispatcher, a task that fails is restarted and shown, a strategy sends only as
itself, a reused command id is refused, and floods of bad commands leave metrics and Redis keys bounded."""

from __future__ import annotations

import asyncio
import json
import random
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
from prometheus_client import generate_latest

from fixadapter.client import Event, StrategyClient
from fixadapter.daemon.service import Daemon
from fixadapter.engine.tasks import TASK_FAILED
from fixadapter.model.enums import OrderEventKind, OrderStatus
from fixadapter.model.requests import NewOrder
from fixadapter.queue.schema import CancelCommand, CommandRejected, OrderUpdate, SubmitCommand, encode
from fixadapter.sim.process import SimProcess
from tests.integration.test_daemon_queue import daemon_config, limit, market, started
from tests.integration.test_daemon_redis import redis_daemon


async def until(condition: Callable[[], bool], what: str, timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
    assert condition(), what


async def events_until_final(client: StrategyClient, cl_ord_id: str) -> list[Event]:
    """Every event of the client's strategy from the start of its stream up to `cl_ord_id`'s final one."""
    seen: list[Event] = []
    async with asyncio.timeout(15):
        async for event in client.events(from_start=True):
            seen.append(event)
            if isinstance(event, OrderUpdate) and event.order.cl_ord_id == cl_ord_id and event.order.is_done:
                return seen
    raise AssertionError("unreachable")


async def events_until_refused(client: StrategyClient, command_id: str) -> list[Event]:
    """Every event of the client's strategy from the start of its stream up to the refusal of command
    `command_id` (commands with one id are handled in the order queued: those before it are done)."""
    seen: list[Event] = []
    async with asyncio.timeout(15):
        async for event in client.events(from_start=True):
            seen.append(event)
            if isinstance(event, CommandRejected) and event.command_id == command_id:
                return seen
    raise AssertionError("unreachable")


def refusals(events: list[Event]) -> dict[str | None, str]:
    return {e.command_id: e.reason for e in events if isinstance(e, CommandRejected)}


def test_a_strategy_named_published_seq_breaks_neither_the_dispatcher_nor_the_relay_nor_a_restart(
    sim: SimProcess, tmp_path: Path, redis_url: str, queue_prefix: str
):
    config = redis_daemon(sim, tmp_path, redis_url, queue_prefix, strategies=("published_seq",))

    async def scenario() -> None:
        for run in ("first", "restarted"):
            daemon = await started(config)
            try:
                async with StrategyClient.redis(redis_url, "published_seq", queue_prefix) as client:
                    await client._transport.send_command(
                        "published_seq", f'{{"v": 1, "type": "cancel", "id": "bad-{run}"}}'.encode()
                    )
                    cl_ord_id = await client.submit(market())
                    seen = await events_until_final(client, cl_ord_id)
                final = seen[-1]
                assert isinstance(final, OrderUpdate) and final.order.status is OrderStatus.FILLED
                assert "cl_ord_id" in refusals(seen)[f"bad-{run}"]
                assert daemon.adapter.ready, daemon.adapter.readiness()
                assert not daemon.adapter.metrics.alarms.active(TASK_FAILED)
            finally:
                await daemon.stop()

    asyncio.run(scenario())


def test_a_dispatcher_whose_handling_raises_is_restarted_and_readyz_names_it_meanwhile(
    sim: SimProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    config = daemon_config(sim, tmp_path, daemon={"http": {"enabled": True, "port": 0}})

    async def scenario() -> None:
        daemon = await started(config)
        restarted, release = asyncio.Event(), asyncio.Event()
        submit = daemon.adapter.submit
        calls = 0

        async def fails_once_then_waits(order: NewOrder, command: Any = None) -> Any:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("a bug in handling a command")
            restarted.set()
            await release.wait()
            return await submit(order, command)

        monkeypatch.setattr(daemon.adapter, "submit", fails_once_then_waits)
        try:
            async with daemon.client("momo") as client, aiohttp.ClientSession() as http:
                cl_ord_id = await client.submit(market())
                await asyncio.wait_for(restarted.wait(), 15)  # failed, restarted, the command came back
                async with http.get(f"http://127.0.0.1:{daemon.http_port}/readyz") as answer:
                    body = await answer.json()
                    assert answer.status == 503
                assert "task_failed command-dispatcher" in body["reason"]
                assert "RuntimeError" in body["reason"]
                assert not daemon.adapter.ready
                restarts = daemon.adapter.metrics.value(
                    "fixadapter_task_restarts_total", {"task": "command-dispatcher"}
                )
                assert restarts == 1

                release.set()
                final = await asyncio.wait_for(client.final_state(cl_ord_id), 15)
                assert isinstance(final, OrderUpdate) and final.order.status is OrderStatus.FILLED
                alarms = daemon.adapter.metrics.alarms
                await until(lambda: not alarms.is_active(TASK_FAILED, "command-dispatcher"), "alarm cleared")
                async with http.get(f"http://127.0.0.1:{daemon.http_port}/readyz") as answer:
                    assert answer.status == 200
            assert [o.cl_ord_id for o in await daemon.adapter.orders()].count(cl_ord_id) == 1
        finally:
            await daemon.stop()

    asyncio.run(scenario())


def test_deeply_nested_json_is_refused_and_the_next_command_is_taken(sim: SimProcess, tmp_path: Path):
    async def scenario() -> None:
        daemon = await started(daemon_config(sim, tmp_path))
        try:
            assert daemon.memory is not None
            async with daemon.client("momo") as client:
                await daemon.memory.client().send_command("momo", b"[" * 100000)
                cl_ord_id = await client.submit(market())
                seen = await events_until_final(client, cl_ord_id)
            assert seen[-1].order.status is OrderStatus.FILLED  # type: ignore[union-attr]
            assert refusals(seen)[None] == (
                "invalid command: command is 100000 bytes; the limit is 65536 bytes: send a smaller command"
            )
            assert not daemon.adapter.metrics.alarms.active(TASK_FAILED)
        finally:
            await daemon.stop()

    asyncio.run(scenario())


def test_a_command_naming_another_strategy_is_refused_on_the_senders_stream(sim: SimProcess, tmp_path: Path):
    async def scenario() -> None:
        daemon = await started(daemon_config(sim, tmp_path))
        try:
            assert daemon.memory is not None
            async with daemon.client("alpha") as alpha, daemon.client("beta") as beta:
                resting = await alpha.submit(limit("1.00000"))
                async with asyncio.timeout(15):
                    async for event in alpha.events():
                        if isinstance(event, OrderUpdate) and event.event is OrderEventKind.ACCEPTED:
                            break
                spoofed = CancelCommand(id="spoof-1", strategy="alpha", cl_ord_id=resting)
                await daemon.memory.client().send_command("beta", encode(spoofed))
                async with asyncio.timeout(15):
                    async for event in beta.events():
                        if isinstance(event, CommandRejected):
                            assert event.command_id == "spoof-1"
                            assert "names strategy alpha but was sent on the stream of beta" in event.reason
                            break
                order = await daemon.adapter.order(resting)
                assert order is not None and order.status is OrderStatus.NEW
        finally:
            await daemon.stop()

    asyncio.run(scenario())


def test_a_command_id_used_again_for_a_different_command_is_refused_and_a_redelivery_is_not(
    sim: SimProcess, tmp_path: Path
):
    async def scenario() -> None:
        daemon = await started(daemon_config(sim, tmp_path))
        try:
            assert daemon.memory is not None
            first = SubmitCommand(id="reused-1", strategy="momo", order=market(10000))
            other = SubmitCommand(id="reused-1", strategy="momo", order=market(20000, "GBPUSD"))
            async with daemon.client("momo") as client:
                transport = daemon.memory.client()
                for command in (first, first, other):
                    await transport.send_command("momo", encode(command))
                seen = await events_until_refused(client, "reused-1")
            reasons = [e.reason for e in seen if isinstance(e, CommandRejected)]
            assert reasons == [
                "command id reused-1 was used before for a different command; give every command a new id "
                "(the same id is only for sending the same command again)"
            ]
            ours = [o for o in await daemon.adapter.orders() if o.cl_ord_id == "reused-1"]
            assert len(ours) == 1 and ours[0].symbol == "EURUSD" and ours[0].quantity == 10000
        finally:
            await daemon.stop()

    asyncio.run(scenario())


def test_a_command_id_reused_for_a_new_order_is_refused_and_stores_nothing_and_costs_one_write(
    sim: SimProcess, tmp_path: Path
):
    """A submit's command id is recorded in its order's own transaction (journaled with it, or in its
    insert): no write of its own for a new order, and a reuse for another, new ClOrdID is refused with
    nothing of the second order stored."""

    async def scenario() -> None:
        daemon = await started(daemon_config(sim, tmp_path))
        try:
            assert daemon.memory is not None
            first = SubmitCommand(
                id="reused-2", strategy="momo", order=market(10000).model_copy(update={"cl_ord_id": "A-1"})
            )
            other = SubmitCommand(
                id="reused-2", strategy="momo", order=market(20000).model_copy(update={"cl_ord_id": "B-1"})
            )
            async with daemon.client("momo") as client:
                transport = daemon.memory.client()
                await transport.send_command("momo", encode(first))
                await events_until_final(client, "A-1")
                metrics = daemon.adapter.metrics
                calls = "fixadapter_store_seconds_count"
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(daemon.adapter.engine.store_thread, lambda: None)  # behind
                writes = [  # journaled and written behind, or through the store
                    metrics.value(calls, {"operation": name}) or 0
                    for name in ("apply_journaled_order", "insert_order")
                ]
                assert sum(writes) == 1, writes
                assert not metrics.value(calls, {"operation": "first_use_of_command"})
                await transport.send_command("momo", encode(other))
                seen = await events_until_refused(client, "reused-2")
            assert refusals(seen) == {
                "reused-2": "command id reused-2 was used before for a different command; give every "
                "command a new id (the same id is only for sending the same command again)"
            }
            stored = {o.cl_ord_id for o in await daemon.adapter.orders()}
            assert "A-1" in stored and "B-1" not in stored
            assert daemon.adapter.engine.store.client_id_usage("B-1") is None  # not even claimed
        finally:
            await daemon.stop()

    asyncio.run(scenario())


def _queue_series(daemon: Daemon) -> int:
    """Series of the strategy queue's families: the ones a command can add to (other families grow with
    time on their own, a timer's first store call adds a histogram, so they say nothing of the input)."""
    text = generate_latest(daemon.adapter.metrics.registry).decode()
    return sum(1 for line in text.splitlines() if line.startswith("fixadapter_queue_"))


def _label_values(daemon: Daemon) -> set[str]:
    return {
        value
        for family in daemon.adapter.metrics.registry.collect()
        for sample in family.samples
        for value in sample.labels.values()
    }


def _random_name(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_lowercase + string.digits, k=12))


def test_two_thousand_invalid_commands_with_random_type_and_strategy_leave_metrics_and_keys_bounded(
    sim: SimProcess, tmp_path: Path, redis_url: str, queue_prefix: str
):
    config = redis_daemon(sim, tmp_path, redis_url, queue_prefix, strategies=("momo",))
    rng = random.Random(13)
    flood = 2000
    sent_names: set[str] = set()

    def name() -> str:
        sent_names.add(made := _random_name(rng))
        return made

    async def scenario() -> None:
        daemon = await started(config)
        raw = redis.asyncio.Redis.from_url(redis_url)
        try:
            async with StrategyClient.redis(redis_url, "momo", queue_prefix) as client:
                series_before = _queue_series(daemon)
                for number in range(flood):
                    if number % 2:
                        command: dict[str, Any] = {"v": 1, "type": name(), "id": f"t{number}"}
                        command["strategy"] = name()
                    else:
                        command = CancelCommand(
                            id=f"s{number}", strategy=name(), cl_ord_id=name()
                        ).model_dump(mode="json")
                    await client._transport.send_command("momo", json.dumps(command).encode())
                refused = 0
                async with asyncio.timeout(60):
                    async for event in client.events():
                        refused += isinstance(event, CommandRejected)
                        if refused == flood:
                            break
                key = f"{queue_prefix}:commands:momo"
                async with asyncio.timeout(15):
                    while await raw.xlen(key):
                        await asyncio.sleep(0.05)
                series_after = _queue_series(daemon)
                taken = sent_names & _label_values(daemon)
            keys = {
                k.decode().removeprefix(f"{queue_prefix}:") async for k in raw.scan_iter(f"{queue_prefix}:*")
            }
            assert keys <= {"commands:momo", "events:momo", "positions", "internal:published_seq"}, keys
            assert not taken, f"metric labels took values from the input: {sorted(taken)[:5]}"
            assert series_after - series_before <= 8, "the queue's metrics grew with the input"
            invalid = daemon.adapter.metrics.value(
                "fixadapter_queue_commands_total", {"type": "unknown", "outcome": "invalid"}
            )
            assert invalid == flood / 2
        finally:
            await raw.aclose()
            await daemon.stop()

    asyncio.run(scenario())


def test_a_relay_that_cannot_publish_is_restarted_shown_as_not_ready_and_loses_no_event(
    sim: SimProcess, tmp_path: Path, redis_url: str, queue_prefix: str
):
    config = redis_daemon(sim, tmp_path, redis_url, queue_prefix, strategies=("momo",))

    async def scenario() -> None:
        daemon = await started(config)
        raw = redis.asyncio.Redis.from_url(redis_url)
        alarms = daemon.adapter.metrics.alarms
        try:
            async with StrategyClient.redis(redis_url, "momo", queue_prefix) as client:
                await raw.set(f"{queue_prefix}:events:momo", "a key of the wrong type, set by hand")
                cl_ord_id = await client.submit(market())
                await until(lambda: alarms.is_active(TASK_FAILED, "event-relay"), "the relay's alarm")
                assert not daemon.adapter.ready
                await raw.delete(f"{queue_prefix}:events:momo")  # an operator repairs Redis
                seen = await events_until_final(client, cl_ord_id)
            assert [e.event for e in seen if isinstance(e, OrderUpdate)][-1] is OrderEventKind.FILLED
            await until(lambda: not alarms.is_active(TASK_FAILED, "event-relay"), "the alarm cleared")
            assert daemon.adapter.ready
        finally:
            await raw.aclose()
            await daemon.stop()

    asyncio.run(scenario())

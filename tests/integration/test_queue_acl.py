"""Strategy identity enforced by Redis: with the users `fixadapter queue acl --apply` makes, strategy B
can neither write A's command stream nor read A's events, and B's cancel of A's order through its own
stream is refused by the daemon. The users and keys the test makes are removed afterwards."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml
from redis.exceptions import NoPermissionError

from fixadapter.cli import main
from fixadapter.client import StrategyClient
from fixadapter.model.enums import OrderEventKind, OrderStatus
from fixadapter.queue.schema import CancelCommand, CommandRejected, OrderUpdate, encode
from fixadapter.queue.transport import ORDERS, POSITIONS
from fixadapter.sim.process import SimProcess
from tests.integration.test_daemon_queue import limit, started
from tests.integration.test_daemon_redis import redis_daemon

STRATEGIES = ("alpha", "beta")


@pytest.fixture
def acl_users(redis_url: str, queue_prefix: str) -> Iterator[list[str]]:
    names = [f"{queue_prefix}.{strategy}" for strategy in STRATEGIES]
    yield names
    admin = redis.Redis.from_url(redis_url)
    try:
        admin.execute_command("ACL", "DELUSER", *names)
    finally:
        admin.close()


def apply_users(
    tmp_path: Path, redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> dict[str, str]:
    path = tmp_path / "queue.yaml"
    queue = {"kind": "redis", "redis_url": redis_url, "prefix": prefix, "strategies": list(STRATEGIES)}
    path.write_text(yaml.safe_dump({"daemon": {"queue": queue}}))
    assert main(["queue", "acl", "--config", str(path), "--apply"]) == 0
    printed = capsys.readouterr().out.splitlines()
    return dict(line.split(": ", 1) for line in printed if not line.startswith("#"))


def test_a_strategy_can_touch_neither_the_command_stream_nor_the_events_nor_the_orders_of_another(
    sim: SimProcess,
    tmp_path: Path,
    redis_url: str,
    queue_prefix: str,
    acl_users: list[str],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
):
    with caplog.at_level(logging.DEBUG):
        urls = apply_users(tmp_path, redis_url, queue_prefix, capsys)
    assert set(urls) == set(STRATEGIES)
    for url in urls.values():
        password = url.split("@")[0].rsplit(":", 1)[1]
        assert len(password) >= 32 and password not in caplog.text, "a password reached a log"

    async def scenario() -> None:
        daemon = await started(redis_daemon(sim, tmp_path, redis_url, queue_prefix, strategies=STRATEGIES))
        try:
            async with (
                StrategyClient.redis(urls["alpha"], "alpha", queue_prefix) as alpha,
                StrategyClient.redis(urls["beta"], "beta", queue_prefix) as beta,
            ):
                resting = await alpha.submit(limit("1.00000"))
                async with asyncio.timeout(15):
                    async for event in alpha.events():
                        if isinstance(event, OrderUpdate) and event.event is OrderEventKind.ACCEPTED:
                            break

                spoofed = encode(CancelCommand(id="spoof-1", strategy="alpha", cl_ord_id=resting))
                with pytest.raises(NoPermissionError):
                    await beta._transport.send_command("alpha", spoofed)
                with pytest.raises(NoPermissionError):
                    await beta._transport.read_events("alpha", {ORDERS: "0", POSITIONS: "0"}, 0)

                cancel_id = await beta.cancel(resting)
                async with asyncio.timeout(15):
                    async for event in beta.events():
                        if isinstance(event, CommandRejected):
                            assert event.command_id == cancel_id
                            assert event.reason == f"strategy beta has no order {resting}"
                            break
                order = await daemon.adapter.order(resting)
                assert order is not None and order.status is OrderStatus.NEW

                await alpha.cancel(resting)
                final = await asyncio.wait_for(alpha.final_state(resting), 15)
                assert isinstance(final, OrderUpdate) and final.order.status is OrderStatus.CANCELLED
        finally:
            await daemon.stop()

    asyncio.run(scenario())

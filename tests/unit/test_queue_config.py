"""daemon.queue: a Redis queue reads only the command streams of the strategies it lists."""

from __future__ import annotations

import pytest

from fixadapter.config import build_config
from fixadapter.errors import ConfigError

ACCOUNT = {"host": "127.0.0.1", "sender_comp_id": "demo", "username": "1", "password": "x"}


def test_a_redis_queue_without_strategies_is_refused_showing_the_form() -> None:
    with pytest.raises(ConfigError) as refused:
        build_config({"account": ACCOUNT, "daemon": {"queue": {"kind": "redis"}}}, environ={})
    assert "daemon.queue" in str(refused.value)
    assert "strategies: [momo, meanrev]" in str(refused.value)


def test_strategies_can_come_from_the_environment_as_a_comma_separated_list() -> None:
    config = build_config(
        {"account": ACCOUNT},
        environ={
            "FIXADAPTER_DAEMON__QUEUE__KIND": "redis",
            "FIXADAPTER_DAEMON__QUEUE__STRATEGIES": "momo, b-2",
        },
    )
    assert config.daemon.queue.strategies == ("momo", "b-2")


@pytest.mark.parametrize("name", ["a:b", "events:x", "", "with space"])
def test_a_strategy_name_that_could_reach_another_key_is_refused(name: str) -> None:
    with pytest.raises(ConfigError) as refused:
        build_config(
            {"account": ACCOUNT, "daemon": {"queue": {"kind": "redis", "strategies": ["ok", name]}}},
            environ={},
        )
    assert "daemon.queue.strategies" in str(refused.value)


def test_a_strategy_listed_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match="twice"):
        build_config(
            {"account": ACCOUNT, "daemon": {"queue": {"kind": "redis", "strategies": ["a", "a"]}}},
            environ={},
        )

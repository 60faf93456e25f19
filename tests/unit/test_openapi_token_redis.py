"""The Redis token store: pairs encrypted at rest, shared by several daemons, refreshes serialised."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import redis
from cryptography.fernet import Fernet
from pydantic import SecretStr

from fixadapter.connectors.openapi.token_redis import RedisTokenStore
from fixadapter.connectors.openapi.tokens import (
    TOKEN_KEY_ENV,
    TokenFileError,
    TokenKeyError,
    TokenPair,
    rotate,
)

KEY = "app/default"
EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)


def pair(tag: str) -> TokenPair:
    return TokenPair(SecretStr(f"access-{tag}"), SecretStr(f"refresh-{tag}"), EXPIRES)


@pytest.fixture
def environ() -> dict[str, str]:
    return {TOKEN_KEY_ENV: Fernet.generate_key().decode()}


def test_a_pair_is_stored_encrypted_and_read_back_equal(
    redis_url: str, queue_prefix: str, environ: dict[str, str]
) -> None:
    store = RedisTokenStore(redis_url, queue_prefix, environ)
    store.save(KEY, pair("a"))
    assert store.load(KEY) == pair("a")
    raw = redis.Redis.from_url(redis_url).get(f"{queue_prefix}:openapi:token:{KEY}")
    assert raw is not None and b"access-a" not in raw and b"refresh-a" not in raw
    assert store.load("app/other") is None


def test_another_key_cannot_read_the_pair_and_says_what_to_do(
    redis_url: str, queue_prefix: str, environ: dict[str, str]
) -> None:
    RedisTokenStore(redis_url, queue_prefix, environ).save(KEY, pair("a"))
    other = RedisTokenStore(redis_url, queue_prefix, {TOKEN_KEY_ENV: Fernet.generate_key().decode()})
    with pytest.raises(TokenKeyError, match="openapi login"):
        other.load(KEY)


def test_two_daemons_refreshing_one_grant_rotate_it_once(
    redis_url: str, queue_prefix: str, environ: dict[str, str]
) -> None:
    """The second refresher finds the pair rotated under the lock and takes it: the refresh token the first
    one spent is never sent again."""
    first, second = (RedisTokenStore(redis_url, queue_prefix, environ) for _ in range(2))
    first.save(KEY, pair("old"))
    held = first.load(KEY)
    spent: list[str] = []

    async def obtain(refresh_token: SecretStr) -> TokenPair:
        spent.append(refresh_token.get_secret_value())
        return pair(f"new{len(spent)}")

    async def both() -> tuple[TokenPair, TokenPair]:
        one = await rotate(first, KEY, obtain, seen=held)
        two = await rotate(second, KEY, obtain, seen=held)
        return one, two

    one, two = asyncio.run(both())
    assert one == two == pair("new1")
    assert spent == ["refresh-old"]


def test_a_refresh_lock_held_elsewhere_times_out_with_a_reason(
    redis_url: str, queue_prefix: str, environ: dict[str, str]
) -> None:
    store = RedisTokenStore(redis_url, queue_prefix, environ)
    release = store.acquire_refresh(KEY, 1.0)
    try:
        with pytest.raises(TokenFileError, match="another process has been refreshing"):
            RedisTokenStore(redis_url, queue_prefix, environ).acquire_refresh(KEY, 0.2)
    finally:
        release()
    RedisTokenStore(redis_url, queue_prefix, environ).acquire_refresh(KEY, 1.0)()

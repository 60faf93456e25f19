"""RedisTokenStore: the token pairs of several daemons (or machines) in one place, encrypted.

A refresh token works once, so daemons that trade accounts of the same grant must share one pair: each
refresh rotates it for all of them. The pair is kept Fernet-encrypted (the key from the environment, as
for the file store) under `<prefix>:openapi:token:<grant>`, and refreshes are serialised by a lock key
with an expiry (SET NX PX) so a daemon that dies holding it does not block the others for ever. `save`
returns once Redis has the value; how durable that is depends on the server's persistence (appendonly
with appendfsync always for a pair that must survive a Redis crash), which the README says.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Callable, Mapping
from typing import cast
from urllib.parse import urlsplit

import redis
from redis.exceptions import RedisError

from fixadapter.connectors.openapi.tokens import (
    LOCK_POLL_SECONDS,
    TOKEN_KEY_ENV,
    TokenFileError,
    TokenKeyError,
    TokenPair,
    fernet_from,
)

__all__ = ["RedisTokenStore"]

LOCK_MILLISECONDS = 120_000  # longer than any refresh; a holder that dies frees it by then
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""


class RedisTokenStore:
    """The TokenStore protocol (tokens.py) over Redis."""

    def __init__(
        self,
        url: str,
        prefix: str = "fixadapter",
        environ: Mapping[str, str] | None = None,
        key_variable: str = TOKEN_KEY_ENV,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.key_variable = key_variable
        self._fernet = fernet_from(os.environ if environ is None else environ, key_variable)
        self._client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)

    def _key(self, key: str) -> str:
        return f"{self.prefix}:openapi:token:{key}"

    def _where(self) -> str:
        # The host only, never the URL: it may carry a password.
        return f"the token store at {urlsplit(self.url).hostname or '?'}"

    def load(self, key: str) -> TokenPair | None:
        try:
            sealed = cast(bytes | None, self._client.get(self._key(key)))
        except RedisError as error:
            raise TokenFileError(f"cannot read {self._where()}: {type(error).__name__}") from None
        if sealed is None:
            return None
        try:
            plain = self._fernet.decrypt(sealed)
        except Exception:
            raise TokenKeyError(
                f"{self.key_variable} does not decrypt the pair of {key} in {self._where()}: set the key it "
                "was written with, or run `fixadapter openapi login` again"
            ) from None
        return TokenPair.from_json(json.loads(plain))

    def save(self, key: str, pair: TokenPair) -> None:
        sealed = self._fernet.encrypt(json.dumps(pair.to_json(), sort_keys=True).encode())
        try:
            self._client.set(self._key(key), sealed)
        except RedisError as error:
            raise TokenFileError(f"cannot write {self._where()}: {type(error).__name__}") from None

    def acquire_refresh(self, key: str, wait: float) -> Callable[[], None]:
        lock = f"{self._key(key)}:refresh-lock"
        owner = secrets.token_hex(16)
        deadline = time.monotonic() + wait
        try:
            while not self._client.set(lock, owner, nx=True, px=LOCK_MILLISECONDS):
                if time.monotonic() >= deadline:
                    raise TokenFileError(
                        f"another process has been refreshing the tokens of {key} in {self._where()} for "
                        f"{wait:g} s"
                    )
                time.sleep(LOCK_POLL_SECONDS)
        except RedisError as error:
            raise TokenFileError(f"cannot lock {self._where()}: {type(error).__name__}") from None

        def release() -> None:
            with contextlib.suppress(RedisError):  # not released: it expires by itself
                self._client.eval(RELEASE, 1, lock, owner)

        return release

    def close(self) -> None:
        self._client.close()

"""OAuth token pairs and their encrypted file store.

A cTrader refresh token works once: refreshing returns a new pair and kills the old one (reference 2.1
item 6). So the rotated pair is written, atomically and durably, before anyone uses it (`rotate`): after a
crash the file holds either the whole old content or the whole new one, never a torn mix.

The file is one JSON mapping (grant key -> pair) encrypted with Fernet; the key comes from the
environment (`TOKEN_KEY_ENV`), never from a file next to the tokens. Errors name the variable and how to
make a key; they never show the key or a token.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

from fixadapter.connectors.openapi.errors import ConnectionLost, RequestTimeout
from fixadapter.errors import FixAdapterError
from fixadapter.private_files import FILE_MODE, narrow, private_dir

__all__ = [
    "MAKE_KEY_COMMAND",
    "TOKEN_KEY_ENV",
    "FileTokenStore",
    "TokenFileError",
    "TokenKeyError",
    "TokenPair",
    "TokenStore",
    "grant_key",
    "rotate",
    "store_late_answer",
]

TOKEN_KEY_ENV = "FIXADAPTER_OPENAPI_TOKEN_KEY"  # noqa: S105 - the variable's name, not a key
MAKE_KEY_COMMAND = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
log = logging.getLogger("fixadapter.openapi.tokens")
LOCK_POLL_SECONDS = 0.05
REFRESH_LOCK_SECONDS = 60.0
PENDING_REFRESH_SECONDS = 300.0  # how long an unanswered refresh's answer may still come


class TokenKeyError(FixAdapterError):
    """The encryption key is missing, malformed or not the one the file was written with."""


class RefreshPending(FixAdapterError):
    """Another link or process sent a refresh of this pair whose answer may still come (the server then
    rotated it): its refresh token is not spent again before that answer could have been stored."""


class TokenFileError(FixAdapterError):
    """The token file cannot be read or written (not a key problem)."""


@dataclass(frozen=True)
class TokenPair:
    """One grant's tokens. `refresh_started_at` is set while a refresh is under way (see `rotate`);
    `answer_awaited_until`, when a refresh went out and its answer did not come (it may still, with the
    rotated pair): nobody spends this refresh token again before then."""

    access_token: SecretStr
    refresh_token: SecretStr
    expires_at: datetime
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a token
    refresh_started_at: datetime | None = None
    answer_awaited_until: datetime | None = None

    def seconds_left(self, now: datetime | None = None) -> float:
        """Seconds until the access token expires (negative once it has)."""
        return (self.expires_at - (now or datetime.now(UTC))).total_seconds()

    @classmethod
    def issued(
        cls, access_token: str, refresh_token: str, expires_in: float, token_type: str, at: datetime
    ) -> TokenPair:
        """A pair from a token answer; `at` is when the request left, so the expiry errs early."""
        return cls(
            SecretStr(access_token), SecretStr(refresh_token), at + timedelta(seconds=expires_in), token_type
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token.get_secret_value(),
            "refresh_token": self.refresh_token.get_secret_value(),
            "expires_at": self.expires_at.isoformat(),
            "token_type": self.token_type,
            "refresh_started_at": self.refresh_started_at.isoformat() if self.refresh_started_at else None,
            "answer_awaited_until": (
                self.answer_awaited_until.isoformat() if self.answer_awaited_until else None
            ),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenPair:
        started = data.get("refresh_started_at")
        awaited = data.get("answer_awaited_until")
        return cls(
            SecretStr(str(data["access_token"])),
            SecretStr(str(data["refresh_token"])),
            datetime.fromisoformat(str(data["expires_at"])),
            str(data.get("token_type") or "bearer"),
            datetime.fromisoformat(str(started)) if started else None,
            datetime.fromisoformat(str(awaited)) if awaited else None,
        )


def grant_key(client_id: str, grant: str = "default") -> str:
    """The store's key for one application's grant (the set of accounts one login authorised)."""
    return f"{client_id}/{grant}"


class TokenStore(Protocol):
    """Where token pairs live between runs; `save` returns only once the pair survives a crash.

    `acquire_refresh` serialises refreshes of one grant across every process using the store (a refresh
    token works once: two daemons refreshing the same pair at once would leave one of them with a dead
    pair); it returns the function that releases it, or raises TokenFileError after `wait` seconds."""

    def load(self, key: str) -> TokenPair | None: ...

    def save(self, key: str, pair: TokenPair) -> None: ...

    def acquire_refresh(self, key: str, wait: float) -> Callable[[], None]: ...


def fernet_from(environ: Mapping[str, str], variable: str) -> Fernet:
    key = environ.get(variable, "").strip()
    if not key:
        raise TokenKeyError(
            f"{variable} is not set: the Open API tokens are encrypted with a Fernet key from it. "
            f"Make one with: {MAKE_KEY_COMMAND} and keep it outside the token file's directory"
        )
    try:
        return Fernet(key.encode())
    except (ValueError, TypeError):
        raise TokenKeyError(
            f"{variable} is not a Fernet key (32 url-safe base64-encoded bytes). Make one with: "
            f"{MAKE_KEY_COMMAND}"
        ) from None


class FileTokenStore:
    """Every grant's pair in one Fernet-encrypted JSON file, replaced atomically on each save (0600)."""

    def __init__(
        self, path: Path, environ: Mapping[str, str] | None = None, key_variable: str = TOKEN_KEY_ENV
    ) -> None:
        self.path = path
        self.key_variable = key_variable
        self._fernet = fernet_from(os.environ if environ is None else environ, key_variable)

    def load(self, key: str) -> TokenPair | None:
        entry = self._read().get(key)
        return None if entry is None else TokenPair.from_json(entry)

    def save(self, key: str, pair: TokenPair) -> None:
        content = self._read()
        content[key] = pair.to_json()
        self._write(self._fernet.encrypt(json.dumps(content, sort_keys=True).encode()))

    def keys(self) -> list[str]:
        return sorted(self._read())

    def acquire_refresh(self, key: str, wait: float) -> Callable[[], None]:
        """An exclusive lock on `<file>.lock` (every grant of the file: refreshes are rare)."""
        lock_path = private_dir(self.path.parent) / f"{self.path.name}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise TokenFileError(
                        f"another process has been refreshing the tokens of {self.path} for {wait:g} s"
                    ) from None
                time.sleep(LOCK_POLL_SECONDS)

        def release() -> None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

        return release

    def _read(self) -> dict[str, Any]:
        try:
            sealed = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise TokenFileError(f"cannot read the token file {self.path}: {exc.strerror}") from None
        try:
            plain = self._fernet.decrypt(sealed)
        except InvalidToken:
            raise TokenKeyError(
                f"{self.key_variable} does not decrypt {self.path}: it is not the key the file was written "
                "with, or the file was altered. Set the key it was written with, or move the file away and "
                "run `fixadapter openapi login` again"
            ) from None
        data = json.loads(plain)
        if not isinstance(data, dict):
            raise TokenFileError(f"{self.path} does not hold a token mapping")
        return data

    def _write(self, sealed: bytes) -> None:
        """Temp file (0600) in the same directory, fsync, rename over, fsync the directory."""
        directory = private_dir(self.path.parent)
        temporary = directory / f".{self.path.name}.{os.getpid()}.tmp"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            try:
                narrow(fd)
                os.write(fd, sealed)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, self.path)
            directory_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(directory_fd)
            finally:
                os.close(directory_fd)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise TokenFileError(f"cannot write the token file {self.path}: {exc.strerror}") from None


async def rotate(
    store: TokenStore,
    key: str,
    obtain: Callable[[SecretStr], Awaitable[TokenPair]],
    seen: TokenPair | None = None,
    lock_wait: float = REFRESH_LOCK_SECONDS,
) -> TokenPair:
    """Refresh the stored pair with `obtain` (HTTP or in-band) and store the new pair before returning it.

    Under the store's refresh lock: when the stored pair is no longer `seen` (the one the caller holds),
    another process refreshed meanwhile and its pair is returned as it is, never refreshed a second time.
    The old pair is first marked `refresh_started_at`: if the process dies after the server rotated but
    before the new pair was stored, the next load says so (the old refresh token is then spent, and only
    a new login helps), instead of failing later with a bare "invalid token".

    The store's calls (file I/O with fsync, Redis round trips) run in a thread: a slow store must not
    freeze the event loop, which carries every session of the adapter.
    """
    release = await _acquire(store, key, lock_wait)
    try:
        return await _rotate_locked(store, key, obtain, seen)
    finally:
        await asyncio.to_thread(release)


async def store_late_answer(
    store: TokenStore, key: str, spent: SecretStr, fresh: TokenPair, lock_wait: float = REFRESH_LOCK_SECONDS
) -> TokenPair:
    """Store `fresh`, the answer to a refresh of `spent` that came after its request timed out, and return
    the pair now stored.

    The server rotated the pair when it answered, so `spent` is dead and `fresh` holds the only live refresh
    token: it is stored, under the refresh lock as `rotate` does, unless the stored pair is no longer the
    spent one (a new login meanwhile: that newer pair is kept and returned)."""
    release = await _acquire(store, key, lock_wait)
    try:
        current = await asyncio.to_thread(store.load, key)
        if current is not None and current.refresh_token != spent:
            log.warning("a late refresh answer for %s came after a newer pair was stored: keeping that", key)
            return current
        await asyncio.to_thread(store.save, key, fresh)
        log.info("stored the late refresh answer for %s (access token expires %s)", key, fresh.expires_at)
        return fresh
    finally:
        await asyncio.to_thread(release)


async def _acquire(store: TokenStore, key: str, wait: float) -> Callable[[], None]:
    """The store's refresh lock, taken in a thread; a caller cancelled meanwhile still has it released
    once taken (else the lock, held by a thread nobody waits for, would block every later refresh)."""
    taking = asyncio.ensure_future(asyncio.to_thread(store.acquire_refresh, key, wait))
    try:
        return await asyncio.shield(taking)
    except asyncio.CancelledError:
        taking.add_done_callback(_release_when_taken)
        raise


def _release_when_taken(taking: asyncio.Future[Callable[[], None]]) -> None:
    if not taking.cancelled() and taking.exception() is None:
        asyncio.get_running_loop().run_in_executor(None, taking.result())


async def _rotate_locked(
    store: TokenStore, key: str, obtain: Callable[[SecretStr], Awaitable[TokenPair]], seen: TokenPair | None
) -> TokenPair:
    current = await asyncio.to_thread(store.load, key)
    if current is None:
        raise TokenFileError(f"no Open API token stored for {key}: run `fixadapter openapi login` first")
    if (
        seen is not None
        and current.refresh_token != seen.refresh_token
        and current.refresh_started_at is None
    ):
        log.info("the token pair of %s was refreshed by another process: using its pair", key)
        return current
    awaited = current.answer_awaited_until
    if awaited is not None and datetime.now(UTC) < awaited:
        raise RefreshPending(
            f"a refresh of {key} went out and was not answered; its answer may still come until "
            f"{awaited:%H:%M:%S} UTC: its refresh token is not spent again before then"
        )
    if current.refresh_started_at is not None:
        started = current.refresh_started_at
        log.warning(
            "a refresh of %s started %s never stored its answer; if the server rotated the pair then, this "
            "refresh is refused and only `fixadapter openapi login` helps",
            key,
            started,
        )
    await asyncio.to_thread(store.save, key, replace(current, refresh_started_at=datetime.now(UTC)))
    try:
        fresh = await obtain(current.refresh_token)
    except Exception as error:
        if _may_have_rotated(error):  # sent, unanswered: its answer may still come (link.py takes it)
            until = datetime.now(UTC) + timedelta(seconds=PENDING_REFRESH_SECONDS)
            pending = replace(current, refresh_started_at=datetime.now(UTC), answer_awaited_until=until)
            await asyncio.to_thread(store.save, key, pending)
        else:  # answered without a pair, or never sent: nothing is pending
            await asyncio.to_thread(store.save, key, replace(current, refresh_started_at=None))
        raise
    await asyncio.to_thread(store.save, key, fresh)
    log.info("stored the rotated token pair for %s (access token expires %s)", key, fresh.expires_at)
    return fresh


def _may_have_rotated(error: BaseException) -> bool:
    """Whether a refresh that failed may still have rotated the pair at the server: it was sent and its
    answer never came (a timeout, the connection lost after the send). A refusal, or a request never
    sent, rotated nothing."""
    return isinstance(error, RequestTimeout | ConnectionLost) and error.sent

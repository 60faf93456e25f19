"""The encrypted token file (issue 15, item 4): what it keeps, how it is protected, and what a missing or
wrong key says.

It specifies: a saved pair loads back equal from a new store on the same file; the file holds no token
byte in clear and is 0600; grants of one file are kept apart; a write cut before the rename leaves the
previous content whole (and no temp file); a missing, malformed or wrong key is an error naming
FIXADAPTER_OPENAPI_TOKEN_KEY and how to make a key, showing neither the key nor a token. A rotation runs
every store call off the event loop, in order (lock, mark, refresh, store, unlock), and a rotation cancelled
while waiting for the lock still frees it once taken; a late refresh answer replaces the pair it spent,
never a newer login's.
"""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from fixadapter.connectors.openapi import tokens
from fixadapter.connectors.openapi.errors import ConnectionLost, ErrorResponse, RequestTimeout
from fixadapter.connectors.openapi.tokens import (
    TOKEN_KEY_ENV,
    FileTokenStore,
    RefreshPending,
    TokenFileError,
    TokenKeyError,
    TokenPair,
    grant_key,
    rotate,
    store_late_answer,
)

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
KEY = grant_key("client-7", "default")


def make_pair(access: str = "access-token-AAAA", refresh: str = "refresh-token-RRRR") -> TokenPair:
    return TokenPair(SecretStr(access), SecretStr(refresh), T0 + timedelta(days=30))


def new_key() -> str:
    return Fernet.generate_key().decode()


def test_saved_pair_loads_back_equal_from_a_new_store(tmp_path: Path) -> None:
    environ = {TOKEN_KEY_ENV: new_key()}
    path = tmp_path / "tokens.fernet"
    FileTokenStore(path, environ).save(KEY, make_pair())

    loaded = FileTokenStore(path, environ).load(KEY)

    assert loaded == make_pair()
    assert FileTokenStore(path, environ).load(grant_key("client-7", "other")) is None


def test_file_is_encrypted_and_readable_by_its_owner_only(tmp_path: Path) -> None:
    environ = {TOKEN_KEY_ENV: new_key()}
    path = tmp_path / "state" / "tokens.fernet"
    FileTokenStore(path, environ).save(KEY, make_pair())

    content = path.read_bytes()
    assert b"access-token-AAAA" not in content
    assert b"refresh-token-RRRR" not in content
    assert b"client-7" not in content  # even the grant names are sealed
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert os.listdir(path.parent) == ["tokens.fernet"]  # no temp file left behind


def test_grants_of_one_file_are_kept_apart(tmp_path: Path) -> None:
    environ = {TOKEN_KEY_ENV: new_key()}
    store = FileTokenStore(tmp_path / "tokens.fernet", environ)
    store.save(KEY, make_pair())
    store.save(grant_key("client-7", "hedge"), make_pair("access-2", "refresh-2"))

    assert store.load(KEY) == make_pair()
    assert store.load(grant_key("client-7", "hedge")) == make_pair("access-2", "refresh-2")
    assert store.keys() == [KEY, "client-7/hedge"]


def test_write_cut_before_the_rename_leaves_the_previous_pair_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environ = {TOKEN_KEY_ENV: new_key()}
    path = tmp_path / "tokens.fernet"
    FileTokenStore(path, environ).save(KEY, make_pair())

    def crash(source: object, target: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(tokens.os, "replace", crash)
    with pytest.raises(TokenFileError, match="cannot write the token file"):
        FileTokenStore(path, environ).save(KEY, make_pair("access-new", "refresh-new"))
    monkeypatch.undo()

    assert FileTokenStore(path, environ).load(KEY) == make_pair()
    assert os.listdir(tmp_path) == ["tokens.fernet"]


def test_missing_key_names_the_variable_and_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(TokenKeyError) as caught:
        FileTokenStore(tmp_path / "tokens.fernet", {})

    assert TOKEN_KEY_ENV in str(caught.value)
    assert "Fernet.generate_key()" in str(caught.value)


def test_malformed_key_names_the_variable_without_showing_the_key(tmp_path: Path) -> None:
    bad = "not-a-fernet-key-but-a-secret-all-the-same"
    with pytest.raises(TokenKeyError) as caught:
        FileTokenStore(tmp_path / "tokens.fernet", {TOKEN_KEY_ENV: bad})

    assert TOKEN_KEY_ENV in str(caught.value)
    assert bad not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_wrong_key_names_the_variable_and_the_file_and_shows_no_key(tmp_path: Path) -> None:
    path = tmp_path / "tokens.fernet"
    FileTokenStore(path, {TOKEN_KEY_ENV: new_key()}).save(KEY, make_pair())
    other = new_key()

    with pytest.raises(TokenKeyError) as caught:
        FileTokenStore(path, {TOKEN_KEY_ENV: other}).load(KEY)

    text = str(caught.value)
    assert TOKEN_KEY_ENV in text
    assert str(path) in text
    assert "fixadapter openapi login" in text
    assert other not in text
    assert "access-token-AAAA" not in text


def test_pair_repr_shows_no_token() -> None:
    text = repr(make_pair()) + str(make_pair())

    assert "access-token-AAAA" not in text
    assert "refresh-token-RRRR" not in text


class ThreadRecordingStore:
    """A store in memory that records each call with whether it ran on the event loop's thread; its lock
    is taken only once `unlock` is set."""

    def __init__(self, pair: TokenPair) -> None:
        self.pairs = {KEY: pair}
        self.calls: list[tuple[str, bool]] = []
        self.loop_thread = threading.get_ident()
        self.unlock = threading.Event()
        self.unlock.set()

    def _record(self, call: str) -> None:
        self.calls.append((call, threading.get_ident() == self.loop_thread))

    def load(self, key: str) -> TokenPair | None:
        self._record("load")
        return self.pairs.get(key)

    def save(self, key: str, pair: TokenPair) -> None:
        self._record("save marked" if pair.refresh_started_at else "save")
        self.pairs[key] = pair

    def acquire_refresh(self, key: str, wait: float) -> Callable[[], None]:
        assert self.unlock.wait(wait)
        self._record("lock")
        return lambda: self._record("unlock")


def test_rotate_runs_every_store_call_off_the_event_loop_and_in_order() -> None:
    store = ThreadRecordingStore(make_pair())

    async def obtain(refresh_token: SecretStr) -> TokenPair:
        store.calls.append(("obtain", True))
        return make_pair("access-new", "refresh-new")

    assert asyncio.run(rotate(store, KEY, obtain)) == make_pair("access-new", "refresh-new")
    assert store.calls == [
        ("lock", False),
        ("load", False),
        ("save marked", False),
        ("obtain", True),
        ("save", False),
        ("unlock", False),
    ]


def test_a_rotate_cancelled_while_waiting_for_the_lock_frees_it_once_taken() -> None:
    store = ThreadRecordingStore(make_pair())
    store.unlock.clear()

    async def obtain(refresh_token: SecretStr) -> TokenPair:
        raise AssertionError("a cancelled rotation refreshed")

    async def scenario() -> None:
        waiting = asyncio.create_task(rotate(store, KEY, obtain, lock_wait=5.0))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        store.unlock.set()
        for _ in range(500):
            if ("unlock", False) in store.calls:
                return
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert store.calls == [("lock", False), ("unlock", False)]


def test_a_late_refresh_answer_replaces_the_pair_it_spent_but_not_a_newer_login() -> None:
    spent = make_pair("access-old", "refresh-old")
    late = make_pair("access-late", "refresh-late")
    store = ThreadRecordingStore(replace(spent, refresh_started_at=T0))

    assert asyncio.run(store_late_answer(store, KEY, spent.refresh_token, late)) == late
    assert store.pairs[KEY] == late

    login = make_pair("access-login", "refresh-login")
    store.pairs[KEY] = login
    assert asyncio.run(store_late_answer(store, KEY, spent.refresh_token, late)) == login
    assert store.pairs[KEY] == login
    assert all(not on_loop for _, on_loop in store.calls)


@pytest.mark.parametrize(
    ("failure", "pending"),
    [
        (RequestTimeout("ProtoOARefreshTokenReq", "r1", 90.0, sent=True, queued_ahead=0), True),
        (ConnectionLost("ProtoOARefreshTokenReq", "r1", "reset", sent=True), True),
        (
            ErrorResponse(
                "ProtoOARefreshTokenReq", "r1", "REQUEST_FREQUENCY_EXCEEDED", answer_payload_type=0
            ),
            False,
        ),
        (ConnectionLost("ProtoOARefreshTokenReq", "r1", "reset", sent=False), False),
    ],
    ids=["timed out", "cut after sending", "refused", "never sent"],
)
def test_a_refresh_whose_answer_may_still_come_holds_its_refresh_token_back_from_everyone(
    failure: Exception, pending: bool
) -> None:
    """Sent and unanswered, the server may have rotated the pair: nobody (another link, another daemon)
    spends that refresh token again while the answer may come. Refused or never sent, nothing is held."""
    store = ThreadRecordingStore(make_pair())

    async def fails(refresh_token: SecretStr) -> TokenPair:
        raise failure

    async def succeeds(refresh_token: SecretStr) -> TokenPair:
        return make_pair("access-new", "refresh-new")

    with pytest.raises(type(failure)):
        asyncio.run(rotate(store, KEY, fails))
    stored = store.pairs[KEY]
    assert (stored.answer_awaited_until is not None) is pending
    if pending:
        with pytest.raises(RefreshPending, match="not spent again before"):
            asyncio.run(rotate(store, KEY, succeeds))
    else:
        assert stored.refresh_started_at is None
        assert asyncio.run(rotate(store, KEY, succeeds)).refresh_token.get_secret_value() == "refresh-new"

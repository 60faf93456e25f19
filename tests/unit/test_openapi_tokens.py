"""The encrypted token file (issue 15, item 4): what it keeps, how it is protected, and what a missing or
wrong key says.

It specifies: a saved pair loads back equal from a new store on the same file; the file holds no token
byte in clear and is 0600; grants of one file are kept apart; a write cut before the rename leaves the
previous content whole (and no temp file); a missing, malformed or wrong key is an error naming
FIXADAPTER_OPENAPI_TOKEN_KEY and how to make a key, showing neither the key nor a token.
"""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from fixadapter.connectors.openapi import tokens
from fixadapter.connectors.openapi.tokens import (
    TOKEN_KEY_ENV,
    FileTokenStore,
    TokenFileError,
    TokenKeyError,
    TokenPair,
    grant_key,
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

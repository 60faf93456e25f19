"""The simulator's token registry, shared by its OAuth endpoint and its Open API front (reference 2.1)."""

from __future__ import annotations

import pytest

from fixadapter.sim.openapi.tokens import AccessState, CodeRefused, TokenRegistry

CLIENT, SECRET = "app", "app-secret"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(clock: Clock) -> TokenRegistry:
    return TokenRegistry({CLIENT: SECRET}, code_lifetime=60, access_lifetime=100, clock=clock)


def test_a_granted_access_token_is_valid_until_its_lifetime_ends(registry: TokenRegistry, clock: Clock):
    pair = registry.grant(CLIENT, "accounts")
    assert registry.state(pair.access_token) is AccessState.VALID
    assert registry.grant_of(pair.access_token).scope == "accounts"  # type: ignore[union-attr]
    clock.now += 100
    assert registry.state(pair.access_token) is AccessState.EXPIRED
    assert registry.state("never-issued") is AccessState.UNKNOWN


def test_a_refresh_gives_a_new_pair_kills_the_old_one_and_tells_the_listeners(registry: TokenRegistry):
    told: list[tuple[str, str]] = []
    registry.revoked.append(lambda token, reason: told.append((token, reason)))
    old = registry.grant(CLIENT)
    new = registry.refresh(old.refresh_token, CLIENT)
    assert registry.state(old.access_token) is AccessState.UNKNOWN
    assert registry.state(new.access_token) is AccessState.VALID
    assert told == [(old.access_token, "token was refreshed")]
    with pytest.raises(CodeRefused):
        registry.refresh(old.refresh_token)


def test_a_refresh_token_of_another_app_is_refused(registry: TokenRegistry):
    registry.clients["other"] = "x"
    pair = registry.grant(CLIENT)
    with pytest.raises(CodeRefused):
        registry.refresh(pair.refresh_token, "other")


def test_a_code_works_once_in_its_minute_with_its_redirect_uri(registry: TokenRegistry, clock: Clock):
    code = registry.issue_code(CLIENT, "http://127.0.0.1:1/cb")
    with pytest.raises(CodeRefused, match="redirect_uri"):
        registry.redeem_code(code, CLIENT, "http://127.0.0.1:2/cb")
    with pytest.raises(CodeRefused, match="already used"):
        registry.redeem_code(code, CLIENT, "http://127.0.0.1:1/cb")
    late = registry.issue_code(CLIENT, "http://127.0.0.1:1/cb")
    clock.now += 60
    with pytest.raises(CodeRefused, match="expired"):
        registry.redeem_code(late, CLIENT, "http://127.0.0.1:1/cb")
    fresh = registry.issue_code(CLIENT, "http://127.0.0.1:1/cb")
    assert registry.redeem_code(fresh, CLIENT, "http://127.0.0.1:1/cb").scope == "trading"


def test_expire_and_invalidate_one_token_or_all(registry: TokenRegistry):
    told: list[str] = []
    registry.revoked.append(lambda token, reason: told.append(reason))
    first, second = registry.grant(CLIENT), registry.grant(CLIENT)
    assert registry.expire(first.access_token) == 1
    assert registry.state(first.access_token) is AccessState.EXPIRED
    assert registry.state(second.access_token) is AccessState.VALID
    assert registry.invalidate(reason="revoked by the user") == 2
    assert registry.state(second.access_token) is AccessState.UNKNOWN
    assert told == ["revoked by the user", "revoked by the user"]


def test_the_client_secret_is_checked_and_an_unknown_scope_refused(registry: TokenRegistry):
    assert registry.client_ok(CLIENT, SECRET)
    assert not registry.client_ok(CLIENT, "wrong") and not registry.client_ok("nobody", SECRET)
    with pytest.raises(ValueError, match="scope"):
        registry.grant(CLIENT, "everything")

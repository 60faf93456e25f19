"""The Open API link keeps an application's connection up for its accounts: after garbage, a cut or the
server's own disconnect it connects again and redoes app and account auth, saying why it went down;
ALREADY_LOGGED_IN is success; an expired token is refreshed in-band and the rotated pair stored before use;
the backoff grows with failures and is jittered."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from fixadapter.connectors.openapi.account_config import OpenApiAccountConfig
from fixadapter.connectors.openapi.link import OpenApiLink
from fixadapter.connectors.openapi.rate_limit import RateLimiter
from fixadapter.connectors.openapi.tokens import TokenPair, grant_key
from fixadapter.protocols.openapi.generated import OpenApiMessages_pb2 as oa
from fixadapter.protocols.openapi.messages import Decoded

from .test_openapi_transport import DEADLINE, HEARTBEAT, Server, certificates, eventually, frame_of

__all__ = ["certificates"]  # the module fixture, shared

CTID = 20_000_001
KEY = grant_key("app")


class MemoryTokens:
    """A token store in memory, with the refresh lock of the protocol."""

    def __init__(self, pair: TokenPair) -> None:
        self.pairs = {KEY: pair}
        self.saved: list[TokenPair] = []

    def load(self, key: str) -> TokenPair | None:
        return self.pairs.get(key)

    def save(self, key: str, pair: TokenPair) -> None:
        self.pairs[key] = pair
        self.saved.append(pair)

    def acquire_refresh(self, key: str, wait: float) -> Callable[[], None]:
        return lambda: None


def pair(tag: str, days: float = 30) -> TokenPair:
    return TokenPair(
        SecretStr(f"access-{tag}"), SecretStr(f"refresh-{tag}"), datetime.now(UTC) + timedelta(days=days)
    )


class Venue:
    """Answers app auth, account auth (refusing tokens in `expired`), refresh and trader requests."""

    def __init__(self) -> None:
        self.expired: set[str] = set()
        self.account_auth_code: str | None = None
        self.tokens_seen: list[str] = []

    def answer(self, request: Decoded) -> list[bytes]:
        message, msg_id = request.message, request.client_msg_id
        if request.payload_type == HEARTBEAT:
            return []
        if isinstance(message, oa.ProtoOAApplicationAuthReq):
            return [frame_of(oa.ProtoOAApplicationAuthRes(), msg_id)]
        if isinstance(message, oa.ProtoOAAccountAuthReq):
            self.tokens_seen.append(message.accessToken)
            if message.accessToken in self.expired:
                return [frame_of(oa.ProtoOAErrorRes(errorCode="CH_ACCESS_TOKEN_INVALID"), msg_id)]
            if self.account_auth_code is not None:
                return [frame_of(oa.ProtoOAErrorRes(errorCode=self.account_auth_code), msg_id)]
            return [frame_of(oa.ProtoOAAccountAuthRes(ctidTraderAccountId=CTID), msg_id)]
        if isinstance(message, oa.ProtoOARefreshTokenReq):
            fresh = oa.ProtoOARefreshTokenRes(
                accessToken="access-new", tokenType="bearer", expiresIn=2_628_000, refreshToken="refresh-new"
            )
            return [frame_of(fresh, msg_id)]
        return []


def settings(port: int, ca_file: Path, **extra: object) -> OpenApiAccountConfig:
    return OpenApiAccountConfig(
        ctid_trader_account_id=CTID,
        host="127.0.0.1",
        port=port,
        ca_file=ca_file,
        client_id="app",
        client_secret="app-secret",  # noqa: S106 - a test value
        **{"reconnect_min_seconds": 0.05, "reconnect_max_seconds": 0.2, **extra},  # type: ignore[arg-type]
    )


class States:
    def __init__(self) -> None:
        self.seen: list[tuple[bool, str | None]] = []

    def __call__(self, up: bool, why: str | None) -> None:
        self.seen.append((up, why))

    def ups(self) -> int:
        return sum(1 for up, _ in self.seen if up)


def run(
    certs: tuple[Path, Path, Path],
    tokens: MemoryTokens,
    venue: Venue,
    scenario: Callable[[Server, OpenApiLink, States], object],
) -> None:
    async def main() -> None:
        async with Server(certs, venue.answer) as server:
            link = OpenApiLink(settings(server.port, certs[0]), tokens)
            states = States()
            link.seat(CTID, lambda _frame: None, states)
            link.start()
            try:
                await scenario(server, link, states)  # type: ignore[misc]
            finally:
                await link.stop()

    asyncio.run(main())


def app_auths(server: Server) -> int:
    return sum(1 for d in server.received if isinstance(d.message, oa.ProtoOAApplicationAuthReq))


def test_garbage_from_the_server_reconnects_and_reauthorises_saying_why_it_went_down(
    certificates: tuple[Path, Path, Path],
) -> None:
    async def scenario(server: Server, link: OpenApiLink, states: States) -> None:
        await eventually(lambda: states.ups() == 1, "the account authorised")
        await server.send(b"GET / HTTP/1.1\r\n\r\n")
        await eventually(lambda: states.ups() == 2, "the account authorised again on a new connection")
        assert app_auths(server) == 2 and len(server.connections) == 2
        down = [why for up, why in states.seen if not up]
        assert len(down) == 1 and down[0] is not None and "garbage or not an Open API stream" in down[0]

    run(certificates, MemoryTokens(pair("a")), Venue(), scenario)


def test_a_reconnect_spends_the_same_request_budget_rather_than_a_fresh_one(
    certificates: tuple[Path, Path, Path],
) -> None:
    """Reference 1.7, read strictly (per application): the server may still count the last second's
    requests of the connection that just ended. (The budget's clock stands still here, so no request
    leaves the window while the test runs.)"""

    async def main() -> tuple[int, int]:
        async with Server(certificates, Venue().answer) as server:
            budget = RateLimiter(clock=lambda: 0.0)
            link = OpenApiLink(
                settings(server.port, certificates[0]), MemoryTokens(pair("a")), limiter=budget
            )
            states = States()
            link.seat(CTID, lambda _frame: None, states)
            link.start()
            try:
                await eventually(lambda: states.ups() == 1, "the account authorised")
                first = budget.budget().overall_used
                await server.send(b"GET / HTTP/1.1\r\n\r\n")
                await eventually(
                    lambda: states.ups() == 2, "the account authorised again on a new connection"
                )
                return first, budget.budget().overall_used
            finally:
                await link.stop()

    first, after = asyncio.run(main())
    assert first >= 2  # application and account auth
    assert after >= first + 2  # the new connection's auths, booked on the same budget


def test_the_server_disconnecting_the_account_gets_it_authorised_again_on_the_same_connection(
    certificates: tuple[Path, Path, Path],
) -> None:
    async def scenario(server: Server, link: OpenApiLink, states: States) -> None:
        await eventually(lambda: states.ups() == 1, "the account authorised")
        await server.send(frame_of(oa.ProtoOAAccountDisconnectEvent(ctidTraderAccountId=CTID)))
        await eventually(lambda: states.ups() == 2, "the account authorised again")
        assert len(server.connections) == 1
        assert states.seen[1] == (False, "the server disconnected the account")

    run(certificates, MemoryTokens(pair("a")), Venue(), scenario)


def test_the_server_disconnecting_the_application_reconnects(certificates: tuple[Path, Path, Path]) -> None:
    async def scenario(server: Server, link: OpenApiLink, states: States) -> None:
        await eventually(lambda: states.ups() == 1, "the account authorised")
        await server.send(frame_of(oa.ProtoOAClientDisconnectEvent(reason="maintenance")))
        await eventually(lambda: states.ups() == 2, "authorised again after reconnecting")
        assert len(server.connections) == 2
        assert any(why and "maintenance" in why for up, why in states.seen if not up)

    run(certificates, MemoryTokens(pair("a")), Venue(), scenario)


def test_already_logged_in_is_taken_as_authorised(certificates: tuple[Path, Path, Path]) -> None:
    venue = Venue()
    venue.account_auth_code = "ALREADY_LOGGED_IN"

    async def scenario(server: Server, link: OpenApiLink, states: States) -> None:
        await eventually(lambda: states.ups() == 1, "the account counted as authorised")
        assert link.is_up(CTID)

    run(certificates, MemoryTokens(pair("a")), venue, scenario)


def test_an_expired_token_is_refreshed_in_band_and_the_new_pair_stored_before_it_is_used(
    certificates: tuple[Path, Path, Path],
) -> None:
    venue = Venue()
    venue.expired.add("access-old")
    tokens = MemoryTokens(pair("old"))

    async def scenario(server: Server, link: OpenApiLink, states: States) -> None:
        await eventually(lambda: states.ups() == 1, "the account authorised with the refreshed token")
        assert venue.tokens_seen == ["access-old", "access-new"]
        stored = tokens.pairs[KEY]
        assert stored.refresh_token.get_secret_value() == "refresh-new"
        assert stored.refresh_started_at is None
        refreshes = [d for d in server.received if isinstance(d.message, oa.ProtoOARefreshTokenReq)]
        assert len(refreshes) == 1 and refreshes[0].message.refreshToken == "refresh-old"  # type: ignore[union-attr]

    run(certificates, tokens, venue, scenario)


def test_a_token_close_to_expiry_is_refreshed_before_the_account_is_authorised(
    certificates: tuple[Path, Path, Path],
) -> None:
    venue = Venue()
    tokens = MemoryTokens(pair("old", days=0.1))  # 2.4 h left, under the default day of margin

    async def scenario(server: Server, link: OpenApiLink, states: States) -> None:
        await eventually(lambda: states.ups() == 1, "the account authorised")
        assert venue.tokens_seen == ["access-new"]

    run(certificates, tokens, venue, scenario)


def test_the_backoff_doubles_from_the_minimum_to_the_maximum_with_jitter() -> None:
    link = OpenApiLink(
        settings(5035, Path(__file__), reconnect_min_seconds=1.0, reconnect_max_seconds=8.0),
        MemoryTokens(pair("a")),
        rng=random.Random(7),
    )
    waits = [[link._backoff(failures) for _ in range(50)] for failures in range(1, 7)]
    assert all(w == 1.0 for w in waits[0])  # the first retry: the minimum
    for failures, seen in enumerate(waits[1:], start=2):
        ceiling = min(8.0, 2 ** (failures - 1))
        assert all(1.0 <= w <= ceiling for w in seen)
        assert len(set(seen)) > 1  # jittered, not in lockstep
    assert max(max(seen) for seen in waits) <= 8.0


def test_nothing_is_asked_before_the_connection_is_up(certificates: tuple[Path, Path, Path]) -> None:
    async def scenario() -> None:
        link = OpenApiLink(settings(1, certificates[0]), MemoryTokens(pair("a")))
        try:
            await asyncio.wait_for(link.request(oa.ProtoOAVersionReq()), DEADLINE)
        except Exception as error:
            assert "not connected" in str(error)
        else:
            raise AssertionError("a request went out with no connection")

    asyncio.run(scenario())


def test_the_accounts_of_one_application_share_one_request_budget_across_its_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Demo and live are two servers, so two links; read strictly, the limit is the application's."""
    from cryptography.fernet import Fernet

    from fixadapter.config import build_config
    from fixadapter.wiring import build_desk

    monkeypatch.setenv("FIXADAPTER_OPENAPI_TOKEN_KEY", Fernet.generate_key().decode())

    def account(name: str, ctid: int, environment: str, client_id: str) -> dict[str, object]:
        section = {"ctid_trader_account_id": ctid, "environment": environment, "client_id": client_id}
        return {"name": name, "openapi": section}

    accounts = [
        account("demo", 1, "demo", "app"),
        account("live", 2, "live", "app"),
        account("other", 3, "demo", "app2"),
    ]
    config = build_config(
        {"accounts": accounts, "store": {"url": f"sqlite:///{tmp_path / 'a.db'}"}},
        environ={"FIXADAPTER_OPENAPI__CLIENT_SECRET": "s3cret"},
    )
    links = {name: parts.connector._link for name, parts in build_desk(config).accounts.items()}  # type: ignore[attr-defined]
    assert links["demo"] is not links["live"]
    assert links["demo"].limiter is links["live"].limiter
    assert links["other"].limiter is not links["demo"].limiter

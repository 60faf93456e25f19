"""A grant's token pair on Open API links, against a server that rotates pairs as cTrader does (a refresh
kills the old refresh and access tokens and invalidates every session authorised with the old access
token, "token was refreshed").

What it specifies: links sharing a grant (two daemons on one token store, one daemon's demo and live links)
take the pair another link stored instead of refreshing it again, so one refresh costs each other link one
re-authorisation and no refresh; the answer to a refresh that came after its request timed out is stored
and used, and no second refresh spends the dead refresh token meanwhile; a refresh refused for now is
retried after the server's retryAfter without a "login again" alarm, while one refused for good raises it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fixadapter.connectors.openapi.errors import OpenApiError
from fixadapter.connectors.openapi.link import OpenApiLink, TokenAlarm
from fixadapter.connectors.openapi.tokens import TokenFileError, TokenPair
from fixadapter.protocols.openapi.generated import OpenApiMessages_pb2 as oa
from fixadapter.protocols.openapi.messages import Decoded

from .test_openapi_link import CTID, KEY, States, pair, settings
from .test_openapi_transport import HEARTBEAT, Server, certificates, eventually, frame_of

__all__ = ["certificates"]  # the module fixture, shared

Certificates = tuple[Path, Path, Path]


class SharedTokens:
    """One token store shared by every link of a test, with a real refresh lock (as two processes have)."""

    def __init__(self, first: TokenPair) -> None:
        self.pairs = {KEY: first}
        self._lock = threading.Lock()

    def load(self, key: str) -> TokenPair | None:
        return self.pairs.get(key)

    def save(self, key: str, pair: TokenPair) -> None:
        self.pairs[key] = pair

    def acquire_refresh(self, key: str, wait: float) -> Callable[[], None]:
        if not self._lock.acquire(timeout=wait):
            raise TokenFileError(f"the refresh lock of {key} is held")
        return self._lock.release

    def refresh_token(self) -> str:
        return self.pairs[KEY].refresh_token.get_secret_value()


@dataclass
class Registry:
    """The server's tokens of one grant: access-N goes with refresh-N; refresh-0 is live at first."""

    server: Server | None = None
    generation: int = 0
    refreshes: list[tuple[float, str]] = field(default_factory=list)  # (loop time, refresh token sent)
    refusals: list[tuple[str, int | None]] = field(
        default_factory=list
    )  # the next refreshes' (code, retryAfter)
    hold_answers: bool = False  # keep refresh answers in `held` (sent late by the test)
    held: list[bytes] = field(default_factory=list)
    access_seen: list[str] = field(default_factory=list)

    def answer(self, request: Decoded) -> list[bytes]:
        message, msg_id = request.message, request.client_msg_id
        if request.payload_type == HEARTBEAT:
            return []
        if isinstance(message, oa.ProtoOAApplicationAuthReq):
            return [frame_of(oa.ProtoOAApplicationAuthRes(), msg_id)]
        if isinstance(message, oa.ProtoOAAccountAuthReq):
            self.access_seen.append(message.accessToken)
            if message.accessToken != f"access-{self.generation}":
                return [frame_of(oa.ProtoOAErrorRes(errorCode="CH_ACCESS_TOKEN_INVALID"), msg_id)]
            return [frame_of(oa.ProtoOAAccountAuthRes(ctidTraderAccountId=CTID), msg_id)]
        if isinstance(message, oa.ProtoOARefreshTokenReq):
            return self._refresh(message.refreshToken, msg_id)
        return []

    def _refresh(self, refresh_token: str, msg_id: str | None) -> list[bytes]:
        self.refreshes.append((asyncio.get_running_loop().time(), refresh_token))
        if self.refusals:
            code, retry_after = self.refusals.pop(0)
            return [frame_of(oa.ProtoOAErrorRes(errorCode=code, retryAfter=retry_after), msg_id)]
        if refresh_token != f"refresh-{self.generation}":
            return [frame_of(oa.ProtoOAErrorRes(errorCode="CH_ACCESS_TOKEN_INVALID"), msg_id)]
        self.generation += 1
        self._invalidate_sessions()
        fresh = oa.ProtoOARefreshTokenRes(
            accessToken=f"access-{self.generation}",
            tokenType="bearer",
            expiresIn=2_628_000,
            refreshToken=f"refresh-{self.generation}",
        )
        if self.hold_answers:
            self.held.append(frame_of(fresh, msg_id))
            return []
        return [frame_of(fresh, msg_id)]

    def _invalidate_sessions(self) -> None:
        assert self.server is not None
        event = frame_of(
            oa.ProtoOAAccountsTokenInvalidatedEvent(ctidTraderAccountIds=[CTID], reason="token was refreshed")
        )
        for writer in self.server.connections:
            if not writer.is_closing():
                writer.write(event)


@dataclass
class Rig:
    server: Server
    links: list[OpenApiLink]
    states: list[States]
    alarms: list[str | None]

    def login_alarms(self) -> list[str]:
        return [text for text in self.alarms if text is not None and "openapi login" in text]


def run(
    certs: Certificates,
    registry: Registry,
    tokens: SharedTokens,
    scenario: Callable[[Rig], Awaitable[None]],
    links: int = 1,
    **extra: object,
) -> None:
    async def main() -> None:
        async with Server(certs, registry.answer) as server:
            registry.server = server
            rig = Rig(server, [], [], [])
            for _ in range(links):
                link = OpenApiLink(
                    settings(server.port, certs[0], **extra),
                    tokens,
                    on_token_alarm=lambda _grant, text: rig.alarms.append(text),
                )
                states = States()
                link.seat(CTID, lambda _frame: None, states)
                rig.links.append(link)
                rig.states.append(states)
                link.start()
            try:
                await scenario(rig)
            finally:
                for link in rig.links:
                    await link.stop()

    asyncio.run(main())


def generation(tag: int, days: float = 30) -> TokenPair:
    return pair(str(tag), days)


def test_one_link_refreshing_costs_another_link_of_the_grant_one_reauthorisation_and_no_refresh(
    certificates: Certificates,
) -> None:
    registry, tokens = Registry(), SharedTokens(generation(0))

    async def scenario(rig: Rig) -> None:
        await eventually(lambda: all(s.ups() == 1 for s in rig.states), "both links authorised")
        first = rig.links[0]
        assert first._transport is not None
        await first._refresh(first._transport, KEY, force=True)
        await eventually(lambda: all(s.ups() >= 2 for s in rig.states), "both authorised again")
        await asyncio.sleep(1.0)  # a refresh storm would rotate the pair again and again meanwhile
        assert [token for _, token in registry.refreshes] == ["refresh-0"]
        assert [s.ups() for s in rig.states] == [2, 2]
        assert tokens.refresh_token() == "refresh-1"
        assert rig.links[1].is_up(CTID) and registry.access_seen[-1] == "access-1"
        assert not [text for text in rig.alarms if text is not None]

    run(certificates, registry, tokens, scenario, links=2)


async def refresh_unanswered(rig: Rig, registry: Registry) -> None:
    """Authorised, then a refresh whose answer the server holds back past the request's timeout."""
    await eventually(lambda: rig.states[0].ups() == 1, "the account authorised")
    link = rig.links[0]
    link.refresh_timeout = 0.5
    registry.hold_answers = True
    assert link._transport is not None
    with pytest.raises((TokenAlarm, OpenApiError)):
        await link._refresh(link._transport, KEY, force=True)
    assert registry.held, "the server rotated the pair and holds its answer"


def test_a_refresh_answer_that_comes_after_the_timeout_is_stored_and_used(certificates: Certificates) -> None:
    registry, tokens = Registry(), SharedTokens(generation(0))

    async def scenario(rig: Rig) -> None:
        await refresh_unanswered(rig, registry)
        await rig.server.send(registry.held.pop())
        await eventually(lambda: tokens.refresh_token() == "refresh-1", "the late pair stored")
        await eventually(lambda: rig.links[0].is_up(CTID), "the account authorised with the late pair")
        assert registry.access_seen[-1] == "access-1"
        assert tokens.pairs[KEY].refresh_started_at is None
        assert not rig.login_alarms()

    run(certificates, registry, tokens, scenario, request_timeout_seconds=0.5)


def test_no_second_refresh_spends_the_dead_token_while_a_late_answer_may_still_come(
    certificates: Certificates,
) -> None:
    registry, tokens = Registry(), SharedTokens(generation(0))

    async def scenario(rig: Rig) -> None:
        await refresh_unanswered(rig, registry)
        # The server invalidated the session; its re-authorisation with the old token is refused.
        await eventually(lambda: registry.access_seen.count("access-0") >= 2, "the old token tried again")
        await asyncio.sleep(0.5)
        assert len(registry.refreshes) == 1
        assert not rig.login_alarms()
        await rig.server.send(registry.held.pop())
        await eventually(lambda: rig.links[0].is_up(CTID), "the account authorised with the late pair")
        assert tokens.refresh_token() == "refresh-1" and len(registry.refreshes) == 1

    run(certificates, registry, tokens, scenario, request_timeout_seconds=0.5)


def test_a_refresh_refused_for_now_is_retried_after_retry_after_without_a_login_alarm(
    certificates: Certificates,
) -> None:
    registry, tokens = Registry(), SharedTokens(generation(0, days=-1))  # expired: refreshed first
    registry.refusals.append(("REQUEST_FREQUENCY_EXCEEDED", 1))

    async def scenario(rig: Rig) -> None:
        await eventually(lambda: rig.states[0].ups() == 1, "the account authorised after the retry")
        assert [token for _, token in registry.refreshes] == ["refresh-0", "refresh-0"]
        assert registry.refreshes[1][0] - registry.refreshes[0][0] >= 0.95  # retryAfter, not the backoff
        down = [why for up, why in rig.states[0].seen if not up]
        assert down and "REQUEST_FREQUENCY_EXCEEDED" in str(down[0])
        assert not rig.login_alarms()

    run(certificates, registry, tokens, scenario)


def test_a_refresh_refused_for_good_raises_the_login_alarm(certificates: Certificates) -> None:
    registry, tokens = Registry(), SharedTokens(generation(0, days=-1))
    registry.generation = 5  # refresh-0 was spent long ago

    async def scenario(rig: Rig) -> None:
        await eventually(lambda: bool(rig.login_alarms()), "the alarm says to log in again")
        assert "CH_ACCESS_TOKEN_INVALID" in rig.login_alarms()[0]
        assert not rig.links[0].is_up(CTID)

    run(certificates, registry, tokens, scenario)


def test_another_link_of_the_grant_does_not_spend_the_refresh_token_a_late_answer_may_still_rotate(
    certificates: Certificates,
) -> None:
    """Link 0's refresh timed out (the server rotated the pair; its answer is late). Link 1 shares the
    grant: invalidated, it finds the stored pair marked as being refreshed and waits, rather than spend
    refresh-0 again and raise a login alarm while link 0's answer may still bring the live pair."""
    registry, tokens = Registry(), SharedTokens(generation(0))

    async def scenario(rig: Rig) -> None:
        await eventually(lambda: all(s.ups() == 1 for s in rig.states), "both links authorised")
        await refresh_unanswered(rig, registry)
        waits = "was not answered"
        await eventually(
            lambda: len(registry.refreshes) > 1 or any(waits in (why or "") for _, why in rig.states[1].seen),
            "link 1, invalidated, refreshed again or waited for the pending answer",
        )
        spent = [token for _, token in registry.refreshes]
        assert spent == ["refresh-0"], f"refresh tokens sent: {spent}"
        assert not rig.login_alarms()

    run(certificates, registry, tokens, scenario, links=2, request_timeout_seconds=0.5)


class FlakyTokens(SharedTokens):
    """A shared store (Redis, say) whose reads fail `failures` times: a blip."""

    def __init__(self, first: TokenPair, failures: int) -> None:
        super().__init__(first)
        self.failures = failures

    def load(self, key: str) -> TokenPair | None:
        if self.failures > 0:
            self.failures -= 1
            raise TokenFileError("cannot read the token store at redis: ConnectionError")
        return super().load(key)


def test_a_token_store_that_cannot_be_read_at_connect_is_asked_again_and_the_account_comes_up(
    certificates: Certificates,
) -> None:
    registry, tokens = Registry(), FlakyTokens(generation(0), failures=1)

    async def scenario(rig: Rig) -> None:
        await eventually(lambda: rig.links[0].is_up(CTID), "the account authorised once the store answers")

    run(certificates, registry, tokens, scenario)


def test_a_token_store_that_cannot_be_read_during_a_reauthorisation_is_asked_again(
    certificates: Certificates,
) -> None:
    """Another daemon rotated the pair and the session is invalidated while the store is unreadable for
    two reads: the seat comes back once the store answers (the seats' retry, every reconnect_max_seconds)."""
    registry, tokens = Registry(), FlakyTokens(generation(0), failures=0)

    async def scenario(rig: Rig) -> None:
        link = rig.links[0]
        await eventually(lambda: link.is_up(CTID), "authorised")
        tokens.failures = 2
        registry.generation += 1
        tokens.pairs[KEY] = generation(1)
        registry._invalidate_sessions()
        await eventually(lambda: not link.is_up(CTID), "invalidated")
        await eventually(lambda: link.is_up(CTID), "the account authorised again once the store answers")

    run(certificates, registry, tokens, scenario)


def test_stop_lets_a_late_refresh_answer_being_stored_finish_and_leaves_no_task_behind(
    certificates: Certificates,
) -> None:
    """The late answer holds the only live refresh token: cancelled by the loop's end, it would be lost."""
    registry, tokens = Registry(), SharedTokens(generation(0))
    leftover: list[int] = []

    async def scenario(rig: Rig) -> None:
        await refresh_unanswered(rig, registry)
        link = rig.links[0]
        assert tokens._lock.acquire(timeout=5)  # another process holds the refresh lock for a moment
        release = threading.Timer(0.3, tokens._lock.release)
        try:
            await rig.server.send(registry.held.pop())
            await eventually(
                lambda: any("_take_late_answer" in repr(t.get_coro()) for t in link._background),
                "the late answer is being stored",
            )
            release.start()
            await link.stop()
            leftover.append(sum(1 for task in link._background if not task.done()))
        finally:
            release.join()

    run(certificates, registry, tokens, scenario, request_timeout_seconds=0.5)
    assert leftover == [0]
    assert tokens.refresh_token() == "refresh-1"  # the late answer's pair, stored

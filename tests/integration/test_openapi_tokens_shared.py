"""Two Open API links sharing one grant and one token file (two daemons, or one daemon's demo and live
links), against the simulator: when one refreshes, the other is told its token was refreshed and takes the
stored pair; it does not refresh again (which would invalidate the first, and so on)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fixadapter.config import build_config
from fixadapter.connectors.openapi.link import OpenApiLink
from fixadapter.connectors.openapi.tokens import FileTokenStore, TokenPair, grant_key
from fixadapter.sim.process import SimProcess

from ..openapi_accounts import grant, openapi_settings

WAIT = 30.0


class CountingStore(FileTokenStore):
    """The token file, counting the rotated pairs stored (a refresh's final save, not its marker)."""

    rotations = 0

    def save(self, key: str, pair: TokenPair) -> None:
        super().save(key, pair)
        if pair.refresh_started_at is None:
            CountingStore.rotations += 1


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimProcess]:
    process = SimProcess(log_path=tmp_path / "sim.log").start()
    try:
        yield process
    finally:
        process.stop()


async def until(condition: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(WAIT):
        while not condition():
            await asyncio.sleep(0.05)


def test_one_daemon_refreshing_a_shared_grant_costs_the_other_one_reauthorisation_and_no_refresh(
    sim: SimProcess, tmp_path: Path
) -> None:
    token_file = tmp_path / "tokens.fernet"
    grant(sim, token_file)
    config = build_config(
        {
            "accounts": [{"name": "desk", "openapi": openapi_settings(sim, token_file)}],
            "store": {"url": f"sqlite:///{tmp_path / 'adapter.db'}"},
        },
        environ={},
    )
    settings = config.account("desk").openapi
    assert settings is not None
    ctid, key = settings.ctid_trader_account_id, grant_key(settings.client_id)

    async def scenario() -> None:
        ups = [0, 0]
        links = [OpenApiLink(settings, CountingStore(token_file)) for _ in ups]
        for index, link in enumerate(links):

            def on_state(up: bool, _why: str | None, index: int = index) -> None:
                ups[index] += up

            link.seat(ctid, lambda _frame: None, on_state)
            link.start()
        try:
            await until(lambda: ups == [1, 1], "both links authorised")
            CountingStore.rotations = 0
            first = links[0]
            assert first._transport is not None
            await first._refresh(first._transport, key, force=True)
            await until(lambda: min(ups) >= 2, "both links authorised again")
            await asyncio.sleep(2.0)  # a refresh storm rotates the pair tens of times meanwhile
            assert CountingStore.rotations == 1
            assert ups == [2, 2]
            assert all(link.is_up(ctid) for link in links)
        finally:
            for link in links:
                await link.stop()

    asyncio.run(scenario())

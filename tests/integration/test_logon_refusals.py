"""A logon the server refuses is retried ever more slowly, then not at all (issue 13): a broker may lock an
account that keeps logging on with a wrong password."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from fixadapter.api import Adapter
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.connectors.fix.logon_retry import ALARM_KIND
from fixadapter.sim.process import SimProcess

from .conftest import ConfigFactory

WRONG = "wrong-password-4711"
NEXT_ATTEMPT = re.compile(r"^TRADE: logon refused \((\d+) of 3\): .*; next attempt in ([\d.]+) s$")


def test_a_wrong_password_is_retried_with_growing_waits_then_stops_with_a_blocking_alarm(
    sim: SimProcess, make_config: ConfigFactory, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="fixadapter")
    config = make_config(
        sim, password=WRONG, reconnect_seconds=1, logon_refusals_max=3, logon_retry_max_seconds=3
    )

    async def scenario() -> None:
        async with Adapter(config) as adapter:
            alarms = adapter.metrics.alarms
            async with asyncio.timeout(60):
                while not alarms.is_active(ALARM_KIND, "TRADE"):
                    await asyncio.sleep(0.05)
            # The session is disabled by the third refusal itself, so the venue has seen all it will see.
            assert sim.control("/state")["logons_refused"] == 3
            assert not adapter.connector.logon_enabled(SessionKind.TRADE)
            sample = adapter.metrics.value
            assert sample("fixadapter_logon_failures_total", {"session": "TRADE"}) == 3
            assert not adapter.ready
            # The session's last text is the venue's own Logout, over TLS as in plain text (a retry's
            # connection taken from QuickFIX over TLS once read "closed right after our Logon").
            last = adapter.engine.not_ready_reason()
            assert "(last: InternalError: RET_INVALID_DATA (the login or the password is wrong" in last
            assert adapter.readiness().startswith(f"alarm {ALARM_KIND} ")  # QUOTE's may be the first
            (alarm,) = [a for a in alarms.blocking() if a.key == "TRADE"]
            assert "TRADE logon refused 3 times" in alarm.text
            assert "InternalError: RET_INVALID_DATA" in alarm.text and "restart the adapter" in alarm.text
            assert (
                "(the login or the password is wrong: check account.username and the password)" in alarm.text
            )

    asyncio.run(scenario())
    waits = [
        (int(found[1]), float(found[2]))
        for found in (NEXT_ATTEMPT.match(r.getMessage()) for r in caplog.records)
        if found
    ]
    assert waits == [(1, 2.0), (2, 3.0)]  # doubled from reconnect_seconds (1 s), capped at 3 s
    assert WRONG not in caplog.text


def test_good_credentials_keep_the_session_enabled_and_raise_no_refusal_alarm(
    sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        async with Adapter(make_config(sim)) as adapter:
            await adapter.wait_ready(15)
            assert adapter.connector.logon_enabled(SessionKind.TRADE)
            assert not adapter.metrics.alarms.active(ALARM_KIND)
            assert sim.control("/state")["logons_refused"] == 0

    asyncio.run(scenario())

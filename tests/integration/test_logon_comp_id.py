"""A wrong SenderCompID fails loudly on both sides: the simulator logs whom it turned away, and the adapter
says what the venue did. TRADE: a Logout RET_NO_SUCH_LOGIN, explained, refused logons backing off and
stopping after logon_refusals_max with a blocking alarm. QUOTE: the connection closed right after the
Logon without a Logout, which means a CompID the venue has no session for: said once, counted as a
refused logon, retried (a server restarting closes connections the same way for a while)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from fixadapter.api import Adapter
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.connectors.fix.logon_retry import ALARM_KIND
from fixadapter.sim.process import SimProcess

from .conftest import ConfigFactory

UNKNOWN = "demo.sim.9999999"
CLOSED = (
    f"the server closed the connection right after our Logon, without a Logout: it has no session for "
    f"SenderCompID {UNKNOWN!r} with TargetCompID 'CSERVER'"
)


def test_an_unknown_sender_comp_id_is_explained_by_the_adapter_and_logged_by_the_simulator(
    sim: SimProcess, make_config: ConfigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fixadapter")
    config = make_config(
        sim, sender_comp_id=UNKNOWN, reconnect_seconds=1, logon_refusals_max=2, logon_retry_max_seconds=2
    )
    password = config.fix_settings(config.account_names[0]).password.get_secret_value()

    async def scenario() -> str:
        async with Adapter(config) as adapter:
            alarms = adapter.metrics.alarms
            sample = adapter.metrics.value
            async with asyncio.timeout(60):
                while not alarms.is_active(ALARM_KIND, "TRADE") or (
                    (sample("fixadapter_logon_failures_total", {"session": "QUOTE"}) or 0) < 3
                ):
                    await asyncio.sleep(0.05)
            assert not adapter.connector.logon_enabled(SessionKind.TRADE)
            assert adapter.connector.logon_enabled(SessionKind.QUOTE)  # retried: a restart looks the same
            assert not alarms.is_active(ALARM_KIND, "QUOTE")
            assert not adapter.ready
            (alarm,) = [a for a in alarms.blocking() if a.key == "TRADE"]
            return alarm.text

    trade = asyncio.run(scenario())

    no_such_login = "RET_NO_SUCH_LOGIN (the server has no login '1234567' for SenderCompID"
    if sim.tls:  # the simulator's TLS port may close before its Logout is through: either is explained
        assert no_such_login in trade or "closed the connection right after our Logon" in trade
    else:
        assert no_such_login in trade
        assert trade.startswith("TRADE logon refused 2 times in a row")
    told = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"QUOTE: {CLOSED}")]
    assert len(told) == 1, told  # once, not at every retry
    assert "check account.sender_comp_id and target_comp_id" in told[0]
    assert password not in caplog.text

    assert sim.log_path is not None
    sim_log = sim.log_path.read_text()
    assert (
        f"QUOTE: connection closed without an answer: no session for SenderCompID {UNKNOWN!r} with "
        "TargetCompID 'CSERVER'"
    ) in sim_log
    assert f"TRADE: logon of SenderCompID {UNKNOWN!r} refused: RET_NO_SUCH_LOGIN" in sim_log
    assert password not in sim_log

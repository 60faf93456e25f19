"""FIX over TLS end to end: the adapter's forwarders against the simulator's TLS ports (5211/5212 style).

The simulator makes its certificate at start; the adapter pins that CA. Every refusal must name its
reason and the host, and nothing may reach the venue in plain text instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fixadapter.api import Adapter
from fixadapter.config import AdapterConfig
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.errors import SessionNotReady
from fixadapter.model.enums import OrderStatus
from fixadapter.model.market import Book
from fixadapter.model.requests import NewOrder
from fixadapter.sim.process import SimProcess
from fixadapter.tls.certs import make_ca

from .conftest import ConfigFactory, SimFactory


@pytest.fixture
def tls_sim(start_sim: SimFactory, tmp_path: Path) -> SimProcess:
    return start_sim(tls=True, tls_dir=tmp_path / "sim-tls", extra_args=("--tick-ms", "100"))


def market_buy() -> NewOrder:
    return NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=10000)


def sample(adapter: Adapter, name: str, **labels: str) -> float:
    return adapter.metrics.value(name, labels) or 0.0


async def until(condition: Any, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def filled(adapter: Adapter) -> None:
    """A market order goes out and its fill comes back."""
    queue = adapter.engine.subscribe()
    try:
        order = await adapter.submit(market_buy())
        async with asyncio.timeout(15):
            while True:
                event = await queue.get()
                if event.order.cl_ord_id == order.cl_ord_id and event.order.status is OrderStatus.FILLED:
                    return
    finally:
        adapter.engine.unsubscribe(queue)


def errors_naming(caplog: pytest.LogCaptureFixture, *words: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.ERROR and all(word in record.getMessage() for word in words)
    ]


def test_logon_an_order_and_market_data_all_go_over_tls(tls_sim: SimProcess, make_config: ConfigFactory):
    config = make_config(tls_sim)
    assert all(config.account().fix.tls(kind) for kind in SessionKind)

    async def scenario() -> None:
        async with Adapter(config) as adapter:
            await adapter.wait_ready(15)
            await filled(adapter)
            await adapter.subscribe("EURUSD", depth=True)
            await until(lambda: isinstance(adapter.book("EURUSD"), Book), what="the EURUSD book")
            for session in ("QUOTE", "TRADE"):
                assert sample(adapter, "fixadapter_tls_connections_total", session=session) == 1
                assert sample(adapter, "fixadapter_tls_connected", session=session) == 1
                assert sample(adapter, "fixadapter_logons_total", session=session) == 1

    asyncio.run(scenario())
    state = tls_sim.control("/state")
    assert state["tls_connections"] == {"TRADE": 1, "QUOTE": 1}  # the logons came in on the TLS ports
    assert state["logons"] == 1


def test_a_wrong_ca_is_refused_with_its_reason_and_nothing_reaches_the_venue(
    tls_sim: SimProcess, make_config: ConfigFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(make_ca("not the broker's CA").cert_pem)
    config = make_config(tls_sim, tls_ca_file=str(other_ca))
    caplog.set_level(logging.INFO, logger="fixadapter")

    async def scenario() -> None:
        async with Adapter(config) as adapter:
            with pytest.raises(SessionNotReady, match=r"unknown ca .*tls_ca_file"):
                await adapter.wait_ready(4)
            assert sample(adapter, "fixadapter_tls_failures_total", session="TRADE", reason="unknown_ca") >= 2
            assert sample(adapter, "fixadapter_logons_total", session="TRADE") == 0

    asyncio.run(scenario())
    reported = errors_naming(caplog, "TRADE", "unknown ca", f"127.0.0.1:{tls_sim.trade_tls_port}")
    assert len(reported) == 1  # once, however many retries
    assert "no plain-text fallback" in reported[0]
    assert tls_sim.control("/state")["logons"] == 0  # no Logon arrived on any port, TLS or plain


def test_a_certificate_for_another_host_name_is_refused(
    start_sim: SimFactory, make_config: ConfigFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    sim = start_sim(tls=True, tls_dir=tmp_path / "sim-tls", tls_names=("fix.broker.invalid",))
    caplog.set_level(logging.INFO, logger="fixadapter")

    async def scenario() -> None:
        async with Adapter(make_config(sim)) as adapter:
            with pytest.raises(SessionNotReady, match="wrong hostname"):
                await adapter.wait_ready(3)
            assert (
                sample(adapter, "fixadapter_tls_failures_total", session="QUOTE", reason="wrong_hostname")
                >= 1
            )

    asyncio.run(scenario())
    assert len(errors_naming(caplog, "TRADE", "wrong hostname", "'127.0.0.1'")) == 1
    assert sim.control("/state")["logons"] == 0


def test_after_the_broker_cuts_the_tls_line_the_session_logs_on_again(
    tls_sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        async with Adapter(make_config(tls_sim)) as adapter:
            await adapter.wait_ready(15)
            assert tls_sim.control("/drop", {"session": "TRADE"})["dropped"] == 1
            await until(lambda: sample(adapter, "fixadapter_logons_total", session="TRADE") == 2)
            await adapter.wait_ready(15)
            await filled(adapter)
            assert sample(adapter, "fixadapter_tls_connections_total", session="TRADE") == 2
            assert (
                sample(adapter, "fixadapter_tls_failures_total", session="TRADE", reason="connect_failed")
                == 0
            )

    asyncio.run(scenario())


def test_after_the_broker_restarts_the_forwarder_backs_off_then_logs_on_again(
    tls_sim: SimProcess, make_config: ConfigFactory
):
    config: AdapterConfig = make_config(tls_sim, tls_retry_max_seconds=2)

    async def scenario() -> None:
        async with Adapter(config) as adapter:
            await adapter.wait_ready(15)
            tls_sim.kill()
            await until(lambda: not adapter.ready, what="the session to drop")
            await until(
                lambda: sample(
                    adapter, "fixadapter_tls_failures_total", session="TRADE", reason="connect_failed"
                ),
                what="a refused reconnect",
            )
            await asyncio.to_thread(tls_sim.start)  # same ports, same CA, a fresh server certificate
            await adapter.wait_ready(60)  # a bound, not a margin: a loaded 2-core machine restarts slowly
            await filled(adapter)
            assert sample(adapter, "fixadapter_tls_connected", session="TRADE") == 1

    asyncio.run(scenario())


def test_an_order_placed_while_tls_is_down_is_refused_with_the_tls_reason(
    tls_sim: SimProcess, make_config: ConfigFactory, tmp_path: Path
):
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(make_ca("not the broker's CA").cert_pem)

    config = make_config(tls_sim, tls_ca_file=str(other_ca))
    orders = config.orders.model_copy(update={"ready_timeout_seconds": 1})

    async def scenario() -> None:
        async with Adapter(config.model_copy(update={"orders": orders})) as adapter:
            await until(
                lambda: sample(adapter, "fixadapter_tls_failures_total", session="TRADE", reason="unknown_ca")
            )
            # The counter moves on the forwarder's thread; the session's reason reaches the loop after it.
            await until(lambda: "unknown ca" in adapter.readiness(), what="the TLS reason in readiness")
            with pytest.raises(SessionNotReady, match="unknown ca"):
                await adapter.submit(market_buy())

    asyncio.run(scenario())
    assert tls_sim.control("/state")["orders"] == []


def test_the_simulator_keeps_its_ca_across_restarts(tls_sim: SimProcess) -> None:
    before = tls_sim.ca_file.read_bytes()
    tls_sim.stop()
    tls_sim.start()
    assert tls_sim.ca_file.read_bytes() == before
    assert Decimal(tls_sim.control("/state")["quotes"]["1"]["bid"]) > 0

"""The broker unreachable: the log says what is wrong and what to check, /readyz gives the cause, and
`fixadapter_session_logged_on` is 0 from the start (so an alert on it fires)."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import aiohttp
import pytest

from fixadapter.api import Adapter, Desk
from fixadapter.config import HttpConfig, build_config
from fixadapter.daemon.http import HttpApi

DEADLINE = 15.0


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_broker_refusing_connections_is_explained_in_the_log_in_readyz_and_in_metrics(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    port = closed_port()
    config = build_config(
        {
            "account": {
                "host": "127.0.0.1",
                "sender_comp_id": "demo.icmarkets.1",
                "username": "1",
                "password": "pw",
                "quote_port": port,
                "trade_port": port,
                "reconnect_seconds": 1,
            },
            "store": {"url": f"sqlite:///{tmp_path / 'adapter.db'}"},
        },
        environ={},
    )

    async def scenario() -> tuple[int, dict[str, object], str]:
        async with Adapter(config) as adapter:
            api = HttpApi(Desk.of(adapter), HttpConfig(port=0))
            http_port = await api.start()
            try:
                async with aiohttp.ClientSession(f"http://127.0.0.1:{http_port}") as client:
                    async with client.get("/metrics") as response:
                        metrics = await response.text()
                    loop = asyncio.get_running_loop()
                    deadline = loop.time() + DEADLINE
                    while True:
                        async with client.get("/readyz") as response:
                            status, body = response.status, await response.json()
                        if "connection refused" in str(body.get("reason")) or loop.time() > deadline:
                            return status, body, metrics
                        await asyncio.sleep(0.05)
            finally:
                await api.stop()

    status, body, metrics = asyncio.run(scenario())

    where = f"127.0.0.1:{port}"
    assert status == 503
    assert body["reason"] == (
        f"TRADE not logged on and reconciled (last: cannot connect to {where}: connection refused (nothing "
        "listens there); check account.host and account.trade_port against the broker's FIX credentials "
        "form, and that the server (or `fixadapter simulate`) is running)"
    )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for session in ("QUOTE", "TRADE"):
        told = [
            w for w in warnings if w.startswith(f"{session}: cannot connect to {where}: connection refused")
        ]
        assert len(told) == 1, warnings  # once, not at every retry
    for session in ("QUOTE", "TRADE"):
        series = f'fixadapter_session_logged_on{{account="default",connector="fix",session="{session}"}} 0.0'
        assert series in metrics
    assert not [r for r in caplog.records if r.getMessage().startswith("subscribed")]

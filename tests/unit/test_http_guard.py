"""The HTTP server stays answering and private: no token off loopback is refused at config load, a foreign
Host header is refused, idle and half-sent connections are closed, and a crowd of idle sockets neither
locks out /healthz nor writes a log line per connection."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from fixadapter.api import Adapter, Desk
from fixadapter.config import HttpConfig, build_config
from fixadapter.daemon.http import HttpApi
from fixadapter.daemon.http_guard import host_name
from fixadapter.errors import ConfigError

from .test_http_api import SilentConnector, adapter_config

ACCOUNT = {"host": "127.0.0.1", "sender_comp_id": "demo.test.1", "username": "1", "password": "unused"}


@asynccontextmanager
async def serving(tmp_path: Path, **http: Any) -> AsyncIterator[tuple[Adapter, int]]:
    adapter = Adapter(adapter_config(tmp_path), SilentConnector())
    await adapter.start()
    api = HttpApi(Desk.of(adapter), HttpConfig(port=0, **http))
    try:
        yield adapter, await api.start()
    finally:
        await api.stop()
        await adapter.stop()


async def raw_get(port: int, path: str, host: str | None) -> tuple[int, bytes]:
    """One HTTP/1.1 request with exactly the Host header given (None: none at all)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"GET {path} HTTP/1.1\r\n"
        + (f"Host: {host}\r\n" if host is not None else "")
        + "Connection: close\r\n\r\n"
    )
    writer.write(head.encode())
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    status = int(answer.split(b" ", 2)[1])
    return status, answer.partition(b"\r\n\r\n")[2]


# -- config ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "trading-box.internal"])
def test_a_non_loopback_http_host_without_a_token_is_refused_at_config_load_naming_the_key_and_fix(host: str):
    with pytest.raises(ConfigError) as refused:
        build_config({"account": ACCOUNT, "daemon": {"http": {"host": host}}}, environ={})
    text = str(refused.value)
    assert "daemon.http.host" in text and "daemon.http.token" in text
    assert "FIXADAPTER_DAEMON__HTTP__TOKEN" in text and "127.0.0.1" in text


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_a_loopback_http_host_needs_no_token(host: str):
    assert (
        build_config({"account": ACCOUNT, "daemon": {"http": {"host": host}}}, environ={}).daemon.http.host
        == host
    )


def test_a_non_loopback_http_host_with_a_token_from_the_environment_is_accepted():
    config = build_config(
        {"account": ACCOUNT, "daemon": {"http": {"host": "0.0.0.0"}}},
        environ={
            "FIXADAPTER_DAEMON__HTTP__TOKEN": "t0ken",
            "FIXADAPTER_DAEMON__HTTP__ALLOWED_HOSTS": "a.example, b",
        },
    )
    assert config.daemon.http.token is not None and config.daemon.http.allowed_hosts == ("a.example", "b")


def test_a_disabled_http_server_needs_no_token_whatever_its_host():
    config = build_config(
        {"account": ACCOUNT, "daemon": {"http": {"enabled": False, "host": "0.0.0.0"}}}, environ={}
    )
    assert not config.daemon.http.enabled


# -- Host header -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8080", "127.0.0.1"),
        ("[::1]:8080", "::1"),
        ("LocalHost.", "localhost"),
        ("a.example", "a.example"),
    ],
)
def test_the_host_name_is_read_without_port_brackets_case_or_trailing_dot(header: str, name: str):
    assert host_name(header) == name


def test_a_request_for_a_foreign_host_is_refused_with_421_and_local_names_are_answered(tmp_path: Path):
    async def scenario() -> None:
        async with serving(tmp_path, allowed_hosts=("fix-box.example",)) as (adapter, port):
            status, body = await raw_get(port, "/healthz", "evil.example")
            assert status == 421 and b"daemon.http.allowed_hosts" in body
            status, _ = await raw_get(port, "/kill-switch", f"evil.example:{port}")
            assert status == 421
            assert (await raw_get(port, "/readyz", None))[0] == 400
            for host in (f"127.0.0.1:{port}", f"localhost:{port}", "[::1]", "fix-box.example"):
                assert (await raw_get(port, "/healthz", host))[0] == 200, host
            refused = adapter.metrics.value("fixadapter_http_requests_refused_total", {"reason": "host"})
            assert refused == 2  # the request without Host is aiohttp's own 400

    asyncio.run(asyncio.wait_for(scenario(), 30))


# -- connections -----------------------------------------------------------------------------------


def test_a_connection_that_sends_nothing_or_never_finishes_its_headers_is_closed_by_the_server(
    tmp_path: Path,
):
    async def scenario() -> None:
        async with serving(tmp_path, idle_timeout_seconds=0.2) as (_adapter, port):
            silent_reader, silent = await asyncio.open_connection("127.0.0.1", port)
            slow_reader, slow = await asyncio.open_connection("127.0.0.1", port)
            slow.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # headers never finished
            # The server closes both: reading reaches the end of the stream (a generous bound, not a timing).
            assert await asyncio.wait_for(silent_reader.read(), 20) == b""
            assert await asyncio.wait_for(slow_reader.read(), 20) == b""
            for writer in (silent, slow):
                writer.close()
                await writer.wait_closed()

    asyncio.run(scenario())


def test_300_idle_sockets_held_open_neither_lock_out_healthz_nor_log_a_line_per_connection(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)

    async def scenario() -> None:
        async with serving(tmp_path, max_connections=50, idle_timeout_seconds=60) as (adapter, port):
            held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(300)]
            try:
                caplog.clear()
                async with (
                    aiohttp.ClientSession() as client,
                    client.get(f"http://127.0.0.1:{port}/healthz") as response,
                ):
                    assert response.status == 200
                closed = adapter.metrics.value(
                    "fixadapter_http_connections_closed_total", {"reason": "idle_closed_for_new"}
                )
                assert closed is not None and closed >= 300 - 50
                # The oldest idle sockets were the ones closed: the first one reads the end of its stream.
                assert await asyncio.wait_for(held[0][0].read(), 20) == b""
            finally:
                for _, writer in held:
                    writer.close()
                for _, writer in held:
                    await writer.wait_closed()

    asyncio.run(asyncio.wait_for(scenario(), 60))
    lines = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(lines) <= 1, [r.getMessage() for r in lines]  # at most the one rate-limited note


def test_a_token_given_in_the_http_config_is_never_in_an_error(tmp_path: Path):
    async def scenario() -> None:
        async with serving(tmp_path, token=SecretStr("hush-hush")) as (_adapter, port):
            status, body = await raw_get(port, "/orders", f"127.0.0.1:{port}")
            assert status == 401 and b"hush-hush" not in body

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_a_flood_of_malformed_requests_is_answered_400_and_noted_in_the_log_at_most_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    async def scenario() -> None:
        async with serving(tmp_path) as (_adapter, port):
            caplog.clear()
            for _ in range(50):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"GET /healthz HTTP/1.1\r\nthis is no header\r\n\r\n")
                answer = await reader.read()
                writer.close()
                await writer.wait_closed()
                assert answer.split(b" ", 2)[1] == b"400"

    asyncio.run(asyncio.wait_for(scenario(), 30))
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) <= 1, [r.getMessage() for r in lines]

"""`fixadapter kill-switch status|engage|release`: one call to the running daemon's HTTP API, its answer
printed in words; exit 0 when obeyed, 1 when the daemon refuses (its message), 2 when no daemon answers."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from fixadapter.api import Adapter, Desk
from fixadapter.cli import main
from fixadapter.config import HttpConfig
from fixadapter.daemon.http import HttpApi

from .test_http_api import TOKEN, SilentConnector, adapter_config


@dataclass
class Daemon:
    adapter: Adapter
    url: str


@pytest.fixture
def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    """An adapter (never logged on, two working orders in its store) and its HTTP API with a token,
    on an event loop in another thread, as `fixadapter run` would serve them."""
    monkeypatch.delenv("FIXADAPTER_HTTP_TOKEN", raising=False)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="daemon-loop", daemon=True)
    thread.start()
    adapter = Adapter(adapter_config(tmp_path), SilentConnector())
    api = HttpApi(Desk.of(adapter), HttpConfig(port=0, token=SecretStr(TOKEN)))

    async def up() -> int:
        await adapter.start()
        return await api.start()

    async def down() -> None:
        await api.stop()
        await adapter.stop()

    port = asyncio.run_coroutine_threadsafe(up(), loop).result(20)
    try:
        yield Daemon(adapter, f"http://127.0.0.1:{port}")
    finally:
        asyncio.run_coroutine_threadsafe(down(), loop).result(20)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_no_daemon_answering_exits_1_with_the_hint(capsys: pytest.CaptureFixture[str]):
    assert main(["kill-switch", "status", "--url", "http://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err
    assert "no daemon answering at http://127.0.0.1:1: " in err
    assert "is `fixadapter run` running with daemon.http enabled?" in err


@pytest.mark.parametrize("action", ["engage", "release"])
def test_engage_or_release_without_a_reason_exits_2_before_calling_anyone(
    action: str, capsys: pytest.CaptureFixture[str]
):
    assert main(["kill-switch", action, "--url", "http://127.0.0.1:1"]) == 2
    assert f"--reason is required to {action}" in capsys.readouterr().err


def test_status_prints_a_released_switch(
    daemon: Daemon, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("FIXADAPTER_HTTP_TOKEN", TOKEN)
    assert main(["kill-switch", "status", "--url", daemon.url]) == 0
    assert capsys.readouterr().out.startswith("kill switch released: not blocking orders")


def test_status_without_the_token_of_a_daemon_that_has_one_exits_1_saying_so(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
):
    assert main(["kill-switch", "status", "--url", daemon.url]) == 1
    assert "HTTP 401: this endpoint needs Authorization: Bearer" in capsys.readouterr().err


def test_engage_prints_who_why_since_and_the_cancels_then_status_shows_it(
    daemon: Daemon, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("FIXADAPTER_HTTP_TOKEN", TOKEN)
    argv = ["kill-switch", "engage", "--url", daemon.url, "--by", "alice", "--reason", "runaway strategy"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:3] == ["kill switch ENGAGED", "  by:     alice", "  reason: runaway strategy"]
    assert "  since:  " in out
    assert "cancels: 0 sent, 0 already being cancelled, 2 failed" in out  # TRADE is down
    assert "    a-open: TRADE is down" in out
    assert daemon.adapter.kill_switch().engaged

    assert main(["kill-switch", "status", "--url", daemon.url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("kill switch ENGAGED\n  by:     alice\n")
    assert "engaged  by alice: runaway strategy" in out  # the recent history


def test_release_by_defaults_to_user_at_hostname_and_reads_a_named_token_variable(
    daemon: Daemon, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("USER", "ops")
    monkeypatch.setenv("DESK_TOKEN", TOKEN)
    common = ["--url", daemon.url + "/", "--token-env", "DESK_TOKEN"]
    assert main(["kill-switch", "engage", *common, "--reason", "drill"]) == 0
    assert daemon.adapter.kill_switch().engaged_by == f"ops@{socket.gethostname()}"
    capsys.readouterr()
    assert main(["kill-switch", "release", *common, "--reason", "drill over"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("kill switch released: not blocking orders")
    assert f"last released by ops@{socket.gethostname()} at " in out and out.rstrip().endswith("drill over")
    assert not daemon.adapter.kill_switch().engaged


@pytest.mark.parametrize("token", [None, "wrong"])
def test_a_refused_change_exits_1_with_the_daemons_message(
    daemon: Daemon, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, token: str | None
):
    if token is not None:
        monkeypatch.setenv("FIXADAPTER_HTTP_TOKEN", token)
    argv = ["kill-switch", "engage", "--url", daemon.url, "--reason", "test"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("fixadapter kill-switch: HTTP 401: this endpoint needs Authorization: Bearer")
    assert not daemon.adapter.kill_switch().engaged


def test_json_prints_the_daemons_answer_as_it_is(
    daemon: Daemon, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("FIXADAPTER_HTTP_TOKEN", TOKEN)
    assert main(["kill-switch", "status", "--url", daemon.url, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["state"]["engaged"] is False and answer["history"] == []

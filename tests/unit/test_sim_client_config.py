"""`fixadapter simulate --write-config` and `fixadapter order`'s wait for the first quote (issue 16, item 1):
the written config loads as it is, plain FIX at the bound ports, no password in it; an order waits for its
symbol's first quote, and says so in one line when none comes in time."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from fixadapter.config import load_config
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.errors import SubscriptionTimeout
from fixadapter.sim.client_config import write_client_config
from fixadapter.sim.config import SimAccount, SimConfig
from fixadapter.watch import wait_first_quote

PORTS: dict[str, int | None] = {"quote": 41001, "trade": 41002, "control": 41003}


def test_the_written_config_loads_as_plain_fix_at_the_bound_ports_without_a_password(tmp_path: Path) -> None:
    path = tmp_path / "sim-config.yaml"
    write_client_config(path, SimConfig(password=SecretStr("chosen-pw")), PORTS)

    text = path.read_text(encoding="utf-8")
    assert "chosen-pw" not in text
    assert (
        "#   FIXADAPTER_ACCOUNTS__SIM__FIX__PASSWORD: what the simulator took from FIXADAPTER_SIM_PASSWORD"
        in text
    )
    config = load_config(path, {"FIXADAPTER_ACCOUNTS__SIM__FIX__PASSWORD": "chosen-pw"})
    fix = config.fix_settings("sim")
    assert fix.endpoint(SessionKind.QUOTE) == "127.0.0.1:41001"
    assert fix.endpoint(SessionKind.TRADE) == "127.0.0.1:41002"
    assert (fix.sender_comp_id, fix.username) == ("demo.sim.1234567", "1234567")
    assert config.risk.symbols["EURUSD"].max_notional is not None  # needs a quote: order waits for one


def test_every_served_account_is_written_under_an_adapter_account_name(tmp_path: Path) -> None:
    accounts = (
        SimAccount(name="alice", sender_comp_id="demo.sim.1001", username="1001", password=SecretStr("a")),
        SimAccount(name="Bob-2", sender_comp_id="demo.sim.2002", username="2002", password=SecretStr("b")),
    )
    path = tmp_path / "sub" / "sim-config.yaml"
    write_client_config(path, SimConfig(host="0.0.0.0", accounts=accounts), PORTS)

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert [(a["name"], a["fix"]["host"]) for a in data["accounts"]] == [
        ("alice", "127.0.0.1"),
        ("bob_2", "127.0.0.1"),
    ]
    text = path.read_text(encoding="utf-8")
    assert (
        "FIXADAPTER_ACCOUNTS__BOB_2__FIX__PASSWORD: what the simulator took from "
        "FIXADAPTER_SIM_PASSWORD_BOB_2" in text
    )


class _Silent:
    """An adapter whose market data never quotes: subscribe succeeds, no book or quote ever comes."""

    def __init__(self) -> None:
        self.market = object()
        self.subscribed: list[tuple[str, bool]] = []

    async def subscribe(self, symbol: str, depth: bool = False, wait: bool = True) -> None:
        self.subscribed.append((symbol, depth))

    def book(self, _symbol: str) -> Any:
        return None

    def quote(self, _symbol: str) -> Any:
        return None


def test_an_order_without_a_quote_in_time_is_not_sent_and_says_why() -> None:
    adapter = _Silent()
    with pytest.raises(SubscriptionTimeout) as caught:
        asyncio.run(wait_first_quote(adapter, "EURUSD", 0.2))  # type: ignore[arg-type]
    assert str(caught.value) == (
        "no quote for EURUSD within 0.2s, so the order was not sent (a risk rule may need one to price it); "
        "check the QUOTE session, or wait longer with --quote-wait-seconds"
    )
    assert adapter.subscribed == [("EURUSD", False)]  # spot, subscribed once


def test_an_order_waits_until_the_first_quote_then_goes() -> None:
    adapter = _Silent()
    quotes: list[object] = []
    adapter.quote = lambda _symbol: quotes[0] if quotes else None  # type: ignore[method-assign]

    async def scenario() -> None:
        waiting = asyncio.create_task(wait_first_quote(adapter, "EURUSD", 5))  # type: ignore[arg-type]
        await asyncio.sleep(0.2)
        assert not waiting.done()
        quotes.append(object())
        await asyncio.wait_for(waiting, 1)

    asyncio.run(scenario())

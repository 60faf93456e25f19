"""`fixadapter simulate --write-config PATH`: an adapter config for the accounts the simulator serves, at the
ports it bound, so `fixadapter order --config PATH` (or `run`) works against it as written. Plain FIX (the
simulator serves TLS only on the ports asked for), passwords left to the environment as always."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import yaml

from fixadapter.config import password_env
from fixadapter.model.requests import DEFAULT_ACCOUNT
from fixadapter.sim.config import PASSWORD_VARIABLE, SimAccount, SimConfig, password_variable
from fixadapter.sim.listening import ANY_HOSTS

SINGLE_ACCOUNT_NAME = "sim"  # the simulator's one account, as the written config names it


def adapter_account_name(account: SimAccount) -> str:
    """The simulator's account name as an adapter account name (a-z, then a-z 0-9 _)."""
    if account.name == DEFAULT_ACCOUNT:
        return SINGLE_ACCOUNT_NAME
    name = re.sub(r"[^a-z0-9_]", "_", account.name.lower())
    return name if name[0].isalpha() else f"a_{name}"


def client_config(config: SimConfig, ports: Mapping[str, int | None]) -> str:
    """The YAML text: each served account over plain FIX at `ports`, a SQLite store under var/sim/, EURUSD
    and GBPUSD quotes, and risk limits that need a quote to price an order (as a real desk's would)."""
    host = "127.0.0.1" if config.host in ANY_HOSTS else config.host
    accounts = []
    lines = []
    for account in config.served_accounts:
        name = adapter_account_name(account)
        accounts.append(
            {
                "name": name,
                "fix": {
                    "host": host,
                    "quote_port": ports["quote"],
                    "trade_port": ports["trade"],
                    "quote_tls": False,
                    "trade_tls": False,
                    "sender_comp_id": account.sender_comp_id,
                    "username": account.username,
                },
            }
        )
        served = password_variable(account.name) if config.accounts else PASSWORD_VARIABLE
        lines.append(f"#   {password_env(name)}: what the simulator took from {served}")
    body = {
        "accounts": accounts,
        "store": {"url": "sqlite:///var/sim/fixadapter.db"},
        "market_data": {"subscriptions": [{"symbol": "EURUSD"}, {"symbol": "GBPUSD"}]},
        "risk": {
            "max_open_orders": 50,
            "symbol_defaults": {"max_quantity": 5_000_000, "without_quote": "refuse"},
            "symbols": {"EURUSD": {"max_notional": 6_000_000, "collar_percent": 1}},
        },
    }
    header = [
        "# Written by `fixadapter simulate --write-config`: the simulator's accounts at the ports it bound,",
        "# plain FIX (no TLS). Passwords never go in a file; set each account's in the environment:",
        *lines,
    ]
    return "\n".join(header) + "\n" + yaml.safe_dump(body, sort_keys=False, default_flow_style=False)


def write_client_config(path: Path, config: SimConfig, ports: Mapping[str, int | None]) -> None:
    """Write it (replacing an older one: the ports change from run to run with port 0)."""
    if path.parent != Path():
        path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(client_config(config, ports), encoding="utf-8")
    temporary.replace(path)

"""The accounts table `openapi login` and `openapi accounts` print: what to put in each account's section."""

from __future__ import annotations

from fixadapter.connectors.openapi.account_config import OpenApiEnvironment
from fixadapter.connectors.openapi.accounts_list import ListedAccount, format_accounts

DEMO = ListedAccount(20000001, 1234567, OpenApiEnvironment.DEMO, "a broker")


def test_an_account_on_ctraders_servers_is_shown_with_its_environments_host() -> None:
    table = format_accounts([DEMO], True, "demo.ctraderapi.com")
    assert "demo.ctraderapi.com" in table.splitlines()[2]
    assert "host:" not in table


def test_accounts_listed_on_another_server_are_shown_there_with_the_host_to_configure() -> None:
    """A simulator: the accounts are reached at the host asked, not at cTrader's demo server."""
    table = format_accounts([DEMO], True, "127.0.0.1")
    row = table.splitlines()[2]
    assert "127.0.0.1" in row and "ctraderapi.com" not in row
    assert "environment: ..., host: 127.0.0.1}" in table

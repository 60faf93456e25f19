"""The accounts a token reaches (ProtoOAGetAccountListByAccessTokenReq), each with the server it needs.

The id the rest of the API and our config use is the ctidTraderAccountId, not the trader login people see
in cTrader (reference 2.2, FAQ); and a live account is reached on the live server only (1.1), so the
listing says which `environment` each account's config needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from fixadapter.connectors.openapi.account_config import DEFAULT_HOSTS, OpenApiEnvironment
from fixadapter.connectors.openapi.errors import ErrorResponse, expect
from fixadapter.connectors.openapi.transport import OpenApiTransport, TransportSettings, client_context
from fixadapter.errors import FixAdapterError
from fixadapter.protocols.openapi.generated import OpenApiMessages_pb2 as oa
from fixadapter.protocols.openapi.generated import OpenApiModelMessages_pb2 as model

__all__ = ["ListedAccount", "format_accounts", "list_accounts"]


class AccountListError(FixAdapterError):
    """The accounts could not be listed; the text says why and what to try."""


@dataclass(frozen=True)
class ListedAccount:
    ctid_trader_account_id: int
    trader_login: int | None
    environment: OpenApiEnvironment
    broker: str | None

    @property
    def host(self) -> str:
        return DEFAULT_HOSTS[self.environment]


async def list_accounts(
    client_id: str,
    client_secret: SecretStr,
    access_token: SecretStr,
    host: str,
    port: int,
    ca_file: Path | None = None,
    timeout: float = 15.0,
) -> tuple[list[ListedAccount], bool]:
    """The token's accounts and whether it may trade (SCOPE_TRADE); AccountListError saying why not."""
    settings = TransportSettings(request_timeout=timeout, connect_timeout=timeout)
    transport = OpenApiTransport(
        host, port, client_context(ca_file), on_event=lambda _f: None, settings=settings
    )
    try:
        await transport.connect()
    except OSError as error:
        raise AccountListError(f"cannot reach the Open API at {host}:{port}: {error}") from None
    try:
        await transport.request(
            oa.ProtoOAApplicationAuthReq(clientId=client_id, clientSecret=client_secret.get_secret_value())
        )
        answer = await transport.request(
            oa.ProtoOAGetAccountListByAccessTokenReq(accessToken=access_token.get_secret_value())
        )
    except ErrorResponse as refused:
        raise AccountListError(f"the Open API refused to list the accounts: {refused.error_code}") from None
    except Exception as error:
        raise AccountListError(f"listing the accounts failed: {error}") from None
    finally:
        await transport.close("accounts listed", expected=True)
    listed = expect(answer, oa.ProtoOAGetAccountListByAccessTokenRes)
    accounts = [
        ListedAccount(
            ctid_trader_account_id=entry.ctidTraderAccountId,
            trader_login=entry.traderLogin if entry.HasField("traderLogin") else None,
            environment=OpenApiEnvironment.LIVE if entry.isLive else OpenApiEnvironment.DEMO,
            broker=entry.brokerTitleShort or None,
        )
        for entry in listed.ctidTraderAccount
    ]
    return accounts, listed.permissionScope == model.SCOPE_TRADE


def format_accounts(accounts: list[ListedAccount], can_trade: bool, server: str | None = None) -> str:
    """A table for people: what to put in each account's `openapi` section. `server`: the host asked,
    when it is none of cTrader's (a simulator): the accounts are reached there, with `host:` set."""
    other = server if server is not None and server not in DEFAULT_HOSTS.values() else None
    if not accounts:
        return "This token reaches no account: grant access to at least one account when logging in."
    lines = [
        f"This token reaches {len(accounts)} account(s)"
        + ("" if can_trade else " with view-only scope (log in with --scope trading to trade)")
        + ":",
        f"  {'ctid_trader_account_id':>22}  {'login':>10}  {'environment':<11}  {'host':<22}  broker",
    ]
    for account in accounts:
        login = str(account.trader_login) if account.trader_login is not None else "-"
        lines.append(
            f"  {account.ctid_trader_account_id:>22}  {login:>10}  {account.environment.value:<11}  "
            f"{other or account.host:<22}  {account.broker or '-'}"
        )
    host = f", host: {other}" if other else ""
    lines.append(
        f"Each account's config: `openapi: {{ctid_trader_account_id: ..., environment: ...{host}}}`; a live "
        "account is refused on the demo server and the reverse."
    )
    return "\n".join(lines)

"""Simulator settings: cTrader accounts served on one QUOTE and one TRADE port, as one cTrader server serves
many accounts (each its own SenderCompID, trader login and password, its own orders and positions)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.errors import ConfigError
from fixadapter.model.requests import DEFAULT_ACCOUNT
from fixadapter.sim.commission import DEFAULT_PER_MILLION

PASSWORD_VARIABLE = "FIXADAPTER_SIM_PASSWORD"  # noqa: S105 - a variable's name; an account's adds _<NAME>
OPENAPI_SECRET_VARIABLE = "FIXADAPTER_SIM_OPENAPI_SECRET"  # noqa: S105 - a variable's name
DEFAULT_OPENAPI_SECRET = "sim-openapi-secret"  # noqa: S105 - the simulator's own test credential
FIRST_CTID_TRADER_ACCOUNT_ID = 20_000_001
ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


class SimAccount(BaseModel):
    """One account the simulator serves: what its client puts in 49, 553 and 554."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(pattern=ACCOUNT_NAME.pattern)]
    sender_comp_id: Annotated[str, Field(min_length=1)]
    username: Annotated[str, Field(min_length=1)]
    password: SecretStr
    # The Open API's id of the account (ProtoOACtidTraderAccount); None: FIRST_CTID_TRADER_ACCOUNT_ID plus
    # its place among the served accounts, so it stays the same across restarts.
    ctid_trader_account_id: Annotated[int, Field(gt=0)] | None = None
    is_live: bool = False  # a live account: this (demo) Open API server refuses it with CANT_ROUTE_REQUEST

    @property
    def trader_login(self) -> int | None:
        """The login as the Open API shows it (traderLogin), when it is a number as cTrader's are."""
        return int(self.username) if self.username.isdigit() else None


def password_variable(name: str) -> str:
    """The environment variable holding account `name`'s password (FIXADAPTER_SIM_PASSWORD_<NAME>)."""
    return f"{PASSWORD_VARIABLE}_{name.upper().replace('-', '_')}"


def parse_accounts(specs: Sequence[str], environ: Mapping[str, str]) -> tuple[SimAccount, ...]:
    """`--account NAME:SENDERCOMPID:LOGIN[:CTIDTRADERACCOUNTID[:live]]`, each with its password in
    FIXADAPTER_SIM_PASSWORD_<NAME>.

    A password is never taken from the command line (every local user can read a process's arguments).
    Raises ConfigError naming what is wrong, never a password.
    """
    accounts: list[SimAccount] = []
    form = (
        "--account takes NAME:SENDERCOMPID:LOGIN[:CTIDTRADERACCOUNTID[:live]] "
        f"(its password in {PASSWORD_VARIABLE}_<NAME>)"
    )
    for spec in specs:
        parts = spec.split(":")
        if not 3 <= len(parts) <= 5 or not all(parts):
            raise ConfigError(f"{form}, was {len(parts)} part(s)")
        name, sender_comp_id, username = parts[:3]
        ctid: int | None = None
        if len(parts) >= 4:
            if not parts[3].isdigit() or int(parts[3]) == 0:
                raise ConfigError(f"{form}: account {name}'s fourth part is not a positive number")
            ctid = int(parts[3])
        if len(parts) == 5 and parts[4] != "live":
            raise ConfigError(f"{form}: account {name}'s fifth part is not 'live'")
        if not ACCOUNT_NAME.match(name):
            raise ConfigError(f"account name {name!r}: letters, digits, '-' and '_', at most 32")
        variable = password_variable(name)
        password = environ.get(variable)
        if not password:
            raise ConfigError(f"account {name}: set its password in {variable}")
        accounts.append(
            SimAccount(
                name=name,
                sender_comp_id=sender_comp_id,
                username=username,
                password=SecretStr(password),
                ctid_trader_account_id=ctid,
                is_live=len(parts) == 5,
            )
        )
    return tuple(accounts)


class SimConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    quote_port: Annotated[int, Field(ge=0, lt=65536)] = 5201
    trade_port: Annotated[int, Field(ge=0, lt=65536)] = 5202
    control_port: Annotated[int, Field(ge=0, lt=65536)] = 5280
    comp_id: str = "CSERVER"
    # The single account served when `accounts` is empty (today's form).
    sender_comp_id: str = "demo.sim.1234567"
    username: str = "1234567"
    password: SecretStr = SecretStr("sim-password")
    # Several accounts on the same ports; when given, they replace the single account above.
    accounts: tuple[SimAccount, ...] = ()
    dictionary: Path = Path("spec/FIX44-CTRADER.xml")
    state_path: Path | None = None
    partial_fill_parts: Annotated[int, Field(ge=1, le=100)] = 1
    fill_interval_ms: Annotated[int, Field(ge=1)] = 200
    tick_interval_ms: Annotated[int, Field(ge=1)] = 250
    seed: int | None = None
    md_rate: Annotated[int, Field(ge=0)] = 20  # size-churn X messages per second over all depth streams
    md_levels: Annotated[int, Field(ge=1, le=50)] = 5  # depth levels per side
    log_messages: bool = False
    # TLS ports beside the plain ones (cTrader: 5211/5212); None serves plain text only.
    quote_tls_port: Annotated[int, Field(ge=0, lt=65536)] | None = None
    trade_tls_port: Annotated[int, Field(ge=0, lt=65536)] | None = None
    tls_cert: Path | None = None  # PEM chain + key to serve; unset: made at start in tls_dir
    tls_key: Path | None = None
    tls_dir: Path = Path("var/sim-tls")  # a made certificate goes here; clients pin tls_dir/ca.pem
    tls_names: tuple[str, ...] = ("localhost", "127.0.0.1")  # on a made certificate
    # The Open API front (TLS only, over the same venues) and the OAuth endpoint its tokens come from.
    openapi_port: Annotated[int, Field(ge=0, lt=65536)] = 5035
    oauth_port: Annotated[int, Field(ge=0, lt=65536)] = 5290
    openapi_client_id: Annotated[str, Field(min_length=1)] = "fixadapter-sim"
    openapi_client_secret: SecretStr = SecretStr(DEFAULT_OPENAPI_SECRET)
    openapi_idle_seconds: Annotated[float, Field(gt=0)] = 30.0  # a silent client is dropped after this
    openapi_heartbeat_seconds: Annotated[float, Field(gt=0)] = 10.0  # sent when the server was silent
    openapi_max_frame: Annotated[int, Field(ge=1024)] = 1024 * 1024  # a client's frame above it: dropped
    # Orders in one ProtoOAOrderListRes; a window with more is truncated to the oldest, hasMore set.
    openapi_list_chunk: Annotated[int, Field(ge=1)] = 1000
    openapi_broker_name: str = "fixadapter simulator"
    balance: Annotated[Decimal, Field(gt=0)] = Decimal("100000.00")  # each account's, in USD
    leverage: Annotated[int, Field(ge=1)] = 100  # 1:leverage
    # USD per million USD of notional charged on every fill (sim.commission); 0 charges none.
    commission_per_million: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)] = DEFAULT_PER_MILLION

    @model_validator(mode="after")
    def _accounts_apart(self) -> SimConfig:
        for what in ("name", "sender_comp_id", "username", "ctid_trader_account_id"):
            values = [getattr(account, what) for account in self.served_accounts]
            repeated = sorted({str(value) for value in values if values.count(value) > 1})
            if repeated:
                raise ValueError(f"two accounts share the {what} {', '.join(repeated)}")
        return self

    @property
    def served_accounts(self) -> tuple[SimAccount, ...]:
        """The accounts served, first one first (the one the control port means when it names none), each
        with its ctidTraderAccountId."""
        accounts = self.accounts or (
            SimAccount(
                name=DEFAULT_ACCOUNT,
                sender_comp_id=self.sender_comp_id,
                username=self.username,
                password=self.password,
            ),
        )
        return tuple(
            account
            if account.ctid_trader_account_id is not None
            else account.model_copy(update={"ctid_trader_account_id": FIRST_CTID_TRADER_ACCOUNT_ID + index})
            for index, account in enumerate(accounts)
        )

    def account_state_path(self, index: int) -> Path | None:
        """Where account number `index` keeps its venue: the first in state_path (so a single-account
        state file stays where it was), each other beside it as <stem>.<name><suffix>."""
        if self.state_path is None or index == 0:
            return self.state_path
        name = self.served_accounts[index].name
        return self.state_path.with_name(f"{self.state_path.stem}.{name}{self.state_path.suffix}")

    def port(self, kind: SessionKind) -> int:
        return self.quote_port if kind is SessionKind.QUOTE else self.trade_port

    def tls_port(self, kind: SessionKind) -> int | None:
        return self.quote_tls_port if kind is SessionKind.QUOTE else self.trade_tls_port

    @property
    def tls(self) -> bool:
        return self.quote_tls_port is not None or self.trade_tls_port is not None

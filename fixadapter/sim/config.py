"""Simulator settings: cTrader accounts served on one QUOTE and one TRADE port, as one cTrader server serves
many accounts (each its own SenderCompID, trader login and password, its own orders and positions)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.errors import ConfigError
from fixadapter.model.requests import DEFAULT_ACCOUNT

PASSWORD_VARIABLE = "FIXADAPTER_SIM_PASSWORD"  # noqa: S105 - a variable's name; an account's adds _<NAME>
ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


class SimAccount(BaseModel):
    """One account the simulator serves: what its client puts in 49, 553 and 554."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(pattern=ACCOUNT_NAME.pattern)]
    sender_comp_id: Annotated[str, Field(min_length=1)]
    username: Annotated[str, Field(min_length=1)]
    password: SecretStr


def password_variable(name: str) -> str:
    """The environment variable holding account `name`'s password (FIXADAPTER_SIM_PASSWORD_<NAME>)."""
    return f"{PASSWORD_VARIABLE}_{name.upper().replace('-', '_')}"


def parse_accounts(specs: Sequence[str], environ: Mapping[str, str]) -> tuple[SimAccount, ...]:
    """`--account NAME:SENDERCOMPID:LOGIN`, each with its password in FIXADAPTER_SIM_PASSWORD_<NAME>.

    A password is never taken from the command line (every local user can read a process's arguments).
    Raises ConfigError naming what is wrong, never a password.
    """
    accounts: list[SimAccount] = []
    for spec in specs:
        parts = spec.split(":")
        if len(parts) != 3 or not all(parts):
            raise ConfigError(
                f"--account takes NAME:SENDERCOMPID:LOGIN (its password in "
                f"{PASSWORD_VARIABLE}_<NAME>), was {len(parts)} part(s)"
            )
        name, sender_comp_id, username = parts
        if not ACCOUNT_NAME.match(name):
            raise ConfigError(f"account name {name!r}: letters, digits, '-' and '_', at most 32")
        variable = password_variable(name)
        password = environ.get(variable)
        if not password:
            raise ConfigError(f"account {name}: set its password in {variable}")
        accounts.append(
            SimAccount(
                name=name, sender_comp_id=sender_comp_id, username=username, password=SecretStr(password)
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

    @model_validator(mode="after")
    def _accounts_apart(self) -> SimConfig:
        for what in ("name", "sender_comp_id", "username"):
            values = [getattr(account, what) for account in self.accounts]
            repeated = sorted({value for value in values if values.count(value) > 1})
            if repeated:
                raise ValueError(f"two accounts share the {what} {', '.join(repeated)}")
        return self

    @property
    def served_accounts(self) -> tuple[SimAccount, ...]:
        """The accounts served, first one first (the one the control port means when it names none)."""
        if self.accounts:
            return self.accounts
        account = SimAccount(
            name=DEFAULT_ACCOUNT,
            sender_comp_id=self.sender_comp_id,
            username=self.username,
            password=self.password,
        )
        return (account,)

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

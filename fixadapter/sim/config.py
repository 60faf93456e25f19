"""Simulator settings: one cTrader account served on a QUOTE and a TRADE port."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from fixadapter.model.enums import SessionKind


class SimConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    quote_port: Annotated[int, Field(ge=0, lt=65536)] = 5201
    trade_port: Annotated[int, Field(ge=0, lt=65536)] = 5202
    control_port: Annotated[int, Field(ge=0, lt=65536)] = 5280
    comp_id: str = "CSERVER"
    sender_comp_id: str = "demo.sim.1234567"
    username: str = "1234567"
    password: SecretStr = SecretStr("sim-password")
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

    def port(self, kind: SessionKind) -> int:
        return self.quote_port if kind is SessionKind.QUOTE else self.trade_port

    def tls_port(self, kind: SessionKind) -> int | None:
        return self.quote_tls_port if kind is SessionKind.QUOTE else self.trade_tls_port

    @property
    def tls(self) -> bool:
        return self.quote_tls_port is not None or self.trade_tls_port is not None

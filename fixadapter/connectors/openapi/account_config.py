"""An account's `openapi` section: which cTrader account, on which host, with which application.

The client secret is a SecretStr set through FIXADAPTER_ACCOUNTS__<NAME>__OPENAPI__CLIENT_SECRET (never
a committed file); the tokens live in the encrypted token file `fixadapter openapi login` wrote, under
the grant key of `client_id` and `grant`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from fixadapter.connectors.openapi.auth_config import DEFAULT_TOKEN_FILE, TOKEN_URL

__all__ = ["DEFAULT_HOSTS", "OPENAPI_PORT", "OpenApiAccountConfig", "OpenApiEnvironment"]

OPENAPI_PORT = 5035  # reference 1.1: protobuf over TLS


class OpenApiEnvironment(StrEnum):
    """Live and demo are separate servers: one connection serves accounts of one of them (reference 1.1)."""

    DEMO = "demo"
    LIVE = "live"


DEFAULT_HOSTS = {
    OpenApiEnvironment.DEMO: "demo.ctraderapi.com",
    OpenApiEnvironment.LIVE: "live.ctraderapi.com",
}
Seconds = Annotated[float, Field(gt=0, le=86_400)]


class OpenApiAccountConfig(BaseModel):
    """One cTrader account reached over the Open API (its ctidTraderAccountId, not the trader login)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ctid_trader_account_id: Annotated[
        int,
        Field(gt=0, description="the account's ctidTraderAccountId (`fixadapter openapi login` lists it)"),
    ]
    environment: OpenApiEnvironment = Field(
        OpenApiEnvironment.DEMO, description="demo or live: the server the account lives on"
    )
    host: str | None = Field(None, description="unset: the environment's host (demo/live.ctraderapi.com)")
    port: Annotated[int, Field(gt=0, lt=65536)] = OPENAPI_PORT
    ca_file: Path | None = Field(
        None, description="PEM CA bundle trusted instead of the system store (pinning); unset: system store"
    )
    client_id: Annotated[str, Field(min_length=1, description="the application's client id")]
    client_secret: SecretStr
    token_url: str = Field(TOKEN_URL, description="where an expired token is refreshed over HTTPS")
    token_file: Path = Field(DEFAULT_TOKEN_FILE, description="the encrypted token file of `openapi login`")
    token_store_url: str | None = Field(
        None,
        pattern=r"^rediss?://",
        description="redis://... : the token store shared by several daemons (unset: token_file)",
    )
    grant: Annotated[str, Field(pattern=r"^[A-Za-z0-9._\-]{1,64}$")] = "default"
    heartbeat_seconds: Seconds = 10.0
    dead_after_seconds: Seconds = Field(45.0, description="no byte received this long: reconnect")
    request_timeout_seconds: Seconds = 30.0
    lost_order_settle_seconds: Seconds = Field(
        60.0,
        description="a new order whose connection was lost after it was sent, and that the venue does not "
        "list, is awaited this long after the loss (a slow venue, often why the connection died, may still "
        "execute it); then it counts as never received: sent again if younger than "
        "orders.resend_unreceived_within_seconds, else rejected",
    )
    connect_timeout_seconds: Seconds = 15.0
    reconnect_min_seconds: Seconds = 1.0
    reconnect_max_seconds: Seconds = 60.0
    refresh_before_seconds: Seconds = Field(
        86_400.0, description="refresh the access token when less than this is left of it"
    )
    retry_rate_limited: Annotated[
        int, Field(ge=0, le=10, description="resends of a request refused for the rate limit")
    ] = 3

    @field_validator("ca_file")
    @classmethod
    def _ca_file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @model_validator(mode="after")
    def _backoff_in_order(self) -> Self:
        if self.reconnect_max_seconds < self.reconnect_min_seconds:
            raise ValueError("reconnect_max_seconds must be at least reconnect_min_seconds")
        if self.dead_after_seconds <= self.heartbeat_seconds:
            raise ValueError("dead_after_seconds must be longer than heartbeat_seconds")
        return self

    @property
    def server(self) -> str:
        return self.host or DEFAULT_HOSTS[self.environment]

    @property
    def endpoint(self) -> str:
        return f"{self.server}:{self.port} ({self.environment} Open API, TLS)"

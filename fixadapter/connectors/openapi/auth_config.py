"""The Open API application's credentials and OAuth endpoints, standalone until `accounts:` gets its
`openapi` section beside `fix`. The client secret is a SecretStr and comes from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from fixadapter.errors import ConfigError

__all__ = [
    "AUTHORIZE_URL",
    "CLIENT_ID_ENV",
    "CLIENT_SECRET_ENV",
    "TOKEN_FILE_ENV",
    "TOKEN_URL",
    "OpenApiAppConfig",
    "Scope",
]

AUTHORIZE_URL = "https://openapi.ctrader.com/apps/auth"  # reference 2.1 item 2
TOKEN_URL = "https://openapi.ctrader.com/apps/token"  # noqa: S105 - reference 2.1 item 4, a URL
CLIENT_ID_ENV = "FIXADAPTER_OPENAPI__CLIENT_ID"
CLIENT_SECRET_ENV = "FIXADAPTER_OPENAPI__CLIENT_SECRET"  # noqa: S105 - the variable's name
TOKEN_FILE_ENV = "FIXADAPTER_OPENAPI__TOKEN_FILE"  # noqa: S105 - the variable's name
DEFAULT_TOKEN_FILE = Path("var/openapi/tokens.fernet")


class Scope(StrEnum):
    """What the user grants: `trading` (full) or `accounts` (view only), reference 2.1 item 7."""

    TRADING = "trading"
    ACCOUNTS = "accounts"


class OpenApiAppConfig(BaseModel):
    """One registered application (openapi.ctrader.com/apps) and where its tokens are kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str
    client_secret: SecretStr
    scope: Scope = Scope.TRADING
    authorize_url: str = AUTHORIZE_URL
    token_url: str = TOKEN_URL
    token_file: Path = DEFAULT_TOKEN_FILE

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None, **given: object) -> OpenApiAppConfig:
        """Values `given` (None left out) over FIXADAPTER_OPENAPI__* variables; names what is missing."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {
            "client_id": env.get(CLIENT_ID_ENV),
            "client_secret": env.get(CLIENT_SECRET_ENV),
            "token_file": env.get(TOKEN_FILE_ENV),
        }
        values.update({name: value for name, value in given.items() if value is not None})
        values = {name: value for name, value in values.items() if value is not None}
        if not values.get("client_id"):
            raise ConfigError(f"the Open API client id is missing: give --client-id or set {CLIENT_ID_ENV}")
        if not values.get("client_secret"):
            raise ConfigError(
                f"the Open API client secret is missing: set {CLIENT_SECRET_ENV} (never on the command line)"
            )
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"Open API application settings: {problems}") from None

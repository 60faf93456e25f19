"""An adapter's `openapi` section for the simulator's Open API front, with a token already granted.

What `fixadapter openapi login` does for a person (authorise, store the pair encrypted) is done here in one
step through the simulator's control port, the way cTrader's application page mints a token for the
developer's own accounts ("playground"); the login flow itself has tests of its own.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from fixadapter.connectors.openapi.tokens import TOKEN_KEY_ENV, FileTokenStore, TokenPair, grant_key
from fixadapter.sim.process import SimProcess


def ensure_token_key() -> None:
    """The token file's key in this process's environment (the adapter reads it from there)."""
    os.environ.setdefault(TOKEN_KEY_ENV, Fernet.generate_key().decode())


def grant(sim: SimProcess, token_file: Path, scope: str = "trading") -> TokenPair:
    """A fresh pair from the simulator, stored where the adapter will look for it."""
    ensure_token_key()
    client_id, _secret = sim.openapi_client()
    answer = sim.openapi_grant(scope)
    pair = TokenPair.issued(
        answer["accessToken"],
        answer["refreshToken"],
        float(answer["expiresIn"]),
        str(answer.get("tokenType") or "bearer"),
        datetime.now(UTC),
    )
    FileTokenStore(token_file).save(grant_key(client_id), pair)
    return pair


def openapi_settings(
    sim: SimProcess, token_file: Path, account: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The `openapi` section reaching `account` (None: the first) of the simulator."""
    client_id, secret = sim.openapi_client()
    settings: dict[str, Any] = {
        "ctid_trader_account_id": sim.account(account).ctid_trader_account_id,
        "host": "127.0.0.1",
        "port": sim.openapi_port,
        "ca_file": str(sim.ca_file),
        "client_id": client_id,
        "client_secret": secret,
        "token_file": str(token_file),
        "reconnect_min_seconds": 0.2,
        "reconnect_max_seconds": 2.0,
    }
    settings.update(extra)
    return settings

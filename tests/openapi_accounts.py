"""An adapter's `openapi` section for the simulator's Open API front, and a token granted for it.

What `fixadapter openapi login` does for a person (authorise, store the pair encrypted) is done in one step
by SimProcess.store_openapi_grant through the simulator's control port; the login flow has tests of its own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from fixadapter.connectors.openapi.tokens import TOKEN_KEY_ENV, TokenPair
from fixadapter.sim.process import SimProcess

# Quick reconnection: tests cut connections on purpose.
RECONNECT = {"reconnect_min_seconds": 0.2, "reconnect_max_seconds": 2.0}


def ensure_token_key() -> None:
    """The token file's key in this process's environment (the adapter reads it from there)."""
    os.environ.setdefault(TOKEN_KEY_ENV, Fernet.generate_key().decode())


def openapi_settings(
    sim: SimProcess, token_file: Path, account: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The `openapi` section reaching `account` (None: the first), its tokens in `token_file`."""
    return sim.openapi_settings(token_file, account, **{**RECONNECT, **extra})


def grant(sim: SimProcess, token_file: Path) -> TokenPair:
    """A fresh pair granted and stored in `token_file`, returned."""
    ensure_token_key()
    return sim.store_openapi_grant(token_file)

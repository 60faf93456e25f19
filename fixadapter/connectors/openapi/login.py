"""`fixadapter openapi login`: the authorization-code flow from URL to stored, encrypted token pair.

It prints the authorize URL, takes the code from the loopback redirect (or a pasted code or redirect URL),
exchanges it and stores the pair before saying anything about it. What it prints names the grant, the
file, the scope and the expiry, never a token or the code; then the CLI lists the accounts the token
reaches over the Open API (accounts_list.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO
from urllib.parse import urlsplit

from pydantic import SecretStr

from fixadapter.connectors.openapi.auth_config import OpenApiAppConfig
from fixadapter.connectors.openapi.oauth import authorization_url, exchange_code, new_state
from fixadapter.connectors.openapi.redirect import RedirectListener, code_from_pasted
from fixadapter.connectors.openapi.tokens import TokenPair, TokenStore, grant_key
from fixadapter.errors import ConfigError

__all__ = ["LoginOptions", "LoginResult", "login", "login_summary"]

log = logging.getLogger("fixadapter.openapi.login")


@dataclass(frozen=True)
class LoginOptions:
    """How the code comes back: a listener on 127.0.0.1:`port` (0: any), or `paste` from `pasted`."""

    grant: str = "default"
    port: int = 0
    redirect_uri: str | None = None  # the registered one; with the listener, its port and path are bound
    paste: bool = False
    wait_seconds: float = 300.0


@dataclass(frozen=True)
class LoginResult:
    key: str
    pair: TokenPair


def _listener_for(options: LoginOptions, state: str) -> RedirectListener:
    if options.redirect_uri is None:
        return RedirectListener(state, port=options.port)
    parts = urlsplit(options.redirect_uri)
    if parts.query or parts.fragment:
        raise ConfigError(f"--redirect-uri {options.redirect_uri} must have no query or fragment")
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
        raise ConfigError(
            f"--redirect-uri {options.redirect_uri} is not a loopback URL with a port "
            "(http://127.0.0.1:PORT/path); register one like it for the application, or use --paste"
        )
    return RedirectListener(state, port=parts.port, path=parts.path or "/")


async def _listening(listener: RedirectListener) -> RedirectListener:
    """The listener started; a port in use or not ours is a ConfigError naming it."""
    try:
        await listener.start()
    except OSError as exc:
        raise ConfigError(
            f"cannot listen for the redirect on {listener.host}:{listener.port}: {exc.strerror}; "
            "free the port or give another (--port, or the port of --redirect-uri)"
        ) from None
    return listener


async def login(
    app: OpenApiAppConfig,
    store: TokenStore,
    options: LoginOptions,
    out: TextIO,
    pasted: Callable[[], str] | None = None,
    open_browser: Callable[[str], object] | None = None,
) -> LoginResult:
    """Run the flow once and store the pair under `grant_key(client_id, grant)`."""
    state = new_state()
    if options.paste:
        if options.redirect_uri is None or pasted is None:
            raise ConfigError("--paste needs --redirect-uri: the redirect URI registered for the application")
        url = authorization_url(app, options.redirect_uri, state)
        print(f"Open this URL in a browser and grant access:\n  {url}", file=out)
        print(
            "Then paste the URL the browser was sent to (or just its code=... value):", file=out, flush=True
        )
        code = code_from_pasted(await asyncio.to_thread(pasted), state)
        redirect_uri = options.redirect_uri
    else:
        async with await _listening(_listener_for(options, state)) as listener:
            url = authorization_url(app, listener.redirect_uri, state)
            print(f"Open this URL in a browser and grant access:\n  {url}", file=out)
            print(f"Waiting for the redirect on {listener.redirect_uri} ...", file=out, flush=True)
            if open_browser is not None:
                open_browser(url)
            code = await listener.wait_for_code(options.wait_seconds)
            redirect_uri = listener.redirect_uri
    return await _exchange_and_store(app, store, options.grant, code, redirect_uri)


async def _exchange_and_store(
    app: OpenApiAppConfig, store: TokenStore, grant: str, code: SecretStr, redirect_uri: str
) -> LoginResult:
    pair = await exchange_code(app, code, redirect_uri)
    key = grant_key(app.client_id, grant)
    store.save(key, pair)
    log.info("stored a new token pair for %s", key)
    return LoginResult(key, pair)


def login_summary(
    app: OpenApiAppConfig, result: LoginResult, now: datetime | None = None, *, listing: bool = True
) -> str:
    """What was stored, in words: no token, only where, for what and until when (`listing`: the accounts
    are listed next)."""
    days = result.pair.seconds_left(now or datetime.now(UTC)) / 86400
    lines = [
        f"Stored the token pair for {result.key} (scope {app.scope.value}) in {app.token_file}, "
        "encrypted with FIXADAPTER_OPENAPI_TOKEN_KEY.",
        f"Access token expires {result.pair.expires_at.isoformat(timespec='seconds')} "
        f"(in {days:.1f} days); the refresh token is kept to renew it.",
    ]
    if listing:
        lines.append(
            "The accounts this token reaches follow (`fixadapter openapi accounts` lists them again)."
        )
    else:
        lines.append("`fixadapter openapi accounts` lists the accounts this token reaches.")
    return "\n".join(lines)

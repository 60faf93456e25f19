"""The simulator's OAuth endpoints on loopback: a stand-in for openapi.ctrader.com/apps/auth and /apps/token.

`/apps/auth` approves at once (no cTrader ID page): it issues a code and redirects the browser to the
redirect URI with `code` (and our `state` echoed when given). `/apps/token` answers GET with the reference's
JSON keys (2.1 item 5: accessToken, tokenType, expiresIn, refreshToken, errorCode null, description).

Rules, as the reference gives them: a code works once and for `code_lifetime` seconds (one minute), and
only with the redirect URI it was issued for; an access token expires after `access_lifetime`; a refresh
returns a new pair and kills the old refresh and access tokens; a wrong client id or secret is refused.
cTrader's refusal codes for this endpoint are not documented: refusals use RFC 6749's names
(invalid_client, invalid_grant, unsupported_grant_type, invalid_request) in `errorCode`, HTTP 200, the
same JSON shape. Time comes from `clock`, so tests expire a code or a token by moving it, not by waiting.
The bookkeeping is `openapi.tokens.TokenRegistry`, which the simulator shares with its Open API front.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from fixadapter.sim.openapi.tokens import CodeRefused, TokenPair, TokenRegistry

__all__ = ["OAuthTestServer"]


class OAuthTestServer:
    """aiohttp.web on `host`:`port` (0: any free port, read `port` after `start`).

    The codes and tokens live in `registry` (given: shared with the simulator's Open API front).
    """

    def __init__(
        self,
        clients: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        code_lifetime: float = 60.0,
        access_lifetime: float = 2_628_000.0,
        clock: Callable[[], float] = time.time,
        registry: TokenRegistry | None = None,
    ) -> None:
        if registry is None:
            registry = TokenRegistry(clients or {}, code_lifetime, access_lifetime, clock)
        self.registry = registry
        self.host = host
        self.port = port
        self.token_requests = 0
        self._runner: web.AppRunner | None = None

    @property
    def code_lifetime(self) -> float:
        return self.registry.code_lifetime

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/apps/auth"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/apps/token"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/apps/auth", self._authorize)
        app.router.add_get("/apps/token", self._token)
        self._runner = web.AppRunner(app, access_log=None)  # its lines would carry codes and secrets
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> OAuthTestServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def issue_code(self, client_id: str, redirect_uri: str, scope: str = "trading") -> str:
        """A fresh authorization code, as if the user had granted access on the authorize page."""
        return self.registry.issue_code(client_id, redirect_uri, scope)

    def access_token_valid(self, token: str) -> bool:
        """True for a live, unexpired access token (what the Open API simulator's account auth asks)."""
        return self.registry.access_token_valid(token)

    def expire_access_token(self, token: str) -> None:
        """Make one access token expired now (the control port's "expire a token")."""
        self.registry.expire(token)

    async def _authorize(self, request: web.Request) -> web.Response:
        client_id = request.query.get("client_id", "")
        redirect_uri = request.query.get("redirect_uri", "")
        scope = request.query.get("scope", "trading")
        if client_id not in self.registry.clients or not redirect_uri or scope not in ("trading", "accounts"):
            return web.Response(status=400, text="unknown client_id, no redirect_uri or an unknown scope")
        query = {"code": self.issue_code(client_id, redirect_uri, scope)}
        if "state" in request.query:
            query["state"] = request.query["state"]
        separator = "&" if "?" in redirect_uri else "?"
        raise web.HTTPFound(f"{redirect_uri}{separator}{urlencode(query)}")

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        query = request.query
        client_id = query.get("client_id", "")
        if not self.registry.client_ok(client_id, query.get("client_secret", "")):
            return _refusal("invalid_client", "client id or client secret is wrong")
        grant_type = query.get("grant_type")
        try:
            if grant_type == "authorization_code":
                code, redirect_uri = query.get("code", ""), query.get("redirect_uri", "")
                return _pair(self.registry.redeem_code(code, client_id, redirect_uri))
            if grant_type == "refresh_token":
                return _pair(self.registry.refresh(query.get("refresh_token", ""), client_id))
        except CodeRefused as refused:
            return _refusal("invalid_grant", str(refused))
        return _refusal("unsupported_grant_type", "grant_type must be authorization_code or refresh_token")


def _pair(pair: TokenPair) -> web.Response:
    body: dict[str, Any] = {
        "accessToken": pair.access_token,
        "tokenType": "bearer",
        "expiresIn": pair.expires_in,
        "refreshToken": pair.refresh_token,
        "errorCode": None,
        "description": None,
    }
    return web.json_response(body)


def _refusal(error_code: str, description: str) -> web.Response:
    body = {
        "accessToken": None,
        "tokenType": None,
        "expiresIn": None,
        "refreshToken": None,
        "errorCode": error_code,
        "description": description,
    }
    return web.json_response(body)

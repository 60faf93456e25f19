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
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

__all__ = ["OAuthTestServer"]


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    expires_at: float
    used: bool = False


@dataclass
class _Grant:
    client_id: str
    access_token: str


class OAuthTestServer:
    """aiohttp.web on `host`:`port` (0: any free port, read `port` after `start`)."""

    def __init__(
        self,
        clients: Mapping[str, str],
        host: str = "127.0.0.1",
        port: int = 0,
        code_lifetime: float = 60.0,
        access_lifetime: float = 2_628_000.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clients = dict(clients)  # client id -> client secret
        self.host = host
        self.port = port
        self.code_lifetime = code_lifetime
        self.access_lifetime = access_lifetime
        self.clock = clock
        self.token_requests = 0
        self._codes: dict[str, _Code] = {}
        self._grants: dict[str, _Grant] = {}  # live refresh token -> its grant
        self._access: dict[str, float] = {}  # live access token -> expiry (clock seconds)
        self._runner: web.AppRunner | None = None

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

    def issue_code(self, client_id: str, redirect_uri: str) -> str:
        """A fresh authorization code, as if the user had granted access on the authorize page."""
        code = secrets.token_urlsafe(18)
        self._codes[code] = _Code(client_id, redirect_uri, self.clock() + self.code_lifetime)
        return code

    def access_token_valid(self, token: str) -> bool:
        """True for a live, unexpired access token (what the Open API simulator's account auth asks)."""
        expires_at = self._access.get(token)
        return expires_at is not None and self.clock() < expires_at

    def expire_access_token(self, token: str) -> None:
        """Make one access token expired now (the control port's "expire a token")."""
        if token in self._access:
            self._access[token] = self.clock()

    async def _authorize(self, request: web.Request) -> web.Response:
        client_id = request.query.get("client_id", "")
        redirect_uri = request.query.get("redirect_uri", "")
        if client_id not in self.clients or not redirect_uri:
            return web.Response(status=400, text="unknown client_id or no redirect_uri")
        query = {"code": self.issue_code(client_id, redirect_uri)}
        if "state" in request.query:
            query["state"] = request.query["state"]
        separator = "&" if "?" in redirect_uri else "?"
        raise web.HTTPFound(f"{redirect_uri}{separator}{urlencode(query)}")

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        query = request.query
        secret = self.clients.get(query.get("client_id", ""))
        given = query.get("client_secret", "")
        if secret is None or not hmac.compare_digest(secret.encode(), given.encode()):
            return _refusal("invalid_client", "client id or client secret is wrong")
        grant_type = query.get("grant_type")
        if grant_type == "authorization_code":
            return self._from_code(query.get("code", ""), query.get("redirect_uri", ""), query["client_id"])
        if grant_type == "refresh_token":
            return self._from_refresh(query.get("refresh_token", ""), query["client_id"])
        return _refusal("unsupported_grant_type", "grant_type must be authorization_code or refresh_token")

    def _from_code(self, code: str, redirect_uri: str, client_id: str) -> web.Response:
        issued = self._codes.get(code)
        if issued is None or issued.client_id != client_id:
            return _refusal("invalid_grant", "authorization code is unknown")
        if issued.used:
            return _refusal("invalid_grant", "authorization code was already used")
        issued.used = True
        if self.clock() >= issued.expires_at:
            return _refusal("invalid_grant", "authorization code expired")
        if redirect_uri != issued.redirect_uri:
            return _refusal("invalid_grant", "redirect_uri differs from the authorization request's")
        return self._new_pair(client_id)

    def _from_refresh(self, refresh_token: str, client_id: str) -> web.Response:
        grant = self._grants.get(refresh_token)
        if grant is None or grant.client_id != client_id:
            return _refusal("invalid_grant", "refresh token is invalid or was already used")
        del self._grants[refresh_token]
        self._access.pop(grant.access_token, None)
        return self._new_pair(client_id)

    def _new_pair(self, client_id: str) -> web.Response:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self._access[access] = self.clock() + self.access_lifetime
        self._grants[refresh] = _Grant(client_id, access)
        body: dict[str, Any] = {
            "accessToken": access,
            "tokenType": "bearer",
            "expiresIn": int(self.access_lifetime),
            "refreshToken": refresh,
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

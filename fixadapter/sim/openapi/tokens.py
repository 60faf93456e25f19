"""The simulator's OAuth bookkeeping: authorization codes, token pairs and what each access token may reach.

One registry serves both places a cTrader token is used: the OAuth HTTP endpoint (`oauth_server.py`, the
stand-in for openapi.ctrader.com/apps/token) mints and rotates pairs, and the Open API front checks the
access token of each ProtoOAAccountAuthReq and rotates pairs in-band (ProtoOARefreshTokenReq). Keeping it
in one object means a pair refreshed over HTTP is dead on the Open API too, as it is at cTrader.

Rules (reference 2.1): a code works once, for `code_lifetime` seconds and with its redirect URI; an access
token expires after `access_lifetime`; a refresh token never expires but works once, and refreshing kills
the old access token. Every token that stops working early (refreshed, invalidated) is reported to the
`revoked` listeners, so the Open API front can tell the connections that used it. Thread-safe: the HTTP
endpoint, the Open API loop and the control port call it from their own threads. Tokens are never logged.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["AccessState", "CodeRefused", "Grant", "TokenPair", "TokenRegistry"]

SCOPES = ("trading", "accounts")


class AccessState(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    UNKNOWN = "unknown"  # never issued, refreshed away or invalidated


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    scope: str


@dataclass(frozen=True)
class Grant:
    """What an access token was issued for: the app and the scope ("trading" or "accounts")."""

    client_id: str
    scope: str


class CodeRefused(ValueError):
    """An authorization code or refresh token that does not give a pair (the text says why, no secret)."""


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    scope: str
    expires_at: float
    used: bool = False


@dataclass
class _Access:
    grant: Grant
    expires_at: float
    refresh_token: str


class TokenRegistry:
    def __init__(
        self,
        clients: Mapping[str, str],
        code_lifetime: float = 60.0,
        access_lifetime: float = 2_628_000.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clients = dict(clients)  # client id -> client secret
        self.code_lifetime = code_lifetime
        self.access_lifetime = access_lifetime
        self.clock = clock
        self._lock = threading.Lock()
        self._codes: dict[str, _Code] = {}
        self._refresh: dict[str, str] = {}  # live refresh token -> its access token
        self._access: dict[str, _Access] = {}  # live access token (maybe expired) -> what it is
        # Called (outside the registry's lock) with each access token that stopped working early and why.
        self.revoked: list[Callable[[str, str], None]] = []

    def client_ok(self, client_id: str, secret: str) -> bool:
        """True when the client id is known and the secret is its secret (compared in constant time)."""
        known = self.clients.get(client_id)
        return known is not None and hmac.compare_digest(known.encode(), secret.encode())

    def issue_code(self, client_id: str, redirect_uri: str, scope: str = "trading") -> str:
        """A fresh authorization code, as if the user had granted access on the authorize page."""
        code = secrets.token_urlsafe(18)
        with self._lock:
            self._codes[code] = _Code(
                client_id, redirect_uri, _scope(scope), self.clock() + self.code_lifetime
            )
        return code

    def redeem_code(self, code: str, client_id: str, redirect_uri: str) -> TokenPair:
        """The pair an authorization code gives, once; CodeRefused saying why not."""
        with self._lock:
            issued = self._codes.get(code)
            if issued is None or issued.client_id != client_id:
                raise CodeRefused("authorization code is unknown")
            if issued.used:
                raise CodeRefused("authorization code was already used")
            issued.used = True
            if self.clock() >= issued.expires_at:
                raise CodeRefused("authorization code expired")
            if redirect_uri != issued.redirect_uri:
                raise CodeRefused("redirect_uri differs from the authorization request's")
            return self._new_pair(Grant(client_id, issued.scope))

    def grant(self, client_id: str, scope: str = "trading") -> TokenPair:
        """A pair for the app's own accounts without the redirect flow (the app page's playground)."""
        if client_id not in self.clients:
            raise ValueError(f"no app with client id {client_id!r}")
        with self._lock:
            return self._new_pair(Grant(client_id, _scope(scope)))

    def refresh(self, refresh_token: str, client_id: str | None = None) -> TokenPair:
        """A new pair for a live refresh token; the old refresh and access tokens die (CodeRefused if the
        refresh token is unknown, used, or another app's)."""
        with self._lock:
            access_token = self._refresh.get(refresh_token)
            access = self._access.get(access_token) if access_token is not None else None
            if access_token is None or access is None:
                raise CodeRefused("refresh token is invalid or was already used")
            if client_id is not None and access.grant.client_id != client_id:
                raise CodeRefused("refresh token is invalid or was already used")
            del self._refresh[refresh_token]
            del self._access[access_token]
            pair = self._new_pair(access.grant)
        self._tell_revoked(access_token, "token was refreshed")
        return pair

    def state(self, access_token: str) -> AccessState:
        with self._lock:
            access = self._access.get(access_token)
            if access is None:
                return AccessState.UNKNOWN
            return AccessState.VALID if self.clock() < access.expires_at else AccessState.EXPIRED

    def grant_of(self, access_token: str) -> Grant | None:
        """What a live (maybe expired) access token was issued for."""
        with self._lock:
            access = self._access.get(access_token)
            return access.grant if access is not None else None

    def access_token_valid(self, access_token: str) -> bool:
        return self.state(access_token) is AccessState.VALID

    def expire(self, access_token: str | None = None) -> int:
        """Make one access token (every one when None) expired now; how many were."""
        with self._lock:
            now = self.clock()
            tokens = list(self._access) if access_token is None else [access_token]
            expired = 0
            for token in tokens:
                access = self._access.get(token)
                if access is not None:
                    access.expires_at = now
                    expired += 1
            return expired

    def invalidate(self, access_token: str | None = None, reason: str = "access token was revoked") -> int:
        """Kill one access token (every one when None) and its refresh token; how many died."""
        with self._lock:
            tokens = list(self._access) if access_token is None else [access_token]
            killed = []
            for token in tokens:
                access = self._access.pop(token, None)
                if access is not None:
                    self._refresh.pop(access.refresh_token, None)
                    killed.append(token)
        for token in killed:
            self._tell_revoked(token, reason)
        return len(killed)

    def _new_pair(self, grant: Grant) -> TokenPair:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self._access[access] = _Access(grant, self.clock() + self.access_lifetime, refresh)
        self._refresh[refresh] = access
        return TokenPair(access, refresh, int(self.access_lifetime), grant.scope)

    def _tell_revoked(self, access_token: str, reason: str) -> None:
        for listener in list(self.revoked):
            listener(access_token, reason)


def _scope(scope: str) -> str:
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, was {scope!r}")
    return scope

"""The OAuth 2.0 authorization-code flow's HTTP side (reference 2.1): the authorize URL, and the token
endpoint's two grants, `exchange_code` and `refresh`, over aiohttp.

cTrader takes both grants as a GET with the client secret in the query string (as both official SDKs do),
so no URL, query or aiohttp exception text is ever put in a log line or an error: errors name the endpoint
by scheme, host and path, and carry the server's errorCode and description with every secret scrubbed.
The answer's keys are read in camelCase or snake_case (the old docs showed both); an `errorCode` that is
not null is a refusal whatever the HTTP status (the status of a refusal is not documented).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

import aiohttp
from pydantic import SecretStr

from fixadapter.connectors.openapi.auth_config import OpenApiAppConfig
from fixadapter.connectors.openapi.tokens import TokenPair
from fixadapter.errors import FixAdapterError

__all__ = [
    "AuthorizationCodeRefused",
    "ClientRefused",
    "OAuthError",
    "RefreshTokenRefused",
    "TokenEndpointError",
    "authorization_url",
    "exchange_code",
    "new_state",
    "refresh",
]

LOGIN_AGAIN = "run `fixadapter openapi login` again"
log = logging.getLogger("fixadapter.openapi.oauth")


class OAuthError(FixAdapterError):
    """Base of the OAuth flow's errors; every text says what to do and holds no token or secret."""


class TokenEndpointError(OAuthError):
    """The token endpoint could not be reached or gave an answer that is not a token answer."""


class ClientRefused(OAuthError):
    """The endpoint refused the application: wrong client id or secret."""


class AuthorizationCodeRefused(OAuthError):
    """The code is unknown, expired (it lives one minute), already used, or for another redirect URI."""


class RefreshTokenRefused(OAuthError):
    """The refresh token is unknown or was already used (it works once); only a new login helps."""


def new_state() -> str:
    """An unguessable CSRF state for one authorization request."""
    return secrets.token_urlsafe(24)


def authorization_url(app: OpenApiAppConfig, redirect_uri: str, state: str | None = None) -> str:
    """The URL the user opens to grant access (reference 2.1 item 2), with our CSRF `state`."""
    query = {"client_id": app.client_id, "redirect_uri": redirect_uri, "scope": app.scope.value}
    if state is not None:
        query["state"] = state
    return f"{app.authorize_url}?{urlencode(query)}"


async def exchange_code(
    app: OpenApiAppConfig, code: SecretStr, redirect_uri: str, timeout: float = 30.0
) -> TokenPair:
    """Trade an authorization code for a token pair (reference 2.1 item 4)."""
    query = {
        "grant_type": "authorization_code",
        "code": code.get_secret_value(),
        "redirect_uri": redirect_uri,
    }
    return await _token_request(app, query, timeout, refused=_code_refused)


async def refresh(app: OpenApiAppConfig, refresh_token: SecretStr, timeout: float = 30.0) -> TokenPair:
    """Trade a refresh token for a new pair (reference 2.1 item 6); the old refresh token is then dead."""
    query = {"grant_type": "refresh_token", "refresh_token": refresh_token.get_secret_value()}
    return await _token_request(app, query, timeout, refused=_refresh_refused)


def _code_refused(reason: str) -> OAuthError:
    return AuthorizationCodeRefused(
        f"the authorization code was refused ({reason}): a code works once and for one minute; {LOGIN_AGAIN} "
        "and finish it within the minute"
    )


def _refresh_refused(reason: str) -> OAuthError:
    return RefreshTokenRefused(
        f"the refresh token was refused ({reason}): it was already used or the grant was revoked; "
        f"{LOGIN_AGAIN}"
    )


def _endpoint(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _scrub(text: str, hidden: list[str]) -> str:
    for value in hidden:
        if value:
            text = text.replace(value, "******")
    return text


async def _token_request(
    app: OpenApiAppConfig, query: dict[str, str], timeout: float, refused: Callable[[str], OAuthError]
) -> TokenPair:
    grant = query["grant_type"]
    hidden = [app.client_secret.get_secret_value(), query.get("code", ""), query.get("refresh_token", "")]
    params = {**query, "client_id": app.client_id, "client_secret": hidden[0]}
    endpoint = _endpoint(app.token_url)
    sent_at = datetime.now(UTC)
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(app.token_url, params=params, allow_redirects=False) as response,
        ):
            status = response.status
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        why = _scrub(str(exc), hidden) or type(exc).__name__
        raise TokenEndpointError(
            f"the token endpoint {endpoint} gave no token answer ({type(exc).__name__}: {why}); check the "
            "network and the token URL, then try again"
        ) from None
    access, refresh_token, expires_in, token_type = _read_answer(body, status, endpoint, hidden, refused)
    pair = TokenPair.issued(access, refresh_token, expires_in, token_type, at=sent_at)
    log.info("%s grant answered by %s: access token expires %s", grant, endpoint, pair.expires_at)
    return pair


def _read_answer(
    body: object, status: int, endpoint: str, hidden: list[str], refused: Callable[[str], OAuthError]
) -> tuple[str, str, float, str]:
    if not isinstance(body, dict):
        raise TokenEndpointError(
            f"the token endpoint {endpoint} answered HTTP {status} without a JSON object"
        )
    error_code = body.get("errorCode") or body.get("error")
    if error_code:
        description = body.get("description") or body.get("error_description") or ""
        reason = _scrub(f"{error_code}: {description}".rstrip(": "), hidden)
        if "client" in str(error_code).lower():
            raise ClientRefused(
                f"the token endpoint refused the application ({reason}): check the client id and "
                f"FIXADAPTER_OPENAPI__CLIENT_SECRET against openapi.ctrader.com/apps (the app must be Active)"
            )
        raise refused(reason)
    access = body.get("accessToken") or body.get("access_token")
    refresh_token = body.get("refreshToken") or body.get("refresh_token")
    expires_in = body.get("expiresIn") or body.get("expires_in")
    if not (
        isinstance(access, str) and isinstance(refresh_token, str) and isinstance(expires_in, int | float)
    ):
        raise TokenEndpointError(
            f"the token endpoint {endpoint} answered HTTP {status} without accessToken, refreshToken and "
            "expiresIn"
        )
    token_type = str(body.get("tokenType") or body.get("token_type") or "bearer")
    return access, refresh_token, float(expires_in), token_type

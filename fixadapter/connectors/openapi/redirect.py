"""Where the authorization code comes back: a loopback listener for the browser's redirect, or a code
(or the whole redirect URL) pasted by the user when the browser runs on another machine.

The listener binds 127.0.0.1 only and takes the first redirect whose `state` is ours (CSRF check, compared
in constant time). A redirect with a wrong or missing state is answered 400 and ignored, so a forged
request can neither plant a code nor end the wait. The code never appears in a log line or a page.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from urllib.parse import parse_qs, urlsplit

from aiohttp import web
from pydantic import SecretStr

from fixadapter.connectors.openapi.oauth import LOGIN_AGAIN, OAuthError

__all__ = ["AuthorizationDenied", "RedirectListener", "RedirectTimeout", "code_from_pasted"]

log = logging.getLogger("fixadapter.openapi.redirect")
DONE_PAGE = (
    "<!doctype html><title>fixadapter</title><p>fixadapter received the authorization. "
    "You can close this window and return to the terminal.</p>"
)
REFUSED_PAGE = "<!doctype html><title>fixadapter</title><p>{reason}</p>"


class AuthorizationDenied(OAuthError):
    """The user or cTrader declined the authorization (the redirect carried `error`), or a pasted text
    held no usable code."""


class RedirectTimeout(OAuthError, TimeoutError):
    """No redirect with our state arrived in time."""


class RedirectListener:
    """A one-shot HTTP listener on 127.0.0.1 (`port` 0: any free port) for `path`."""

    def __init__(self, state: str, port: int = 0, path: str = "/callback", host: str = "127.0.0.1") -> None:
        self.state = state
        self.host = host
        self.port = port
        self.path = path
        self.ignored = 0  # redirects refused for a wrong or missing state
        self._result: asyncio.Future[SecretStr] | None = None
        self._runner: web.AppRunner | None = None

    @property
    def redirect_uri(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    async def start(self) -> None:
        self._result = asyncio.get_running_loop().create_future()
        app = web.Application()
        app.router.add_get(self.path, self._redirected)
        self._runner = web.AppRunner(app, access_log=None)  # the access log would carry the code
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> RedirectListener:
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def wait_for_code(self, timeout: float) -> SecretStr:
        """The code of the first redirect with our state; `AuthorizationDenied` if the user declined."""
        if self._result is None:
            raise RuntimeError("start the listener first")
        try:
            return await asyncio.wait_for(asyncio.shield(self._result), timeout)
        except TimeoutError:
            raise RedirectTimeout(
                f"no redirect reached {self.redirect_uri} within {timeout:g} s; {LOGIN_AGAIN} (or use "
                "--paste with the redirect URL from the browser's address bar)"
            ) from None

    async def _redirected(self, request: web.Request) -> web.Response:
        state = request.query.get("state", "")
        if not hmac.compare_digest(state.encode(), self.state.encode()):
            self.ignored += 1
            log.warning("ignored a redirect to %s with a wrong or missing state (CSRF check)", self.path)
            return _page("This authorization does not belong to this login (state mismatch).", 400)
        if self._result is None or self._result.done():
            return _page("fixadapter already received an authorization; close this window.", 409)
        error = request.query.get("error")
        code = request.query.get("code", "")
        if error or not code:
            why = error or "no code in the redirect"
            self._result.set_exception(
                AuthorizationDenied(f"the authorization was not granted ({why}); {LOGIN_AGAIN}")
            )
            return _page(f"The authorization was not granted ({why}).", 400)
        self._result.set_result(SecretStr(code))
        log.info("authorization redirect received on %s", self.path)
        return web.Response(text=DONE_PAGE, content_type="text/html")


def _page(reason: str, status: int) -> web.Response:
    return web.Response(text=REFUSED_PAGE.format(reason=reason), status=status, content_type="text/html")


def code_from_pasted(text: str, state: str | None = None) -> SecretStr:
    """The code from a pasted redirect URL (its `state` must be ours when it has one) or a bare code."""
    text = text.strip()
    if not text:
        raise AuthorizationDenied(f"nothing was pasted; {LOGIN_AGAIN}")
    if "code=" not in text and "://" not in text and "?" not in text:
        return SecretStr(text)
    query = parse_qs(urlsplit(text).query if "?" in text or "://" in text else text)
    if "error" in query:
        raise AuthorizationDenied(f"the authorization was not granted ({query['error'][0]}); {LOGIN_AGAIN}")
    codes = query.get("code")
    if not codes or not codes[0]:
        raise AuthorizationDenied("the pasted URL has no code=...; paste the whole redirect URL or the code")
    pasted_state = query.get("state", [None])[0]
    if state is not None and pasted_state is not None and not hmac.compare_digest(pasted_state, state):
        raise AuthorizationDenied(
            f"the pasted redirect belongs to another login (state mismatch); {LOGIN_AGAIN}"
        )
    return SecretStr(codes[0])

"""The daemon's HTTP API: health, readiness, Prometheus metrics, orders, positions and the kill switch.

    GET  /healthz       200 {"status": "ok"} while the process and its event loop answer
    GET  /readyz        200 when TRADE is logged on and reconciled and no blocking alarm is active,
                        else 503: {"ready": bool, "reason": str, "kill_switch": bool,
                        "alarms": {"count": int, "shown": [{kind, key, text, blocking, since}]}}
    GET  /metrics       the adapter's Prometheus registry (text exposition format)
    GET  /orders        ?status=open|done|all (all) &strategy=NAME &limit=N (500): newest first
    GET  /positions     the venue's open positions as last stored
    GET  /kill-switch   {"state": {...}, "history": [newest first]}
    POST /kill-switch   {"action": "engage"|"release", "by": str, "reason": str}
                        engage: {"state", "changed", "sweep": {"sent", "already_cancelling", "failed"}}
                        release: {"state", "changed"}

Every answer but /metrics is JSON; an error is {"error": "..."} with 400, 401, 404, 405, 415 or 500. When
`daemon.http.token` is set, POST needs `Authorization: Bearer <token>`; its body must be sent as
application/json (415 otherwise), which keeps web pages in a browser on this host from posting it.
The server runs on the caller's event loop, beside the adapter; a handler that raises answers 500 and
the server goes on.
"""

from __future__ import annotations

import errno
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from fixadapter.errors import ConfigError
from fixadapter.risk.kill_switch import KillSwitchEvent

if TYPE_CHECKING:
    from fixadapter.api import Adapter
    from fixadapter.config import HttpConfig
    from fixadapter.model.orders import Order

log = logging.getLogger("fixadapter.http")

ORDER_LIMIT_DEFAULT = 500
ORDER_LIMIT_MAX = 100_000
HISTORY_SHOWN = 20
SHUTDOWN_SECONDS = 5.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class BadRequest(ValueError):
    """Answered with 400 and its message."""


class Unauthorized(PermissionError):
    """Answered with 401 and its message."""


class UnsupportedMediaType(ValueError):
    """Answered with 415 and its message."""


class KillSwitchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["engage", "release"]
    by: Text
    reason: Text


class HttpApi:
    def __init__(self, adapter: Adapter, config: HttpConfig) -> None:
        self.adapter = adapter
        self.config = config
        self._token = config.token.get_secret_value().encode() if config.token is not None else None
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.app = web.Application(middlewares=[self._errors])
        self.app.router.add_get("/healthz", self.healthz)
        self.app.router.add_get("/readyz", self.readyz)
        self.app.router.add_get("/metrics", self.metrics)
        self.app.router.add_get("/orders", self.orders)
        self.app.router.add_get("/positions", self.positions)
        self.app.router.add_get("/kill-switch", self.kill_switch)
        self.app.router.add_post("/kill-switch", self.change_kill_switch)

    async def start(self) -> int:
        """Listen on config.host:config.port (0 picks a free port); returns the port bound."""
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(_bind_problem(self.config.host, self.config.port, exc)) from None
        self._runner = runner
        self.port = _bound_port(runner, self.config.port)
        log.info("HTTP on http://%s:%d", self.config.host, self.port)
        return self.port

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # -- endpoints ------------------------------------------------------------------------------

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, _request: web.Request) -> web.Response:
        ready = self.adapter.ready
        body = {
            "ready": ready,
            "reason": self.adapter.readiness(),
            "kill_switch": self.adapter.kill_switch().engaged,
            "alarms": self.adapter.metrics.alarms.describe(),
        }
        return web.json_response(body, status=200 if ready else 503)

    async def metrics(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.adapter.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def orders(self, request: web.Request) -> web.Response:
        status, strategy, limit = _order_query(request)
        orders = [o for o in await self.adapter.orders() if _wanted(o, status, strategy)]
        orders.sort(key=lambda o: o.created_at, reverse=True)
        return web.json_response([o.model_dump(mode="json") for o in orders[:limit]])

    async def positions(self, _request: web.Request) -> web.Response:
        return web.json_response([p.model_dump(mode="json") for p in await self.adapter.positions()])

    async def kill_switch(self, _request: web.Request) -> web.Response:
        history = self.adapter.pre_trade.kill_switch.history()[-HISTORY_SHOWN:]
        return web.json_response(
            {
                "state": self.adapter.kill_switch().as_dict(),
                "history": [_event(e) for e in reversed(history)],
            }
        )

    async def change_kill_switch(self, request: web.Request) -> web.Response:
        self._authorize(request)
        change = await _kill_switch_request(request)
        peer = request.remote or "?"
        log.warning("kill switch %s asked over HTTP from %s by %s", change.action, peer, change.by)
        if change.action == "engage":
            state, sweep = await self.adapter.engage_kill_switch(change.by, change.reason)
            body = {"state": state.as_dict(), "changed": state.changed, "sweep": sweep.as_dict()}
        else:
            state = await self.adapter.release_kill_switch(change.by, change.reason)
            body = {"state": state.as_dict(), "changed": state.changed}
        return web.json_response(body)

    # -- plumbing -------------------------------------------------------------------------------

    def _authorize(self, request: web.Request) -> None:
        if self._token is None:
            return
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self._token):
            log.warning("kill switch change from %s refused: missing or wrong token", request.remote or "?")
            raise Unauthorized("this endpoint needs Authorization: Bearer <daemon.http.token>")

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every error as JSON: 400 for a bad request, aiohttp's own statuses (404, 405), 500 otherwise."""
        try:
            return await handler(request)
        except BadRequest as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except UnsupportedMediaType as exc:
            return web.json_response({"error": str(exc)}, status=415)
        except Unauthorized as exc:
            return web.json_response({"error": str(exc)}, status=401, headers={"WWW-Authenticate": "Bearer"})
        except web.HTTPException as exc:
            return web.json_response(
                {"error": f"{exc.reason}: {request.method} {request.path}"},
                status=exc.status,
                headers={k: v for k, v in exc.headers.items() if k.lower() == "allow"},
            )
        except Exception as exc:
            log.exception("HTTP %s %s failed", request.method, request.path)
            return web.json_response(
                {"error": f"internal error ({type(exc).__name__}); see the daemon's log"}, status=500
            )


def _order_query(request: web.Request) -> tuple[str, str | None, int]:
    query = request.query
    status = query.get("status", "all")
    if status not in ("open", "done", "all"):
        raise BadRequest(f"status must be open, done or all, not {status!r}")
    strategy = query.get("strategy") or None
    text = query.get("limit", str(ORDER_LIMIT_DEFAULT))
    try:
        limit = int(text)
    except ValueError:
        raise BadRequest(f"limit must be a whole number from 1 to {ORDER_LIMIT_MAX}, not {text!r}") from None
    if not 1 <= limit <= ORDER_LIMIT_MAX:
        raise BadRequest(f"limit must be a whole number from 1 to {ORDER_LIMIT_MAX}, not {text!r}")
    return status, strategy, limit


def _wanted(order: Order, status: str, strategy: str | None) -> bool:
    if strategy is not None and order.strategy != strategy:
        return False
    return status == "all" or (order.is_open if status == "open" else order.is_done)


async def _kill_switch_request(request: web.Request) -> KillSwitchRequest:
    # A browser sends a cross-site form or text/plain POST without asking first; application/json it
    # must ask about (CORS preflight), which this server never grants. So a web page cannot flip the switch.
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            f"send the body as Content-Type: application/json, not {request.content_type or 'nothing'}"
        )
    try:
        body: Any = await request.json()
    except ValueError as exc:
        raise BadRequest(f"the body must be a JSON object: {exc}") from None
    try:
        return KillSwitchRequest.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise BadRequest(f"bad kill switch request: {problems}") from None


def _event(event: KillSwitchEvent) -> dict[str, str]:
    return {"action": str(event.action), "by": event.by, "reason": event.reason, "at": event.at.isoformat()}


def _bound_port(runner: web.AppRunner, asked: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return asked


def _bind_problem(host: str, port: int, error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return (
            f"HTTP port {port} on {host} is already in use (another fixadapter?); "
            "set daemon.http.port to a free port (0 picks one) or stop the other process"
        )
    return f"cannot listen for HTTP on {host}:{port}: {error.strerror or error}; check daemon.http.host/port"

"""The daemon's HTTP API: health, readiness, Prometheus metrics, orders, positions and the kill switch.

    GET  /healthz       200 {"status": "ok"} while the process and its event loop answer
    GET  /readyz        200 when every account's TRADE is logged on and reconciled and no blocking alarm is
                        active, else 503: {"ready": bool, "reason": str, "kill_switch": bool,
                        "alarms": {"count": int, "shown": [{kind, key, text, blocking, since}]},
                        "accounts": {name: {"ready", "reason", "kill_switch", "alarms"}}};
                        ?account=NAME: that account's alone
    GET  /metrics       the Prometheus registry of every account (series labelled `account`)
    GET  /orders        ?status=open|done|all (all) &strategy=NAME &limit=N (100, max 1000) &before=CURSOR:
                        {"orders": [newest first], "next": "/orders?...&before=..." or null on the last page}
    POST /orders/{cl_ord_id}/cancel   {"account"?: str, "by"?: str} (JSON body): ask the venue to cancel
                        one order; DELETE /orders/{cl_ord_id}?account=NAME does the same.
                        {"account", "order": {...}} (the order as it now is, usually cancel_requested);
                        404 when the account has no such order, 409 when it cannot be cancelled (done,
                        a cancel already asked, TRADE not ready), with the reason
    GET  /positions     open positions as last stored (kept from fills, checked with the venue on a timer),
                        each with its `symbol` name beside `symbol_id` (null if the SecurityList lacks it)
    GET  /kill-switch   {"state": {...}, "history": [newest first]}
    POST /kill-switch   {"action": "engage"|"release", "by": str, "reason": str, "account"?: str}
                        engage: {"state", "changed", "sweep": {"sent", "already_cancelling", "failed"}}
                        release: {"state", "changed"}

/orders, /positions and /kill-switch are about one account: `?account=NAME` (in the POST body,
"account"), which may be left out while the daemon trades one; an account it does not trade is 404.
Every answer but /metrics is JSON; an error is {"error": "..."} with 400, 401, 404, 405, 409, 415, 421 or 500.
When `daemon.http.token` is set, every endpoint but /healthz, /readyz and /metrics needs
`Authorization: Bearer <token>` (orders and positions are trading information). A request whose Host
header is not the bound host, localhost, 127.0.0.1, ::1 or one of `daemon.http.allowed_hosts` is answered
421 (a web page reaching us through DNS rebinding names its own host). The POST body must be sent as
application/json (415 otherwise), which keeps web pages in a browser on this host from posting it.
The server runs on the caller's event loop, beside the accounts, and reads the store on a read path of
its own (never an engine's store thread); a handler that raises answers 500 and the server goes on.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlencode

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from fixadapter.daemon.http_guard import (
    ConnectionLimit,
    QuietServerLog,
    RateLimitedNote,
    allowed_host_names,
    host_name,
)
from fixadapter.errors import ConfigError, OrderNotFound, OrderRejected
from fixadapter.risk.kill_switch import KillSwitchEvent
from fixadapter.store.reads import BadCursor, Cursor, StatusFilter

if TYPE_CHECKING:
    from fixadapter.api import Adapter, Desk
    from fixadapter.config import HttpConfig

log = logging.getLogger("fixadapter.http")

ORDER_LIMIT_DEFAULT = 100
ORDER_LIMIT_MAX = 1000
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and Prometheus need no token
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


class MisdirectedRequest(ValueError):
    """Answered with 421 and its message: the Host header names a server this is not."""


class UnknownAccount(LookupError):
    """Answered with 404 and its message."""


class NotFound(LookupError):
    """Answered with 404 and its message."""


class Conflict(ValueError):
    """Answered with 409 and its message: the request is understood but the order's state refuses it."""


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    account: str | None = None
    by: Text | None = None


class KillSwitchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["engage", "release"]
    by: Text
    reason: Text
    account: str | None = None


class HttpApi:
    def __init__(self, desk: Desk, config: HttpConfig) -> None:
        self.desk = desk
        self.config = config
        self._token = config.token.get_secret_value().encode() if config.token is not None else None
        self._hosts = allowed_host_names(config.host, config.allowed_hosts)
        self._refused = desk.metrics.http_requests_refused
        self._refusal_note = RateLimitedNote("HTTP requests refused (wrong Host header or token)")
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._limit: ConnectionLimit | None = None
        self.port: int | None = None
        self.app = web.Application(middlewares=[self._errors, self._guard])
        self.app.router.add_get("/healthz", self.healthz)
        self.app.router.add_get("/readyz", self.readyz)
        self.app.router.add_get("/metrics", self.metrics)
        self.app.router.add_get("/orders", self.orders)
        self.app.router.add_post("/orders/{cl_ord_id}/cancel", self.cancel_order)
        self.app.router.add_delete("/orders/{cl_ord_id}", self.cancel_order)
        self.app.router.add_get("/positions", self.positions)
        self.app.router.add_get("/kill-switch", self.kill_switch)
        self.app.router.add_post("/kill-switch", self.change_kill_switch)

    def _account(self, name: str | None) -> Adapter:
        """The account a request is about: named, or the only one."""
        if name is None:
            only = self.desk.only()
            if only is None:
                names = ", ".join(self.desk.adapters)
                raise BadRequest(f"this daemon trades several accounts ({names}): name one with account=")
            return only
        adapter = self.desk.adapters.get(name)
        if adapter is None:
            raise UnknownAccount(
                f"no account named {name[:40]!r}; this daemon trades {', '.join(self.desk.adapters)}"
            )
        return adapter

    async def start(self) -> int:
        """Listen on config.host:config.port (0 picks a free port); returns the port bound."""
        runner = web.AppRunner(
            self.app,
            access_log=None,
            shutdown_timeout=SHUTDOWN_SECONDS,
            keepalive_timeout=self.config.idle_timeout_seconds,
            logger=QuietServerLog(),
        )
        await runner.setup()
        server = runner.server
        if server is None:  # pragma: no cover - setup() always makes one
            raise RuntimeError("aiohttp's runner made no server")
        limit = ConnectionLimit(
            server, self.config.max_connections, self.desk.metrics.http_connections_closed
        )
        try:
            listener = await asyncio.get_running_loop().create_server(
                limit.admit, self.config.host, self.config.port, reuse_address=True
            )
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(_bind_problem(self.config.host, self.config.port, exc)) from None
        self._runner, self._listener, self._limit = runner, listener, limit
        self.port = int(listener.sockets[0].getsockname()[1])
        log.info("HTTP on http://%s:%d", self.config.host, self.port)
        return self.port

    async def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()  # no new connections; the runner then closes the open ones
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        if listener is not None:
            await listener.wait_closed()

    # -- endpoints ------------------------------------------------------------------------------

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        name = request.query.get("account")
        if name is not None:
            one = _readiness(self._account(name))
            return web.json_response(one, status=200 if one["ready"] else 503)
        accounts = {adapter.account: _readiness(adapter) for adapter in self.desk}
        ready = all(a["ready"] for a in accounts.values())
        if len(accounts) == 1:
            reason = next(iter(accounts.values()))["reason"]
        else:
            reason = (
                "; ".join(f"{n}: {a['reason']}" for n, a in accounts.items() if not a["ready"]) or "ready"
            )
        body = {
            "ready": ready,
            "reason": reason,
            "kill_switch": any(a["kill_switch"] for a in accounts.values()),
            "alarms": _all_alarms({name: a["alarms"] for name, a in accounts.items()}),
            "accounts": accounts,
        }
        return web.json_response(body, status=200 if ready else 503)

    async def metrics(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.desk.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def orders(self, request: web.Request) -> web.Response:
        adapter = self._account(request.query.get("account"))
        status, strategy, limit, before = _order_query(request)
        page = await adapter.reads.order_page(status, strategy, limit, before)
        following = None
        if page.next is not None:
            query = {"status": status, **({"strategy": strategy} if strategy else {}), "limit": str(limit)}
            if "account" in request.query:
                query["account"] = adapter.account
            following = f"/orders?{urlencode({**query, 'before': page.next.encode()})}"
        return web.json_response(
            {"orders": [o.model_dump(mode="json") for o in page.orders], "next": following}
        )

    async def positions(self, request: web.Request) -> web.Response:
        adapter = self._account(request.query.get("account"))
        catalog = adapter.engine.catalog
        answer = []
        for position in await adapter.positions():
            instrument = catalog.by_id(position.symbol_id)
            row = position.model_dump(mode="json")
            answer.append({"symbol": instrument.name if instrument else None, **row})
        return web.json_response(answer)

    async def cancel_order(self, request: web.Request) -> web.Response:
        """Cancel one order: POST with a JSON body (as the kill switch, so a web page cannot post it) or
        DELETE (which a browser never sends cross-site without asking first)."""
        asked = await _cancel_request(request) if request.method == "POST" else CancelRequest()
        adapter = self._account(asked.account or request.query.get("account"))
        cl_ord_id = request.match_info["cl_ord_id"]
        order = await adapter.order(cl_ord_id)
        if order is None:
            raise NotFound(f"account {adapter.account} has no order {cl_ord_id[:64]!r}")
        log.warning(
            "cancel of order %s of account %s asked over HTTP from %s by %s",
            cl_ord_id,
            adapter.account,
            request.remote or "?",
            asked.by or "?",
        )
        try:
            cancelling = await adapter.cancel(cl_ord_id)
        except OrderNotFound as exc:
            raise NotFound(str(exc)) from None
        except OrderRejected as exc:
            raise Conflict(f"order {cl_ord_id} cannot be cancelled: {exc}") from None
        return web.json_response({"account": adapter.account, "order": cancelling.model_dump(mode="json")})

    async def kill_switch(self, request: web.Request) -> web.Response:
        adapter = self._account(request.query.get("account"))
        history = adapter.pre_trade.kill_switch.history()[-HISTORY_SHOWN:]
        return web.json_response(
            {
                "account": adapter.account,
                "state": adapter.kill_switch().as_dict(),
                "history": [_event(e) for e in reversed(history)],
            }
        )

    async def change_kill_switch(self, request: web.Request) -> web.Response:
        change = await _kill_switch_request(request)
        adapter = self._account(change.account or request.query.get("account"))
        peer = request.remote or "?"
        log.warning(
            "kill switch %s of account %s asked over HTTP from %s by %s",
            change.action,
            adapter.account,
            peer,
            change.by,
        )
        if change.action == "engage":
            state, sweep = await adapter.engage_kill_switch(change.by, change.reason)
            body = {
                "account": adapter.account,
                "state": state.as_dict(),
                "changed": state.changed,
                "sweep": sweep.as_dict(),
            }
        else:
            state = await adapter.release_kill_switch(change.by, change.reason)
            body = {"account": adapter.account, "state": state.as_dict(), "changed": state.changed}
        return web.json_response(body)

    # -- plumbing -------------------------------------------------------------------------------

    def _authorize(self, request: web.Request) -> None:
        if self._token is None or request.path in PUBLIC_PATHS:
            return
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self._token):
            self._refuse("token", f"{_request_line(request)}: no valid token")
            raise Unauthorized("this endpoint needs Authorization: Bearer <daemon.http.token>")

    def _check_host(self, request: web.Request) -> None:
        header = request.headers.get("Host")
        if header is None:
            self._refuse("host", f"{_request_line(request)}: no Host")
            raise BadRequest("a Host header is required")
        if host_name(header) not in self._hosts:
            self._refuse("host", f"{_request_line(request)}: Host {header[:100]!r}")
            raise MisdirectedRequest(
                f"Host {header[:100]!r} is not this server; if clients reach it by that name, "
                "add it to daemon.http.allowed_hosts"
            )

    def _refuse(self, reason: str, detail: str) -> None:
        self._refused.labels(reason).inc()
        self._refusal_note.add(detail)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Host check and token before any handler; the connection counts as busy while it is answered."""
        self._check_host(request)
        self._authorize(request)
        busy = self._limit.busy if self._limit is not None else set()
        busy.add(request.protocol)
        try:
            return await handler(request)
        finally:
            busy.discard(request.protocol)

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
        except MisdirectedRequest as exc:
            return web.json_response({"error": str(exc)}, status=421)
        except (UnknownAccount, NotFound) as exc:
            return web.json_response({"error": str(exc)}, status=404)
        except Conflict as exc:
            return web.json_response({"error": str(exc)}, status=409)
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


def _readiness(adapter: Adapter) -> dict[str, Any]:
    ready = adapter.ready
    return {
        "ready": ready,
        "reason": adapter.readiness(),
        "kill_switch": adapter.kill_switch().engaged,
        "alarms": adapter.metrics.alarms.describe(),
    }


def _all_alarms(each: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every account's alarms in one description, each naming its account (one account's as it is)."""
    if len(each) == 1:
        return next(iter(each.values()))
    not_kept: dict[str, int] = {}
    for described in each.values():
        for kind, count in described["not_kept"].items():
            not_kept[kind] = not_kept.get(kind, 0) + count
    return {
        "count": sum(d["count"] for d in each.values()),
        "shown": [{**alarm, "account": name} for name, d in each.items() for alarm in d["shown"]],
        "not_kept": not_kept,
    }


def _request_line(request: web.Request) -> str:
    """Method, path and peer for a log note, the client's part cut short (it is theirs to make long)."""
    return f"{request.method[:16]} {request.path[:100]} from {request.remote or '?'}"


def _order_query(request: web.Request) -> tuple[StatusFilter, str | None, int, Cursor | None]:
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
        raise BadRequest(
            f"limit must be a whole number from 1 to {ORDER_LIMIT_MAX}, not {text!r}; "
            "follow `next` for further pages"
        )
    before = None
    if "before" in query:
        try:
            before = Cursor.decode(query["before"])
        except BadCursor as exc:
            raise BadRequest(f"before must be taken from a page's `next` link: {exc}") from None
    return status, strategy, limit, before  # type: ignore[return-value]  # checked above


async def _json_body(request: web.Request) -> Any:
    # A browser sends a cross-site form or text/plain POST without asking first; application/json it
    # must ask about (CORS preflight), which this server never grants. So a web page cannot post it.
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            f"send the body as Content-Type: application/json, not {request.content_type or 'nothing'}"
        )
    try:
        return await request.json()
    except ValueError as exc:
        raise BadRequest(f"the body must be a JSON object: {exc}") from None


def _problems(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors())


async def _kill_switch_request(request: web.Request) -> KillSwitchRequest:
    body = await _json_body(request)
    try:
        return KillSwitchRequest.model_validate(body)
    except ValidationError as exc:
        raise BadRequest(f"bad kill switch request: {_problems(exc)}") from None


async def _cancel_request(request: web.Request) -> CancelRequest:
    body = await _json_body(request)
    try:
        return CancelRequest.model_validate(body)
    except ValidationError as exc:
        raise BadRequest(f"bad cancel request: {_problems(exc)}") from None


def _event(event: KillSwitchEvent) -> dict[str, str]:
    return {"action": str(event.action), "by": event.by, "reason": event.reason, "at": event.at.isoformat()}


def _bind_problem(host: str, port: int, error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return (
            f"HTTP port {port} on {host} is already in use (another fixadapter?); "
            "set daemon.http.port to a free port (0 picks one) or stop the other process"
        )
    return f"cannot listen for HTTP on {host}:{port}: {error.strerror or error}; check daemon.http.host/port"

"""The simulator's control port (HTTP/JSON on loopback) for tests and demos: read state, move prices,
switch on faults, force a logout, read and steer the QUOTE port's market data. It is the venue's back
office, not part of cTrader's protocol.

The simulator serves several accounts; what is kept per account (orders, positions, logons, faults,
sessions) is read and steered for one account, named by "account" (a query parameter on GET, a key in a
POST body). A request that names none means the first account (the only one in the single-account form).
An unknown account is answered with 404. Prices and market data are one market for every account.

    GET  /health                         {"ok": true}
    GET  /accounts                       [{"name", "sender_comp_id", "username", "logged_on": {"TRADE": bool,
                                           "QUOTE": bool}}, ...] (first account first; never a password)
    GET  /state?account=A                the account's orders, positions, TRADE logons and refused logons,
                                         the quotes, "accounts" (names) and "logons_refused_no_such_login"
                                         (TRADE logons from a SenderCompID no account has)
    POST /quote    {"symbol_id", "bid", "ask"}
    POST /scenario {"account"?, "partial_fill_parts"?, "extra_tag"?: [tag, value],
                    "drop_reports"?, "ignore_requests"?,
                    "session_reject_next"?: "D" (the next D gets a session-level Reject 35=3),
                    "refuse"?: {"AF": "text"} (each AF refused by a j naming it by RefSeqNum; {} ends it),
                    "silent"?: ["H"] (each H left unanswered; [] ends it),
                    "freeze_prices"? (the one market, every account)}
    POST /logout   {"session": "TRADE"|"QUOTE", "account"?, "reason"?}  a Logout to that account's sessions
    GET  /book?symbol_id=1               the QUOTE port's depth book of one symbol (404 if not listed):
         {"symbol_id": 1,
          "entries": [{"id": "2291666392", "side": "bid"|"ask", "price": "1.08345", "size": "3000000"}, ...],
          "bids": [["1.08345", "3000000"], ...], "asks": [["1.08355", "1000000"], ...]}   (best first)
    POST /openapi/grant {"scope"?: "trading"|"accounts"}   a token pair for the app's accounts, as the app
         page's playground mints one: {"accessToken", "refreshToken", "expiresIn", "tokenType"}
    POST /openapi/expire_token {"access_token"?}            that token (every one when omitted) expires now
    POST /openapi/invalidate_token {"access_token"?, "reason"?}  it dies; ProtoOAAccountsTokenInvalidatedEvent
         to the connections whose accounts used it
    POST /openapi/cut {"account"?}       close the Open API connections (those with the account authorised)
    POST /openapi/mute {"payload_type": name|number, "count"?}  requests of that type are neither executed
         nor answered (the next `count` of them, or until /openapi/unmute)
    POST /openapi/unmute {"payload_type"?}                  (every type when omitted)
    POST /openapi/hold {"payload_type": name|number}    requests of that type wait, unanswered, until
    POST /openapi/release {"payload_type"?}            executed and answered in arrival order (a slow venue)
    POST /openapi/block {"payload_type", "seconds"}         BLOCKED_PAYLOAD_TYPE with retryAfter
    POST /openapi/account_disconnect {"account"}    ProtoOAAccountDisconnectEvent, the account de-authorised
    POST /openapi/client_disconnect {"reason"?}     ProtoOAClientDisconnectEvent, then the connections close
    GET  /openapi/connections            {"connections": <open Open API connections>}
    The answers of cut, account_disconnect and client_disconnect count the connections they touched.
    /scenario's drop_reports and ignore_requests apply to the account's Open API front too.
    GET  /market                         {"rate": 20, "paused": false, "updates_sent": <X sent since start>,
                                          "snapshots_sent": <depth W>, "spot_sent": <spot W>,
                                          "subscriptions": [{"md_req_id", "symbol_id", "depth": bool}, ...]}
    POST /market   {"rate"?: int >= 0, "paused"?: bool}   answers as GET /market
         While paused the QUOTE port sends no market data at all (no churn, no re-centring, no spot W) and
         keeps the venue's latest quote to apply on resume, so /book can be compared with a client's book.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fixadapter.sim.openapi.server import OpenApiServer, payload_type_number
from fixadapter.sim.quote_link import QuoteLink, QuoteLinkError, QuoteRequestRefused
from fixadapter.sim.trade_server import Desk, TradeServer

log = logging.getLogger("fixadapter.sim.control")

Action = Callable[[dict[str, Any]], object]
Query = dict[str, list[str]]


class NotFoundError(LookupError):
    """Answered with 404."""


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value.value if hasattr(value, "value") else value


def _named_account(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"account must be a name, was {value!r}")
    return value


def _outcome(run: Callable[[], object]) -> tuple[int, object]:
    """HTTP status and JSON body of one request."""
    try:
        return 200, run()
    except NotFoundError as exc:
        return 404, {"error": str(exc)}
    except QuoteRequestRefused as exc:
        return 400, {"error": f"bad request: {exc}"}
    except QuoteLinkError as exc:
        return 503, {"error": f"QUOTE port: {exc}"}
    except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
        return 400, {"error": f"bad request: {exc}"}


class ControlServer:
    def __init__(
        self,
        host: str,
        port: int,
        trade: TradeServer,
        quote: QuoteLink,
        openapi: OpenApiServer | None = None,
    ) -> None:
        self.trade = trade
        self.quote = quote
        self.openapi = openapi
        self._posts: dict[str, Action] = {
            "/quote": self._quote,
            "/scenario": self._scenario,
            "/logout": self._logout,
            "/market": self._set_market,
            "/drop": self._drop,
        }
        if openapi is not None:
            self._posts.update(OpenApiControl(self, openapi).posts())
        self._gets: dict[str, Callable[[Query], object]] = {
            "/health": lambda _query: {"ok": True},
            "/accounts": lambda _query: self.accounts(),
            "/state": lambda query: self.state(query.get("account", [None])[0]),
            "/book": self._book,
            "/market": lambda _query: self.quote.call("market"),
        }
        if openapi is not None:
            self._gets["/openapi/connections"] = lambda _query: {
                "connections": openapi.call(openapi.connection_count())
            }
        self.httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="sim-control", daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _desk(self, name: object) -> Desk:
        try:
            return self.trade.desk(_named_account(name))
        except KeyError as exc:
            raise NotFoundError(exc.args[0]) from None

    def accounts(self) -> list[dict[str, Any]]:
        quote_logged_on = self.quote.call("logged_on")
        return [
            {
                "name": desk.account.name,
                "sender_comp_id": desk.account.sender_comp_id,
                "username": desk.account.username,
                "logged_on": {
                    "TRADE": self.trade.app.logged_on(desk.account),
                    "QUOTE": bool(quote_logged_on.get(desk.account.name)),
                },
            }
            for desk in self.trade.desks.values()
        ]

    def state(self, account: str | None = None) -> dict[str, Any]:
        desk = self._desk(account)
        venue, prices, app = desk.venue, self.trade.prices, self.trade.app
        return {
            "account": desk.account.name,
            "orders": _jsonable(venue.all_orders()),
            "positions": _jsonable(venue.positions()),
            "deals": _jsonable(venue.deals()),  # each fill, with its commission (USD, negative)
            "quotes": {str(s.symbol_id): _jsonable(prices.quote(s.symbol_id)) for s in prices.symbols()},
            "logged_on": app.logged_on(desk.account),
            "logons": app.account_logons[desk.account.name],
            "logons_refused": app.account_logons_refused[desk.account.name],
            "accounts": list(self.trade.desks),
            "logons_refused_no_such_login": self.trade.front.unknown_refused,
            "tls_connections": {
                "TRADE": self.trade.tls.connections if self.trade.tls is not None else None,
                "QUOTE": self.quote.call("tls_connections"),
            },
        }

    def _quote(self, body: dict[str, Any]) -> object:
        self.trade.set_quote(int(body["symbol_id"]), Decimal(str(body["bid"])), Decimal(str(body["ask"])))
        return _jsonable(self.trade.prices.quote(int(body["symbol_id"])))

    def _scenario(self, body: dict[str, Any]) -> object:
        desk = self._desk(body.get("account"))
        if "partial_fill_parts" in body:
            desk.venue.set_partial_fill_parts(int(body["partial_fill_parts"]))
        if "freeze_prices" in body:
            self.trade.freeze_prices = bool(body["freeze_prices"])
        if "ignore_requests" in body:
            desk.faults.ignore_requests = int(body["ignore_requests"])
            desk.faults.openapi_ignore_requests = int(body["ignore_requests"])
        if "drop_reports" in body:
            desk.faults.drop_reports = int(body["drop_reports"])
            desk.faults.openapi_drop_events = int(body["drop_reports"])
        if "extra_tag" in body:
            tag, value = body["extra_tag"]
            desk.faults.extra_tag = (int(tag), str(value))
        self._refusals(desk, body)
        return {"ok": True}

    def _refusals(self, desk: Desk, body: dict[str, Any]) -> None:
        faults = desk.faults
        if "session_reject_next" in body:
            faults.session_reject_next.add(str(body["session_reject_next"]))
        if "refuse" in body:
            faults.refuse = {str(msg_type): str(text) for msg_type, text in dict(body["refuse"]).items()}
        if "silent" in body:
            faults.silent = {str(msg_type) for msg_type in body["silent"]}

    def _logout(self, body: dict[str, Any]) -> object:
        """A Logout to one account's sessions of one kind; the other accounts' stay."""
        account = self._desk(body.get("account")).account
        reason = str(body.get("reason", "simulated server logout"))
        if body.get("session", "TRADE") == "QUOTE":
            self.quote.logout(reason, account.sender_comp_id)
        else:
            self.trade.app.force_logout(reason, account)
        return {"ok": True}

    def _drop(self, body: dict[str, Any]) -> object:
        """Cut a session's TLS connections with no Logout and no close_notify: a broken line."""
        if body.get("session", "TRADE") == "QUOTE":
            return {"dropped": self.quote.call("drop_tls")}
        return {"dropped": self.trade.drop_tls()}

    def _book(self, query: Query) -> object:
        symbol_id = int(query["symbol_id"][0])
        try:
            return self.quote.call("book", symbol_id=symbol_id)
        except QuoteRequestRefused as exc:
            if exc.not_found:
                raise NotFoundError(f"symbol {symbol_id} is not listed") from None
            raise

    def _set_market(self, body: dict[str, Any]) -> object:
        args: dict[str, Any] = {}
        if "rate" in body:
            rate = body["rate"]
            if not isinstance(rate, int) or isinstance(rate, bool) or rate < 0:
                raise ValueError(f"rate must be an integer >= 0, was {rate!r}")
            args["rate"] = rate
        if "paused" in body:
            if not isinstance(body["paused"], bool):
                raise ValueError(f"paused must be true or false, was {body['paused']!r}")
            args["paused"] = body["paused"]
        return self.quote.call("set_market", **args)

    def desk(self, name: object) -> Desk:
        """The desk of the account a request names (404 when none is served by that name)."""
        return self._desk(name)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        control = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                log.debug("control: " + format, *args)

            def _reply(self, status: int, payload: object) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                action = control._gets.get(url.path)
                if action is None:
                    self._reply(404, {"error": f"no such path {url.path}"})
                    return
                self._answer(lambda: action(parse_qs(url.query)))

            def do_POST(self) -> None:
                action = control._posts.get(self.path)
                if action is None:
                    self._reply(404, {"error": f"no such path {self.path}"})
                    return

                def run() -> object:
                    length = int(self.headers.get("Content-Length", "0"))
                    return action(json.loads(self.rfile.read(length) or b"{}"))

                self._answer(run)

            def _answer(self, run: Callable[[], object]) -> None:
                self._reply(*_outcome(run))

        return Handler


class OpenApiControl:
    """The /openapi/* endpoints: tokens, connections and payload types of the Open API front."""

    def __init__(self, control: ControlServer, openapi: OpenApiServer) -> None:
        self.control = control
        self.openapi = openapi

    def posts(self) -> dict[str, Action]:
        return {
            "/openapi/grant": self._grant,
            "/openapi/expire_token": self._expire,
            "/openapi/invalidate_token": self._invalidate,
            "/openapi/cut": self._cut,
            "/openapi/mute": self._mute,
            "/openapi/unmute": self._unmute,
            "/openapi/hold": self._hold,
            "/openapi/release": self._release,
            "/openapi/block": self._block,
            "/openapi/account_disconnect": self._account_disconnect,
            "/openapi/client_disconnect": self._client_disconnect,
        }

    def _ctid(self, name: object) -> int:
        account = self.control.desk(name).account
        if account.ctid_trader_account_id is None:  # never: served accounts are numbered
            raise NotFoundError(f"account {account.name} has no ctidTraderAccountId")
        return account.ctid_trader_account_id

    def _grant(self, body: dict[str, Any]) -> object:
        registry = self.openapi.registry
        pair = registry.grant(self.openapi.config.openapi_client_id, str(body.get("scope", "trading")))
        return {
            "accessToken": pair.access_token,
            "refreshToken": pair.refresh_token,
            "expiresIn": pair.expires_in,
            "tokenType": "bearer",
        }

    def _expire(self, body: dict[str, Any]) -> object:
        token = body.get("access_token")
        return {"expired": self.openapi.registry.expire(None if token is None else str(token))}

    def _invalidate(self, body: dict[str, Any]) -> object:
        token = body.get("access_token")
        reason = str(body.get("reason", "access token was revoked"))
        return {
            "invalidated": self.openapi.registry.invalidate(None if token is None else str(token), reason)
        }

    def _cut(self, body: dict[str, Any]) -> object:
        ctid = self._ctid(body["account"]) if body.get("account") is not None else None
        return {"cut": self.openapi.call(self.openapi.cut(ctid))}

    def _mute(self, body: dict[str, Any]) -> object:
        count = body.get("count")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
            raise ValueError(f"count must be a positive integer, was {count!r}")
        self.openapi.gates.mute(payload_type_number(body["payload_type"]), count)
        return {"ok": True}

    def _unmute(self, body: dict[str, Any]) -> object:
        value = body.get("payload_type")
        self.openapi.gates.unmute(None if value is None else payload_type_number(value))
        return {"ok": True}

    def _hold(self, body: dict[str, Any]) -> object:
        self.openapi.gates.hold(payload_type_number(body["payload_type"]))
        return {"ok": True}

    def _release(self, body: dict[str, Any]) -> object:
        value = body.get("payload_type")
        kind = None if value is None else payload_type_number(value)
        return {"released": self.openapi.call(self.openapi.release(kind))}

    def _block(self, body: dict[str, Any]) -> object:
        seconds = float(body["seconds"])
        if seconds <= 0:
            raise ValueError(f"seconds must be positive, was {seconds}")
        self.openapi.gates.block(payload_type_number(body["payload_type"]), seconds)
        return {"ok": True}

    def _account_disconnect(self, body: dict[str, Any]) -> object:
        ctid = self._ctid(body.get("account"))
        return {"disconnected": self.openapi.call(self.openapi.account_disconnect(ctid))}

    def _client_disconnect(self, body: dict[str, Any]) -> object:
        reason = str(body.get("reason", "simulated client disconnect"))
        return {"disconnected": self.openapi.call(self.openapi.client_disconnect(reason))}

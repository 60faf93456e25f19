"""The simulator's control port (HTTP/JSON on loopback) for tests and demos: read state, move prices,
switch on faults, force a logout. It is the venue's back office, not part of cTrader's protocol.

    GET  /health                         {"ok": true}
    GET  /state                          orders, positions, quotes
    POST /quote    {"symbol_id", "bid", "ask"}
    POST /scenario {"partial_fill_parts"?, "freeze_prices"?, "extra_tag"?: [tag, value],
                    "drop_reports"?, "ignore_requests"?}
    POST /logout   {"session": "TRADE"|"QUOTE", "reason"?}
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

from fixadapter.sim.trade_server import TradeServer

log = logging.getLogger("fixadapter.sim.control")

Action = Callable[[dict[str, Any]], object]


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


class ControlServer:
    def __init__(self, host: str, port: int, trade: TradeServer, logout_quote: Callable[[str], None]) -> None:
        self.trade = trade
        self._logout_quote = logout_quote
        self._posts: dict[str, Action] = {
            "/quote": self._quote,
            "/scenario": self._scenario,
            "/logout": self._logout,
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

    def state(self) -> dict[str, Any]:
        venue = self.trade.venue
        return {
            "orders": _jsonable(venue.all_orders()),
            "positions": _jsonable(venue.positions()),
            "quotes": {str(s.symbol_id): _jsonable(venue.quote(s.symbol_id)) for s in venue.symbols()},
            "logged_on": self.trade.app.logged_on(),
        }

    def _quote(self, body: dict[str, Any]) -> object:
        self.trade.set_quote(int(body["symbol_id"]), Decimal(str(body["bid"])), Decimal(str(body["ask"])))
        return _jsonable(self.trade.venue.quote(int(body["symbol_id"])))

    def _scenario(self, body: dict[str, Any]) -> object:
        if "partial_fill_parts" in body:
            self.trade.venue.set_partial_fill_parts(int(body["partial_fill_parts"]))
        if "freeze_prices" in body:
            self.trade.faults.freeze_prices = bool(body["freeze_prices"])
        if "ignore_requests" in body:
            self.trade.faults.ignore_requests = int(body["ignore_requests"])
        if "drop_reports" in body:
            self.trade.faults.drop_reports = int(body["drop_reports"])
        if "extra_tag" in body:
            tag, value = body["extra_tag"]
            self.trade.faults.extra_tag = (int(tag), str(value))
        return {"ok": True}

    def _logout(self, body: dict[str, Any]) -> object:
        reason = str(body.get("reason", "simulated server logout"))
        if body.get("session", "TRADE") == "QUOTE":
            self._logout_quote(reason)
        else:
            self.trade.app.force_logout(reason)
        return {"ok": True}

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
                if self.path == "/health":
                    self._reply(200, {"ok": True})
                elif self.path == "/state":
                    self._reply(200, control.state())
                else:
                    self._reply(404, {"error": f"no such path {self.path}"})

            def do_POST(self) -> None:
                action = control._posts.get(self.path)
                if action is None:
                    self._reply(404, {"error": f"no such path {self.path}"})
                    return
                try:
                    length = int(self.headers.get("Content-Length", "0"))
                    body = json.loads(self.rfile.read(length) or b"{}")
                    self._reply(200, action(body))
                except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
                    self._reply(400, {"error": f"bad request: {exc}"})

        return Handler

"""`fixadapter orders`, `fixadapter positions`, `fixadapter cancel`: the running daemon's orders and
positions, and a cancel of one order, over its HTTP API (as `fixadapter kill-switch`).

The daemon is found with --url, else the config's daemon.http (--config, read without validating the
accounts' credentials), else http://127.0.0.1:8080. The token, when the daemon has one, comes from
FIXADAPTER_HTTP_TOKEN (--token-env names another variable), else from the config's daemon.http.token;
it is sent, never printed. Exit codes as every command's (cli_support): 0 answered (the cancel asked of
the venue); 1 the daemon refused (its message: no such order, already done, no token...) or no daemon
answers; 2 a bad argument.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, TypeAlias

from fixadapter.cli_support import EXIT_FAILED

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
DEFAULT_URL = "http://127.0.0.1:8080"
TOKEN_ENV = "FIXADAPTER_HTTP_TOKEN"  # noqa: S105 - the variable's name


class Refused(Exception):
    """The daemon answered with an error (exit 1)."""


class Unreachable(Exception):
    """No daemon answering, or no usable address (exit 2)."""


def _daemon_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    where = options.add_mutually_exclusive_group()
    where.add_argument(
        "--url", help=f"the daemon's HTTP API (default: --config's daemon.http, else {DEFAULT_URL})"
    )
    where.add_argument(
        "--config", type=Path, help="YAML config: daemon.http host, port and token (no password needed)"
    )
    options.add_argument("--account", help="which account (needed when the daemon trades several)")
    options.add_argument(
        "--token-env",
        default=TOKEN_ENV,
        help=f"environment variable holding daemon.http.token, if the daemon has one (default: {TOKEN_ENV})",
    )
    options.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for the daemon's answer (default: 30)"
    )
    options.add_argument("--json", action="store_true", help="print the daemon's JSON answer as it is")
    return options


def add_order_parsers(sub: SubParsers) -> None:
    options = _daemon_options()
    orders = sub.add_parser(
        "orders",
        parents=[options],
        help="list the running daemon's orders, newest first (over its HTTP API)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    orders.add_argument("--status", choices=["open", "done", "all"], default="all", help="which orders")
    orders.add_argument("--strategy", help="only this strategy's orders")
    orders.add_argument("--limit", type=int, default=100, help="at most this many (1 to 1000)")
    sub.add_parser(
        "positions",
        parents=[options],
        help="list the running daemon's open positions, with their symbol names (over its HTTP API)",
    )
    cancel = sub.add_parser(
        "cancel",
        parents=[options],
        help="ask the running daemon to cancel one order (over its HTTP API); its events follow as usual",
    )
    cancel.add_argument("cl_ord_id", metavar="CLORDID", help="the order's ClOrdID")
    cancel.add_argument("--by", help="who asks, noted in the daemon's log (default: $USER@hostname)")


def run_orders(args: argparse.Namespace) -> int:
    query: dict[str, str] = {"status": args.status, "limit": str(args.limit)}
    if args.strategy:
        query["strategy"] = args.strategy
    return _call(args, "orders", "GET", "/orders", query, None, _orders_text)


def run_positions(args: argparse.Namespace) -> int:
    return _call(args, "positions", "GET", "/positions", {}, None, _positions_text)


def run_cancel(args: argparse.Namespace) -> int:
    by = args.by or f"{os.environ.get('USER') or getpass.getuser()}@{socket.gethostname()}"
    body: dict[str, Any] = {"by": by}
    if args.account:
        body["account"] = args.account
    path = f"/orders/{urllib.parse.quote(args.cl_ord_id, safe='')}/cancel"
    return _call(args, "cancel", "POST", path, {}, body, _cancel_text)


def _call(
    args: argparse.Namespace,
    name: str,
    method: str,
    path: str,
    query: dict[str, str],
    body: dict[str, Any] | None,
    text: Any,
) -> int:
    prog = f"fixadapter {name}"
    try:
        base, token = _where(args)
        if args.account and method == "GET":
            query = {**query, "account": args.account}
        answer = _request(base, method, path, query, body, token, args.timeout)
    except Refused as exc:
        sys.stderr.write(f"{prog}: {exc}\n")
        return 1
    except Unreachable as exc:
        sys.stderr.write(f"{prog}: {exc}\n")
        return EXIT_FAILED
    sys.stdout.write((json.dumps(answer, indent=2) if args.json else text(answer)) + "\n")
    return 0


def _where(args: argparse.Namespace) -> tuple[str, str | None]:
    """The daemon's base URL and the token to send (None: none set)."""
    from fixadapter.config_parts import http_url, load_http_config

    token = os.environ.get(args.token_env) or None
    if args.url is not None:
        base = args.url
    elif args.config is not None:
        config = load_http_config(args.config)
        base = http_url(config)
        if token is None and config.token is not None:
            token = config.token.get_secret_value()
    else:
        base = DEFAULT_URL
    if not base.startswith(("http://", "https://")):
        raise Unreachable(f"--url must look like {DEFAULT_URL}, not {base}")
    return base.rstrip("/"), token


def _request(
    base: str,
    method: str,
    path: str,
    query: dict[str, str],
    body: dict[str, Any] | None,
    token: str | None,
    timeout: float,
) -> Any:
    url = base + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http(s), checked
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        hint = ""
        if exc.code == 401:
            hint = f" (set {TOKEN_ENV}, or --token-env, to the daemon's daemon.http.token)"
        raise Refused(f"HTTP {exc.code}: {_server_message(exc)}{hint}") from None
    except (urllib.error.URLError, OSError) as exc:
        why = getattr(exc, "reason", None) or exc
        raise Unreachable(
            f"no daemon answering at {base}: {why}; is `fixadapter run` running with daemon.http enabled?"
        ) from None


def _server_message(error: urllib.error.HTTPError) -> str:
    text = error.read().decode(errors="replace")
    try:
        return str(json.loads(text)["error"])
    except (ValueError, KeyError, TypeError):
        return text.strip()[:500] or str(error.reason)


def _shown(value: Any) -> str:
    return "-" if value is None else str(value)


def _orders_text(answer: dict[str, Any]) -> str:
    orders = answer.get("orders") or []
    if not orders:
        return "no orders"
    shown = {
        "created": "created_at",
        "clordid": "cl_ord_id",
        "strategy": "strategy",
        "symbol": "symbol",
        "side": "side",
        "type": "order_type",
        "quantity": "quantity",
        "filled": "cum_qty",
        "price": "price",
        "stop": "stop_price",
        "status": "status",
        "order id": "order_id",
    }
    rows = [[_shown(order.get(field)) for field in shown.values()] for order in orders]
    lines = _table(list(shown), rows)
    if answer.get("next"):
        lines.append(f"(more: raise --limit, up to 1000, or GET {answer['next']})")
    return "\n".join(lines)


def _positions_text(answer: list[dict[str, Any]]) -> str:
    if not answer:
        return "no open positions"
    rows = [
        [
            _shown(p.get("position_id")),
            p.get("symbol") or f"#{p.get('symbol_id')}",
            _shown(p.get("side")),
            _shown(p.get("quantity")),
            _shown(p.get("entry_price")),
            _shown(p.get("stop_loss")),
            _shown(p.get("take_profit")),
        ]
        for p in answer
    ]
    return "\n".join(
        _table(["position", "symbol", "side", "quantity", "entry", "stop loss", "take profit"], rows)
    )


def _cancel_text(answer: dict[str, Any]) -> str:
    order = answer["order"]
    return (
        f"cancel of {order['cl_ord_id']} (account {answer['account']}) asked of the venue: "
        f"the order is {order['status']}; its end follows in `fixadapter orders` and the strategy's events"
    )


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in [header, *rows]
    ]

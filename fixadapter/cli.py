"""Command line: parses arguments and calls into the package; no trading logic lives here."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import socket
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr, ValidationError

from fixadapter import __version__, cli_orders
from fixadapter.cli_support import (
    EXIT_FAILED,
    EXIT_TIMEOUT,
    CliParser,
    describe_validation,
    positive_decimal,
    show_defaults,
)
from fixadapter.config import load_config
from fixadapter.errors import FixAdapterError, SessionNotReady, SubscriptionTimeout
from fixadapter.logs import configure_logging, mask_secrets

if TYPE_CHECKING:
    import urllib.error

    from fixadapter.config import DepthStorageConfig
    from fixadapter.model.market import DepthSnapshot
    from fixadapter.store.repository import OrderStore


def _simulate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("simulate", help="run the cTrader CSERVER simulator (QUOTE + TRADE ports)")
    p.add_argument("--host", default="127.0.0.1", help="the address every port listens on (0.0.0.0: all)")
    p.add_argument("--quote-port", type=int, default=5201, help="the FIX QUOTE port (0 picks one)")
    p.add_argument("--trade-port", type=int, default=5202, help="the FIX TRADE port (0 picks one)")
    p.add_argument("--control-port", type=int, default=5280, help="HTTP control port (0 picks one)")
    p.add_argument("--sender-comp-id", default="demo.sim.1234567", help="the client's SenderCompID")
    p.add_argument("--username", default="1234567", help="the client's login (553)")
    p.add_argument(
        "--account",
        action="append",
        help="serve this account, NAME:SENDERCOMPID:LOGIN[:CTIDTRADERACCOUNTID[:live]], its password in "
        "FIXADAPTER_SIM_PASSWORD_<NAME> (repeat; replaces --sender-comp-id/--username; the Open API id "
        "defaults to 20000001 plus its place, and a live account is refused by the Open API port)",
    )
    p.add_argument("--state", type=Path, help="sqlite file keeping the venue's orders across restarts")
    p.add_argument(
        "--write-config",
        type=Path,
        help="write an adapter config for the served accounts at the bound ports here (plain FIX; passwords "
        "from the environment), for `fixadapter order --config` and `run`",
    )
    p.add_argument("--partial-fills", type=int, default=1, help="execute market orders in this many parts")
    p.add_argument("--tick-ms", type=int, default=250, help="price move interval")
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--md-rate", type=int, default=20, help="depth size-churn X messages per second (all streams)"
    )
    p.add_argument("--md-levels", type=int, default=5, help="depth levels per side of each book")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    p.add_argument("--quote-tls-port", type=int, help="also serve QUOTE over TLS here (cTrader: 5211)")
    p.add_argument("--trade-tls-port", type=int, help="also serve TRADE over TLS here (cTrader: 5212)")
    p.add_argument("--tls-cert", type=Path, help="PEM certificate chain to serve (default: made at start)")
    p.add_argument("--tls-key", type=Path, help="PEM key of --tls-cert")
    p.add_argument(
        "--tls-dir",
        type=Path,
        default=Path("var/sim-tls"),
        help="where a made certificate and its CA go (made even without FIX TLS: the Open API port needs it)",
    )
    p.add_argument(
        "--tls-name",
        action="append",
        help="a name on the made certificate (repeat; default localhost, 127.0.0.1)",
    )
    p.add_argument(
        "--openapi-port",
        type=int,
        default=5035,
        help="the cTrader Open API port (TLS only, over the same accounts and venues; 0 picks one)",
    )
    p.add_argument(
        "--oauth-port",
        type=int,
        default=5290,
        help="the OAuth endpoint (/apps/auth, /apps/token; 0 picks one)",
    )
    p.add_argument(
        "--openapi-client-id",
        default="fixadapter-sim",
        help="the Open API application's client id (its secret in FIXADAPTER_SIM_OPENAPI_SECRET)",
    )
    p.add_argument(
        "--openapi-idle-seconds",
        type=float,
        default=30.0,
        help="drop an Open API client that sent nothing for this long",
    )
    p.add_argument(
        "--openapi-list-chunk",
        type=int,
        default=1000,
        help="orders in one Open API order list answer; a window with more is truncated (hasMore)",
    )
    p.add_argument(
        "--openapi-heartbeat-seconds",
        type=float,
        default=10.0,
        help="send a heartbeat to an Open API client after this long without sending it anything",
    )
    p.add_argument(
        "--balance", type=Decimal, default=Decimal("100000.00"), help="each account's balance in USD"
    )
    p.add_argument("--leverage", type=int, default=100, help="each account's leverage (1:N)")
    p.add_argument(
        "--commission-per-million",
        type=Decimal,
        default=None,
        help="USD charged per million USD of notional on every fill, each side (default 30); 0 charges none",
    )


def _order_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("order", help="send one order and print its events until it is done")
    p.add_argument("--config", type=Path, required=True, help="YAML config (see README)")
    p.add_argument("--account", help="the configured account to trade (needed when several are configured)")
    p.add_argument("--symbol", required=True, help="name (EURUSD) or cTrader symbol id")
    p.add_argument("--side", choices=["buy", "sell"], required=True)
    p.add_argument(
        "--type",
        dest="order_type",
        choices=["market", "limit", "stop", "stop_limit"],
        default="market",
        help="order type",
    )
    p.add_argument(
        "--quantity",
        type=positive_decimal("quantity"),
        required=True,
        help="in units (EURUSD 1 lot = 100000)",
    )
    p.add_argument("--price", type=positive_decimal("price"), help="limit price (limit, stop_limit)")
    p.add_argument(
        "--stop-price", type=positive_decimal("stop price"), help="trigger price (stop, stop_limit)"
    )
    p.add_argument("--expire-time", type=_utc_time, help="ISO 8601 (UTC if no offset): good till this time")
    p.add_argument(
        "--tif",
        dest="time_in_force",
        choices=["good_till_cancel", "immediate_or_cancel", "good_till_date"],
        help="time in force (default: the venue's: market IOC, with --expire-time GTD, else GTC)",
    )
    p.add_argument("--position-id")
    p.add_argument("--label")
    # What the Open API can send with an order (an account on FIX refuses them, saying so).
    p.add_argument("--stop-loss", type=positive_decimal("stop loss"), help="stop loss price")
    p.add_argument("--take-profit", type=positive_decimal("take profit"), help="take profit price")
    p.add_argument(
        "--stop-loss-distance",
        type=positive_decimal("stop loss distance"),
        help="stop loss this far from the fill price",
    )
    p.add_argument(
        "--take-profit-distance",
        type=positive_decimal("take profit distance"),
        help="take profit this far from the fill price",
    )
    p.add_argument("--trailing-stop-loss", action="store_true", help="the stop loss trails the price")
    p.add_argument("--comment", help="up to 512 printable characters")
    p.add_argument("--watch-seconds", type=float, default=30.0, help="stop watching after this long")
    p.add_argument(
        "--quote-wait-seconds",
        type=float,
        default=10.0,
        help="wait this long for the symbol's first quote before sending (0: send at once)",
    )


def _utc_time(text: str) -> datetime:
    """ISO 8601 from the command line; a time without an offset is taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _depth_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    source = argparse.ArgumentParser(add_help=False)
    where = source.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, help="YAML config: store.url and market_data.storage")
    where.add_argument("--store-url", help="database URL instead of --config (needs no account section)")
    shown = argparse.ArgumentParser(add_help=False)
    shown.add_argument("--format", choices=["jsonl", "table"], default="jsonl", help="default: JSON Lines")
    p = sub.add_parser("depth", help="stored depth snapshots (market_depth): replay, latest, purge")
    depth = p.add_subparsers(dest="depth_command", required=True)
    replay = depth.add_parser(
        "replay",
        parents=[source, shown],
        help="print stored snapshots in time order: one JSON object per line (symbol_id, symbol, time, "
        "bids, asks as [[price, size], ...] best first, mid, spread_pips, imbalance, microprice)",
    )
    replay.add_argument("--symbol", help="name (EURUSD) or cTrader symbol id; every symbol when omitted")
    replay.add_argument("--from", dest="start", type=_utc_time, help="ISO 8601, inclusive (UTC if no offset)")
    replay.add_argument("--to", dest="end", type=_utc_time, help="ISO 8601, exclusive (UTC if no offset)")
    replay.add_argument("--limit", type=int, help="stop after this many snapshots")
    replay.add_argument("--progress-every", type=int, default=100_000, help="progress on stderr every N rows")
    latest = depth.add_parser("latest", parents=[source, shown], help="print a symbol's newest snapshot")
    latest.add_argument("--symbol", required=True, help="name (EURUSD) or cTrader symbol id")
    purge = depth.add_parser("purge", parents=[source], help="delete snapshots older than N days")
    purge.add_argument("--older-than-days", type=_non_negative, required=True)
    purge.add_argument(
        "--force", action="store_true", help="allow a cutoff inside market_data.storage.retention_days"
    )


def _log_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from fixadapter.compliance.commands import add_log_parsers

    p = sub.add_parser("log", help="the compliance FIX message log: search, show, order, export, import")
    log = p.add_subparsers(dest="log_command", required=True)
    add_log_parsers(log)
    _log_verify_parser(log)


def _log_verify_parser(log: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = log.add_parser(
        "verify",
        help="check the hash chains of fix_messages (FIX and Open API): names the first edited, deleted or "
        "reordered record (exit 1), or says each chain is intact (exit 0)",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, help="YAML config: compliance.store_url or store.url")
    where.add_argument("--store-url", help="database URL holding fix_messages, instead of --config")
    p.add_argument("--session", help="only this session's chains (QUOTE, TRADE, OPENAPI)")
    p.add_argument("--day", type=date.fromisoformat, help="only this UTC day's chains (YYYY-MM-DD)")


def _kill_switch_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "kill-switch",
        help="show, engage or release the running daemon's kill switch (over its HTTP API); engage blocks "
        "new orders and cancels every working order",
    )
    p.add_argument("action", choices=["status", "engage", "release"])
    p.add_argument("--url", default="http://127.0.0.1:8080", help="the daemon's HTTP API (daemon.http)")
    p.add_argument("--account", help="whose kill switch (needed when the daemon trades several accounts)")
    p.add_argument("--by", help="who asks, kept in the audit trail (default: $USER@hostname)")
    p.add_argument("--reason", help="why; required for engage and release")
    p.add_argument(
        "--token-env",
        default="FIXADAPTER_HTTP_TOKEN",
        help="environment variable holding daemon.http.token, if the daemon has one",
    )
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the daemon's answer")
    p.add_argument("--json", action="store_true", help="print the daemon's JSON answer as it is")


def _queue_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("queue", help="the Redis strategy queue: ACL users per strategy")
    queue = p.add_subparsers(dest="queue_command", required=True)
    acl = queue.add_parser(
        "acl",
        help="print (or with --apply create) one Redis ACL user per strategy in daemon.queue.strategies",
    )
    acl.add_argument("--config", type=Path, required=True, help="YAML config (see README)")
    acl.add_argument(
        "--apply",
        action="store_true",
        help="create or update the users on daemon.queue.redis_url and print each strategy's URL once",
    )


def _openapi_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("openapi", help="the cTrader Open API: OAuth login and stored tokens")
    openapi = p.add_subparsers(dest="openapi_command", required=True)
    login = openapi.add_parser(
        "login",
        help="grant access in a browser (OAuth authorization code), store the token pair encrypted; "
        "the client secret comes from FIXADAPTER_OPENAPI__CLIENT_SECRET, the key from "
        "FIXADAPTER_OPENAPI_TOKEN_KEY",
    )
    login.add_argument("--client-id", help="the application's client id (or FIXADAPTER_OPENAPI__CLIENT_ID)")
    login.add_argument("--scope", choices=["trading", "accounts"], default="trading", help="what to grant")
    login.add_argument(
        "--token-file", type=Path, help="encrypted token file (or FIXADAPTER_OPENAPI__TOKEN_FILE)"
    )
    login.add_argument("--grant", default="default", help="name of this grant (one set of accounts)")
    login.add_argument("--port", type=int, default=0, help="loopback port for the redirect (0: any free)")
    login.add_argument(
        "--redirect-uri",
        help="the redirect URI registered for the application (http://127.0.0.1:PORT/path for the listener)",
    )
    login.add_argument("--paste", action="store_true", help="read the redirect URL or code from stdin")
    login.add_argument(
        "--open-browser",
        action="store_true",
        help="also open the URL in this machine's browser (off by default: on a server without a display "
        "Python may start a text browser in the terminal)",
    )
    login.add_argument("--wait", type=float, default=300.0, help="seconds to wait for the redirect")
    login.add_argument("--authorize-url", help="authorize endpoint (default: cTrader's)")
    login.add_argument("--token-url", help="token endpoint (default: cTrader's)")
    _add_listing_options(login)
    login.add_argument(
        "--no-list", action="store_true", help="do not connect to the Open API to list the token's accounts"
    )
    accounts = openapi.add_parser(
        "accounts",
        help="list the accounts a stored token reaches (ctid_trader_account_id, login, live or demo) over "
        "the Open API",
    )
    accounts.add_argument(
        "--client-id", help="the application's client id (or FIXADAPTER_OPENAPI__CLIENT_ID)"
    )
    accounts.add_argument(
        "--token-file", type=Path, help="encrypted token file (or FIXADAPTER_OPENAPI__TOKEN_FILE)"
    )
    accounts.add_argument("--grant", default="default", help="which stored grant")
    _add_listing_options(accounts)


def _add_listing_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--openapi-host", default="demo.ctraderapi.com", help="the Open API server asked for the list"
    )
    parser.add_argument("--openapi-port", type=int, default=5035, help="its port")
    parser.add_argument("--ca-file", type=Path, help="PEM CA bundle to trust instead of the system store")


def _openapi(args: argparse.Namespace) -> int:
    """`fixadapter openapi login|accounts`: the OAuth flow, the token's accounts; never a token."""
    if args.openapi_command == "accounts":
        return _openapi_accounts(args)
    return _openapi_login(args)


def _print_accounts(args: argparse.Namespace, client_id: str, secret: SecretStr, token: SecretStr) -> int:
    from fixadapter.connectors.openapi.accounts_list import AccountListError, format_accounts, list_accounts

    try:
        listed, can_trade = asyncio.run(
            list_accounts(client_id, secret, token, args.openapi_host, args.openapi_port, args.ca_file)
        )
    except AccountListError as error:
        print(
            f"{error}; once that is fixed, `fixadapter openapi accounts` (with the same --client-id, "
            "--openapi-host and --ca-file) lists them",
            file=sys.stderr,
        )
        return 1
    print(format_accounts(listed, can_trade, args.openapi_host))
    return 0


def _openapi_accounts(args: argparse.Namespace) -> int:
    from fixadapter.connectors.openapi.auth_config import OpenApiAppConfig
    from fixadapter.connectors.openapi.tokens import FileTokenStore, grant_key

    app = OpenApiAppConfig.from_environment(client_id=args.client_id, token_file=args.token_file)
    key = grant_key(app.client_id, args.grant)
    pair = FileTokenStore(app.token_file).load(key)
    if pair is None:
        print(
            f"no token stored for {key} in {app.token_file}: run `fixadapter openapi login`", file=sys.stderr
        )
        return 1
    return _print_accounts(args, app.client_id, app.client_secret, pair.access_token)


def _openapi_login(args: argparse.Namespace) -> int:
    import webbrowser

    from fixadapter.connectors.openapi.auth_config import OpenApiAppConfig
    from fixadapter.connectors.openapi.login import LoginOptions, login, login_summary
    from fixadapter.connectors.openapi.tokens import FileTokenStore

    app = OpenApiAppConfig.from_environment(
        client_id=args.client_id,
        scope=args.scope,
        token_file=args.token_file,
        authorize_url=args.authorize_url,
        token_url=args.token_url,
    )
    store = FileTokenStore(app.token_file)  # the key is checked before the user is sent to the browser
    options = LoginOptions(args.grant, args.port, args.redirect_uri, args.paste, args.wait)
    result = asyncio.run(
        login(
            app,
            store,
            options,
            sys.stdout,
            pasted=sys.stdin.readline,
            open_browser=webbrowser.open if args.open_browser and not args.paste else None,
        )
    )
    print(login_summary(app, result, listing=not args.no_list))
    if args.no_list:
        return 0
    return _print_accounts(args, app.client_id, app.client_secret, result.pair.access_token)


def _db_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from fixadapter.store.migrations.commands import add_db_parser

    add_db_parser(sub)


def _db(args: argparse.Namespace) -> int:
    """`fixadapter db upgrade|current`: the schema's revision, and upgrades in place."""
    from fixadapter.store.migrations.commands import run_db_command

    return run_db_command(args)


def _check_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from fixadapter.check.command import add_check_parser

    add_check_parser(sub)


def _check(args: argparse.Namespace) -> int:
    """`fixadapter check`: each account's connection, step by step (fixadapter/check/)."""
    from fixadapter.check.command import run_check

    return run_check(args)


def build_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = CliParser(prog="fixadapter", description=__doc__)
    parser.add_argument("--version", action="version", version=f"fixadapter {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _simulate_parser(sub)
    _order_parser(sub)
    _depth_parser(sub)
    _log_parser(sub)
    _kill_switch_parser(sub)
    cli_orders.add_order_parsers(sub)
    _queue_parser(sub)
    _db_parser(sub)
    _openapi_parser(sub)
    _check_parser(sub)
    run = sub.add_parser("run", help="run the adapter until SIGTERM/SIGINT")
    run.add_argument("--config", type=Path, required=True, help="YAML config (see README)")
    demo = sub.add_parser(
        "demo", help="run the simulator, the daemon and a sample strategy under a live blotter"
    )
    demo.add_argument(
        "--workdir",
        type=Path,
        default=Path("var/demo"),
        help="store, logs and certificate; a new, empty or earlier demo directory (another is refused)",
    )
    demo.add_argument(
        "--duration", type=float, default=20.0, help="seconds the sample strategy spreads its orders over"
    )
    show_defaults(parser)
    return parser


def _simulate(args: argparse.Namespace) -> int:
    from fixadapter.sim.config import (
        DEFAULT_OPENAPI_SECRET,
        OPENAPI_SECRET_VARIABLE,
        SimConfig,
        parse_accounts,
    )
    from fixadapter.sim.runner import run_simulator

    configure_logging(args.log_level)
    password = os.environ.get("FIXADAPTER_SIM_PASSWORD", "sim-password")
    openapi_secret = os.environ.get(OPENAPI_SECRET_VARIABLE) or DEFAULT_OPENAPI_SECRET
    config = SimConfig(
        host=args.host,
        quote_port=args.quote_port,
        trade_port=args.trade_port,
        control_port=args.control_port,
        sender_comp_id=args.sender_comp_id,
        username=args.username,
        password=SecretStr(password),
        accounts=parse_accounts(args.account or (), os.environ),
        state_path=args.state,
        partial_fill_parts=args.partial_fills,
        tick_interval_ms=args.tick_ms,
        seed=args.seed,
        md_rate=args.md_rate,
        md_levels=args.md_levels,
        quote_tls_port=args.quote_tls_port,
        trade_tls_port=args.trade_tls_port,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_dir=args.tls_dir,
        **({"tls_names": tuple(args.tls_name)} if args.tls_name else {}),
        openapi_port=args.openapi_port,
        oauth_port=args.oauth_port,
        openapi_client_id=args.openapi_client_id,
        openapi_client_secret=SecretStr(openapi_secret),
        openapi_idle_seconds=args.openapi_idle_seconds,
        openapi_heartbeat_seconds=args.openapi_heartbeat_seconds,
        openapi_list_chunk=args.openapi_list_chunk,
        balance=args.balance,
        leverage=args.leverage,
        **(
            {"commission_per_million": args.commission_per_million}
            if args.commission_per_million is not None
            else {}
        ),
    )
    run_simulator(config, write_config=args.write_config)
    return 0


def _order(args: argparse.Namespace) -> int:
    from fixadapter.watch import send_and_watch

    config = load_config(args.config)
    configure_logging(config.logging.level, json_lines=config.logging.json_lines)
    fields = {k: v for k, v in vars(args).items() if v is not None}
    config.account(args.account)  # ConfigError naming the accounts, before anything connects
    return asyncio.run(
        send_and_watch(config, fields, args.watch_seconds, args.account, args.quote_wait_seconds)
    )


def _run(args: argparse.Namespace) -> int:
    from fixadapter.daemon import run_daemon

    config = load_config(args.config)
    configure_logging(config.logging.level, json_lines=config.logging.json_lines)
    return asyncio.run(run_daemon(config))


def _queue(args: argparse.Namespace) -> int:
    """`fixadapter queue acl`: print the rules, or apply them (passwords only ever on stdout)."""
    from fixadapter.config import load_queue_config
    from fixadapter.queue import acl

    queue = load_queue_config(args.config)
    if not args.apply:
        print(acl.rules_text(queue))
        return 0
    acl.apply(queue, os.environ, print, lambda text: print(f"fixadapter queue acl: {text}", file=sys.stderr))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from fixadapter.demo import run_demo

    configure_logging("WARNING")
    return asyncio.run(run_demo(args.workdir, args.duration))


def _depth(args: argparse.Namespace) -> int:
    """`fixadapter depth replay|latest|purge`: read-only except purge; errors exit 1 like every command."""
    from fixadapter.config import DepthStorageConfig
    from fixadapter.store.depth import require_depth_table
    from fixadapter.store.repository import OrderStore

    if args.config is not None:  # the store alone: reading depth needs no account password
        from fixadapter.config_parts import load_store_parts

        parts = load_store_parts(args.config)
        url, storage = parts.store_url, parts.depth_storage
    else:
        url, storage = args.store_url, DepthStorageConfig()
    store = OrderStore(url)
    try:
        require_depth_table(store.engine)
        command = {"replay": _depth_replay, "latest": _depth_latest, "purge": _depth_purge}
        return command[args.depth_command](args, store, storage)
    except BrokenPipeError:  # `depth replay | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        store.close()


def _depth_symbol_id(store: OrderStore, symbol: str) -> int:
    from fixadapter.engine.instruments import Catalog

    return Catalog(store.instruments()).resolve(symbol).symbol_id


def _depth_printer(output: str) -> Callable[[DepthSnapshot], None]:
    from fixadapter.store.depth import snapshot_record

    if output == "jsonl":
        return lambda s: print(json.dumps(snapshot_record(s), separators=(",", ":")))
    print(
        f"{'time':<32} {'symbol':<10} {'bid':>12} {'bid size':>12} {'ask':>12} {'ask size':>12} "
        f"{'mid':>12} {'spread':>7} {'imbalance':>9} {'microprice':>14} {'levels':>7}"
    )

    def line(s: DepthSnapshot) -> None:
        r = snapshot_record(s)
        bid, ask = (r["bids"] or [["-", "-"]])[0], (r["asks"] or [["-", "-"]])[0]
        imbalance = "-" if s.imbalance is None else f"{s.imbalance:+.4f}"
        print(
            f"{r['time']:<32} {s.symbol:<10} {bid[0]:>12} {bid[1]:>12} {ask[0]:>12} {ask[1]:>12} "
            f"{r['mid'] or '-':>12} {r['spread_pips'] or '-':>7} {imbalance:>9} {r['microprice'] or '-':>14} "
            f"{f'{len(s.bids)}/{len(s.asks)}':>7}"
        )

    return line


def _depth_replay(args: argparse.Namespace, store: OrderStore, _storage: DepthStorageConfig) -> int:
    from fixadapter.store.depth import DepthReader

    reader = DepthReader(store.engine)
    symbol_id = None if args.symbol is None else _depth_symbol_id(store, args.symbol)
    show = _depth_printer(args.format)
    every = max(1, args.progress_every)
    total: int | None = None
    for number, snapshot in enumerate(reader.replay(symbol_id, args.start, args.end, limit=args.limit), 1):
        show(snapshot)
        if number % every == 0:
            if total is None:  # counted only once a replay turns out long
                total = reader.count(symbol_id, args.start, args.end)
                total = total if args.limit is None else min(total, args.limit)
            print(f"fixadapter depth replay: {number} of {total} snapshots", file=sys.stderr)
    return 0


def _depth_latest(args: argparse.Namespace, store: OrderStore, _storage: DepthStorageConfig) -> int:
    from fixadapter.store.depth import DepthReader

    symbol_id = _depth_symbol_id(store, args.symbol)
    snapshot = DepthReader(store.engine).latest(symbol_id)
    if snapshot is None:
        print(f"fixadapter depth latest: no depth stored for {args.symbol} ({symbol_id})", file=sys.stderr)
        return 1
    _depth_printer(args.format)(snapshot)
    return 0


def _depth_purge(args: argparse.Namespace, store: OrderStore, storage: DepthStorageConfig) -> int:
    from fixadapter.store.depth import purge_depth

    if args.older_than_days < storage.retention_days and not args.force:
        print(
            f"fixadapter depth: refusing to delete snapshots younger than the retention of "
            f"{storage.retention_days:g} days (market_data.storage.retention_days); add --force to do it",
            file=sys.stderr,
        )
        return 1
    cutoff = datetime.now(UTC) - timedelta(days=args.older_than_days)
    deleted = purge_depth(store.engine, cutoff)
    print(f"deleted {deleted} snapshots older than {cutoff.isoformat()}")
    return 0


def _log(args: argparse.Namespace) -> int:
    """`fixadapter log ...`: compliance's reading of the FIX message log (database or QuickFIX files)."""
    from fixadapter.compliance.commands import run_log_command

    if args.log_command == "verify":
        return _log_verify(args)
    return run_log_command(args)


def _log_verify(args: argparse.Namespace) -> int:
    """Print each chain's state; exit 1 naming the first tampered record, so scripts and cron can alert."""
    from fixadapter.compliance.chain import verify
    from fixadapter.compliance.locate import locate, missing_hint
    from fixadapter.compliance.table import TABLE
    from fixadapter.config_parts import load_store_parts
    from fixadapter.store.checks import require_table
    from fixadapter.store.repository import make_engine

    if args.config is not None:  # the databases alone: verifying needs no account password
        url = load_store_parts(args.config).compliance_url
    else:
        url, note = locate(args.store_url)
        if note is not None:
            print(f"fixadapter log verify: {note}", file=sys.stderr)
    engine = make_engine(url)
    try:
        require_table(engine, TABLE, missing_hint(url))
        report = verify(engine, args.session, args.day)
    finally:
        engine.dispose()
    for chain in report.chains:
        if chain.problem is None:
            print(f"{chain.session} {chain.day}: intact, {chain.records} records, head {chain.head}")
        else:
            print(f"{chain.session} {chain.day}: TAMPERED after {chain.records} records; {chain.problem}")
    first = report.first_problem
    if first is not None:
        print(f"fixadapter log verify: tampered: {first}", file=sys.stderr)
        return 1
    print("no records to verify" if not report.chains else f"all {len(report.chains)} chain(s) intact")
    return 0


def _kill_switch(args: argparse.Namespace) -> int:
    """`fixadapter kill-switch status|engage|release`: one HTTP call to the running daemon."""
    import urllib.error
    import urllib.parse
    import urllib.request

    url = args.url.rstrip("/") + "/kill-switch"
    if args.account:
        url += "?" + urllib.parse.urlencode({"account": args.account})
    if not url.startswith(("http://", "https://")):
        print(
            f"fixadapter kill-switch: --url must look like http://127.0.0.1:8080, not {args.url}",
            file=sys.stderr,
        )
        return 2
    request = urllib.request.Request(url, method="GET")  # noqa: S310 - http(s) only, checked above
    if args.action != "status":
        if not (args.reason or "").strip():
            print(f"fixadapter kill-switch: --reason is required to {args.action}", file=sys.stderr)
            return 2
        by = args.by or f"{os.environ.get('USER') or getpass.getuser()}@{socket.gethostname()}"
        body = {"action": args.action, "by": by, "reason": args.reason}
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")  # noqa: S310
        request.add_header("Content-Type", "application/json")
    token = os.environ.get(args.token_env)
    if token:  # status needs it too: with a token set, only the probes and /metrics are open
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:  # noqa: S310
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        print(f"fixadapter kill-switch: HTTP {exc.code}: {_server_message(exc)}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        why = getattr(exc, "reason", None) or exc
        print(
            f"fixadapter kill-switch: no daemon answering at {args.url}: {why}; "
            "is `fixadapter run` running with daemon.http enabled?",
            file=sys.stderr,
        )
        return 1
    print(json.dumps(answer, indent=2) if args.json else _kill_switch_text(answer, args.account))
    return 0


def _server_message(error: urllib.error.HTTPError) -> str:
    text = error.read().decode(errors="replace")
    try:
        return str(json.loads(text)["error"])
    except (ValueError, KeyError, TypeError):
        return text.strip() or str(error.reason)


def _kill_switch_text(answer: dict[str, Any], account: str | None = None) -> str:
    """The daemon's answer in words: who engaged it, why, since when, and what the sweep did."""
    state = answer["state"]
    whose = f" of account {account}" if account else ""
    if state["engaged"]:
        again = "" if answer.get("changed", True) else " (already engaged: kept as it was)"
        lines = [f"kill switch{whose} ENGAGED{again}", f"  by:     {state['engaged_by']}"]
        lines += [f"  reason: {state['reason']}", f"  since:  {state['since']}"]
    else:
        again = "" if answer.get("changed", True) else " (was not engaged)"
        lines = [f"kill switch{whose} released{again}: not blocking orders"]
        last = state.get("last_release")
        if last:
            lines.append(f"  last released by {last['by']} at {last['at']}: {last['reason']}")
    sweep = answer.get("sweep")
    if sweep is not None:
        lines.append(
            f"  cancels: {len(sweep['sent'])} sent, {len(sweep['already_cancelling'])} already being "
            f"cancelled, {len(sweep['failed'])} failed"
        )
        lines += [f"    {cl_ord_id}: {why}" for cl_ord_id, why in sweep["failed"].items()]
    history = answer.get("history") or []
    if history:
        lines.append("  recent changes (newest first):")
        lines += [f"    {e['at']}  {e['action']:<8} by {e['by']}: {e['reason']}" for e in history[:10]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {
        "simulate": _simulate,
        "order": _order,
        "run": _run,
        "demo": _demo,
        "depth": _depth,
        "log": _log,
        "kill-switch": _kill_switch,
        "orders": cli_orders.run_orders,
        "positions": cli_orders.run_positions,
        "cancel": cli_orders.run_cancel,
        "queue": _queue,
        "db": _db,
        "openapi": _openapi,
        "check": _check,
    }
    try:
        return commands[args.command](args)
    except (SessionNotReady, SubscriptionTimeout, TimeoutError) as exc:
        print(mask_secrets(f"fixadapter {args.command}: timed out: {exc}"), file=sys.stderr)
        return EXIT_TIMEOUT
    except FixAdapterError as exc:
        print(mask_secrets(f"fixadapter {args.command}: {exc}"), file=sys.stderr)
        return EXIT_FAILED
    except ValidationError as exc:
        print(mask_secrets(f"fixadapter {args.command}: {describe_validation(exc)}"), file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"fixadapter {args.command}: interrupted", file=sys.stderr)
        return 130

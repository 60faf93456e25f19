"""Command line: parses arguments and calls into the package; no trading logic lives here."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr, ValidationError

from fixadapter.config import load_config
from fixadapter.errors import FixAdapterError
from fixadapter.logs import configure_logging, mask_secrets


def _simulate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("simulate", help="run the cTrader CSERVER simulator (QUOTE + TRADE ports)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--quote-port", type=int, default=5201)
    p.add_argument("--trade-port", type=int, default=5202)
    p.add_argument("--control-port", type=int, default=5280, help="HTTP control port (0 picks one)")
    p.add_argument("--sender-comp-id", default="demo.sim.1234567", help="the client's SenderCompID")
    p.add_argument("--username", default="1234567")
    p.add_argument("--state", type=Path, help="sqlite file keeping the venue's orders across restarts")
    p.add_argument("--partial-fills", type=int, default=1, help="execute market orders in this many parts")
    p.add_argument("--tick-ms", type=int, default=250, help="price move interval")
    p.add_argument("--seed", type=int)
    p.add_argument("--log-level", default="INFO")


def _order_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("order", help="send one order and print its events until it is done")
    p.add_argument("--config", type=Path, required=True, help="YAML config (see README)")
    p.add_argument("--symbol", required=True, help="name (EURUSD) or cTrader symbol id")
    p.add_argument("--side", choices=["buy", "sell"], required=True)
    p.add_argument("--type", dest="order_type", choices=["market", "limit", "stop"], default="market")
    p.add_argument("--quantity", type=Decimal, required=True, help="in units (EURUSD 1 lot = 100000)")
    p.add_argument("--price", type=Decimal)
    p.add_argument("--stop-price", type=Decimal)
    p.add_argument("--position-id")
    p.add_argument("--label")
    p.add_argument("--watch-seconds", type=float, default=30.0, help="stop watching after this long")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fixadapter", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _simulate_parser(sub)
    _order_parser(sub)
    run = sub.add_parser("run", help="run the adapter until SIGTERM/SIGINT")
    run.add_argument("--config", type=Path, required=True, help="YAML config (see README)")
    demo = sub.add_parser("demo", help="run the simulator and trade a few orders against it")
    demo.add_argument("--workdir", type=Path, default=Path("var/demo"))
    return parser


def _simulate(args: argparse.Namespace) -> int:
    from fixadapter.sim.config import SimConfig
    from fixadapter.sim.runner import run_simulator

    configure_logging(args.log_level)
    password = os.environ.get("FIXADAPTER_SIM_PASSWORD", "sim-password")
    config = SimConfig(
        host=args.host,
        quote_port=args.quote_port,
        trade_port=args.trade_port,
        control_port=args.control_port,
        sender_comp_id=args.sender_comp_id,
        username=args.username,
        password=SecretStr(password),
        state_path=args.state,
        partial_fill_parts=args.partial_fills,
        tick_interval_ms=args.tick_ms,
        seed=args.seed,
    )
    run_simulator(config)
    return 0


def _order(args: argparse.Namespace) -> int:
    from fixadapter.watch import send_and_watch

    config = load_config(args.config)
    configure_logging(config.logging.level)
    fields = {k: v for k, v in vars(args).items() if v is not None}
    return asyncio.run(send_and_watch(config, fields, args.watch_seconds))


def _run(args: argparse.Namespace) -> int:
    from fixadapter.daemon import run_daemon

    config = load_config(args.config)
    configure_logging(config.logging.level)
    return asyncio.run(run_daemon(config))


def _demo(args: argparse.Namespace) -> int:
    from fixadapter.demo import run_demo

    configure_logging("WARNING")
    return asyncio.run(run_demo(args.workdir))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"simulate": _simulate, "order": _order, "run": _run, "demo": _demo}
    try:
        return commands[args.command](args)
    except (FixAdapterError, ValidationError) as exc:
        print(mask_secrets(f"fixadapter {args.command}: {exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

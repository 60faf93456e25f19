"""`fixadapter check --config FILE [--account NAME]`: its arguments and its run (exit 0: every step
passed, 1: a step failed; a config the adapter cannot load exits 2 like every command)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from fixadapter.check.report import Report
from fixadapter.config import AdapterConfig, load_config
from fixadapter.errors import ConfigError
from fixadapter.logs import configure_logging, mask_secrets

EXIT_INVALID_CONFIG = 2  # the README's promise: 0 passed, 1 a step failed, 2 the config itself is invalid

DEFAULT_TIMEOUT = 10.0


def add_check_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check",
        help="connect to each account as the daemon would (TCP, TLS, logon, SecurityList, positions; Open "
        "API auth, token, account) and say what works and what is wrong; never places an order",
        description="Exit code 0 when every step passed, 1 when one failed, 2 when the config is invalid.",
    )
    p.add_argument("--config", type=Path, required=True, help="YAML config (see README)")
    p.add_argument("--account", help="check only this configured account (default: every one)")
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds each step may take (default {DEFAULT_TIMEOUT:g})",
    )
    p.add_argument(
        "--refresh-token",
        action="store_true",
        help="Open API: refresh the token even when it is not due (proves the refresh works; the stored "
        "pair rotates, a running daemon on the same token store follows)",
    )
    p.add_argument(
        "--log-level",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        default="CRITICAL",
        help="also show the adapter's own log at this level on stderr (default: CRITICAL, nearly none)",
    )


def _print(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run_check(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        names = [config.account(args.account).name] if args.account else config.account_names
    except ConfigError as invalid:
        sys.stderr.write(mask_secrets(f"fixadapter check: {invalid}") + "\n")
        return EXIT_INVALID_CONFIG
    configure_logging(args.log_level)
    report = Report(out=_print)
    return asyncio.run(check_accounts(config, names, report, args.timeout, args.refresh_token))


async def check_accounts(
    config: AdapterConfig, names: list[str], report: Report, timeout: float, refresh_token: bool = False
) -> int:
    from fixadapter.check.fix import check_fix
    from fixadapter.check.openapi import check_openapi

    failed: list[str] = []
    for number, name in enumerate(names):
        if number:
            report.heading("")
        first = len(report.steps)
        if config.account(name).fix is not None:
            await check_fix(config, name, report, timeout)
        else:
            await check_openapi(config, name, report, timeout, refresh_token)
        if report.failures(first):
            failed.append(name)
    report.heading("")
    if failed:
        count = len(report.failures())
        report.heading(f"FAILED: {count} check(s) failed for {', '.join(failed)}; see 'what to do' above")
        return 1
    report.heading(f"OK: every check passed for {', '.join(names)}")
    return 0


__all__ = ["add_check_parser", "check_accounts", "run_check"]

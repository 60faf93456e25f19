"""`fixadapter db upgrade | current`: bring a store's schema up to date in place, or say where it stands."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fixadapter.compliance.table  # noqa: F401 - defines the compliance history's tables
from fixadapter.errors import ConfigError
from fixadapter.model.requests import ACCOUNT_PATTERN, DEFAULT_ACCOUNT
from fixadapter.store.migrations import (
    COMPLIANCE,
    STORE,
    History,
    SchemaState,
    state,
    upgrade,
    where,
)

if TYPE_CHECKING:
    from fixadapter.config import AdapterConfig

Target = tuple[History, str]  # a history and the URL of the database holding it


def add_db_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    source = argparse.ArgumentParser(add_help=False)
    where_from = source.add_mutually_exclusive_group(required=True)
    where_from.add_argument(
        "--config",
        type=Path,
        help="YAML config: store.url, and the compliance database (compliance.store_url)",
    )
    where_from.add_argument(
        "--store-url",
        help="a bare database URL instead of --config (the compliance tables too if it has them)",
    )
    p = sub.add_parser("db", help="the database schema: upgrade a store in place, or print its revision")
    db = p.add_subparsers(dest="db_command", required=True)
    up = db.add_parser(
        "upgrade",
        parents=[source],
        help="bring the store (and the compliance record) to this fixadapter's schema, in place, printing "
        "each step; back the database up first",
    )
    up.add_argument(
        "--account",
        type=_account_name,
        help="the account the store's rows belong to (default: the configured account's name, else "
        f"{DEFAULT_ACCOUNT!r})",
    )
    db.add_parser("current", parents=[source], help="print each schema's revision and whether it is behind")


def _account_name(text: str) -> str:
    if not re.fullmatch(ACCOUNT_PATTERN, text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is no account name: a lower-case letter, then up to 31 of a-z, 0-9 and '_'"
        )
    return text


def configured_account(config: AdapterConfig) -> str:
    """The account a store written by a single-account fixadapter served: the configured account's name
    (`default` in the single-account form)."""
    names = config.account_names
    if len(names) > 1:
        raise ConfigError(
            f"the config has {len(names)} accounts ({', '.join(names)}): a store written before accounts "
            "served one; say which with --account NAME"
        )
    return names[0]


def _targets(args: argparse.Namespace) -> tuple[list[Target], str]:
    if args.config is None:
        url: str = args.store_url
        return [(STORE, url), (COMPLIANCE, url)], DEFAULT_ACCOUNT
    from fixadapter.config import load_config

    config = load_config(args.config)
    targets: list[Target] = [(STORE, config.store.url)]
    if config.compliance.enabled and config.compliance.database:
        targets.append((COMPLIANCE, config.compliance_store_url))
    return targets, configured_account(config)


def _out(line: str) -> None:
    sys.stdout.write(f"{line}\n")
    sys.stdout.flush()


def _say(line: str) -> None:
    """A progress line, with the time: a big store's upgrade shows where it is."""
    _out(f"{datetime.now(UTC).strftime('%H:%M:%S')} {line}")


def _each(targets: list[Target], work: Callable[[History, Any], None]) -> None:
    from fixadapter.store.repository import make_engine

    for history, url in targets:
        engine = make_engine(url)
        try:
            work(history, engine)
        finally:
            engine.dispose()


def run_db_command(args: argparse.Namespace) -> int:
    targets, account = _targets(args)
    bare = args.config is None

    if args.db_command == "current":

        def show(history: History, engine: Any) -> None:
            found = state(engine, history)
            if bare and history is not STORE and found.empty:
                return
            _out(f"{history.name}: {_current_text(found)} ({where(engine)})")

        _each(targets, show)
        return 0

    chosen = args.account or account

    def bring_up(history: History, engine: Any) -> None:
        if bare and history is not STORE and state(engine, history).empty:
            return  # a bare store URL: the compliance record only where its tables are
        upgrade(engine, history, account=chosen, progress=_say)

    _each(targets, bring_up)
    _say("done: every schema is at head")
    return 0


def _current_text(found: SchemaState) -> str:
    head = found.history.head()
    if found.at_head:
        return f"{found.revision} (head)"
    if found.empty:
        return f"empty (created at {head} when first used)"
    return f"{found.describe()}, behind head {head}: run `fixadapter db upgrade`"

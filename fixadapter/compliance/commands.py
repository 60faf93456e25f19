"""`fixadapter log search|show|order|export|import`: the message log for compliance officers (arguments).

The parsers live here and the work in compliance/handlers.py, imported only when a `log` command runs, so
every other command starts without loading the database layer. fixadapter/cli.py wires both in (its `log`
parser is shared with `log verify`). Every command reads either the database (--config or --store-url) or
QuickFIX log files straight (--file, no database needed).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeAlias

from fixadapter.compliance.export import FORMATS

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


# -- parsers ------------------------------------------------------------------------------------------


def _utc_time(text: str) -> datetime:
    """ISO 8601 (or FIX's 20250101-10:00:00) from the command line; a time without an offset is UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        try:
            value = datetime.strptime(text, "%Y%m%d-%H:%M:%S")
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text}")
    return value


def _source_options(required: bool) -> argparse.ArgumentParser:
    source = argparse.ArgumentParser(add_help=False)
    where = source.add_mutually_exclusive_group(required=required)
    where.add_argument(
        "--config", type=Path, help="YAML config: the database (compliance.store_url or store.url)"
    )
    where.add_argument("--store-url", help="database URL holding fix_messages, instead of --config")
    where.add_argument(
        "--file",
        dest="files",
        metavar="FILE",
        type=Path,
        nargs="+",
        action="extend",
        help="QuickFIX message log file(s) (.log or .log.gz, from any FIX engine), read without a database",
    )
    _side_options(source)
    return source


def _side_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--our-comp-id",
        help="our SenderCompID in the log files, when their name and CompIDs do not tell which side is ours",
    )
    parser.add_argument(
        "--dictionary", type=Path, help="FIX dictionary XML (default: config's, else spec/FIX44-CTRADER.xml)"
    )


def _filter_options() -> argparse.ArgumentParser:
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument("--cl-ord-id", help="ClOrdID (11) or OrigClOrdID (41); Open API: clientOrderId")
    filters.add_argument("--order-id", help="the venue's OrderID (37); Open API: orderId")
    filters.add_argument(
        "--msg-type",
        help="message type: code (D, 8) or name (NewOrderSingle); Open API: payload type (NewOrderReq, 2106)",
    )
    filters.add_argument(
        "--session", help="QUOTE, TRADE or OPENAPI (or the session name of another engine's log)"
    )
    filters.add_argument("--from", dest="start", type=_utc_time, help="inclusive; ISO 8601, UTC if no offset")
    filters.add_argument("--to", dest="end", type=_utc_time, help="exclusive; ISO 8601, UTC if no offset")
    return filters


def add_log_parsers(log: SubParsers) -> None:
    """search, show, order, export and import under `fixadapter log`."""
    source, filters = _source_options(required=True), _filter_options()
    search = log.add_parser(
        "search", parents=[source, filters], help="messages matching every filter given, in time order"
    )
    search.add_argument("--format", choices=FORMATS, default="table", help="default: table")
    search.add_argument("--decoded", action="store_true", help="csv/jsonl: add each message decoded")
    search.add_argument("--limit", type=_positive, help="stop after this many messages")
    show = log.add_parser(
        "show",
        parents=[_source_options(required=False)],
        help="one message decoded: ID is a database id (with --config/--store-url) or FILE:LINE",
    )
    show.add_argument("id", metavar="ID")
    order = log.add_parser(
        "order",
        parents=[source],
        help="the whole life of one order in time order, following cancel/replace chains, decoded",
    )
    order.add_argument("cl_ord_id", metavar="CLORDID", help="any ClOrdID of the order's chain")
    order.add_argument("--format", choices=FORMATS, default="decoded", help="default: decoded")
    order.add_argument("--decoded", action="store_true", help="csv/jsonl: add each message decoded")
    export = log.add_parser(
        "export", parents=[source, filters], help="matching messages to a CSV or JSONL file"
    )
    export.add_argument("--format", choices=["csv", "jsonl"], required=True)
    export.add_argument("--out", type=Path, required=True, help="file to write ('-' for standard output)")
    export.add_argument("--decoded", action="store_true", help="add each message decoded")
    _import_parser(log)


def _import_parser(log: SubParsers) -> None:
    imports = log.add_parser(
        "import",
        help="load QuickFIX message log files (any FIX engine) into fix_messages; bad lines are reported",
    )
    imports.add_argument("paths", metavar="FILE", type=Path, nargs="+")
    where = imports.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, help="YAML config: the database and account.sender_comp_id")
    where.add_argument("--store-url", help="database URL, instead of --config")
    imports.add_argument(
        "--our-comp-id",
        help="our SenderCompID, when the file name and CompIDs do not tell which side is ours",
    )
    imports.add_argument("--session", help="session name for every message (default: QUOTE/TRADE from 50/57)")
    imports.add_argument("--batch-size", type=_positive, default=2000, help="messages per transaction")
    imports.add_argument("--progress-every", type=_positive, default=100_000, help="progress every N lines")


def run_log_command(args: argparse.Namespace) -> int:
    """Run `fixadapter log <command>` (all but verify)."""
    from fixadapter.compliance.handlers import run

    return run(args)

"""The work of `fixadapter log search|show|order|export|import` (arguments in compliance/commands.py).

Errors are FixAdapterError subclasses: cli.main prints them and exits 1. Skipped log lines go to stderr with
their file and line number; results go to stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import TextIO

from fixadapter.compliance.decode import Dictionary, default_dictionary_path
from fixadapter.compliance.export import write
from fixadapter.compliance.importer import Importer, ImportResult
from fixadapter.compliance.locate import locate, missing_hint
from fixadapter.compliance.logfile import LogFileError, LogFileReader, Problem
from fixadapter.compliance.openapi_display import payload_type_name
from fixadapter.compliance.query import Entry, FileSource, LogFilter, Source, StoreSource, order_life
from fixadapter.compliance.table import TABLE
from fixadapter.compliance.writer import ComplianceWriter
from fixadapter.config_parts import StoreParts, load_store_parts
from fixadapter.errors import FixAdapterError
from fixadapter.store.checks import require_table
from fixadapter.store.repository import make_engine

PROG = "fixadapter log"
MAX_PROBLEMS_SHOWN = 100


class LogCommandError(FixAdapterError):
    """A `fixadapter log` request that cannot be answered as asked (says what to pass instead)."""


# -- sources ------------------------------------------------------------------------------------------


def _config(args: argparse.Namespace) -> StoreParts | None:
    """What the config says about the databases and the dictionary; its accounts (the trading password)
    are neither needed nor checked: reading the log is no trading."""
    return None if getattr(args, "config", None) is None else load_store_parts(args.config)


def store_url(config: StoreParts) -> str:
    """The database fix_messages lives in (AdapterConfig.compliance_store_url)."""
    return config.compliance_url


def _given_url(args: argparse.Namespace) -> str | None:
    """--store-url, or the compliance database beside it when it is the order store (said on stderr)."""
    if args.store_url is None:
        return None
    url, note = locate(args.store_url)
    if note is not None:
        sys.stderr.write(f"{PROG}: {note}\n")
    return url


def _dictionary(args: argparse.Namespace, config: StoreParts | None) -> Dictionary:
    if args.dictionary is not None:
        return Dictionary.load(args.dictionary)
    if config is not None and config.dictionary.is_file():
        return Dictionary.load(config.dictionary)
    return Dictionary.load(default_dictionary_path())


def _print_problem(problem: Problem) -> None:
    sys.stderr.write(f"{PROG}: {problem}\n")


@contextmanager
def _reading(args: argparse.Namespace) -> Iterator[tuple[Source, Dictionary]]:
    """The source the arguments name (database or files) and the dictionary to decode with."""
    config = _config(args)
    dictionary = _dictionary(args, config)
    if args.files:
        files = FileSource(args.files, args.our_comp_id, on_problem=_print_problem)
        files.check()
        yield files, dictionary
        return
    url = store_url(config) if config is not None else _given_url(args)
    if url is None:
        raise LogCommandError("say where the messages are: --config, --store-url or --file")
    engine = make_engine(url)
    try:
        require_table(engine, TABLE, missing_hint(url))
        yield StoreSource(engine), dictionary
    finally:
        engine.dispose()


def _filter(args: argparse.Namespace, dictionary: Dictionary) -> LogFilter:
    if args.start is not None and args.end is not None and args.start >= args.end:
        raise LogCommandError(f"--from {args.start.isoformat()} is not before --to {args.end.isoformat()}")
    session = args.session
    if session is not None:  # QUOTE/TRADE/OPENAPI of the default account, <account>:<kind> of another
        account, colon, kind = session.rpartition(":")
        if kind.upper() in ("QUOTE", "TRADE", "OPENAPI"):
            session = f"{account}{colon}{kind.upper()}"
    return LogFilter(
        session=session,
        msg_type=None if args.msg_type is None else message_type(args.msg_type, dictionary),
        cl_ord_id=args.cl_ord_id,
        order_id=args.order_id,
        start=args.start,
        end=args.end,
    )


def message_type(text: str, dictionary: Dictionary) -> str:
    """A FIX message type (code or name) when the dictionary knows it, else an Open API payload type (name,
    name without ProtoOA, or number) as recorded, else the text as given."""
    fix_type = dictionary.msg_type(text)
    if fix_type in dictionary.messages:
        return fix_type
    return payload_type_name(text) or text


# -- commands -----------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """Run `fixadapter log <command>` (all but verify); a closed pipe (`| head`) ends quietly."""
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "search": _search,
        "show": _show,
        "order": _order,
        "export": _export,
        "import": _import,
    }
    try:
        return commands[args.log_command](args)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _search(args: argparse.Namespace) -> int:
    with _reading(args) as (source, dictionary):
        entries = source.search(_filter(args, dictionary))
        count = write(islice(entries, args.limit), sys.stdout, args.format, dictionary, decoded=args.decoded)
    if count == 0:
        sys.stderr.write(f"{PROG} search: no message matches\n")
        return 1
    return 0


def _show(args: argparse.Namespace) -> int:
    ident: str = args.id
    if ident.isdigit():
        if args.files:
            raise LogCommandError(f"with --file, name the message as FILE:LINE (not {ident})")
        with _reading(args) as (source, dictionary):
            entry = source.get(int(ident)) if isinstance(source, StoreSource) else None
            return _show_entry(entry, ident, dictionary)
    path_text, _, line = ident.rpartition(":")
    if not path_text or not line.isdigit():
        raise LogCommandError(f"ID must be a database id (a number) or FILE:LINE, not {ident!r}")
    path = Path(path_text)
    files = FileSource([path], args.our_comp_id, on_problem=_print_problem)
    files.check()
    return _show_entry(files.get(path, int(line)), ident, _dictionary(args, _config(args)))


def _show_entry(entry: Entry | None, ident: str, dictionary: Dictionary) -> int:
    if entry is None:
        sys.stderr.write(f"{PROG} show: no message {ident}\n")
        return 1
    write([entry], sys.stdout, "decoded", dictionary)
    return 0


def _order(args: argparse.Namespace) -> int:
    with _reading(args) as (source, dictionary):
        life = order_life(source, args.cl_ord_id)
        if not life.entries:
            sys.stderr.write(f"{PROG} order: no message with ClOrdID {args.cl_ord_id}\n")
            return 1
        if args.format in ("table", "decoded"):
            sys.stdout.write(
                f"order {args.cl_ord_id}: ClOrdIDs {' -> '.join(life.cl_ord_ids)}; "
                f"OrderID {', '.join(life.order_ids) or '-'}; {len(life.entries)} messages\n\n"
            )
        write(life.entries, sys.stdout, args.format, dictionary, decoded=args.decoded)
    return 0


def _export(args: argparse.Namespace) -> int:
    with _reading(args) as (source, dictionary):
        entries = source.search(_filter(args, dictionary))
        if str(args.out) == "-":
            write(entries, sys.stdout, args.format, dictionary, decoded=args.decoded)
            return 0
        count = _write_file(
            args.out, lambda out: write(entries, out, args.format, dictionary, decoded=args.decoded)
        )
    sys.stdout.write(f"exported {count} messages to {args.out}\n")
    return 0


def _write_file(path: Path, fill: Callable[[TextIO], int]) -> int:
    """Write through a temporary file renamed at the end: a failed export leaves no half file behind."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            count = fill(out)
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise LogCommandError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return count


def _our_comp_id(config: StoreParts | None) -> str | None:
    """The config's SenderCompID when it names one account (with several, --our-comp-id tells)."""
    return None if config is None else config.our_comp_id


def _import(args: argparse.Namespace) -> int:
    config = _config(args)
    url = store_url(config) if config is not None else args.store_url
    engine = make_engine(url)
    try:
        importer = Importer(
            ComplianceWriter(engine),
            our_comp_id=args.our_comp_id,
            config_comp_id=_our_comp_id(config),
            session=args.session,
            batch_size=args.batch_size,
            progress=_progress,
            progress_every=args.progress_every,
        )
        for path in args.paths:  # every file checked before anything is stored
            importer.reader(path).check()
        return _import_all(importer, args.paths)
    finally:
        engine.dispose()


def _import_all(importer: Importer, paths: list[Path]) -> int:
    """Import file after file; a file that breaks off (damaged) is reported and the others still go in."""
    failed = 0
    results: list[ImportResult] = []
    for path in paths:
        try:
            result = importer.import_file(path)
        except LogFileError as exc:
            sys.stderr.write(f"{PROG} import: {exc}\n")
            failed += 1
            continue
        results.append(result)
        _report(result)
    if len(results) > 1:
        sys.stdout.write(
            f"total: {sum(r.imported for r in results)} imported, {sum(r.duplicates for r in results)} "
            f"already stored, {sum(r.skipped for r in results)} skipped\n"
        )
    return 1 if failed else 0


def _report(result: ImportResult) -> None:
    """Skipped and warned lines on stderr (the first MAX_PROBLEMS_SHOWN), the file's summary on stdout."""
    for problem in result.problems[:MAX_PROBLEMS_SHOWN]:
        _print_problem(problem)
    hidden = len(result.problems) - MAX_PROBLEMS_SHOWN
    if hidden > 0:
        sys.stderr.write(f"{PROG} import: {result.path}: {hidden} more not shown\n")
    lines = [str(p.line) for p in result.problems if not p.warning]
    listed = ", ".join(lines[:20]) + (", ..." if len(lines) > 20 else "")
    sys.stdout.write(
        f"{result.path}: {result.imported} imported, {result.duplicates} already stored, "
        f"{result.skipped} skipped{f' (lines {listed})' if lines else ''}, {result.warnings} warnings; "
        f"{result.lines} lines read\n"
    )


def _progress(reader: LogFileReader) -> None:
    share = ""
    if reader.path.suffix != ".gz":
        size = reader.path.stat().st_size
        share = f" ({100 * reader.bytes_read // max(size, 1)}%)"
    sys.stderr.write(f"{PROG} import: {reader.path}: line {reader.lines}{share}, {reader.messages} read\n")

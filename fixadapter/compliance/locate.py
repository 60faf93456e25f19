"""Where `fix_messages` is, when a tool is given the main store's URL.

Beside a SQLite store the adapter records FIX and Open API messages in a database of their own,
`<store>-fix.db` (AdapterConfig.compliance_store_url), so `--store-url sqlite:///var/fixadapter.db` names
a database holding none. Given such a URL, the tools read the compliance database beside it, and say so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Select, inspect, literal_column, select, table
from sqlalchemy.exc import SQLAlchemyError

from fixadapter.compliance.table import TABLE
from fixadapter.config import AdapterConfig, StoreConfig
from fixadapter.store.repository import make_engine


def compliance_beside(url: str) -> str | None:
    """The `<store>-fix.db` URL the adapter uses beside the SQLite store at `url` (None: not SQLite, or
    already a compliance database)."""
    own = _sqlite_file(url)
    if own is not None and own.stem.endswith("-fix"):
        return None
    beside = AdapterConfig.model_construct(accounts=(), store=StoreConfig(url=url)).compliance_store_url
    return None if beside == url else beside


def _holds_messages(engine: Engine) -> bool:
    try:
        if not inspect(engine).has_table(TABLE):
            return False
        with engine.connect() as conn:
            one: Select[tuple[Any]] = select(literal_column("1")).select_from(table(TABLE)).limit(1)
            return conn.execute(one).first() is not None
    except SQLAlchemyError:
        return False


def _sqlite_file(url: str) -> Path | None:
    path = url.removeprefix("sqlite:///").partition("?")[0]
    return Path(path) if url.startswith("sqlite:///") and path and path != ":memory:" else None


def locate(url: str) -> tuple[str, str | None]:
    """The URL to read fix_messages from, and a note for the user when it is not `url`: the main store's
    URL leads to the compliance database beside it when that one holds the messages and `url` none."""
    beside = compliance_beside(url)
    if beside is None:
        return url, None
    beside_file = _sqlite_file(beside)
    if beside_file is None or not beside_file.exists():
        return url, None
    given_file = _sqlite_file(url)
    if given_file is not None and given_file.exists():
        engine = make_engine(url)
        try:
            if _holds_messages(engine):
                return url, None
        finally:
            engine.dispose()
    note = (
        f"{url} is the order store: FIX messages are recorded in {beside} beside it "
        "(compliance.store_url, else <store>-fix.db); reading that one"
    )
    return beside, note


def missing_hint(url: str) -> str:
    """What to say when `url` holds no fix_messages table: where the adapter would have put them."""
    beside = compliance_beside(url)
    if beside is None:
        return "no FIX message was recorded there"
    return (
        f"no FIX message was recorded there; beside a SQLite store they go to {beside} "
        "(compliance.store_url, else <store>-fix.db): pass that to --store-url, or use --config"
    )

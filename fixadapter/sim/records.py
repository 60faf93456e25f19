"""The simulated venue's records: what it keeps per order and position and what it hands back.

Also their JSON form for the venue's state file (exact Decimals, ISO datetimes with offset).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from fixadapter.model.enums import OrderType, Side
from fixadapter.private_files import private_file
from fixadapter.store.sqlite_wal import use_wal

ZERO = Decimal(0)


# The venue speaks the same vocabulary for sides and order types as the model (no FIX codes here).
OrderKind = OrderType


class VenueStatus(StrEnum):
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"


WORKING_STATUSES = frozenset({VenueStatus.NEW, VenueStatus.PARTIALLY_FILLED})


class ExecKind(StrEnum):
    NEW = "new"
    TRADE = "trade"
    CANCELLED = "cancelled"
    REPLACED = "replaced"
    REJECTED = "rejected"
    EXPIRED = "expired"
    STATUS = "status"


@dataclass(frozen=True)
class PlaceRequest:
    """A NewOrderSingle (D) as the venue sees it; quantity in units, position_id = tag 721."""

    cl_ord_id: str
    symbol_id: int
    side: Side
    kind: OrderKind
    quantity: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    expire_time: datetime | None = None
    position_id: int | None = None
    label: str | None = None
    # What the Open API adds to an order (FIX sends none of it): protection for the position the order
    # opens (absolute prices, or distances from the fill price), a free comment, and whether the order
    # closes (part of) a position.
    comment: str | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    relative_stop_loss: Decimal | None = None
    relative_take_profit: Decimal | None = None
    trailing_stop_loss: bool = False
    closing: bool = False


@dataclass
class VenueOrder:
    """An order as the venue keeps it. Mutable only inside `Venue`; callers always receive copies.

    `position_id` is 0 only on a rejected order that named no position. `notional` is the exact sum of
    fill quantity times price, from which `avg_px` is derived.
    """

    order_id: int
    cl_ord_id: str
    symbol_id: int
    side: Side
    kind: OrderKind
    quantity: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    expire_time: datetime | None
    position_id: int
    label: str | None
    status: VenueStatus
    cum_qty: Decimal
    avg_px: Decimal | None
    created_at: datetime
    transact_time: datetime
    last_request_id: str
    fill_parts_left: int = 0
    notional: Decimal = ZERO
    comment: str | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    relative_stop_loss: Decimal | None = None
    relative_take_profit: Decimal | None = None
    trailing_stop_loss: bool = False
    closing: bool = False
    # A stop-limit whose stop price a quote has reached: from then on it works as a limit at `price`.
    triggered: bool = False

    @property
    def is_working(self) -> bool:
        return self.status in WORKING_STATUSES

    @property
    def leaves_qty(self) -> Decimal:
        return self.quantity - self.cum_qty if self.is_working else ZERO

    @property
    def under_execution(self) -> bool:
        """A market order still being executed in parts: cTrader refuses to cancel it."""
        return self.fill_parts_left > 0


@dataclass(frozen=True)
class VenuePosition:
    """An open hedged position (tag 721); entry_price is the volume-weighted average entry (AP tag 730).

    stop_loss/take_profit are the position's protection (Open API only; FIX cannot set them): a quote
    crossing either closes the position. A trailing stop keeps `trailing_distance` behind the best price.
    """

    position_id: int
    symbol_id: int
    side: Side
    volume: Decimal
    entry_price: Decimal
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trailing_stop_loss: bool = False
    trailing_distance: Decimal | None = None
    opened_at: datetime | None = None
    label: str | None = None
    comment: str | None = None


class DealStatus(StrEnum):
    FILLED = "filled"
    PARTIALLY_FILLED = "partially_filled"


@dataclass(frozen=True)
class VenueDeal:
    """One fill, as cTrader keeps it (the Open API's ProtoOADeal): its own id, never reused.

    `volume` is what the order sent for execution, `filled_volume` what this fill executed. A deal that
    reduces or closes a position carries the position's entry price and the volume it closed.
    `commission` is what the fill cost in USD, signed as cTrader books it (negative when charged); deals
    of state files written before commissions existed load with none.
    """

    deal_id: int
    order_id: int
    position_id: int
    symbol_id: int
    side: Side
    volume: Decimal
    filled_volume: Decimal
    price: Decimal
    created_at: datetime
    executed_at: datetime
    status: DealStatus
    closed_entry_price: Decimal | None = None
    closed_volume: Decimal | None = None
    commission: Decimal = ZERO


@dataclass(frozen=True)
class Execution:
    """One ExecutionReport to send: `request_id` goes to tag 11, `orig_request_id` (cancel only) to tag 41."""

    kind: ExecKind
    order: VenueOrder
    request_id: str
    orig_request_id: str | None = None
    last_qty: Decimal | None = None
    last_px: Decimal | None = None
    text: str | None = None
    # A TRADE's deal and its position after the fill (None when the fill closed it), for the Open API.
    deal: VenueDeal | None = None
    position: VenuePosition | None = None
    # Set on executions the venue made on its own (a stop loss or take profit closing a position).
    server_event: bool = False


@dataclass(frozen=True)
class NotFound:
    """The order of a cancel/replace/status request is unknown or finished: a `j` with this text."""

    request_id: str
    text: str


@dataclass(frozen=True)
class CancelRefused:
    """An OrderCancelReject (9); response_to is CxlRejResponseTo (434): 1 cancel, 2 replace."""

    request_id: str
    order: VenueOrder
    text: str
    response_to: int


class IdCounters:
    """Order and position ids shared by the venues of one server: cTrader's ids are server-wide, so one
    account's order or position id is never another account's (a client keying by id sees no clash)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[str, int] = {}

    def reserve(self, name: str, next_id: int) -> None:
        """A venue's next id as loaded from its state file: no id below it is handed out again."""
        with self._lock:
            self._next[name] = max(self._next.get(name, next_id), next_id)

    def allocate(self, name: str, at_least: int) -> int:
        """The next id of `name`, never below `at_least` (the asking venue's own next id)."""
        with self._lock:
            allocated = max(self._next.get(name, at_least), at_least)
            self._next[name] = allocated + 1
            return allocated


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS orders (order_id INTEGER PRIMARY KEY, data TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS positions (position_id INTEGER PRIMARY KEY, data TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS deals (deal_id INTEGER PRIMARY KEY, data TEXT NOT NULL)",
)


def open_database(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the state file in WAL mode with full fsync on commit.

    The connection is shared by QuickFIX and price threads; the venue's lock serialises its use.
    """
    private_file(path)  # the venue's orders and positions: this user's only (its -wal/-shm follow)
    connection = sqlite3.connect(path, timeout=10.0, check_same_thread=False)
    try:
        use_wal(connection)
        connection.execute("PRAGMA synchronous=FULL")
        with connection:
            for statement in _SCHEMA:
                connection.execute(statement)
    except BaseException:
        connection.close()
        raise
    return connection


# Fields decoded beyond plain JSON; ints and strings come back as they were written.
_DECIMAL_FIELDS = frozenset(
    {
        "quantity",
        "price",
        "stop_price",
        "cum_qty",
        "avg_px",
        "notional",
        "volume",
        "entry_price",
        "stop_loss",
        "take_profit",
        "relative_stop_loss",
        "relative_take_profit",
        "trailing_distance",
        "filled_volume",
        "closed_entry_price",
        "closed_volume",
        "commission",
    }
)
_DATETIME_FIELDS = frozenset({"expire_time", "created_at", "transact_time", "opened_at", "executed_at"})
_Record = TypeVar("_Record", VenueOrder, VenuePosition, VenueDeal)


def _encode(value: object) -> object:
    """Decimals as exact strings, datetimes as ISO 8601 with offset; enums are already strings."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _decode(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _DECIMAL_FIELDS:
        return Decimal(value)
    if name in _DATETIME_FIELDS:
        return datetime.fromisoformat(value)
    enum_types: dict[str, type[StrEnum]] = {"side": Side, "kind": OrderKind, "status": VenueStatus}
    return enum_types[name](value) if name in enum_types else value


def to_json(record: VenueOrder | VenuePosition | VenueDeal) -> str:
    fields = dataclasses.fields(record)
    return json.dumps({f.name: _encode(getattr(record, f.name)) for f in fields}, sort_keys=True)


def from_json(record_type: type[_Record], text: str) -> _Record:
    values = {name: _decode(name, value) for name, value in json.loads(text).items()}
    if record_type is VenueDeal:
        values["status"] = DealStatus(values["status"])
    return record_type(**values)

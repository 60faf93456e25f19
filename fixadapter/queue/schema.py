"""Version 1 of the queue's wire format: JSON commands from strategies, JSON events back to them.

Every message carries `v` (the schema version) and `type`. A consumer must refuse a version it does not
know rather than guess; a producer never changes the meaning of a field within a version (new optional
fields only). `spec/queue-schema-v1.json` is this module's JSON Schema, kept equal to it by a test.

Commands: `submit`, `cancel`, `replace`, `close_position`, `amend_position_protection`, each with a unique
`id` (the client's; a redelivered command has the same one) and the `strategy` sending it, which must be
the strategy whose stream carries it (a name of letters, digits, `.`, `_`, `-`), and the `account` it is
for (optional while the daemon trades one account; a name the daemon does not trade is refused). Every
event carries the `account` it is about. A submit's `order.cl_ord_id` is the idempotency key; when the
client leaves it out the command `id` is used, so a command delivered twice still makes one order; so is
a close_position's `request_id` (the closing order's ClOrdID). A submit may carry stop-limit, time in
force, stop loss / take profit (prices or distances), trailing stop loss and comment, and the position
commands need an account whose connector has them: refused with the reason otherwise. An `id` used again
for a different command is refused. A command is at most 64 KiB of JSON nested at most 32 levels.

Events: `order` (every state change, with the fill when there is one and `seq`, the store's sequence
number, increasing per adapter), `command_rejected` (a command refused before it reached the venue, with
`reason`, and `rule` plus `values` for a risk limit), and `positions` (the venue's open positions after a
refresh, on the shared positions stream).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from fixadapter.model.enums import OrderEventKind
from fixadapter.model.orders import Fill, Order, OrderEvent, Position, utc_now
from fixadapter.model.requests import (
    ACCOUNT_PATTERN,
    ID_PATTERN,
    STRATEGY_PATTERN,
    AmendPositionProtection,
    ClientId,
    ClosePosition,
    NewOrder,
    PositionId,
    Price,
    Quantity,
    ReplaceOrder,
)

SCHEMA_VERSION: Final = 1
Version = Literal[1]
StrategyId = Annotated[
    str,
    Field(
        pattern=STRATEGY_PATTERN,
        description="who sends the command and gets its events; the name of the stream it is sent on",
    ),
]
AccountId = Annotated[
    str,
    Field(
        pattern=ACCOUNT_PATTERN,
        description="the configured account the command is for; may be left out while the daemon trades one",
    ),
]
# Read before parsing: a bigger or deeper command is refused unparsed (json's recursion, memory).
MAX_COMMAND_BYTES = 64 * 1024
MAX_COMMAND_DEPTH = 32
MAX_REASON_CHARS = 400
COMMAND_TYPES = ("submit", "cancel", "replace", "close_position", "amend_position_protection")


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Version = SCHEMA_VERSION


class _Command(_Message):
    id: Annotated[ClientId, Field(description="unique per command; the same on a redelivery")]
    strategy: StrategyId
    account: AccountId | None = None
    sent_at: datetime | None = None


class SubmitCommand(_Command):
    type: Literal["submit"] = "submit"
    order: NewOrder

    @property
    def cl_ord_id(self) -> str:
        """The idempotency key: the order's ClOrdID, or the command id when the strategy gave none."""
        return self.order.cl_ord_id or self.id

    def new_order(self) -> NewOrder:
        """The order as the engine takes it: attributed to the strategy, keyed by `cl_ord_id`."""
        return self.order.model_copy(update={"strategy": self.strategy, "cl_ord_id": self.cl_ord_id})


class CancelCommand(_Command):
    type: Literal["cancel"] = "cancel"
    cl_ord_id: ClientId
    request_id: ClientId | None = None


class ReplaceCommand(_Command):
    type: Literal["replace"] = "replace"
    cl_ord_id: ClientId
    quantity: Quantity
    price: Price | None = None
    stop_price: Price | None = None
    expire_time: datetime | None = None
    request_id: ClientId | None = None

    def replace_order(self) -> ReplaceOrder:
        return ReplaceOrder.model_validate(
            self.model_dump(exclude={"v", "id", "strategy", "account", "sent_at", "type"})
        )


class ClosePositionCommand(_Command):
    """Close a position, whole (no quantity) or in part; the closing order's events follow on the stream."""

    type: Literal["close_position"] = "close_position"
    position_id: PositionId
    quantity: Quantity | None = None
    request_id: ClientId | None = Field(None, description="the closing order's ClOrdID (default: the id)")

    @property
    def cl_ord_id(self) -> str:
        """The closing order's ClOrdID: a redelivered command finds the order the first one made."""
        return self.request_id or self.id

    def close_position(self) -> ClosePosition:
        return ClosePosition(
            position_id=self.position_id,
            quantity=self.quantity,
            request_id=self.cl_ord_id,
            strategy=self.strategy,
        )


class AmendPositionProtectionCommand(_Command):
    """Set a position's stop loss and take profit; one left out is removed (the venue sets both)."""

    type: Literal["amend_position_protection"] = "amend_position_protection"
    position_id: PositionId
    stop_loss: Price | None = None
    take_profit: Price | None = None
    trailing_stop_loss: bool = False
    request_id: ClientId | None = None

    @model_validator(mode="after")
    def _trailing_needs_stop(self) -> Self:
        if self.trailing_stop_loss and self.stop_loss is None:
            raise ValueError("trailing_stop_loss needs a stop_loss")
        return self

    @property
    def cl_ord_id(self) -> None:
        """No order: a refusal names none."""
        return None

    def amend_position_protection(self) -> AmendPositionProtection:
        return AmendPositionProtection(
            position_id=self.position_id,
            stop_loss=self.stop_loss,
            take_profit=self.take_profit,
            trailing_stop_loss=self.trailing_stop_loss,
            request_id=self.request_id,
            strategy=self.strategy,
        )


AnyCommand = (
    SubmitCommand | CancelCommand | ReplaceCommand | ClosePositionCommand | AmendPositionProtectionCommand
)
Command = Annotated[AnyCommand, Field(discriminator="type")]


class _Event(_Message):
    time: datetime = Field(default_factory=utc_now)
    account: str | None = Field(None, description="the account it is about (none: the command named none)")


class OrderUpdate(_Event):
    type: Literal["order"] = "order"
    event: OrderEventKind
    order: Order
    fill: Fill | None = None
    reason: str | None = None
    seq: int | None = Field(None, description="the store's sequence number; none for submits and requests")

    @classmethod
    def of(cls, event: OrderEvent, account: str | None = None) -> OrderUpdate:
        return cls(
            account=account,
            event=event.kind,
            order=event.order,
            fill=event.fill,
            reason=event.reason,
            seq=event.seq,
            time=event.time,
        )


class CommandRejected(_Event):
    type: Literal["command_rejected"] = "command_rejected"
    command_id: str | None = None
    command_type: str | None = None
    cl_ord_id: str | None = None
    reason: str
    rule: str | None = Field(None, description="the risk rule that refused it (e.g. max_quantity)")
    values: dict[str, str] = Field(default_factory=dict, description="what the rule compared")


class PositionsUpdate(_Event):
    type: Literal["positions"] = "positions"
    positions: list[Position]


Event = Annotated[OrderUpdate | CommandRejected | PositionsUpdate, Field(discriminator="type")]

COMMAND = TypeAdapter[Command](Command)
EVENT = TypeAdapter[Event](Event)


class InvalidCommand(ValueError):
    """A command that cannot be taken; `id`, `strategy` and `type` are what could be read of it (for the
    reject event)."""

    def __init__(self, reason: str, raw: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        fields = raw if isinstance(raw, dict) else {}
        self.id = _identifier(fields.get("id"))
        self.strategy = _identifier(fields.get("strategy"), STRATEGY_PATTERN)
        self.type = _identifier(fields.get("type"))

    @property
    def known_type(self) -> str:
        """The command type as a metric label: one of COMMAND_TYPES or "unknown" (never free input)."""
        return self.type if self.type in COMMAND_TYPES else "unknown"


def _identifier(value: Any, pattern: str = ID_PATTERN) -> str | None:
    return value if isinstance(value, str) and re.fullmatch(pattern, value) else None


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = re.compile(rb"[^\[\]{}]")


def _depth(data: bytes) -> int:
    """How deep the JSON's arrays and objects nest (brackets inside strings not counted)."""
    brackets = _NOT_BRACKETS.sub(b"", _STRINGS.sub(b"", data))
    deepest = depth = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _readable(data: bytes | str) -> bytes:
    """`data` if it is small and shallow enough to parse; else InvalidCommand with the size or depth."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_COMMAND_BYTES:
        raise InvalidCommand(
            f"command is {len(raw)} bytes; the limit is {MAX_COMMAND_BYTES} bytes: send a smaller command"
        )
    # Fewer opening brackets than the limit cannot nest deeper than it: most commands skip the count.
    could_be_too_deep = raw.count(b"[") + raw.count(b"{") > MAX_COMMAND_DEPTH
    depth = _depth(raw) if could_be_too_deep else 0
    if depth > MAX_COMMAND_DEPTH:
        raise InvalidCommand(
            f"command nests {depth} levels deep; a command nests at most {MAX_COMMAND_DEPTH} levels"
        )
    return raw


def encode(message: BaseModel) -> bytes:
    return message.model_dump_json(exclude_none=False).encode()


def decode_command(data: bytes | str) -> AnyCommand:
    """Parse and validate one command; InvalidCommand says what is wrong in one line."""
    readable = _readable(data)
    try:
        raw = json.loads(readable)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidCommand(_short(f"not JSON: {exc}")) from None
    except RecursionError:  # the depth check makes this unreachable; kept so no input can kill a reader
        raise InvalidCommand("command nests too deep to read") from None
    if not isinstance(raw, dict):
        raise InvalidCommand("a command is a JSON object", raw)
    version = raw.get("v")
    if version != SCHEMA_VERSION:
        raise InvalidCommand(
            f"unsupported schema version {version!r}; this adapter speaks v{SCHEMA_VERSION}", raw
        )
    try:
        return COMMAND.validate_python(raw)
    except ValidationError as exc:
        raise InvalidCommand(_short(_describe(exc)), raw) from None


def decode_event(data: bytes | str) -> OrderUpdate | CommandRejected | PositionsUpdate:
    return EVENT.validate_json(data)


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def _short(reason: str) -> str:
    """A reason fit for an event and a log line: one line, at most MAX_REASON_CHARS."""
    reason = " ".join(reason.split())
    return reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 3] + "..."


def values_text(values: dict[str, Any]) -> dict[str, str]:
    """A risk reject's compared values as strings (Decimals exact, times ISO 8601)."""
    out = {}
    for key, value in values.items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
        elif isinstance(value, Decimal):
            out[key] = format(value, "f")
        else:
            out[key] = str(value)
    return out


def json_schema() -> dict[str, Any]:
    """The document in spec/queue-schema-v1.json."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"fixadapter strategy queue, schema v{SCHEMA_VERSION}",
        "description": (__doc__ or "").strip(),
        "$defs": {
            "command": COMMAND.json_schema(ref_template="#/$defs/command/$defs/{model}"),
            "event": EVENT.json_schema(ref_template="#/$defs/event/$defs/{model}"),
        },
    }

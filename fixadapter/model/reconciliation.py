"""A connector's answers to "what do you have?": one order's status, every working order, positions.

Answers are returned by the connector (connectors/base.py), never streamed through the engine's inbox.
Each carries `arrived`, its place in the order of arrival shared with the inbox's live events (see
`arrival_mark`): the engine applies an answer after every live event that arrived before it, and
never lets it undo a live event that arrived after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

from fixadapter.model.orders import Fill, Position
from fixadapter.model.reports import ExecutionReport

_ARRIVALS = count(1)


def arrival_mark() -> int:
    """The next number in the order of arrival (called on the event loop's thread only)."""
    return next(_ARRIVALS)


@dataclass(frozen=True)
class OrderStatusReport:
    """The venue's current view of one order it knows (`report.kind` is ExecKind.STATUS)."""

    report: ExecutionReport
    arrived: int = field(default_factory=arrival_mark)


@dataclass(frozen=True)
class OrderUnknown:
    """The venue does not know the order; `text` is its own words (kept in the order's reason). `sent`:
    its request did reach the venue's connection (and went unanswered), so it is never sent again."""

    cl_ord_id: str
    text: str | None
    arrived: int = field(default_factory=arrival_mark)
    sent: bool = False


OrderStatusAnswer = OrderStatusReport | OrderUnknown


@dataclass(frozen=True)
class PositionsReport:
    """Every open position the venue holds, complete."""

    positions: tuple[Position, ...]
    arrived: int = field(default_factory=arrival_mark)


@dataclass(frozen=True)
class MassStatus:
    """The venue's working orders (each a status view), fills it reports with them, and its positions.

    `positions` is None from a connector whose mass status does not include them (FIX: they are asked
    for separately with `positions()`)."""

    orders: tuple[ExecutionReport, ...]
    fills: tuple[Fill, ...] = ()
    positions: PositionsReport | None = None
    arrived: int = field(default_factory=arrival_mark)

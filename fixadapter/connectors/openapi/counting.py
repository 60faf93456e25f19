"""What the Open API transport counts, and the Prometheus families that keep the counts.

The transport only knows the `FrameCounter` protocol, so tests hand it a plain recorder and the connector
hands it `MetricsFrameCounter` (the account and connector labels bound by `Metrics`, as on every session
family). Payload types are labelled by message name; a payloadType of no message of ours is labelled
"unknown" so a misbehaving peer cannot grow the label set without bound.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Protocol

from fixadapter.connectors.openapi.rate_limit import Budget
from fixadapter.metrics import Metrics
from fixadapter.protocols.openapi.messages import message_class

__all__ = ["Direction", "FrameCounter", "MetricsFrameCounter", "NullFrameCounter", "payload_type_name"]


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


def payload_type_name(payload_type: int) -> str:
    """`ProtoOANewOrderReq` for 2106; "unknown" for a payloadType no message of ours has."""
    cls = message_class(payload_type)
    return cls.__name__ if cls is not None else "unknown"


class FrameCounter(Protocol):
    """Counts frames by direction and payload type, and frames (or parts of them) we could not read."""

    def frame(self, direction: Direction, payload_type: int) -> None: ...

    def unreadable(self, reason: str) -> None: ...


class NullFrameCounter:
    """Counts nothing: for a transport with no metrics (tools, some tests)."""

    def frame(self, direction: Direction, payload_type: int) -> None:
        pass

    def unreadable(self, reason: str) -> None:
        pass


class MetricsFrameCounter:
    """`fixadapter_openapi_frames_total` and `fixadapter_openapi_unreadable_frames_total` of one account
    and connector; `track_budget` points the rate-budget gauges at a transport's limiter."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def frame(self, direction: Direction, payload_type: int) -> None:
        self._metrics.openapi_frames.labels(direction.value, payload_type_name(payload_type)).inc()

    def unreadable(self, reason: str) -> None:
        self._metrics.openapi_unreadable_frames.labels(reason).inc()

    def track_budget(self, budget: Callable[[], Budget]) -> None:
        """Read the budget in use at every scrape; call again with the new transport after a reconnect."""
        gauge = self._metrics.openapi_rate_budget_in_use
        gauge.labels("overall").set_function(lambda: budget().overall_used)
        gauge.labels("historical").set_function(lambda: budget().historical_used)

"""Proactive request shaping for one Open API application: never give the server a reason to refuse.

The server allows 50 requests/s and 5 historical requests/s per connection (reference 1.7; older docs say
per application). One budget serves every connection of an application, its reconnects and its demo and
live links alike, so the stricter reading is met: a reconnect does not start a fresh budget while the
server may still count the last second's requests.
Exceeding them costs REQUEST_FREQUENCY_EXCEEDED or BLOCKED_PAYLOAD_TYPE with a retryAfter, so the writer
asks this limiter before every send instead of discovering the limit from errors.

Two sliding windows: at most `overall` requests in any `window` seconds, and at most `historical` of the
historical ones among them. The default window is a little over one second because transit jitter can
bunch requests sent exactly one second apart. The clock is injected, so tests run on a fake one.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from fixadapter.protocols.openapi.generated import OpenApiModelMessages_pb2 as model

__all__ = [
    "DEFAULT_WINDOW",
    "HISTORICAL_LIMIT",
    "HISTORICAL_PAYLOAD_TYPES",
    "OVERALL_LIMIT",
    "Budget",
    "RateLimiter",
    "SlidingWindow",
    "is_historical",
]

OVERALL_LIMIT = 50
HISTORICAL_LIMIT = 5
DEFAULT_WINDOW = 1.1  # seconds; > 1 s: a margin for jitter between our clock and the server's

# The old FAQ names trendbars, tick data and deal list; the official .NET samples add cash-flow history;
# the reference advises treating every time-range query as historical (a user was throttled on an order
# list), so the order lists and the by-position lists count too.
HISTORICAL_PAYLOAD_TYPES: frozenset[int] = frozenset(
    {
        model.PROTO_OA_GET_TRENDBARS_REQ,
        model.PROTO_OA_GET_TICKDATA_REQ,
        model.PROTO_OA_DEAL_LIST_REQ,
        model.PROTO_OA_CASH_FLOW_HISTORY_LIST_REQ,
        model.PROTO_OA_ORDER_LIST_REQ,
        model.PROTO_OA_DEAL_LIST_BY_POSITION_ID_REQ,
        model.PROTO_OA_ORDER_LIST_BY_POSITION_ID_REQ,
    }
)


def is_historical(payload_type: int) -> bool:
    """Whether a request of this payloadType counts against the historical budget (5/s)."""
    return payload_type in HISTORICAL_PAYLOAD_TYPES


class SlidingWindow:
    """At most `limit` events in any `window` seconds."""

    __slots__ = ("_times", "limit", "window")

    def __init__(self, limit: int, window: float) -> None:
        if limit < 1 or window <= 0:
            raise ValueError(f"a rate limit needs limit >= 1 and window > 0, not {limit} per {window} s")
        self.limit = limit
        self.window = window
        self._times: deque[float] = deque()

    def _expire(self, now: float) -> None:
        times = self._times
        while times and times[0] <= now - self.window:
            times.popleft()

    def used(self, now: float) -> int:
        """Events in the window ending now."""
        self._expire(now)
        return len(self._times)

    def wait(self, now: float) -> float:
        """Seconds until one more event fits (0.0: now)."""
        self._expire(now)
        if len(self._times) < self.limit:
            return 0.0
        return max(self._times[-self.limit] + self.window - now, 0.0)

    def record(self, now: float) -> None:
        self._times.append(now)


@dataclass(frozen=True, slots=True)
class Budget:
    """The requests in the current window, beside their limits (the rate-budget metric reads this)."""

    overall_used: int
    overall_limit: int
    historical_used: int
    historical_limit: int


class RateLimiter:
    """An application's budget: `wait` says when a request may go, `record` books one that went."""

    def __init__(
        self,
        overall: int = OVERALL_LIMIT,
        historical: int = HISTORICAL_LIMIT,
        window: float = DEFAULT_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._overall = SlidingWindow(overall, window)
        self._historical = SlidingWindow(historical, window)
        self._clock = clock

    def wait(self, historical: bool) -> float:
        """Seconds until a request (historical or not) may be sent; 0.0 means now."""
        now = self._clock()
        wait = self._overall.wait(now)
        if historical:
            wait = max(wait, self._historical.wait(now))
        return wait

    def record(self, historical: bool) -> None:
        """Book a request as sent now (it counts in the overall budget, and in the historical one if so)."""
        now = self._clock()
        self._overall.record(now)
        if historical:
            self._historical.record(now)

    def budget(self) -> Budget:
        now = self._clock()
        return Budget(
            self._overall.used(now),
            self._overall.limit,
            self._historical.used(now),
            self._historical.limit,
        )

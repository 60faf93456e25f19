"""Per-connection request rate limits and the control port's payload-type gates (block, mute).

Reference 1.7: at most 50 requests per second and 5 historical requests per second, per connection (the
stricter of the documented readings). A request over either limit is refused with REQUEST_FREQUENCY_EXCEEDED
and not executed. The window slides over the last second, so a burst is refused however it is aligned.
Historical: trendbars, tick data, deal list, cash-flow history and the time-range order queries (the
reference says to treat every time-range query as historical).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from fixadapter.protocols.openapi.generated import OpenApiModelMessages_pb2 as model

REQUESTS_PER_SECOND = 50
HISTORICAL_PER_SECOND = 5
WINDOW_SECONDS = 1.0
HISTORICAL_PAYLOAD_TYPES = frozenset(
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


class RateLimiter:
    """One connection's sliding windows; `admit` records a request it lets through."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._all: deque[float] = deque()
        self._historical: deque[float] = deque()

    def admit(self, payload_type: int) -> bool:
        now = self._clock()
        for window in (self._all, self._historical):
            while window and now - window[0] >= WINDOW_SECONDS:
                window.popleft()
        historical = payload_type in HISTORICAL_PAYLOAD_TYPES
        if len(self._all) >= REQUESTS_PER_SECOND:
            return False
        if historical and len(self._historical) >= HISTORICAL_PER_SECOND:
            return False
        self._all.append(now)
        if historical:
            self._historical.append(now)
        return True


class PayloadGates:
    """Payload types the control port blocked (BLOCKED_PAYLOAD_TYPE with retryAfter), muted (never
    answered, not executed) or held (executed and answered only when released: a slow venue); shared by
    every connection, set from the control thread."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._blocked: dict[int, float] = {}  # payload type -> unblocked at (clock)
        self._muted: dict[int, int | None] = {}  # payload type -> requests left to swallow (None: all)
        self._held: set[int] = set()

    def block(self, payload_type: int, seconds: float) -> None:
        with self._lock:
            self._blocked[payload_type] = self._clock() + seconds

    def blocked_for(self, payload_type: int) -> float | None:
        """Seconds until the type is unblocked, or None when it is not blocked."""
        with self._lock:
            until = self._blocked.get(payload_type)
            if until is None:
                return None
            left = until - self._clock()
            if left <= 0:
                del self._blocked[payload_type]
                return None
            return left

    def mute(self, payload_type: int, count: int | None) -> None:
        with self._lock:
            self._muted[payload_type] = count

    def unmute(self, payload_type: int | None = None) -> None:
        with self._lock:
            if payload_type is None:
                self._muted.clear()
            else:
                self._muted.pop(payload_type, None)

    def hold(self, payload_type: int) -> None:
        with self._lock:
            self._held.add(payload_type)

    def release(self, payload_type: int | None = None) -> None:
        with self._lock:
            if payload_type is None:
                self._held.clear()
            else:
                self._held.discard(payload_type)

    def holds(self, payload_type: int) -> bool:
        with self._lock:
            return payload_type in self._held

    def swallow(self, payload_type: int) -> bool:
        """True when this request of the type is to be swallowed (counts one off a counted mute)."""
        with self._lock:
            if payload_type not in self._muted:
                return False
            left = self._muted[payload_type]
            if left is not None:
                if left <= 1:
                    del self._muted[payload_type]
                else:
                    self._muted[payload_type] = left - 1
            return True

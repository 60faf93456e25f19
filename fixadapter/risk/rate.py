"""Orders-per-second limit as an exact sliding window, O(1) per check.

At most `limit` accepted requests in any window of `window` seconds: the last `limit` acceptance times
are kept in a ring (a bounded deque), and a new request passes only if the oldest of them is at least
`window` old. Exact (no bucket boundary to burst across, unlike fixed windows), no refill arithmetic
(unlike a token bucket), and memory bounded by `limit`. Times are injected (a monotonic clock in
production), so tests are deterministic and a wall-clock jump cannot open or close the gate.
"""

from __future__ import annotations

from collections import deque


class SlidingWindow:
    """Not thread-safe on its own: the risk engine calls it under its lock."""

    def __init__(self, limit: int, window: float = 1.0) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a sliding window needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._accepted: deque[float] = deque(maxlen=limit)

    def allows(self, now: float) -> bool:
        return len(self._accepted) < self.limit or now - self._accepted[0] >= self.window

    def record(self, now: float) -> None:
        self._accepted.append(now)

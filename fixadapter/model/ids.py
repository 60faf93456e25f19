"""Identifiers the adapter allocates: unique across restarts without asking the store."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


def _base32(value: int) -> str:
    digits = []
    while True:
        value, rest = divmod(value, 32)
        digits.append(_ALPHABET[rest])
        if value == 0:
            return "".join(reversed(digits))


class IdAllocator:
    """Ids like `FA1K3M9ZQ-7`: a prefix, the start time in ms plus a random salt, then a counter.

    Two processes started in the same millisecond still differ by the salt; a restart never
    reuses an id because the start time moves on. Short enough for every cTrader id field.
    """

    def __init__(self, prefix: str = "FA") -> None:
        salt = int.from_bytes(os.urandom(2), "big")
        self._stem = f"{prefix}{_base32(time.time_ns() // 1_000_000)}{_base32(salt)}"
        self._counter: Iterator[int] = itertools.count(1)

    def next(self, kind: str = "") -> str:
        return f"{self._stem}{kind}-{next(self._counter)}"

"""The randomized fault schedule (seeded, printed, so a run can be replayed) and what each fault does.

Heavy faults take a service away and bring it back (daemon, venue, Redis killed with SIGKILL; PostgreSQL
cut at the proxy); they run one after another, each restored before the next. Light faults (the venue's
logouts, garbled bytes, a cut line, dropped or ignored reports) and red-team bursts run beside them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fixadapter.connectors.fix.wire import frame

HEAVY = ("daemon_kill", "venue_kill", "redis_kill", "pg_cut")
LIGHT = ("logout_trade", "logout_quote", "garbled", "line_drop", "drop_reports", "ignore_requests")
ABUSE = ("malformed", "hostile", "huge", "flood", "http_garbage", "idle_sockets")


@dataclass(frozen=True)
class Step:
    at: float  # seconds after trading starts (not before; a heavy fault waits for the previous one)
    kind: str
    down: float  # how long the service stays away, for heavy faults

    def __str__(self) -> str:
        down = f" ({self.down:.1f}s down)" if self.kind in HEAVY else ""
        return f"{self.at:6.1f}s {self.kind}{down}"


def schedule(
    rng: random.Random, seconds: float, heavy_each: int, light_each: int, kinds: tuple[str, ...] = HEAVY
) -> tuple[list[Step], list[Step]]:
    """(heavy steps, light and abuse steps), each sorted by time, from `rng` alone."""
    heavy = [
        Step(round(rng.uniform(0.1, 0.85) * seconds, 1), kind, round(rng.uniform(0.5, 4.0), 1))
        for kind in kinds
        for _ in range(heavy_each)
    ]
    light = [
        Step(round(rng.uniform(0.05, 0.9) * seconds, 1), kind, 0.0)
        for kind in LIGHT + ABUSE
        for _ in range(light_each)
    ]
    return sorted(heavy, key=lambda s: s.at), sorted(light, key=lambda s: s.at)


_HEADER = [(34, "999"), (49, "CSERVER"), (50, "TRADE"), (52, "20250101-10:00:00.000")]


def garbled_messages(rng: random.Random, target_comp_id: str) -> list[bytes]:
    """Line noise between two real messages: a bad checksum, a wrong body length, plain junk."""
    header = [*_HEADER, (56, target_comp_id), (57, "TRADE")]
    good = frame("8", header, [(37, "1"), (39, "0"), (150, "0")])
    bad_checksum = (good[: -len("000\x01")] + "999\x01").encode()
    bad_length = good.replace("\x019=", "\x019=9", 1).encode()
    junk = bytes(rng.randrange(1, 256) for _ in range(40)) + b"\x0110=000\x01"
    return [bad_checksum, bad_length, junk]


Action = Callable[[Step], Awaitable[None]]


class Runner:
    """Runs steps at their times with the actions given per kind; counts what was done."""

    def __init__(self, started: float, actions: dict[str, Action], say: Callable[[str], None]) -> None:
        self._started = started
        self._actions = actions
        self._say = say
        self.done = Counter[str]()
        self.failed = Counter[str]()

    async def run(self, steps: list[Step], stop: asyncio.Event) -> None:
        for step in steps:
            wait = self._started + step.at - time.monotonic()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
            if stop.is_set():
                return
            self._say(f"{time.monotonic() - self._started:6.1f}s fault/input: {step.kind}")
            try:
                await self._actions[step.kind](step)
            except Exception as exc:  # a step that cannot run (its target is down) is counted, not fatal
                self.failed[step.kind] += 1
                self._say(f"        {step.kind} could not run: {type(exc).__name__}: {exc}")
                continue
            self.done[step.kind] += 1

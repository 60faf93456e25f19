"""What the daemon needs from a queue transport (Redis Streams, in-process), and what a client needs.

Commands are taken as `Delivery`s and acknowledged only once handled (an order persisted, or refused
with an event): a daemon that dies in between gets the command again on restart, and the ClOrdID makes
that harmless. Each strategy sends on a channel of its own, so a delivery says who sent it (`strategy`),
whatever the command claims. Events are published per strategy, in order; positions go to one shared
stream.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Delivery:
    """One command as taken from the transport; `entry_id` is what `ack` takes back, `strategy` the
    sender (the channel it came on)."""

    entry_id: str
    data: bytes
    strategy: str
    redelivered: bool = False


ORDERS = "orders"
POSITIONS = "positions"


@dataclass(frozen=True)
class EventRecord:
    """One published event as a client reads it: from its strategy's `orders` stream or the shared
    `positions` stream, with the entry id a client resumes after."""

    stream: str
    entry_id: str
    data: bytes


class CommandSource(Protocol):
    async def start(self) -> None: ...

    def deliveries(self) -> AsyncGenerator[Delivery, None]:
        """Unacknowledged commands first (a restart's leftovers, and what an abandoned earlier iteration
        had taken: a restarted dispatcher gets them again), then new ones, until close()."""
        ...

    async def ack(self, delivery: Delivery) -> None: ...

    async def backlog(self) -> int:
        """Commands waiting or taken and not acknowledged (the queue depth gauge)."""
        ...

    async def close(self) -> None: ...


Published = tuple[str, bytes, int | None]  # (strategy, encoded event, its sequence number)


class EventSink(Protocol):
    async def start(self) -> None: ...

    async def published_seq(self) -> int | None:
        """The last order-event sequence number published, or None when the transport keeps none (then
        the relay replays nothing and publishes from now on)."""
        ...

    async def start_tracking(self, seq: int) -> None:
        """Record `seq` as the last published when nothing is recorded yet (a first start), so what is
        stored after it and lost in a crash is replayed; a transport that keeps nothing ignores it."""
        ...

    async def publish(self, strategy: str, data: bytes, seq: int | None) -> None:
        """Append to the strategy's stream; with `seq`, record it as published in the same step."""
        ...

    async def publish_many(self, events: Sequence[Published]) -> None:
        """`publish` each, in order, as one step where the transport can: all of them or none, the last
        sequence number recorded with them."""
        ...

    async def publish_positions(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


class ClientTransport(Protocol):
    """The strategy side."""

    async def send_command(self, strategy: str, data: bytes) -> None:
        """Queue `data` on `strategy`'s own command channel (the daemon takes the sender from it)."""
        ...

    async def read_events(self, strategy: str, cursor: dict[str, str], timeout: float) -> list[EventRecord]:
        """Events of `strategy` (stream ORDERS) and positions (stream POSITIONS) after the entry ids in
        `cursor` ("$": only what is published from now on, "0": from the start), waiting up to `timeout`
        seconds for the first; `cursor` is advanced in place past what is returned."""
        ...

    async def close(self) -> None: ...

"""One Open API client connection on the simulator: its frames, its authorisations and its activity.

All of it lives on the Open API loop's thread: only that thread writes, so frames never interleave
(reference 1.9: a single writer per connection). What the connection authorised (the app, then each
account with the access token it used) is its own, as at cTrader: every reconnect starts from nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TypeVar

from google.protobuf.message import Message

from fixadapter.protocols.openapi.framing import encode_frame
from fixadapter.protocols.openapi.messages import Decoded, encode, payload_type_of
from fixadapter.sim.openapi.limits import RateLimiter

log = logging.getLogger("fixadapter.sim.openapi")
M = TypeVar("M", bound=Message)


def message_of(decoded: Decoded, cls: type[M]) -> M:
    """The decoded request as the class its payload type dispatched it to (a TypeError is a dispatch bug)."""
    if not isinstance(decoded.message, cls):
        raise TypeError(f"payload type {decoded.payload_type} is not a {cls.__name__}")
    return decoded.message


@dataclass
class Connection:
    """A client's connection; `accounts` maps each ctidTraderAccountId authorised on it to its token."""

    number: int
    writer: asyncio.StreamWriter
    peer: str
    last_in: float
    last_out: float
    app_authorised: bool = False
    accounts: dict[int, str] = field(default_factory=dict)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    closed: bool = False

    def send(self, message: Message, client_msg_id: str | None = None) -> None:
        """Frame and write one message (the payload type's name is logged, never its content)."""
        if self.closed or self.writer.is_closing():
            return
        self.writer.write(encode_frame(encode(message, client_msg_id)))
        self.last_out = asyncio.get_running_loop().time()
        log.debug("openapi #%d: sent %s (%d)", self.number, type(message).__name__, payload_type_of(message))

    def close(self, why: str) -> None:
        if self.closed:
            return
        self.closed = True
        log.info("openapi #%d from %s closed: %s", self.number, self.peer, why)
        self.writer.close()


ACCOUNT_FIELD = "ctidTraderAccountId"


def account_of(message: Message | None) -> int | None:
    """The ctidTraderAccountId a request names, if its message has one."""
    if message is None or ACCOUNT_FIELD not in message.DESCRIPTOR.fields_by_name:
        return None
    if not message.HasField(ACCOUNT_FIELD):
        return None
    return int(getattr(message, ACCOUNT_FIELD))


def account_id(decoded: Decoded) -> int:
    """The account of a request that must name one (dispatch checked it is authorised)."""
    ctid = account_of(decoded.message)
    if ctid is None:
        raise TypeError(f"payload type {decoded.payload_type} names no account")
    return ctid

"""What the Open API request handlers and the trading handlers ask of the server that runs them.

A protocol, so requests.py and trading.py depend on this and not on server.py, which builds them: the
server's module imports theirs, never the other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from google.protobuf.message import Message

from fixadapter.protocols.openapi.messages import Decoded
from fixadapter.sim.config import SimAccount, SimConfig
from fixadapter.sim.openapi.connection import Connection
from fixadapter.sim.openapi.margin import Ledger, MarginRule
from fixadapter.sim.openapi.tokens import TokenRegistry
from fixadapter.sim.trade_server import Desk, TradeServer

T = TypeVar("T")


class Front(Protocol):
    config: SimConfig
    trade: TradeServer
    registry: TokenRegistry
    margin: MarginRule
    ledger: Ledger

    def account(self, ctid: int) -> SimAccount | None: ...

    def accounts(self) -> list[SimAccount]: ...

    def desk(self, ctid: int) -> Desk: ...

    def run_on_venue(self, connection: Connection, client_msg_id: str | None, action: Callable[[], T]) -> T:
        """Run a venue call and the sending of its executions as this request's."""
        ...

    def error(self, connection: Connection, decoded: Decoded, code: str, description: str) -> None:
        """A ProtoOAErrorRes answering `decoded`."""
        ...

    def send_to_account(
        self, ctid: int, events: list[Message], origin: tuple[int, str | None] | None = None
    ) -> None:
        """Events to every connection on which the account is authorised."""
        ...

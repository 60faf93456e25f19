"""The queue's commands for the Open API's order fields and position operations: decoded and validated at
the boundary like every command."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest

from fixadapter.client import StrategyClient
from fixadapter.model.enums import OrderType, TimeInForce
from fixadapter.model.requests import AmendPositionProtection, ClosePosition
from fixadapter.queue.memory import MemoryQueue
from fixadapter.queue.schema import (
    AmendPositionProtectionCommand,
    ClosePositionCommand,
    InvalidCommand,
    SubmitCommand,
    decode_command,
)

D = Decimal


def command(**fields: Any) -> bytes:
    return json.dumps({"v": 1, "id": "c-1", "strategy": "momo", **fields}).encode()


def test_a_submit_carries_the_open_api_order_fields() -> None:
    order = {
        "symbol": "EURUSD",
        "side": "buy",
        "order_type": "stop_limit",
        "quantity": "10000",
        "stop_price": "1.09",
        "price": "1.095",
        "time_in_force": "good_till_cancel",
        "stop_loss": "1.07",
        "take_profit_distance": "0.004",
        "trailing_stop_loss": True,
        "comment": "breakout",
    }
    decoded = decode_command(command(type="submit", order=order))
    assert isinstance(decoded, SubmitCommand)
    new = decoded.new_order()
    assert (new.order_type, new.time_in_force) == (OrderType.STOP_LIMIT, TimeInForce.GOOD_TILL_CANCEL)
    assert (new.stop_loss, new.take_profit_distance, new.trailing_stop_loss, new.comment) == (
        D("1.07"),
        D("0.004"),
        True,
        "breakout",
    )


def test_a_submit_breaking_a_field_rule_is_refused_saying_which() -> None:
    order = {"symbol": "EURUSD", "side": "buy", "order_type": "market", "quantity": "1000"}
    with pytest.raises(InvalidCommand, match="trailing_stop_loss needs a stop loss"):
        decode_command(command(type="submit", order={**order, "trailing_stop_loss": True}))


def test_a_close_position_decodes_and_its_closing_order_is_keyed_by_the_command_id() -> None:
    decoded = decode_command(command(type="close_position", position_id="721", quantity="5000"))
    assert isinstance(decoded, ClosePositionCommand)
    close = decoded.close_position()
    assert (close.position_id, close.quantity, close.request_id, close.strategy) == (
        "721",
        D(5000),
        "c-1",
        "momo",
    )
    whole = decode_command(command(type="close_position", position_id="721", request_id="close-9"))
    assert isinstance(whole, ClosePositionCommand)
    assert (whole.close_position().quantity, whole.cl_ord_id) == (None, "close-9")


def test_an_amend_position_protection_decodes_with_none_removing_a_price() -> None:
    decoded = decode_command(command(type="amend_position_protection", position_id="721", stop_loss="1.07"))
    assert isinstance(decoded, AmendPositionProtectionCommand)
    amend = decoded.amend_position_protection()
    assert (amend.stop_loss, amend.take_profit, amend.trailing_stop_loss, amend.strategy) == (
        D("1.07"),
        None,
        False,
        "momo",
    )
    assert decoded.cl_ord_id is None


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"type": "close_position", "position_id": "abc"}, "position_id"),
        ({"type": "close_position", "position_id": "721", "quantity": "0"}, "quantity"),
        (
            {"type": "amend_position_protection", "position_id": "721", "trailing_stop_loss": True},
            "stop_loss",
        ),
        ({"type": "amend_position_protection", "position_id": "721", "stop_loss": "-1"}, "stop_loss"),
    ],
)
def test_a_bad_position_command_is_refused_naming_the_field(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidCommand, match=reason) as refused:
        decode_command(command(**fields))
    assert refused.value.known_type == fields["type"]


def test_the_strategy_client_queues_position_commands_the_dispatcher_can_read() -> None:
    async def scenario() -> list[Any]:
        queue = MemoryQueue()
        client = StrategyClient.in_process(queue, "momo")
        closing = await client.close_position(ClosePosition(position_id="721", quantity=D(5000)))
        await client.amend_position_protection(
            AmendPositionProtection(position_id="721", take_profit=D("1.2"), request_id="p-1")
        )
        deliveries = queue.source.deliveries()
        taken = [decode_command((await anext(deliveries)).data) for _ in range(2)]
        await deliveries.aclose()
        return [closing, *taken]

    closing, close, amend = asyncio.run(scenario())
    assert isinstance(close, ClosePositionCommand) and isinstance(amend, AmendPositionProtectionCommand)
    assert (close.id, close.cl_ord_id, close.quantity, close.strategy) == (closing, closing, D(5000), "momo")
    assert (amend.position_id, amend.stop_loss, amend.take_profit, amend.request_id) == (
        "721",
        None,
        D("1.2"),
        "p-1",
    )

"""The queue's wire format: versioned, validated at the boundary, documented by a committed JSON Schema."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from fixadapter.model.requests import NewOrder
from fixadapter.queue.schema import (
    MAX_COMMAND_BYTES,
    MAX_COMMAND_DEPTH,
    CancelCommand,
    InvalidCommand,
    ReplaceCommand,
    SubmitCommand,
    decode_command,
    encode,
    json_schema,
    values_text,
)

SPEC = Path(__file__).parents[2] / "spec" / "queue-schema-v1.json"


def test_the_committed_json_schema_is_the_one_the_code_validates_with():
    assert json.loads(SPEC.read_text()) == json.loads(json.dumps(json_schema(), sort_keys=True)), (
        "regenerate spec/queue-schema-v1.json from fixadapter.queue.schema.json_schema()"
    )


def test_a_submit_round_trips_and_takes_its_id_as_clordid_when_the_order_has_none():
    command = SubmitCommand(
        id="c-1",
        strategy="momo",
        order=NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=1000),
    )
    decoded = decode_command(encode(command))
    assert decoded == command
    assert isinstance(decoded, SubmitCommand)
    order = decoded.new_order()
    assert (order.cl_ord_id, order.strategy) == ("c-1", "momo")


def test_cancel_and_replace_decode_to_their_own_types():
    cancel = decode_command(b'{"v":1,"type":"cancel","id":"c-2","strategy":"s","cl_ord_id":"o-1"}')
    replace = decode_command(
        b'{"v":1,"type":"replace","id":"c-3","strategy":"s","cl_ord_id":"o-1","quantity":"2000","price":"1.1"}'
    )
    assert isinstance(cancel, CancelCommand) and cancel.cl_ord_id == "o-1"
    assert isinstance(replace, ReplaceCommand)
    assert replace.replace_order().price == Decimal("1.1")


@pytest.mark.parametrize(
    ("data", "fragment", "known_id"),
    [
        (b"{not json", "not JSON", None),
        (b"[1, 2]", "a command is a JSON object", None),
        (
            b'{"type":"cancel","id":"x","strategy":"s","cl_ord_id":"o"}',
            "unsupported schema version None",
            "x",
        ),
        (
            b'{"v":2,"type":"cancel","id":"x","strategy":"s","cl_ord_id":"o"}',
            "unsupported schema version 2",
            "x",
        ),
        (b'{"v":1,"type":"launch","id":"x","strategy":"s"}', "does not match any of the expected tags", "x"),
        (
            b'{"v":1,"type":"submit","id":"x","strategy":"s","order":{"symbol":"EURUSD","side":"buy",'
            b'"order_type":"limit","quantity":"1000"}}',
            "a limit order needs price",
            "x",
        ),
        (b'{"v":1,"type":"cancel","id":"x","strategy":"s","cl_ord_id":"o","extra":1}', "extra", "x"),
        (b'{"v":1,"type":"cancel","id":"x\\u0001y","strategy":"s","cl_ord_id":"o"}', "id", None),
    ],
)
def test_a_bad_command_is_refused_with_a_one_line_reason_naming_what_is_wrong(
    data: bytes, fragment: str, known_id: str | None
):
    with pytest.raises(InvalidCommand) as refused:
        decode_command(data)
    assert fragment in refused.value.reason and "\n" not in refused.value.reason
    assert refused.value.id == known_id


def test_a_refused_command_names_its_strategy_only_when_the_name_is_well_formed():
    good = b'{"v":1,"type":"cancel","id":"x","strategy":"momo"}'
    bad = b'{"v":1,"type":"cancel","id":"x","strategy":"momo:events:other strategy"}'
    with pytest.raises(InvalidCommand) as named:
        decode_command(good)
    with pytest.raises(InvalidCommand) as unnamed:
        decode_command(bad)
    assert (named.value.strategy, unnamed.value.strategy) == ("momo", None)


def test_risk_values_are_sent_as_exact_text():
    assert values_text({"limit": Decimal("100000"), "price": Decimal("1.10"), "n": 3}) == {
        "limit": "100000",
        "price": "1.10",
        "n": "3",
    }


def test_deeply_nested_json_is_refused_with_a_reason_not_a_recursion_error():
    with pytest.raises(InvalidCommand) as refused:
        decode_command(b"[" * 100000)
    assert refused.value.reason == "command is 100000 bytes; the limit is 65536 bytes: send a smaller command"


def test_nesting_deeper_than_the_limit_inside_the_size_limit_is_refused_naming_the_limit():
    data = b'{"v":1,"type":"cancel","id":"x","strategy":"s","cl_ord_id":' + b"[" * 5000 + b"]" * 5000 + b"}"
    with pytest.raises(InvalidCommand) as refused:
        decode_command(data)
    assert (
        refused.value.reason
        == f"command nests 5001 levels deep; a command nests at most {MAX_COMMAND_DEPTH} levels"
    )


def test_brackets_inside_strings_do_not_count_as_nesting():
    data = b'{"v":1,"type":"cancel","id":"x","strategy":"s","cl_ord_id":"o","extra":"' + b"[" * 200 + b'"}'
    with pytest.raises(InvalidCommand) as refused:
        decode_command(data)
    assert "extra" in refused.value.reason


def test_a_command_over_the_size_limit_is_refused_with_its_size_and_the_limit():
    data = b'{"v":1,"type":"cancel","id":"x","strategy":"s","cl_ord_id":"' + b"o" * MAX_COMMAND_BYTES + b'"}'
    with pytest.raises(InvalidCommand) as refused:
        decode_command(data)
    assert f"{len(data)} bytes" in refused.value.reason
    assert f"limit is {MAX_COMMAND_BYTES} bytes" in refused.value.reason


def test_a_strategy_name_may_not_contain_a_colon():
    with pytest.raises(InvalidCommand) as refused:
        decode_command(b'{"v":1,"type":"cancel","id":"x","strategy":"a:b","cl_ord_id":"o"}')
    assert "strategy" in refused.value.reason and refused.value.strategy is None


def test_a_reason_naming_a_huge_field_stays_short():
    data = b'{"v":1,"type":"cancel","id":"x","strategy":"s","cl_ord_id":"o","' + b"k" * 50000 + b'":1}'
    with pytest.raises(InvalidCommand) as refused:
        decode_command(data)
    assert len(refused.value.reason) <= 500

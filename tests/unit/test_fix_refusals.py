"""Refusals named by RefSeqNum are tied to the request our message with that MsgSeqNum carried."""

from __future__ import annotations

from fixadapter.connectors.fix.codec import decode_refusal
from fixadapter.connectors.fix.sent import SentMessages
from fixadapter.connectors.fix.wire import Fields
from fixadapter.model.enums import VenueRequest


def test_the_sent_map_names_the_request_of_each_sequence_number_and_forgets_the_oldest_beyond_its_bound():
    sent = SentMessages(keep=3)
    for seq, msg_type, request_id in [(2, "D", "ord-1"), (3, "AF", "M1"), (4, "x", "S1"), (5, "H", "ord-1")]:
        sent.remember(seq, msg_type, request_id)
    sent.remember(6, "V", "md-1")  # not a TRADE request: not kept
    assert sent.lookup(2) is None and len(sent) == 3
    found = sent.lookup(3)
    assert found is not None and (found.request, found.request_id) == (VenueRequest.MASS_STATUS, "M1")
    sent.clear()
    assert sent.lookup(5) is None


def test_a_business_reject_without_ref_id_becomes_a_refusal_of_the_request_with_its_reason_in_words():
    sent = SentMessages()
    sent.remember(7, "AF", "M7")
    fields = Fields(((35, "j"), (45, "7"), (372, "AF"), (380, "3"), (58, "AF is not supported here")))
    refused = decode_refusal(fields, sent.lookup(7))  # type: ignore[arg-type]
    assert refused.request is VenueRequest.MASS_STATUS and refused.request_id == "M7"
    assert refused.text == (
        "the venue refused the OrderMassStatusRequest: AF is not supported here (unsupported message type)"
    )


def test_a_session_reject_names_the_reason_code_and_the_tag_in_words():
    sent = SentMessages()
    sent.remember(4, "D", "ord-9")
    fields = Fields(((35, "3"), (45, "4"), (371, "54"), (373, "5")))
    refused = decode_refusal(fields, sent.lookup(4))  # type: ignore[arg-type]
    assert refused.request is VenueRequest.NEW_ORDER and refused.request_id == "ord-9"
    assert refused.text == (
        "the venue refused the NewOrderSingle at session level: no reason given "
        "(value is incorrect (out of range) for this tag, tag 54)"
    )

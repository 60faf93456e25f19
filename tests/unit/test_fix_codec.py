"""Specification of the cTrader FIX codec: the RoE messages of ctrader-fix.md §3.1 decode to the model,
and builders send exactly the tags §2 lists for each request."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import quickfix

from fixadapter.connectors.fix import codec
from fixadapter.connectors.fix.wire import SOH, Fields, WireError, format_decimal, frame, to_int
from fixadapter.model.enums import ExecKind, OrderStatus, OrderType, RequestKind, Side, TimeInForce
from fixadapter.model.orders import OrderRequest
from fixadapter.model.reports import (
    BusinessReject,
    CancelRejected,
    ExecutionReport,
    PositionReport,
    SecurityListReport,
)
from tests.unit.conftest import make_order

D = Decimal
DICTIONARY = Path(__file__).resolve().parents[2] / "spec" / "FIX44-CTRADER.xml"
NOW = datetime(2025, 1, 1, 10, 0, 2, tzinfo=UTC)
CLIENT_HEADER = [
    (34, "3"),
    (49, "demo.broker.1234567"),
    (50, "TRADE"),
    (52, "20250101-10:00:02.000"),
    (56, "cServer"),
    (57, "TRADE"),
]

# ctrader-fix.md §3.1, verbatim (their 9 and 10 are wrong, which the codec does not check).
MARKET_NEW_ER = (
    "8=FIX.4.4|9=197|35=8|34=77|49=CSERVER|50=TRADE|52=20170117-10:02:14.720|56=live.theBroker.12345|"
    "57=any_string|11=876316397|14=0|37=101|38=10000|39=0|40=1|54=1|55=1|59=3|60=20170117-10:02:14.591|"
    "150=0|151=10000|721=101|10=149|"
)
MARKET_FILL_ER = (
    "8=FIX.4.4|9=206|35=8|34=78|49=CSERVER|50=TRADE|52=20170117-10:02:15.045|56=live.theBroker.12345|"
    "57=any_string|6=1.0674|11=876316397|14=10000|32=10000|37=101|38=10000|39=2|40=1|54=1|55=1|59=3|"
    "60=20170117-10:02:14.963|150=F|151=0|721=101|10=077|"
)
CANCEL_ER = (
    "8=FIX.4.4|9=221|35=8|34=3|49=CSERVER|50=TRADE|52=20170721-13:41:21.784|56=live.theBroker.12345|"
    "57=Trade|11=jR8dBPcZEQa9|14=0|37=641|38=100000|39=4|40=2|41=n9Tm8x1AavO5|44=1.499|54=1|55=1|59=1|"
    "60=20170721-13:41:21.760|150=4|151=100000|721=624|10=180|"
)
ORDER_NOT_FOUND_J = (
    "8=FIX.4.4|9=174|35=j|34=3|49=CSERVER|50=TRADE|52=20170721-13:41:21.856|56=live.theBroker.12345|"
    "57=Trade|58=ORDER_NOT_FOUND:Order with clientOrderId=n9Tm8x1AavO5 not found.|379=jR8dBPcZEQa9|"
    "380=0|10=075|"
)
CANCEL_REJECT = (
    "8=FIX.4.4|9=156|35=9|34=3|49=CSERVER|50=TRADE|52=20181024-12:35:02.896|56=live.theBroker.12345|"
    "57=Trade|11=gBljx7YOg5jY|37=629|39=0|41=FdXLfS0tTyUL|58=Order is under execution|434=1|10=109|"
)
REPLACE_ER = (
    "8=FIX.4.4|9=192|35=8|34=3|49=CSERVER|50=TRADE|52=20170721-13:42:18.784|56=live.theBroker.12345|"
    "57=Trade|11=Is03AvsknNYK|14=0|37=629|38=5000|39=0|40=2|44=1.1|54=1|55=1|59=1|"
    "60=20170721-13:42:18.760|150=5|151=5000|721=624|10=150|"
)
MASS_STATUS_ER = (
    "8=FIX.4.4|9=199|35=8|34=13|49=CSERVER|50=TRADE|52=20170404-07:20:55.333|56=live.theBroker.12345|"
    "14=0|37=635|38=100000|39=0|40=2|44=1.35265|54=2|55=1|59=1|60=20170404-07:20:44.582|150=I|"
    "151=100000|584=mZzEY|721=617|911=1|10=152|"
)
POSITION_REPORT = (
    "8=FIX.4.4|9=163|35=AP|34=98|49=CSERVER|50=TRADE|52=20170117-10:09:54.076|56=live.theBroker.12345|"
    "57=any_string|55=1|710=876316401|721=101|727=1|728=0|730=1.06671|702=1|704=0|705=30000|10=182|"
)
SECURITY_LIST = (
    "8=FIX.4.4|9=158|35=y|34=3|49=CSERVER|50=TRADE|52=20180427-12:24:27.107|56=live.theBroker.12345|"
    "57=Trade|320=ILCea0JkdQEm|322=responce:ILCea0JkdQEm|560=0|146=1|55=39|1007=NZDCHF|1008=4|10=088|"
)


def decode(raw: str) -> object:
    fields = Fields.parse(raw)
    return codec.TRADE_DECODERS[fields.require(35)](fields, raw)


def decode_er(raw: str) -> ExecutionReport:
    report = decode(raw)
    assert isinstance(report, ExecutionReport)
    return report


def body_tags(body: list[tuple[int, str]]) -> list[int]:
    return [tag for tag, _ in body]


# ---- decoding -------------------------------------------------------------------------------


def test_decode_market_new_er_is_accepted_new_order_with_position() -> None:
    report = decode_er(MARKET_NEW_ER)

    assert (report.kind, report.status) == (ExecKind.ACCEPTED, OrderStatus.NEW)
    assert (report.order_id, report.cl_ord_id, report.position_id) == ("101", "876316397", "101")
    assert (report.cum_qty, report.leaves_qty, report.quantity) == (D(0), D("10000"), D("10000"))
    assert report.avg_px is None
    assert (report.symbol_id, report.side, report.order_type) == (1, Side.BUY, OrderType.MARKET)
    assert report.time_in_force is TimeInForce.IMMEDIATE_OR_CANCEL
    assert report.transact_time == datetime(2017, 1, 17, 10, 2, 14, 591000, tzinfo=UTC)


def test_an_open_api_stop_limit_reported_over_fix_as_ord_type_4_is_read_not_dropped() -> None:
    """The FIX connector never sends one, but an account's stop-limit placed over the Open API is reported
    to its FIX session too, with FIX 4.4's OrdType 4."""
    raw = MARKET_NEW_ER.replace("|40=1|", "|40=4|").replace("|59=3|", "|59=1|99=1.05|44=1.051|")
    report = decode_er(raw)
    assert (report.order_type, report.stop_price, report.price) == (
        OrderType.STOP_LIMIT,
        D("1.05"),
        D("1.051"),
    )


def test_decode_market_fill_er_is_filled_trade_with_avg_px() -> None:
    report = decode_er(MARKET_FILL_ER)

    assert (report.kind, report.status) == (ExecKind.TRADE, OrderStatus.FILLED)
    assert report.order_id == "101"
    assert (report.cum_qty, report.last_qty, report.leaves_qty) == (D("10000"), D("10000"), D(0))
    assert report.avg_px == D("1.0674")
    assert report.position_id == "101"
    assert report.time_in_force is TimeInForce.IMMEDIATE_OR_CANCEL
    assert report.transact_time == datetime(2017, 1, 17, 10, 2, 14, 963000, tzinfo=UTC)
    assert report.transact_time.utcoffset() is not None


def test_decode_er_keeps_the_raw_message() -> None:
    assert decode_er(MARKET_FILL_ER).raw == MARKET_FILL_ER


def test_decode_cancel_er_names_the_cancelled_order_in_orig_cl_ord_id() -> None:
    report = decode_er(CANCEL_ER)

    assert (report.kind, report.status) == (ExecKind.CANCELLED, OrderStatus.CANCELLED)
    assert (report.cl_ord_id, report.orig_cl_ord_id) == ("jR8dBPcZEQa9", "n9Tm8x1AavO5")
    assert (report.order_id, report.price) == ("641", D("1.499"))
    assert report.time_in_force is TimeInForce.GOOD_TILL_CANCEL


def test_decode_replace_er_is_replaced_with_new_terms() -> None:
    report = decode_er(REPLACE_ER)

    assert (report.kind, report.status) == (ExecKind.REPLACED, OrderStatus.NEW)
    assert (report.cl_ord_id, report.quantity, report.price) == ("Is03AvsknNYK", D("5000"), D("1.1"))
    assert report.order_type is OrderType.LIMIT


def test_decode_mass_status_er_carries_request_id_and_total_without_cl_ord_id() -> None:
    report = decode_er(MASS_STATUS_ER)

    assert (report.kind, report.status) == (ExecKind.STATUS, OrderStatus.NEW)
    assert (report.mass_status_id, report.total_reports) == ("mZzEY", 1)
    assert report.cl_ord_id is None
    assert (report.order_id, report.position_id, report.side) == ("635", "617", Side.SELL)


def test_decode_business_reject_gives_code_and_ref_id() -> None:
    reject = decode(ORDER_NOT_FOUND_J)

    assert isinstance(reject, BusinessReject)
    assert reject.code == "ORDER_NOT_FOUND"
    assert reject.ref_id == "jR8dBPcZEQa9"
    assert reject.reason == 0
    assert reject.text == "ORDER_NOT_FOUND:Order with clientOrderId=n9Tm8x1AavO5 not found."


def test_decode_cancel_reject_is_a_refused_cancel_with_status_and_text() -> None:
    reject = decode(CANCEL_REJECT)

    assert isinstance(reject, CancelRejected)
    assert reject.response_to is RequestKind.CANCEL
    assert (reject.request_id, reject.orig_cl_ord_id, reject.order_id) == (
        "gBljx7YOg5jY",
        "FdXLfS0tTyUL",
        "629",
    )
    assert reject.status is OrderStatus.NEW
    assert reject.text == "Order is under execution"


def test_decode_position_report_gives_short_quantity_and_entry_price() -> None:
    report = decode(POSITION_REPORT)

    assert isinstance(report, PositionReport)
    assert (report.request_id, report.position_id, report.symbol_id) == ("876316401", "101", 1)
    assert (report.long_qty, report.short_qty) == (D(0), D("30000"))
    assert report.entry_price == D("1.06671")
    assert report.total_reports == 1
    assert not report.no_positions


def test_decode_position_report_without_positions_says_so() -> None:
    raw = "8=FIX.4.4|35=AP|34=98|49=CSERVER|50=TRADE|710=pos-1|727=0|728=2|10=000|"

    report = decode(raw)

    assert isinstance(report, PositionReport)
    assert report.no_positions
    assert report.position_id is None


def test_decode_security_list_gives_instrument_name_id_and_digits() -> None:
    security_list = decode(SECURITY_LIST)

    assert isinstance(security_list, SecurityListReport)
    assert security_list.ok
    assert security_list.request_id == "ILCea0JkdQEm"
    assert [(i.symbol_id, i.name, i.digits) for i in security_list.instruments] == [(39, "NZDCHF", 4)]


def test_decode_security_list_with_several_entries_keeps_each_entry() -> None:
    raw = SECURITY_LIST.replace(
        "146=1|55=39|1007=NZDCHF|1008=4|", "146=2|55=39|1007=NZDCHF|1008=4|55=1|1007=EURUSD|1008=5|"
    )

    security_list = decode(raw)

    assert isinstance(security_list, SecurityListReport)
    assert [i.name for i in security_list.instruments] == ["NZDCHF", "EURUSD"]


def test_decode_er_with_soh_separators_is_the_same_as_with_pipes() -> None:
    assert decode_er(MARKET_FILL_ER.replace("|", SOH)).dedupe_key == decode_er(MARKET_FILL_ER).dedupe_key


def test_dedupe_key_differs_between_new_and_fill_er_of_one_order() -> None:
    assert codec.dedupe_key(Fields.parse(MARKET_NEW_ER)) != codec.dedupe_key(Fields.parse(MARKET_FILL_ER))


def test_dedupe_key_is_stable_for_the_same_er() -> None:
    resent = MARKET_FILL_ER.replace("34=78|", "34=79|").replace(
        "52=20170117-10:02:15.045", "52=20170117-10:02:16.000"
    )

    assert codec.dedupe_key(Fields.parse(MARKET_FILL_ER)) == codec.dedupe_key(Fields.parse(MARKET_FILL_ER))
    assert codec.dedupe_key(Fields.parse(resent)) == codec.dedupe_key(Fields.parse(MARKET_FILL_ER))


def test_dedupe_key_uses_exec_id_when_the_venue_sends_one() -> None:
    with_exec_id = MARKET_FILL_ER.replace("|6=1.0674|", "|6=1.0674|17=E-42|")

    assert codec.dedupe_key(Fields.parse(with_exec_id)) == "fix:E-42"


def test_decode_er_with_undocumented_ord_status_raises_wire_error() -> None:
    with pytest.raises(WireError, match="OrdStatus '3'"):
        decode_er(MARKET_NEW_ER.replace("|39=0|", "|39=3|"))


def test_decode_er_without_order_id_raises_wire_error() -> None:
    with pytest.raises(WireError, match="required tag 37"):
        decode_er(MARKET_NEW_ER.replace("|37=101|", "|"))


def test_decode_er_with_bad_timestamp_raises_wire_error() -> None:
    with pytest.raises(WireError, match="not a UTC timestamp"):
        decode_er(MARKET_NEW_ER.replace("60=20170117-10:02:14.591", "60=yesterday"))


def test_fields_parse_of_text_that_is_not_fix_raises_wire_error() -> None:
    with pytest.raises(WireError, match="not a tag=value field"):
        Fields.parse("8=FIX.4.4|hello|")


def test_unknown_tags_reports_an_undocumented_tag_on_an_er() -> None:
    fields = Fields.parse(MARKET_FILL_ER.replace("|10=077|", "|9999=x|10=077|"))

    assert codec.unknown_tags("8", fields) == [9999]


@pytest.mark.parametrize(
    ("msg_type", "raw"),
    [
        ("8", MARKET_FILL_ER),
        ("8", MASS_STATUS_ER),
        ("9", CANCEL_REJECT),
        ("j", ORDER_NOT_FOUND_J),
        ("AP", POSITION_REPORT),
        ("y", SECURITY_LIST),
    ],
)
def test_unknown_tags_of_a_roe_message_is_empty(msg_type: str, raw: str) -> None:
    assert codec.unknown_tags(msg_type, Fields.parse(raw)) == []


def test_group_whose_count_disagrees_with_its_entries_raises_wire_error() -> None:
    raw = SECURITY_LIST.replace("146=1|", "146=2|")

    with pytest.raises(WireError, match="group 146 announces 2 entries, has 1"):
        decode(raw)


# ---- building -------------------------------------------------------------------------------


def test_new_order_single_market_carries_exactly_the_roe_tags() -> None:
    msg_type, body = codec.new_order_single(make_order(cl_ord_id="ord-0001"), NOW)

    assert msg_type == "D"
    assert dict(body) == {11: "ord-0001", 55: "1", 54: "1", 60: "20250101-10:00:02.000", 38: "10000", 40: "1"}
    assert len(body) == len(dict(body))


def test_new_order_single_limit_adds_price_only() -> None:
    order = make_order(order_type=OrderType.LIMIT, side=Side.SELL, price=D("1.08250"))

    _, body = codec.new_order_single(order, NOW)

    assert body_tags(body) == [11, 55, 54, 60, 38, 40, 44]
    assert dict(body)[40] == "2"
    assert dict(body)[44] == "1.0825"
    assert dict(body)[54] == "2"


def test_new_order_single_stop_adds_stop_price_only() -> None:
    order = make_order(order_type=OrderType.STOP, stop_price=D("1.07500"))

    _, body = codec.new_order_single(order, NOW)

    assert body_tags(body) == [11, 55, 54, 60, 38, 40, 99]
    assert (dict(body)[40], dict(body)[99]) == ("3", "1.075")


def test_new_order_single_adds_expiry_position_and_label_when_set() -> None:
    order = make_order(
        order_type=OrderType.LIMIT,
        price=D("1.0825"),
        expire_time=datetime(2025, 1, 2, 10, 0, tzinfo=UTC),
        position_id="47888826",
        label="my-label",
    )

    _, body = codec.new_order_single(order, NOW)

    assert body_tags(body) == [11, 55, 54, 60, 38, 40, 44, 126, 721, 494]
    assert (dict(body)[126], dict(body)[721], dict(body)[494]) == (
        "20250102-10:00:00",
        "47888826",
        "my-label",
    )


@pytest.mark.parametrize(
    ("quantity", "text"),
    [(D("1E+4"), "10000"), (D("10000.00"), "10000"), (D("1000.50"), "1000.5"), (D("0.01"), "0.01")],
)
def test_new_order_single_quantity_has_no_exponent_or_trailing_zeros(quantity: Decimal, text: str) -> None:
    _, body = codec.new_order_single(make_order(quantity=quantity), NOW)

    assert dict(body)[38] == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("1.10E-5"), "0.000011"),
        (D("1.08350"), "1.0835"),
        (D("0"), "0"),
        (D("0.000"), "0"),
        (D("120"), "120"),
    ],
)
def test_format_decimal_is_plain_without_trailing_zeros(value: Decimal, text: str) -> None:
    assert format_decimal(value) == text


def test_order_cancel_request_names_original_and_new_id_and_venue_id_when_known() -> None:
    request = OrderRequest(request_id="cxl-0001", cl_ord_id="ord-0003", kind=RequestKind.CANCEL)

    assert codec.order_cancel_request(request, "5123456") == (
        "F",
        [(41, "ord-0003"), (11, "cxl-0001"), (37, "5123456")],
    )
    assert codec.order_cancel_request(request, None) == ("F", [(41, "ord-0003"), (11, "cxl-0001")])


def test_order_cancel_replace_request_for_a_limit_sends_price() -> None:
    order = make_order(cl_ord_id="ord-0003", order_type=OrderType.LIMIT, price=D("1.08"), order_id="5123456")
    request = OrderRequest(
        request_id="rpl-0001",
        cl_ord_id="ord-0003",
        kind=RequestKind.REPLACE,
        quantity=D("20000"),
        price=D("1.1"),
    )

    msg_type, body = codec.order_cancel_replace_request(order, request)

    assert msg_type == "G"
    assert dict(body) == {41: "ord-0003", 11: "rpl-0001", 38: "20000", 37: "5123456", 44: "1.1"}


def test_order_cancel_replace_request_for_a_stop_sends_stop_price() -> None:
    order = make_order(
        cl_ord_id="ord-0004", order_type=OrderType.STOP, stop_price=D("1.075"), order_id="5123457"
    )
    request = OrderRequest(
        request_id="rpl-0001",
        cl_ord_id="ord-0004",
        kind=RequestKind.REPLACE,
        quantity=D("20000"),
        stop_price=D("1.07400"),
    )

    _, body = codec.order_cancel_replace_request(order, request)

    assert dict(body) == {41: "ord-0004", 11: "rpl-0001", 38: "20000", 37: "5123457", 99: "1.074"}


def test_order_status_request_carries_cl_ord_id_only() -> None:
    assert codec.order_status_request("ord-0003") == ("H", [(11, "ord-0003")])


def test_order_mass_status_request_asks_for_all_orders() -> None:
    assert codec.order_mass_status_request("mass-0001") == ("AF", [(584, "mass-0001"), (585, "7")])


def test_request_for_positions_carries_pos_req_id_only() -> None:
    assert codec.request_for_positions("pos-0001") == ("AN", [(710, "pos-0001")])


def test_security_list_request_asks_for_all_symbols() -> None:
    assert codec.security_list_request("secl-1") == ("x", [(320, "secl-1"), (559, "0")])


def outbound_messages() -> list[tuple[str, list[tuple[int, str]]]]:
    limit = make_order(
        cl_ord_id="ord-0003", order_type=OrderType.LIMIT, price=D("1.0825"), order_id="5123456"
    )
    replace = OrderRequest(request_id="rpl-1", cl_ord_id="ord-0003", kind=RequestKind.REPLACE, price=D("1.1"))
    cancel = OrderRequest(request_id="cxl-1", cl_ord_id="ord-0003", kind=RequestKind.CANCEL)
    return [
        codec.new_order_single(make_order(label="my-label"), NOW),
        codec.new_order_single(limit, NOW),
        codec.new_order_single(make_order(order_type=OrderType.STOP, stop_price=D("1.075")), NOW),
        codec.order_cancel_request(cancel, "5123456"),
        codec.order_cancel_replace_request(limit, replace),
        codec.order_status_request("ord-0003"),
        codec.order_mass_status_request("mass-1"),
        codec.request_for_positions("pos-1"),
        codec.security_list_request("secl-1"),
    ]


@pytest.mark.parametrize(
    ("msg_type", "body"),
    outbound_messages(),
    ids=["D-market", "D-limit", "D-stop", "F", "G", "H", "AF", "AN", "x"],
)
def test_frame_of_a_built_message_is_accepted_by_quickfix_and_the_dictionary(
    msg_type: str, body: list[tuple[int, str]]
) -> None:
    dictionary = quickfix.DataDictionary(str(DICTIONARY))

    message = quickfix.Message(frame(msg_type, CLIENT_HEADER, body), dictionary, True)

    dictionary.validate(message)
    assert message.getHeader().getField(35) == msg_type


def test_frame_computes_body_length_and_checksum() -> None:
    raw = frame("0", CLIENT_HEADER, [])
    fields = Fields.parse(raw)
    start = raw.index("35=")
    end = raw.index(f"{SOH}10=") + 1

    assert fields.get(9) == str(end - start)
    assert fields.get(10) == f"{sum(raw[:end].encode('latin-1')) % 256:03d}"


@pytest.mark.parametrize("value", ["--5", "²", "1.5"])
def test_an_integer_field_that_is_not_an_ascii_integer_is_a_wire_error(value: str) -> None:
    with pytest.raises(WireError):
        to_int(value)

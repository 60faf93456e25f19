"""Specification of spec/FIX44-CTRADER.xml, our QuickFIX dictionary for cTrader FIX 4.4.

The example messages are section 3 of the cTrader FIX reference
(/work/shared/reference/ctrader-fix.md), written with "|" for SOH.

Binding API used (quickfix 1.16 Python):
* ``quickfix.Message(raw, dd, True)`` parses with the dictionary's group layout and
  checks only the framing (BodyLength/CheckSum), raising ``quickfix.InvalidMessage``;
* ``dd.validate(message)`` checks the message against the dictionary and raises a
  ``quickfix.FIXException`` subclass (``RequiredTagMissing``, ``InvalidTagNumber``...);
* ``message.getGroup(i, quickfix.Group(count_tag, delimiter_tag))`` fills the group
  object with entry ``i`` (1-based), read with ``group.getField(tag)``.
"""

from pathlib import Path
from xml.etree import ElementTree

import pytest
import quickfix as fix

DICTIONARY_PATH = Path(__file__).resolve().parents[2] / "spec" / "FIX44-CTRADER.xml"
SOH = "\x01"
FRAMING_TAGS = ("8", "9", "10")
SUPPORTED_MSG_TYPES = {
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "A",
    "V",
    "W",
    "X",
    "Y",
    "D",
    "H",
    "AF",
    "8",
    "j",
    "AN",
    "AP",
    "F",
    "9",
    "G",
    "x",
    "y",
}
SERVER_HEADER = "8=FIX.4.4|35={}|34=2|49=CSERVER|50=TRADE|52=20250101-10:00:00.000|56=me|"

# Section 3.1: official RoE examples, verbatim (their 9 and 10 are wrong; see frame()).
ROE_EXAMPLES = {
    "logon_trade_request": (
        "8=FIX.4.4|9=126|35=A|49=live.theBroker.12345|56=CSERVER|34=1|"
        "52=20170117-08:03:04|57=TRADE|50=any_string|98=0|108=30|141=Y|553=12345|"
        "554=passw0rd!|10=131|"
    ),
    "logon_trade_success": (
        "8=FIX.4.4|9=106|35=A|34=1|49=CSERVER|50=TRADE|52=20170117-08:03:04.509|"
        "56=live.theBroker.12345|57=any_string|98=0|108=30|141=Y|10=066|"
    ),
    "logout_on_failed_logon": (
        "8=FIX.4.4|9=109|35=5|34=1|49=CSERVER|50=TRADE|52=20170117-08:03:04.509|"
        "56=live.theBroker.12345|58=InternalError: RET_INVALID_DATA|10=033|"
    ),
    "logout_request": (
        "8=FIX.4.4|9=86|35=5|49=live.theBroker.12345|56=CSERVER|34=161|"
        "52=20170117-09:22:33|57=TRADE|50=any_string|10=102|"
    ),
    "logout_response": (
        "8=FIX.4.4|9=90|35=5|34=160|49=CSERVER|50=TRADE|52=20170117-09:22:33.077|"
        "56=live.theBroker.12345|57=any_string|10=044|"
    ),
    "market_data_request_spot": (
        "8=FIX.4.4|9=131|35=V|49=live.theBroker.12345|56=CSERVER|34=3|"
        "52=20170117-10:26:54|50=QUOTE|262=876316403|263=1|264=1|265=1|146=1|55=1|"
        "267=2|269=0|269=1|10=094|"
    ),
    "snapshot_spot": (
        "8=FIX.4.4|9=134|35=W|34=2|49=CSERVER|50=QUOTE|52=20170117-10:26:54.630|"
        "56=live.theBroker.12345|57=any_string|55=1|268=2|269=0|270=1.06625|269=1|"
        "270=1.0663|10=118|"
    ),
    "snapshot_depth": (
        "8=FIX.4.4|9=310|35=W|34=2|49=CSERVER|50=QUOTE|52=20180925-12:05:28.284|"
        "56=live.theBroker.12345|57=Quote|55=1|268=6|269=1|270=1.11132|271=3000000|"
        "278=16|269=1|270=1.11134|271=5000000|278=17|269=1|270=1.11133|271=3000000|"
        "278=15|269=0|270=1.1112|271=2000000|278=12|269=0|270=1.11121|271=1000000|"
        "278=13|269=0|270=1.11122|271=3000000|278=14|10=247|"
    ),
    "incremental_refresh_depth": (
        "8=FIX.4.4|9=376|35=X|34=3|49=CSERVER|50=QUOTE|52=20170117-11:13:44.555|"
        "56=live.theBroker.12345|57=any_string|268=8|279=0|269=0|278=7491|55=1|"
        "270=1.06897|271=1000000|279=0|269=0|278=7490|55=1|270=1.06898|271=1000000|"
        "279=0|269=0|278=7489|55=1|270=1.06874|271=32373000|279=0|269=1|278=7496|"
        "55=1|270=1.06931|271=34580000|279=2|278=7477|55=1|279=2|278=7468|55=1|"
        "279=2|278=7467|55=1|279=2|278=7484|55=1|10=192|"
    ),
    "market_data_request_reject": (
        "8=FIX.4.4|9=164|35=Y|34=2|49=CSERVER|50=QUOTE|52=20170920-09:52:13.036|"
        "56=live.theBroker.12345|57=Quote|"
        "58=INVALID_REQUEST: Expected numeric symbolId, but got CS8260|"
        "262=CS8260:sXlXex|281=0|10=236|"
    ),
    "new_order_market": (
        "8=FIX.4.4|9=143|35=D|49=live.theBroker.12345|56=CSERVER|34=77|"
        "52=20170117-10:02:14|50=any_string|57=TRADE|11=876316397|55=1|54=1|"
        "60=20170117-10:02:14|40=1|38=10000|10=010|"
    ),
    "execution_report_new": (
        "8=FIX.4.4|9=197|35=8|34=77|49=CSERVER|50=TRADE|52=20170117-10:02:14.720|"
        "56=live.theBroker.12345|57=any_string|11=876316397|14=0|37=101|38=10000|"
        "39=0|40=1|54=1|55=1|59=3|60=20170117-10:02:14.591|150=0|151=10000|721=101|"
        "10=149|"
    ),
    "execution_report_fill": (
        "8=FIX.4.4|9=206|35=8|34=78|49=CSERVER|50=TRADE|52=20170117-10:02:15.045|"
        "56=live.theBroker.12345|57=any_string|6=1.0674|11=876316397|14=10000|"
        "32=10000|37=101|38=10000|39=2|40=1|54=1|55=1|59=3|"
        "60=20170117-10:02:14.963|150=F|151=0|721=101|10=077|"
    ),
    "new_order_limit_on_position": (
        "8=FIX.4.4|9=162|35=D|49=live.theBroker.12345|56=CSERVER|34=89|"
        "52=20170117-10:06:22|50=any_string|57=TRADE|11=876316400|55=1|54=2|"
        "60=20170117-10:06:22|40=2|44=1.07162|38=50000|721=101|10=122|"
    ),
    "execution_report_limit_new": (
        "8=FIX.4.4|9=208|35=8|34=90|49=CSERVER|50=TRADE|52=20170117-10:06:22.466|"
        "56=live.theBroker.12345|57=any_string|11=876316400|14=0|37=104|38=50000|"
        "39=0|40=2|44=1.07162|54=2|55=1|59=1|60=20170117-10:06:22.436|150=0|"
        "151=50000|721=101|10=149|"
    ),
    "execution_report_stop_new": (
        "8=FIX.4.4|9=207|35=8|34=8|49=CSERVER|50=TRADE|52=20170117-12:10:48.400|"
        "56=live.theBroker.12345|57=any_string|11=876316418|14=0|37=205|38=50000|"
        "39=0|40=3|54=1|55=1|59=1|60=20170117-12:10:48.362|99=1.07148|150=0|"
        "151=50000|721=202|10=122|"
    ),
    "order_cancel_request": (
        "8=FIX.4.4|9=115|35=F|34=2|49=live.theBroker.12345|50=Trade|"
        "52=20170721-13:41:21.694|56=CSERVER|57=TRADE|11=jR8dBPcZEQa9|"
        "41=n9Tm8x1AavO5|10=182|"
    ),
    "execution_report_canceled": (
        "8=FIX.4.4|9=221|35=8|34=3|49=CSERVER|50=TRADE|52=20170721-13:41:21.784|"
        "56=live.theBroker.12345|57=Trade|11=jR8dBPcZEQa9|14=0|37=641|38=100000|"
        "39=4|40=2|41=n9Tm8x1AavO5|44=1.499|54=1|55=1|59=1|"
        "60=20170721-13:41:21.760|150=4|151=100000|721=624|10=180|"
    ),
    "business_reject_order_not_found": (
        "8=FIX.4.4|9=174|35=j|34=3|49=CSERVER|50=TRADE|52=20170721-13:41:21.856|"
        "56=live.theBroker.12345|57=Trade|"
        "58=ORDER_NOT_FOUND:Order with clientOrderId=n9Tm8x1AavO5 not found.|"
        "379=jR8dBPcZEQa9|380=0|10=075|"
    ),
    "order_cancel_reject": (
        "8=FIX.4.4|9=156|35=9|34=3|49=CSERVER|50=TRADE|52=20181024-12:35:02.896|"
        "56=live.theBroker.12345|57=Trade|11=gBljx7YOg5jY|37=629|39=0|"
        "41=FdXLfS0tTyUL|58=Order is under execution|434=1|10=109|"
    ),
    "order_cancel_replace_request": (
        "8=FIX.4.4|9=123|35=G|34=3|49=live.theBroker.12345|50=Trade|"
        "52=20170721-13:42:17.680|56=CSERVER|57=TRADE|11=Is03AvsknNYK|38=5000|"
        "41=n9Tm8x1AavO5|44=1.1|10=010|"
    ),
    "execution_report_replaced": (
        "8=FIX.4.4|9=192|35=8|34=3|49=CSERVER|50=TRADE|52=20170721-13:42:18.784|"
        "56=live.theBroker.12345|57=Trade|11=Is03AvsknNYK|14=0|37=629|38=5000|39=0|"
        "40=2|44=1.1|54=1|55=1|59=1|60=20170721-13:42:18.760|150=5|151=5000|"
        "721=624|10=150|"
    ),
    "order_mass_status_request": (
        "8=FIX.4.4|9=117|35=AF|34=3|49=live.theBroker.12345|"
        "52=20170404-07:20:55.325|56=CSERVER|57=TRADE|225=20170404-07:20:44.582|"
        "584=mZzEY|585=7|10=065|"
    ),
    "execution_report_order_status": (
        "8=FIX.4.4|9=199|35=8|34=13|49=CSERVER|50=TRADE|52=20170404-07:20:55.333|"
        "56=live.theBroker.12345|14=0|37=635|38=100000|39=0|40=2|44=1.35265|54=2|"
        "55=1|59=1|60=20170404-07:20:44.582|150=I|151=100000|584=mZzEY|721=617|"
        "911=1|10=152|"
    ),
    "request_for_positions": (
        "8=FIX.4.4|9=100|35=AN|49=live.theBroker.12345|56=CSERVER|34=99|"
        "52=20170117-10:09:54|50=any_string|57=TRADE|710=876316401|10=103|"
    ),
    "position_report": (
        "8=FIX.4.4|9=163|35=AP|34=98|49=CSERVER|50=TRADE|52=20170117-10:09:54.076|"
        "56=live.theBroker.12345|57=any_string|55=1|710=876316401|721=101|727=1|"
        "728=0|730=1.06671|702=1|704=0|705=30000|10=182|"
    ),
    "security_list_request_one_symbol": (
        "8=FIX.4.4|9=107|35=x|34=3|49=live.theBroker.12345|50=Trade|"
        "52=20180427-12:24:27.106|56=CSERVER|57=TRADE|55=39|320=ILCea0JkdQEm|559=0|"
        "10=248|"
    ),
    "security_list": (
        "8=FIX.4.4|9=158|35=y|34=3|49=CSERVER|50=TRADE|52=20180427-12:24:27.107|"
        "56=live.theBroker.12345|57=Trade|320=ILCea0JkdQEm|"
        "322=responce:ILCea0JkdQEm|560=0|146=1|55=39|1007=NZDCHF|1008=4|10=088|"
    ),
}

# Section 3.2: reconstructed examples, verbatim (9 and 10 are correct).
RECONSTRUCTED_EXAMPLES = {
    "logon_quote": (
        "8=FIX.4.4|9=128|35=A|34=1|49=demo.broker.1234567|50=QUOTE|"
        "52=20250101-10:00:00.000|56=cServer|57=QUOTE|98=0|108=30|141=Y|"
        "553=1234567|554=secret|10=024|"
    ),
    "logon_trade": (
        "8=FIX.4.4|9=128|35=A|34=1|49=demo.broker.1234567|50=TRADE|"
        "52=20250101-10:00:00.000|56=cServer|57=TRADE|98=0|108=30|141=Y|"
        "553=1234567|554=secret|10=220|"
    ),
    "market_data_request_spot_subscribe": (
        "8=FIX.4.4|9=147|35=V|34=2|49=demo.broker.1234567|50=QUOTE|"
        "52=20250101-10:00:01.000|56=cServer|57=QUOTE|262=spot-1-1|263=1|264=1|"
        "265=1|267=2|269=0|269=1|146=1|55=1|10=205|"
    ),
    "market_data_request_depth_subscribe": (
        "8=FIX.4.4|9=148|35=V|34=3|49=demo.broker.1234567|50=QUOTE|"
        "52=20250101-10:00:01.100|56=cServer|57=QUOTE|262=depth-1-1|263=1|264=0|"
        "265=1|267=2|269=0|269=1|146=1|55=1|10=030|"
    ),
    "market_data_request_spot_unsubscribe": (
        "8=FIX.4.4|9=147|35=V|34=4|49=demo.broker.1234567|50=QUOTE|"
        "52=20250101-10:05:00.000|56=cServer|57=QUOTE|262=spot-1-1|263=2|264=1|"
        "265=1|267=2|269=0|269=1|146=1|55=1|10=212|"
    ),
    "security_list_request_all": (
        "8=FIX.4.4|9=104|35=x|34=2|49=demo.broker.1234567|50=TRADE|"
        "52=20250101-10:00:01.000|56=cServer|57=TRADE|320=secl-1|559=0|10=009|"
    ),
    "new_order_market_with_label": (
        "8=FIX.4.4|9=161|35=D|34=3|49=demo.broker.1234567|50=TRADE|"
        "52=20250101-10:00:02.000|56=cServer|57=TRADE|11=ord-0001|55=1|54=1|"
        "60=20250101-10:00:02.000|38=10000|40=1|494=my-label|10=133|"
    ),
    "new_order_partial_close": (
        "8=FIX.4.4|9=160|35=D|34=4|49=demo.broker.1234567|50=TRADE|"
        "52=20250101-10:10:00.000|56=cServer|57=TRADE|11=ord-0002|55=1|54=2|"
        "60=20250101-10:10:00.000|38=5000|40=1|721=47888826|10=242|"
    ),
    "new_order_gtd_limit": (
        "8=FIX.4.4|9=181|35=D|34=5|49=demo.broker.1234567|50=TRADE|"
        "52=20250101-10:11:00.000|56=cServer|57=TRADE|11=ord-0003|55=1|54=1|"
        "60=20250101-10:11:00.000|38=10000|40=2|44=1.08250|126=20250102-10:00:00|"
        "10=195|"
    ),
    "new_order_sell_stop": (
        "8=FIX.4.4|9=159|35=D|34=6|49=demo.broker.1234567|50=TRADE|"
        "52=20250101-10:12:00.000|56=cServer|57=TRADE|11=ord-0004|55=1|54=2|"
        "60=20250101-10:12:00.000|38=10000|40=3|99=1.07500|10=176|"
    ),
    "order_cancel_request": (
        "8=FIX.4.4|9=122|35=F|34=7|49=demo.broker.1234567|50=TRADE|"
        "52=20250101-10:13:00.000|56=cServer|57=TRADE|41=ord-0003|37=5123456|"
        "11=cxl-0001|10=181|"
    ),
    "order_cancel_replace_request": (
        "8=FIX.4.4|9=142|35=G|34=8|49=demo.broker.1234567|50=TRADE|"
        "52=20250101-10:14:00.000|56=cServer|57=TRADE|41=ord-0004|37=5123457|"
        "11=rpl-0001|38=20000|99=1.07400|10=104|"
    ),
    "request_for_positions": (
        "8=FIX.4.4|9=101|35=AN|34=9|49=demo.broker.1234567|50=TRADE|"
        "52=20250101-10:15:00.000|56=cServer|57=TRADE|710=pos-0001|10=086|"
    ),
    "order_mass_status_request": (
        "8=FIX.4.4|9=109|35=AF|34=10|49=demo.broker.1234567|50=TRADE|"
        "52=20250101-10:15:01.000|56=cServer|57=TRADE|584=mass-0001|585=7|10=001|"
    ),
    "order_status_request": (
        "8=FIX.4.4|9=100|35=H|34=11|49=demo.broker.1234567|50=TRADE|"
        "52=20250101-10:15:02.000|56=cServer|57=TRADE|11=ord-0003|10=248|"
    ),
}


def frame(pipe_message: str) -> str:
    """Return the message with SOH delimiters and a correct BodyLength (9) and CheckSum (10)."""
    fields = [field for field in pipe_message.split("|") if field]
    begin_string = fields[0]
    body = "".join(field + SOH for field in fields if field.split("=", 1)[0] not in FRAMING_TAGS)
    head = f"{begin_string}{SOH}9={len(body.encode('latin-1'))}{SOH}"
    checksum = sum((head + body).encode("latin-1")) % 256
    return f"{head}{body}10={checksum:03d}{SOH}"


def server_message(msg_type: str, body: str) -> str:
    """A pipe-delimited server message with a valid header around ``body``."""
    return SERVER_HEADER.format(msg_type) + body + "10=000|"


def parse(pipe_message: str, dictionary: fix.DataDictionary) -> fix.Message:
    """Parse a pipe-delimited message (re-framed) and validate it against the dictionary."""
    message = fix.Message(frame(pipe_message), dictionary, True)
    dictionary.validate(message)
    return message


def group_entries(message: fix.Message, count_tag: int, delimiter_tag: int, *tags: int):
    """Values of ``tags`` per entry of a repeating group; None where a tag is absent."""
    group = fix.Group(count_tag, delimiter_tag)
    entries = []
    for index in range(1, int(message.getField(count_tag)) + 1):
        message.getGroup(index, group)
        entries.append(tuple(group.getField(tag) if group.isSetField(tag) else None for tag in tags))
    return entries


@pytest.fixture(scope="module")
def dictionary() -> fix.DataDictionary:
    return fix.DataDictionary(str(DICTIONARY_PATH))


@pytest.fixture(scope="module")
def dictionary_xml() -> ElementTree.Element:
    # Our own checked-in file, not untrusted input.
    return ElementTree.parse(DICTIONARY_PATH).getroot()  # noqa: S314


# --- the dictionary itself -------------------------------------------------------


def test_dictionary_file_when_loaded_is_fix44(dictionary):
    assert dictionary.getVersion() == "FIX.4.4"


def test_dictionary_messages_when_listed_are_exactly_ctrader_supported_types(
    dictionary_xml,
):
    declared = {m.get("msgtype") for m in dictionary_xml.find("messages")}
    msg_type_enum = {value.get("enum") for value in dictionary_xml.find("fields").find("field[@number='35']")}
    assert declared == SUPPORTED_MSG_TYPES
    assert msg_type_enum == SUPPORTED_MSG_TYPES


@pytest.mark.parametrize("tag", [263, 264, 559, 585, 1008])
def test_server_judged_field_when_inspected_has_no_enum(dictionary, tag):
    assert not dictionary.hasFieldValue(tag)


def test_security_id_when_looked_up_is_not_defined(dictionary):
    assert not dictionary.isField(48)


@pytest.mark.parametrize(
    ("tag", "value", "name"),
    [
        (150, "F", "TRADE"),
        (150, "I", "ORDER_STATUS"),
        (39, "C", "EXPIRED"),
        (279, "2", "DELETE"),
        (434, "2", "ORDER_CANCEL_REPLACE_REQUEST"),
        (728, "2", "NO_POSITIONS_FOUND_THAT_MATCH_CRITERIA"),
        (1005, "4", "DOUBLE_OPPOSITE_SIDE"),
    ],
)
def test_enumerated_value_when_decoded_has_its_name(dictionary_xml, tag, value, name):
    field = dictionary_xml.find(f"fields/field[@number='{tag}']")
    assert {entry.get("enum"): entry.get("description") for entry in field}[value] == name


# --- the re-framing helper --------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RECONSTRUCTED_EXAMPLES))
def test_frame_on_correctly_framed_example_reproduces_it_byte_for_byte(name):
    raw = RECONSTRUCTED_EXAMPLES[name]
    assert frame(raw) == raw.replace("|", SOH)


def test_roe_example_with_original_framing_is_rejected_as_invalid_message(dictionary):
    raw = ROE_EXAMPLES["logon_trade_request"].replace("|", SOH)
    with pytest.raises(fix.InvalidMessage):
        fix.Message(raw, dictionary, True)


# --- section 3 examples -----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ROE_EXAMPLES))
def test_roe_example_when_reframed_parses_and_validates(dictionary, name):
    message = parse(ROE_EXAMPLES[name], dictionary)
    assert message.getHeader().getField(35) in SUPPORTED_MSG_TYPES


@pytest.mark.parametrize("name", sorted(RECONSTRUCTED_EXAMPLES))
def test_reconstructed_example_parses_and_validates(dictionary, name):
    message = parse(RECONSTRUCTED_EXAMPLES[name], dictionary)
    assert message.getHeader().getField(35) in SUPPORTED_MSG_TYPES


# --- repeating groups --------------------------------------------------------------


def test_depth_snapshot_group_yields_mdentryid_per_entry(dictionary):
    message = parse(ROE_EXAMPLES["snapshot_depth"], dictionary)
    assert group_entries(message, 268, 269, 269, 270, 271, 278) == [
        ("1", "1.11132", "3000000", "16"),
        ("1", "1.11134", "5000000", "17"),
        ("1", "1.11133", "3000000", "15"),
        ("0", "1.1112", "2000000", "12"),
        ("0", "1.11121", "1000000", "13"),
        ("0", "1.11122", "3000000", "14"),
    ]


def test_spot_snapshot_group_yields_prices_without_size_or_entry_id(dictionary):
    message = parse(ROE_EXAMPLES["snapshot_spot"], dictionary)
    assert group_entries(message, 268, 269, 269, 270, 271, 278) == [
        ("0", "1.06625", None, None),
        ("1", "1.0663", None, None),
    ]


def test_incremental_refresh_group_yields_symbol_per_entry(dictionary):
    message = parse(ROE_EXAMPLES["incremental_refresh_depth"], dictionary)
    assert not message.isSetField(55)
    assert group_entries(message, 268, 279, 279, 269, 278, 55, 270, 271) == [
        ("0", "0", "7491", "1", "1.06897", "1000000"),
        ("0", "0", "7490", "1", "1.06898", "1000000"),
        ("0", "0", "7489", "1", "1.06874", "32373000"),
        ("0", "1", "7496", "1", "1.06931", "34580000"),
        ("2", None, "7477", "1", None, None),
        ("2", None, "7468", "1", None, None),
        ("2", None, "7467", "1", None, None),
        ("2", None, "7484", "1", None, None),
    ]


def test_security_list_group_yields_symbol_name_and_digits_per_entry(dictionary):
    raw = server_message(
        "y",
        "320=secl-1|322=responce:secl-1|560=0|146=3|"
        "55=1|1007=EURUSD|1008=5|55=39|1007=NZDCHF|1008=4|55=10001|1007=XAUUSD|1008=2|",
    )
    message = parse(raw, dictionary)
    assert group_entries(message, 146, 55, 55, 1007, 1008) == [
        ("1", "EURUSD", "5"),
        ("39", "NZDCHF", "4"),
        ("10001", "XAUUSD", "2"),
    ]


def test_roe_security_list_group_yields_symbol_name_and_digits(dictionary):
    message = parse(ROE_EXAMPLES["security_list"], dictionary)
    assert group_entries(message, 146, 55, 55, 1007, 1008) == [("39", "NZDCHF", "4")]


def test_position_report_group_yields_long_and_short_qty(dictionary):
    message = parse(ROE_EXAMPLES["position_report"], dictionary)
    assert group_entries(message, 702, 704, 704, 705) == [("0", "30000")]


# --- cTrader deviations from stock FIX 4.4 that must be accepted -------------------

ACCEPTED_DEVIATIONS = {
    "execution_report_with_exec_id_and_last_px": server_message(
        "8", "37=101|17=x-1|150=F|39=2|31=1.0674|32=10000|"
    ),
    "execution_report_with_sl_tp_tags": server_message(
        "8",
        "37=101|150=0|39=0|721=101|1000=1.1|1001=50|1002=1.05|1003=50|1004=N|1005=2|1006=N|",
    ),
    "business_reject_without_ref_msg_type": server_message("j", "380=0|"),
    "order_cancel_reject_without_orig_cl_ord_id": server_message("9", "37=629|11=c-1|39=0|434=2|"),
    "snapshot_without_md_req_id_and_no_entries": server_message("W", "55=1|268=0|"),
    "market_data_request_with_non_numeric_symbol": server_message(
        "V", "262=r-1|263=1|264=1|267=2|269=0|269=1|146=1|55=CS8260|"
    ),
    "market_data_request_with_unsupported_depth_and_type": server_message(
        "V", "262=r-1|263=0|264=5|267=2|269=0|269=1|146=1|55=1|"
    ),
    "mass_status_request_with_unsupported_type": server_message(
        "AF", "584=m-1|585=3|225=20250101-10:00:00.000|"
    ),
    "security_list_with_six_digit_symbol": server_message(
        "y", "320=s-1|322=responce:s-1|560=0|146=1|55=7|1007=BTCJPY|1008=6|"
    ),
}


@pytest.mark.parametrize("name", sorted(ACCEPTED_DEVIATIONS))
def test_ctrader_deviation_from_stock_fix44_is_accepted(dictionary, name):
    parse(ACCEPTED_DEVIATIONS[name], dictionary)


# --- messages the dictionary must reject -------------------------------------------

REJECTED_MESSAGES = {
    "market_data_request_with_security_id": (
        server_message("V", "262=r-1|263=1|264=1|267=2|269=0|269=1|146=1|55=1|48=EURUSD|"),
        fix.InvalidTagNumber,
    ),
    "market_data_request_without_related_sym_group": (
        server_message("V", "262=r-1|263=1|264=1|267=2|269=0|269=1|"),
        fix.RequiredTagMissing,
    ),
    "market_data_request_with_symbol_outside_group": (
        server_message("V", "262=r-1|263=1|264=1|55=1|267=2|269=0|269=1|146=1|55=1|"),
        fix.TagNotDefinedForMessage,
    ),
    "market_data_request_with_wrong_group_count": (
        server_message("V", "262=r-1|263=1|264=1|267=2|269=0|269=1|146=2|55=1|"),
        fix.RepeatingGroupCountMismatch,
    ),
    "execution_report_without_exec_type": (
        server_message("8", "37=101|39=0|11=o-1|"),
        fix.RequiredTagMissing,
    ),
    "execution_report_with_unknown_exec_type": (
        server_message("8", "37=101|150=Z|39=0|"),
        fix.IncorrectTagValue,
    ),
    "incremental_refresh_entry_without_symbol": (
        server_message("X", "268=1|279=2|278=7477|"),
        fix.RequiredTagMissing,
    ),
    "unsupported_message_type": (
        server_message("AO", "721=101|"),
        fix.InvalidMessageType,
    ),
}


@pytest.mark.parametrize("name", sorted(REJECTED_MESSAGES))
def test_message_outside_ctrader_dictionary_is_rejected(dictionary, name):
    raw, expected_error = REJECTED_MESSAGES[name]
    with pytest.raises(expected_error):
        parse(raw, dictionary)

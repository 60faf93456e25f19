"""Specification of the message decoder: names, enum meanings and repeating groups from our dictionary."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixadapter.compliance.decode import Dictionary, DictionaryError, format_decoded
from fixadapter.connectors.fix.wire import frame

DICTIONARY_PATH = Path(__file__).resolve().parents[2] / "spec" / "FIX44-CTRADER.xml"
SERVER = [
    (49, "CSERVER"),
    (56, "demo.icmarkets.1234567"),
    (34, "7"),
    (50, "QUOTE"),
    (52, "20250101-10:00:00.000"),
]


@pytest.fixture(scope="module")
def dictionary() -> Dictionary:
    return Dictionary.load(DICTIONARY_PATH)


def lines(dictionary: Dictionary, raw: str) -> list[str]:
    return format_decoded(dictionary.decode(raw))


def test_fields_show_tag_name_value_and_enum_meaning(dictionary: Dictionary) -> None:
    raw = frame(
        "8",
        [(49, "CSERVER"), (56, "me"), (34, "3"), (52, "20250101-10:00:01.123")],
        [(37, "101"), (11, "ord-1"), (150, "F"), (39, "2"), (54, "1"), (14, "10000"), (6, "1.0835")],
    )

    decoded = lines(dictionary, raw)

    assert decoded[0] == "8 BeginString = FIX.4.4"
    assert decoded[1].startswith("9 BodyLength = ")
    assert decoded[2] == "35 MsgType = 8 (ExecutionReport)"
    assert "37 OrderID = 101" in decoded
    assert "150 ExecType = F (TRADE)" in decoded
    assert "39 OrdStatus = 2 (FILLED)" in decoded
    assert "54 Side = 1 (BUY)" in decoded
    assert "6 AvgPx = 1.0835" in decoded
    assert decoded[-1].startswith("10 CheckSum = ")


def test_message_types_are_named_by_their_message(dictionary: Dictionary) -> None:
    order = frame("D", [], [(11, "a")])
    reject = frame("3", [], [(45, "2"), (372, "G"), (373, "1")])

    assert "35 MsgType = D (NewOrderSingle)" in lines(dictionary, order)
    assert "372 RefMsgType = G (OrderCancelReplaceRequest)" in lines(dictionary, reject)
    assert "373 SessionRejectReason = 1 (REQUIRED_TAG_MISSING)" in lines(dictionary, reject)


def test_pipe_separated_text_decodes_as_well(dictionary: Dictionary) -> None:
    assert lines(dictionary, "8=FIX.4.4|35=0|112=ping|") == [
        "8 BeginString = FIX.4.4",
        "35 MsgType = 0 (Heartbeat)",
        "112 TestReqID = ping",
    ]


def test_repeating_group_entries_are_indented_and_each_entry_marked(dictionary: Dictionary) -> None:
    raw = frame(
        "W",
        SERVER,
        [
            (55, "1"),
            (268, "2"),
            (269, "0"),
            (270, "1.08355"),
            (271, "1000000"),
            (278, "b1"),
            (269, "1"),
            (270, "1.08357"),
            (271, "500000"),
            (278, "a1"),
        ],
    )

    decoded = lines(dictionary, raw)

    start = decoded.index("268 NoMDEntries = 2")
    assert decoded[start - 1] == "55 Symbol = 1"
    assert decoded[start + 1 : start + 9] == [
        "  - 269 MDEntryType = 0 (BID)",
        "    270 MDEntryPx = 1.08355",
        "    271 MDEntrySize = 1000000",
        "    278 MDEntryID = b1",
        "  - 269 MDEntryType = 1 (OFFER)",
        "    270 MDEntryPx = 1.08357",
        "    271 MDEntrySize = 500000",
        "    278 MDEntryID = a1",
    ]
    assert decoded[start + 9].startswith("10 CheckSum = ")


def test_group_members_that_are_also_message_fields_stay_in_their_entry(dictionary: Dictionary) -> None:
    raw = frame(
        "X",
        SERVER,
        [
            (268, "2"),
            (279, "0"),
            (269, "0"),
            (278, "7"),
            (55, "1"),
            (270, "1.1"),
            (279, "2"),
            (278, "6"),
            (55, "1"),
        ],
    )

    decoded = dictionary.decode(raw)

    inside = [(d.tag, d.depth, d.starts_entry) for d in decoded if d.depth]
    assert inside == [
        (279, 1, True),
        (269, 1, False),
        (278, 1, False),
        (55, 1, False),
        (270, 1, False),
        (279, 1, True),
        (278, 1, False),
        (55, 1, False),
    ]
    assert "  - 279 MDUpdateAction = 2 (DELETE)" in format_decoded(decoded)


def test_ctrader_custom_tags_in_the_security_list_group(dictionary: Dictionary) -> None:
    raw = frame(
        "y",
        SERVER,
        [(320, "r"), (322, "s"), (560, "0"), (146, "1"), (55, "1"), (1007, "EURUSD"), (1008, "5")],
    )

    assert lines(dictionary, raw)[-5:-1] == [
        "146 NoRelatedSym = 1",
        "  - 55 Symbol = 1",
        "    1007 SymbolName = EURUSD",
        "    1008 SymbolDigits = 5",
    ]


def test_a_wrong_group_count_is_pointed_out(dictionary: Dictionary) -> None:
    raw = frame("W", SERVER, [(55, "1"), (268, "3"), (269, "0"), (270, "1.1")])

    assert "268 NoMDEntries = 3  [announces 3, has 1 entries]" in lines(dictionary, raw)


def test_tags_and_values_missing_from_the_dictionary_say_so(dictionary: Dictionary) -> None:
    raw = frame("8", [], [(37, "1"), (150, "0"), (39, "Z"), (9999, "extra")])

    decoded = lines(dictionary, raw)

    assert "39 OrdStatus = Z (not in dictionary)" in decoded
    assert "9999 [not in dictionary] = extra" in decoded
    assert "35 MsgType = QQ (not in dictionary)" in lines(dictionary, "8=FIX.4.4|35=QQ|")


def test_a_masked_password_stays_masked(dictionary: Dictionary) -> None:
    assert "554 Password = ******" in lines(dictionary, "8=FIX.4.4|35=A|553=1234567|554=******|")


def test_message_types_and_tags_are_found_by_name(dictionary: Dictionary) -> None:
    assert dictionary.msg_type("NewOrderSingle") == "D"
    assert dictionary.msg_type("executionreport") == "8"
    assert dictionary.msg_type("AF") == "AF"
    assert dictionary.msg_type("ZZ") == "ZZ"
    assert dictionary.tag("ClOrdID") == 11
    assert dictionary.tag("37") == 37
    assert dictionary.tag("NoSuchField") is None


def test_nested_groups_and_components_of_another_dictionary(tmp_path: Path) -> None:
    xml = tmp_path / "other.xml"
    xml.write_text(
        """<fix major="4" minor="4"><header/><trailer/>
  <messages>
    <message name="Allocation" msgtype="J" msgcat="app">
      <component name="Parties"/>
      <field name="Text" required="N"/>
    </message>
  </messages>
  <components>
    <component name="Parties">
      <group name="NoPartyIDs" required="N">
        <field name="PartyID" required="N"/>
        <group name="NoPartySubIDs" required="N">
          <field name="PartySubID" required="N"/>
          <field name="PartySubIDType" required="N"/>
        </group>
      </group>
    </component>
  </components>
  <fields>
    <field number="35" name="MsgType" type="STRING"/>
    <field number="58" name="Text" type="STRING"/>
    <field number="453" name="NoPartyIDs" type="NUMINGROUP"/>
    <field number="448" name="PartyID" type="STRING"/>
    <field number="802" name="NoPartySubIDs" type="NUMINGROUP"/>
    <field number="523" name="PartySubID" type="STRING"/>
    <field number="803" name="PartySubIDType" type="INT"><value enum="1" description="FIRM"/></field>
  </fields>
</fix>""",
        encoding="utf-8",
    )
    other = Dictionary.load(xml)

    decoded = lines(other, "35=J|453=2|448=A|802=2|523=x|803=1|523=y|448=B|58=done|")

    assert decoded == [
        "35 MsgType = J (Allocation)",
        "453 NoPartyIDs = 2",
        "  - 448 PartyID = A",
        "    802 NoPartySubIDs = 2",
        "      - 523 PartySubID = x",
        "        803 PartySubIDType = 1 (FIRM)",
        "      - 523 PartySubID = y",
        "  - 448 PartyID = B",
        "58 Text = done",
    ]


def test_a_missing_dictionary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DictionaryError, match=r"cannot read the FIX dictionary .*missing\.xml"):
        Dictionary.load(tmp_path / "missing.xml")

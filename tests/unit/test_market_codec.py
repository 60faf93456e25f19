"""Reading cTrader's W, X and Y and writing V, on the messages of the Rules of Engagement."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fixadapter.connectors.fix.market_codec import decode_market_data, market_data_request
from fixadapter.connectors.fix.wire import WireError
from fixadapter.model.market import BookSide, EntryChange, FullRefresh, IncrementalRefresh, RequestRejected

D = Decimal


def raw(text: str) -> str:
    return text.replace("|", "\x01")


SPOT_W = raw(
    "8=FIX.4.4|9=134|35=W|34=2|49=CSERVER|50=QUOTE|52=20170117-10:26:54.630|56=live.theBroker.12345|"
    "57=any_string|55=1|268=2|269=0|270=1.06625|269=1|270=1.0663|10=118|"
)
DEPTH_W = raw(
    "8=FIX.4.4|9=310|35=W|34=2|49=CSERVER|50=QUOTE|52=20180925-12:05:28.284|56=live.theBroker.12345|57=Quote|"
    "55=1|268=6|269=1|270=1.11132|271=3000000|278=16|269=1|270=1.11134|271=5000000|278=17|269=1|270=1.11133|"
    "271=3000000|278=15|269=0|270=1.1112|271=2000000|278=12|269=0|270=1.11121|271=1000000|278=13|269=0|"
    "270=1.11122|271=3000000|278=14|10=247|"
)
X = raw(
    "8=FIX.4.4|9=376|35=X|34=3|49=CSERVER|50=QUOTE|52=20170117-11:13:44.555|56=live.theBroker.12345|"
    "57=any_string|268=8|279=0|269=0|278=7491|55=1|270=1.06897|271=1000000|279=0|269=0|278=7490|55=1|"
    "270=1.06898|271=1000000|279=0|269=0|278=7489|55=1|270=1.06874|271=32373000|279=0|269=1|278=7496|55=1|"
    "270=1.06931|271=34580000|279=2|278=7477|55=1|279=2|278=7468|55=1|279=2|278=7467|55=1|279=2|278=7484|55=1|"
    "10=192|"
)
Y = raw(
    "8=FIX.4.4|9=164|35=Y|34=2|49=CSERVER|50=QUOTE|52=20170920-09:52:13.036|56=live.theBroker.12345|57=Quote|"
    "58=INVALID_REQUEST: Expected numeric symbolId, but got CS8260|262=CS8260:sXlXex|281=0|10=236|"
)


def test_a_spot_w_is_prices_only_timed_by_sending_time() -> None:
    message = decode_market_data(SPOT_W)
    assert isinstance(message, FullRefresh)
    assert message.symbol_id == 1
    assert message.time == datetime(2017, 1, 17, 10, 26, 54, 630000, tzinfo=UTC)
    assert [(e.side, e.price, e.size, e.entry_id) for e in message.entries] == [
        (BookSide.BID, D("1.06625"), None, None),
        (BookSide.ASK, D("1.0663"), None, None),
    ]
    assert not message.is_depth


def test_a_depth_w_carries_every_entry_with_its_id() -> None:
    message = decode_market_data(DEPTH_W)
    assert isinstance(message, FullRefresh)
    assert message.is_depth
    assert len(message.entries) == 6
    assert message.entries[0].entry_id == "16"
    assert message.entries[0].size == D(3000000)


def test_an_x_is_news_and_deletes_each_naming_its_symbol() -> None:
    message = decode_market_data(X)
    assert isinstance(message, IncrementalRefresh)
    assert message.changes[0] == EntryChange(1, "7491", False, BookSide.BID, D("1.06897"), D(1000000))
    assert message.changes[4] == EntryChange(1, "7477", True)
    assert sum(change.delete for change in message.changes) == 4


def test_a_y_names_the_request_and_the_reason() -> None:
    message = decode_market_data(Y)
    assert message == RequestRejected(
        "CS8260:sXlXex", 0, "INVALID_REQUEST: Expected numeric symbolId, but got CS8260"
    )


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (X.replace("268=8", "268=9"), "NoMDEntries"),
        (X.replace("279=2\x01278=7477", "279=1\x01278=7477"), "MDUpdateAction"),
        (X.replace("270=1.06897", "270=abc"), "not a number"),
        (X.replace("\x01278=7491", ""), "MDEntryID"),
        (DEPTH_W.replace("55=1", "55=EURUSD"), "numeric"),
        (SPOT_W.replace("269=1", "269=7"), "MDEntryType"),
        (SPOT_W.replace("\x0152=20170117-10:26:54.630", ""), "SendingTime"),
        (SPOT_W.replace("35=W", "35=8"), "not a market data"),
    ],
)
def test_an_unreadable_message_is_a_wire_error_not_a_crash(text: str, error: str) -> None:
    with pytest.raises(WireError, match=error):
        decode_market_data(text)


def test_a_subscribe_v_asks_for_both_sides_of_one_symbol() -> None:
    msg_type, body, groups = market_data_request("depth-1-1", 1, depth=True)
    assert msg_type == "V"
    assert dict(body) == {262: "depth-1-1", 263: "1", 264: "0", 265: "1"}
    assert groups == [(267, 269, [[(269, "0")], [(269, "1")]]), (146, 55, [[(55, "1")]])]


def test_unsubscribe_repeats_the_id_with_263_2() -> None:
    _, body, _ = market_data_request("spot-1-1", 1, depth=False, subscribe=False)
    assert dict(body)[263] == "2"
    assert dict(body)[264] == "1"
    assert dict(body)[262] == "spot-1-1"

"""The simulator's FIX front and stop-limits: cTrader FIX has no stop-limit, so a D with OrdType 4 is refused
as before, while a stop-limit placed over the Open API is still reported to the account's FIX sessions, as
FIX 4.4's StopLimit (OrdType 4, which the dictionary knows) with its limit (44) and stop (99)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fixadapter.connectors.fix import tags as t
from fixadapter.connectors.fix.wire import Fields
from fixadapter.sim.prices import DEFAULT_SYMBOLS, RandomWalk
from fixadapter.sim.trade_server import BadRequest, execution_report, place_request
from fixadapter.sim.venue import OrderKind, PlaceRequest, Side, Venue

EURUSD = 1
T0 = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)


def test_a_new_order_single_with_ord_type_stop_limit_is_refused():
    fields = Fields(
        [(t.CL_ORD_ID, "c1"), (t.SYMBOL, "1"), (t.SIDE, "1"), (t.ORDER_QTY, "1000"), (t.ORD_TYPE, "4")]
    )

    with pytest.raises(BadRequest, match="OrdType 4 is not supported"):
        place_request(fields)


def test_an_open_api_stop_limit_is_reported_on_fix_as_ord_type_4_with_its_limit_and_stop():
    prices = RandomWalk(DEFAULT_SYMBOLS, seed=1)
    prices.set_quote(EURUSD, Decimal("1.08000"), Decimal("1.08010"))
    venue = Venue(prices)
    request = PlaceRequest(
        "sl", EURUSD, Side.BUY, OrderKind.STOP_LIMIT, Decimal(1000), Decimal("1.08110"), Decimal("1.08100")
    )
    (accepted,) = venue.place(request, T0)

    report = dict(execution_report(accepted))

    assert (report[t.ORD_TYPE], report[t.PRICE], report[t.STOP_PX]) == ("4", "1.0811", "1.081")
    venue.close()

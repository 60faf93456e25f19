"""The FIX connector's questions: answers are gathered here and kept from the engine's live events."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from fixadapter.connectors.base import RequestAlreadyOpen
from fixadapter.connectors.fix.queries import FixQueries, PendingRequests
from fixadapter.errors import SessionNotReady, VenueRefused
from fixadapter.model.enums import Channel, ExecKind, OrderStatus, SessionState, VenueRequest
from fixadapter.model.reconciliation import OrderStatusReport, OrderUnknown
from fixadapter.model.reports import BusinessReject, ConnectionStatus, PositionReport, RequestRefused

from .conftest import make_order, make_report


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_request_key_already_open_is_refused_and_the_open_one_keeps_its_answer():
    async def scenario() -> None:
        pending = PendingRequests()
        first = pending.open("status:ord-1")
        with pytest.raises(RequestAlreadyOpen, match="status:ord-1"):
            pending.open("status:ord-1")
        assert pending.get("status:ord-1") is first  # not replaced by the refused second
        first.add("answer", 1)
        assert await first.future == ["answer"]
        await settle()
        assert "status:ord-1" not in pending
        again = pending.open("status:ord-1")  # answered: the key is free for the next question
        assert pending.get("status:ord-1") is again

    asyncio.run(scenario())


def test_a_second_status_query_for_an_order_is_refused_while_the_first_waits_and_the_first_gets_the_answer():
    async def scenario() -> None:
        queries = FixQueries()
        sent: list[str] = []
        order = make_order(order_id="101", status=OrderStatus.NEW)
        first = asyncio.create_task(queries.order_status(order, lambda: sent.append("H")))
        await settle()
        with pytest.raises(RequestAlreadyOpen):
            await queries.order_status(order, lambda: sent.append("H again"))
        assert sent == ["H"]  # the refused question sent nothing
        ack_like = make_report(kind=ExecKind.ACCEPTED, status=OrderStatus.NEW)
        assert queries.take(ack_like)
        answer = await first
        assert isinstance(answer, OrderStatusReport)
        assert answer.report.kind is ExecKind.STATUS  # cTrader's H answer looks like an acknowledgement
        assert not queries.take(make_report(dedupe_key="later"))  # no question open: a live event

    asyncio.run(scenario())


def test_a_status_query_the_venue_rejects_answers_that_it_does_not_know_the_order_in_its_words():
    async def scenario() -> None:
        queries = FixQueries()
        asked = asyncio.create_task(queries.order_status(make_order(), lambda: None))
        await settle()
        assert queries.take(BusinessReject(ref_id="ord-1", reason=0, text="ORDER_NOT_FOUND: no such order"))
        answer = await asked
        assert answer == OrderUnknown(
            cl_ord_id="ord-1", text="ORDER_NOT_FOUND: no such order", arrived=answer.arrived
        )

    asyncio.run(scenario())


def test_positions_complete_at_the_announced_total_and_a_refusal_fails_the_question_with_the_venues_words():
    async def scenario() -> None:
        queries = FixQueries()
        asked = asyncio.create_task(queries.positions("P-1", lambda: None))
        await settle()
        for position_id in ("7", "8"):
            report = PositionReport(
                request_id="P-1",
                position_id=position_id,
                symbol_id=1,
                long_qty=Decimal(1000),
                total_reports=2,
            )
            assert queries.take(report)
        answer = await asked
        assert [p.position_id for p in answer.positions] == ["7", "8"]

        refused = asyncio.create_task(queries.mass_status("M-1", lambda: None))
        await settle()
        assert queries.take(
            RequestRefused(request=VenueRequest.MASS_STATUS, request_id="M-1", text="not now")
        )
        with pytest.raises(VenueRefused, match="not now"):
            await refused

    asyncio.run(scenario())


def test_a_trade_logout_fails_every_open_question_and_is_still_a_live_event():
    async def scenario() -> None:
        queries = FixQueries()
        asked = asyncio.create_task(queries.instruments("S-1", lambda: None))
        await settle()
        logout = ConnectionStatus(
            connector="fix", channel=Channel.TRADING, state=SessionState.LOGGED_OUT, text="bye"
        )
        assert not queries.take(logout)
        with pytest.raises(SessionNotReady, match="TRADE logged out: bye"):
            await asked

    asyncio.run(scenario())

"""SecurityList (y) answers, shared by both simulated ports (cTrader answers x on either)."""

from __future__ import annotations

from collections.abc import Sequence

from fixadapter.connectors.fix import tags as t
from fixadapter.connectors.fix.wire import Fields
from fixadapter.sim.acceptor import Pair, RepeatingGroup
from fixadapter.sim.prices import SymbolSpec


def security_list(fields: Fields, symbols: Sequence[SymbolSpec]) -> tuple[list[Pair], list[RepeatingGroup]]:
    request_id = fields.require(t.SECURITY_REQ_ID)
    # cTrader's SecurityResponseID really is spelt "responce:<SecurityReqID>".
    body: list[Pair] = [(t.SECURITY_REQ_ID, request_id), (t.SECURITY_RESPONSE_ID, f"responce:{request_id}")]
    if fields.get(t.SECURITY_LIST_REQUEST_TYPE) != "0":
        return [*body, (t.SECURITY_REQUEST_RESULT, "1")], []
    wanted = fields.get(t.SYMBOL)
    chosen = [s for s in symbols if wanted is None or str(s.symbol_id) == wanted]
    if not chosen:
        return [*body, (t.SECURITY_REQUEST_RESULT, "2")], []
    entries = [
        [(t.SYMBOL, str(s.symbol_id)), (t.SYMBOL_NAME, s.name), (t.SYMBOL_DIGITS, str(s.digits))]
        for s in chosen
    ]
    return [*body, (t.SECURITY_REQUEST_RESULT, "0")], [(t.NO_RELATED_SYM, t.SYMBOL, entries)]

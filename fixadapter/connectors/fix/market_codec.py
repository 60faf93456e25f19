"""cTrader QUOTE messages <-> normalized market data. Pure: no QuickFIX, no I/O.

This is the hot path of the QUOTE session (thousands of X per second), so W, X and Y are read in one
pass over the raw text instead of through `Fields`: entries start at their delimiter tag (269 in W,
279 in X), and every entry carries its own symbol in X (cTrader routes by 55, not by MDReqID).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from fixadapter.connectors.fix import tags as t
from fixadapter.connectors.fix.wire import SOH, Pair, WireError, parse_utc
from fixadapter.model.market import (
    BookEntry,
    BookSide,
    EntryChange,
    FullRefresh,
    IncrementalRefresh,
    MarketMessage,
    RequestRejected,
)

RepeatingGroup = tuple[int, int, list[list[Pair]]]  # count tag, delimiter tag, entries
MarketRequest = tuple[str, list[Pair], list[RepeatingGroup]]
MARKET_MSG_TYPES = frozenset({"W", "X", "Y"})

_SIDES = {"0": BookSide.BID, "1": BookSide.ASK}
_NEW, _DELETE = "0", "2"


def market_data_request(
    md_req_id: str, symbol_id: int, *, depth: bool, subscribe: bool = True
) -> MarketRequest:
    """A V for one symbol: 264=0 depth or 1 spot; unsubscribe repeats the subscription's MDReqID."""
    body: list[Pair] = [
        (t.MD_REQ_ID, md_req_id),
        (t.SUBSCRIPTION_REQUEST_TYPE, "1" if subscribe else "2"),
        (t.MARKET_DEPTH, "0" if depth else "1"),
        (t.MD_UPDATE_TYPE, "1"),
    ]
    groups: list[RepeatingGroup] = [
        (t.NO_MD_ENTRY_TYPES, t.MD_ENTRY_TYPE, [[(t.MD_ENTRY_TYPE, "0")], [(t.MD_ENTRY_TYPE, "1")]]),
        (t.NO_RELATED_SYM, t.SYMBOL, [[(t.SYMBOL, str(symbol_id))]]),
    ]
    return "V", body, groups


def _decimal(value: str, tag: int) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise WireError(f"tag {tag}: not a number: {value!r}") from None
    if not number.is_finite():
        raise WireError(f"tag {tag}: not a finite number: {value!r}")
    return number


def _side(value: str) -> BookSide:
    side = _SIDES.get(value)
    if side is None:
        raise WireError(f"MDEntryType {value!r} is neither 0 (bid) nor 1 (offer)")
    return side


def _pairs(raw: str) -> list[tuple[int, str]]:
    pairs = []
    for chunk in raw.split(SOH):
        if chunk:
            tag, _, value = chunk.partition("=")
            try:
                pairs.append((int(tag), value))
            except ValueError:
                raise WireError(f"not a tag=value field: {chunk[:40]!r}") from None
    return pairs


def _count(announced: str | None, found: int, msg_type: str) -> None:
    if announced is None or not announced.isdigit() or int(announced) != found:
        raise WireError(f"{msg_type}: NoMDEntries {announced!r} but {found} entries")


def decode_market_data(raw: str) -> MarketMessage:
    """One W, X or Y (raw text with SOH separators) -> its normalized form; WireError if unreadable."""
    pairs = _pairs(raw)
    msg_type = next((value for tag, value in pairs if tag == t.MSG_TYPE), None)
    if msg_type == "X":
        return _incremental(pairs)
    if msg_type == "W":
        return _full(pairs)
    if msg_type == "Y":
        return _reject(pairs)
    raise WireError(f"not a market data message: 35={msg_type}")


def _sending_time(pairs: list[tuple[int, str]]) -> datetime:
    """cTrader puts no time on market data entries: the header's SendingTime is the quote time."""
    for tag, value in pairs:
        if tag == t.SENDING_TIME:
            parsed = parse_utc(value)
            if parsed is not None:
                return parsed
    raise WireError("required tag 52 (SendingTime) is missing")


def _full(pairs: list[tuple[int, str]]) -> FullRefresh:
    symbol: str | None = None
    md_req_id: str | None = None
    announced: str | None = None
    raw_entries: list[dict[int, str]] = []
    for tag, value in pairs:
        if tag == t.MD_ENTRY_TYPE:
            raw_entries.append({tag: value})
        elif raw_entries and tag in (t.MD_ENTRY_PX, t.MD_ENTRY_SIZE, t.MD_ENTRY_ID, 299):
            raw_entries[-1][tag] = value
        elif tag == t.SYMBOL:
            symbol = value
        elif tag == t.MD_REQ_ID:
            md_req_id = value
        elif tag == t.NO_MD_ENTRIES:
            announced = value
    if symbol is None or not symbol.isdigit():
        raise WireError(f"W: Symbol must be a numeric id, got {symbol!r}")
    _count(announced, len(raw_entries), "W")
    entries = []
    for entry in raw_entries:
        price = entry.get(t.MD_ENTRY_PX)
        if price is None:
            raise WireError("W: an entry has no MDEntryPx (270)")
        size = entry.get(t.MD_ENTRY_SIZE)
        entries.append(
            BookEntry(
                entry.get(t.MD_ENTRY_ID),
                _side(entry[t.MD_ENTRY_TYPE]),
                _decimal(price, t.MD_ENTRY_PX),
                None if size is None else _decimal(size, t.MD_ENTRY_SIZE),
            )
        )
    return FullRefresh(int(symbol), _sending_time(pairs), tuple(entries), md_req_id)


def _incremental(pairs: list[tuple[int, str]]) -> IncrementalRefresh:
    announced: str | None = None
    raw_entries: list[dict[int, str]] = []
    for tag, value in pairs:
        if tag == t.MD_UPDATE_ACTION:
            raw_entries.append({tag: value})
        elif raw_entries and tag in (
            t.MD_ENTRY_TYPE,
            t.MD_ENTRY_ID,
            t.SYMBOL,
            t.MD_ENTRY_PX,
            t.MD_ENTRY_SIZE,
        ):
            raw_entries[-1][tag] = value
        elif tag == t.NO_MD_ENTRIES:
            announced = value
    _count(announced, len(raw_entries), "X")
    return IncrementalRefresh(_sending_time(pairs), tuple(_change(entry) for entry in raw_entries))


def _change(entry: dict[int, str]) -> EntryChange:
    entry_id = entry.get(t.MD_ENTRY_ID)
    symbol = entry.get(t.SYMBOL)
    if not entry_id:
        raise WireError("X: an entry has no MDEntryID (278)")
    if symbol is None or not symbol.isdigit():
        raise WireError(f"X: entry {entry_id} has no numeric Symbol (55): {symbol!r}")
    action = entry[t.MD_UPDATE_ACTION]
    if action == _DELETE:
        return EntryChange(int(symbol), entry_id, True)
    if action != _NEW:
        raise WireError(f"X: MDUpdateAction {action!r} (cTrader sends only 0 New and 2 Delete)")
    side, price, size = entry.get(t.MD_ENTRY_TYPE), entry.get(t.MD_ENTRY_PX), entry.get(t.MD_ENTRY_SIZE)
    if side is None or price is None or size is None:
        raise WireError(f"X: New entry {entry_id} lacks MDEntryType, MDEntryPx or MDEntrySize")
    return EntryChange(
        int(symbol),
        entry_id,
        False,
        _side(side),
        _decimal(price, t.MD_ENTRY_PX),
        _decimal(size, t.MD_ENTRY_SIZE),
    )


def _reject(pairs: list[tuple[int, str]]) -> RequestRejected:
    fields = dict(pairs)
    md_req_id = fields.get(t.MD_REQ_ID)
    if not md_req_id:
        raise WireError("Y: required tag 262 (MDReqID) is missing")
    reason = fields.get(t.MD_REQ_REJ_REASON)
    return RequestRejected(
        md_req_id, int(reason) if reason and reason.isdigit() else None, fields.get(t.TEXT)
    )

"""cTrader's two FIX sessions per account, told apart by SessionQualifier here and SenderSubID on the wire."""

from __future__ import annotations

from enum import StrEnum

from fixadapter.model.enums import Channel


class SessionKind(StrEnum):
    QUOTE = "QUOTE"
    TRADE = "TRADE"

    @property
    def channel(self) -> Channel:
        return Channel.TRADING if self is SessionKind.TRADE else Channel.MARKET_DATA

"""A simple balance and margin rule, so the Open API front can refuse an order with NOT_ENOUGH_MONEY.

Every account has the configured balance in USD and leverage 1:N; an open position uses
notional / leverage of margin, its notional converted to USD crudely (`usd.notional_usd`).

The `Ledger` books each closing deal's profit into its account's balance, converted to USD as crudely (a
profit in JPY is divided by USDJPY), and every deal's commission (the venue's `CommissionRule`, already in
USD), so ProtoOATrader.balance and a closing deal's balance move as an account trades. No swap: the
simulator has no rollover.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from fixadapter.sim.openapi.convert import gross_profit
from fixadapter.sim.prices import RandomWalk, SymbolSpec
from fixadapter.sim.records import VenueDeal, VenuePosition
from fixadapter.sim.usd import USD, notional_usd


@dataclass(frozen=True)
class MarginRule:
    balance: Decimal
    leverage: int
    prices: RandomWalk

    def notional_usd(self, spec: SymbolSpec, volume: Decimal, price: Decimal) -> Decimal:
        return notional_usd(self.prices, spec, volume, price)

    def margin(self, spec: SymbolSpec, volume: Decimal, price: Decimal) -> Decimal:
        return self.notional_usd(spec, volume, price) / self.leverage

    def used_margin(self, positions: list[VenuePosition]) -> Decimal:
        used = Decimal(0)
        for position in positions:
            spec = self.prices.spec(position.symbol_id)
            if spec is not None:
                used += self.margin(spec, position.volume, position.entry_price)
        return used

    def free_margin(self, balance: Decimal, positions: list[VenuePosition]) -> Decimal:
        return balance - self.used_margin(positions)

    def profit_usd(self, deal: VenueDeal) -> Decimal:
        """A closing deal's gross profit in USD (0 for a deal that closes nothing)."""
        profit = gross_profit(deal)
        spec = self.prices.spec(deal.symbol_id)
        quote_currency = spec.name[3:] if spec is not None and len(spec.name) == 6 else USD
        if not profit or quote_currency == USD:
            return profit
        usd_based = next((s for s in self.prices.symbols() if s.name == USD + quote_currency), None)
        if usd_based is None:
            return profit
        quote = self.prices.quote(usd_based.symbol_id)
        return profit * 2 / (quote.bid + quote.ask)


class Ledger:
    """Each account's balance: the configured deposit plus the USD profit and the commission of its deals.

    Seeded from the venues' deals at start, then kept by `book`, which the Open API front calls for every
    deal as it passes (under the trade lock); read from any thread."""

    def __init__(self, rule: MarginRule, deals: Mapping[int, Iterable[VenueDeal]]) -> None:
        self.rule = rule
        self._lock = threading.Lock()
        self._realised = {
            ctid: sum((self.booked(deal) for deal in account_deals), Decimal(0))
            for ctid, account_deals in deals.items()
        }

    def booked(self, deal: VenueDeal) -> Decimal:
        """What the deal changes the balance by: its profit (closing deals) plus its (negative) commission."""
        return self.rule.profit_usd(deal) + deal.commission

    def balance(self, ctid: int) -> Decimal:
        with self._lock:
            return self.rule.balance + self._realised.get(ctid, Decimal(0))

    def book(self, ctid: int, deal: VenueDeal) -> Decimal:
        """Book the deal's profit and commission; the balance after it."""
        change = self.booked(deal)
        with self._lock:
            self._realised[ctid] = self._realised.get(ctid, Decimal(0)) + change
            return self.rule.balance + self._realised[ctid]

    def history(self, deals: Iterable[VenueDeal]) -> dict[int, Decimal]:
        """The balance after each of an account's deals (all of them, oldest first), by deal id."""
        balance = self.rule.balance
        after: dict[int, Decimal] = {}
        for deal in deals:
            balance += self.booked(deal)
            after[deal.deal_id] = balance
        return after

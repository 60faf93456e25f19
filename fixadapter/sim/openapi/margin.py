"""A simple balance and margin rule, so the Open API front can refuse an order with NOT_ENOUGH_MONEY.

Every account has the configured balance in USD and leverage 1:N; an open position uses
notional / leverage of margin, its notional converted to USD crudely: a symbol quoted in USD (EURUSD,
XAUUSD, US500) is volume x price, one based on USD (USDJPY) is the volume itself, any other (EURJPY) is
volume x the price of its base in USD when the catalogue has it (EURUSD), else volume x price. Realised
profit is not booked into the balance: the rule only has to make "too big an order" refusable.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from fixadapter.sim.prices import RandomWalk, SymbolSpec
from fixadapter.sim.records import VenuePosition

USD = "USD"


@dataclass(frozen=True)
class MarginRule:
    balance: Decimal
    leverage: int
    prices: RandomWalk

    def notional_usd(self, spec: SymbolSpec, volume: Decimal, price: Decimal) -> Decimal:
        name = spec.name
        if name.endswith(USD):
            return volume * price
        if name.startswith(USD):
            return volume
        base = next((s for s in self.prices.symbols() if s.name == name[:3] + USD), None)
        if base is not None:
            quote = self.prices.quote(base.symbol_id)
            return volume * (quote.bid + quote.ask) / 2
        return volume * price

    def margin(self, spec: SymbolSpec, volume: Decimal, price: Decimal) -> Decimal:
        return self.notional_usd(spec, volume, price) / self.leverage

    def used_margin(self, positions: list[VenuePosition]) -> Decimal:
        used = Decimal(0)
        for position in positions:
            spec = self.prices.spec(position.symbol_id)
            if spec is not None:
                used += self.margin(spec, position.volume, position.entry_price)
        return used

    def free_margin(self, positions: list[VenuePosition]) -> Decimal:
        return self.balance - self.used_margin(positions)

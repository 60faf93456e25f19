"""What a fill costs on the simulated venue: a flat rate per million USD of notional, per side.

cTrader brokers commonly charge FX as "USD N per million USD traded" (ProtoOASymbol's default
commissionType USD_PER_MILLION_USD), on opening and on closing alike. The simulator applies that one rule
to every symbol: the fill's notional converted to USD (`usd.notional_usd`, as the margin rule converts),
times the rate, rounded half-even to the cent because the Open API books money with moneyDigits 2. The
amount is signed as cTrader books it: negative when charged. A rate of 0 charges nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from fixadapter.sim.prices import RandomWalk, SymbolSpec
from fixadapter.sim.usd import notional_usd

MILLION = Decimal(1_000_000)
CENT = Decimal("0.01")
DEFAULT_PER_MILLION = Decimal(30)


@dataclass(frozen=True)
class CommissionRule:
    """`per_million`: USD charged per million USD of notional, on each fill (each side of a round trip)."""

    per_million: Decimal
    prices: RandomWalk

    def __post_init__(self) -> None:
        if not self.per_million.is_finite() or self.per_million < 0:
            raise ValueError(f"commission per million must be zero or positive, was {self.per_million}")

    def charge(self, spec: SymbolSpec, volume: Decimal, price: Decimal) -> Decimal:
        """The commission of filling `volume` units at `price`, in USD, negative (or zero)."""
        if not self.per_million:
            return Decimal(0)
        cost = notional_usd(self.prices, spec, volume, price) * self.per_million / MILLION
        return -cost.quantize(CENT, rounding=ROUND_HALF_EVEN)

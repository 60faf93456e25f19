"""The `risk` section of the YAML: limits per symbol and per strategy, validated at load.

No section (or an empty one) means no limits, so an adapter that does not configure risk behaves as before.
Names are case-insensitive: symbol keys and `allowed_symbols` are upper-cased, as the venue's catalog is.
A strategy or symbol that is not listed gets `strategy_defaults` / `symbol_defaults`; a listed one inherits
every key it does not set from those defaults (set a key to null to lift an inherited limit).
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

SYMBOL_PATTERN = r"^[A-Za-z0-9._/#\-]{1,32}$"
STRATEGY_PATTERN = r"^[A-Za-z0-9._:\-]{1,50}$"

SymbolName = Annotated[str, Field(pattern=SYMBOL_PATTERN)]
StrategyName = Annotated[str, Field(pattern=STRATEGY_PATTERN)]
PositiveAmount = Annotated[Decimal, Field(gt=0, max_digits=30)]


class _Limits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WithoutQuote(StrEnum):
    """What a rule that needs a price does before the symbol's first (non-stale) quote."""

    REFUSE = "refuse"
    ALLOW = "allow"


class SymbolLimits(_Limits):
    """Limits on one order of a symbol; quantities in units, notional in the quote currency."""

    max_quantity: PositiveAmount | None = None
    max_notional: Annotated[
        Decimal | None,
        Field(gt=0, max_digits=30, description="quantity x limit/stop price (market: the quote's side)"),
    ] = None
    collar_percent: Annotated[
        Decimal | None,
        # Percent rather than pips: it needs no pip size (FIX gives only digits) and means the same for
        # FX, metals and indices. EURUSD at 1.10: 0.5 % is 55 pips.
        Field(gt=0, le=100, max_digits=10, description="furthest a limit/stop price may be from the mid, %"),
    ] = None
    without_quote: WithoutQuote = Field(
        WithoutQuote.REFUSE, description="no quote yet (or a stale one): refuse or allow collar/notional"
    )


def _upper_names(names: tuple[str, ...] | None) -> tuple[str, ...] | None:
    return None if names is None else tuple(name.upper() for name in names)


class StrategyLimits(_Limits):
    """Limits on what one strategy (the id the caller passes, e.g. the label or queue stream) may do."""

    allowed_symbols: Annotated[tuple[SymbolName, ...] | None, AfterValidator(_upper_names)] = Field(
        None, description="absent: every symbol"
    )
    max_open_orders: Annotated[int | None, Field(ge=1)] = None
    max_orders_per_second: Annotated[
        int | None, Field(ge=1, description="new orders and replaces in any sliding 1 s window")
    ] = None


class RiskConfig(_Limits):
    """Pre-trade risk: checked before an order or replace is persisted or sent; cancels are never blocked."""

    max_open_orders: Annotated[int | None, Field(ge=1, description="all strategies together")] = None
    symbol_defaults: SymbolLimits = SymbolLimits()
    symbols: dict[SymbolName, SymbolLimits] = {}
    strategy_defaults: StrategyLimits = StrategyLimits()
    strategies: dict[StrategyName, StrategyLimits] = {}

    @field_validator("symbols")
    @classmethod
    def _upper_symbols(cls, table: dict[str, SymbolLimits]) -> dict[str, SymbolLimits]:
        seen: dict[str, str] = {}
        for key in table:
            if key.upper() in seen:
                raise ValueError(f"{key!r} and {seen[key.upper()]!r} name the same symbol")
            seen[key.upper()] = key
        return {key.upper(): limits for key, limits in table.items()}

    def for_symbol(self, symbol: str) -> SymbolLimits:
        """The limits for `symbol` (upper-case name): its own keys over `symbol_defaults`."""
        own = self.symbols.get(symbol)
        return self.symbol_defaults if own is None else _overlay(self.symbol_defaults, own)

    def for_strategy(self, strategy: str) -> StrategyLimits:
        """The limits for `strategy`: its own keys over `strategy_defaults`."""
        own = self.strategies.get(strategy)
        return self.strategy_defaults if own is None else _overlay(self.strategy_defaults, own)


_L = TypeVar("_L", bound=_Limits)


def _overlay(defaults: _L, own: _L) -> _L:
    return defaults.model_copy(update={name: getattr(own, name) for name in own.model_fields_set})

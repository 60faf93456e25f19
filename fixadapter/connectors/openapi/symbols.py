"""Symbols as the Open API describes them, and the exact conversions between its numbers and ours.

Volumes travel in hundredths of a unit ("1000 means 10.00 units", reference 3.4), and every symbol has
its own minimum, step and maximum (ProtoOASymbol, also in hundredths): the mis-scaled volumes users of
other clients complain about come from assuming 100,000-unit lots or 0.01-lot steps. Here a quantity in
units becomes hundredths only when it is exactly representable and on the symbol's grid; otherwise the
order is refused before it is sent, with the rule it breaks. Prices travel as doubles: they are sent
rounded to the symbol's digits and read back through their shortest decimal form, never through binary
float arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

from fixadapter.model.reports import Instrument
from fixadapter.protocols.openapi.generated import OpenApiModelMessages_pb2 as model

__all__ = [
    "HUNDREDTHS",
    "RELATIVE_SCALE",
    "SymbolSpec",
    "from_double",
    "hundredths",
    "units",
]

HUNDREDTHS = Decimal(100)  # volume wire unit per unit
RELATIVE_SCALE = Decimal(100_000)  # relativeStopLoss / relativeTakeProfit: 1/100000 of a price unit


class VolumeError(ValueError):
    """A quantity the symbol does not accept (off its grid, below its minimum, above its maximum)."""


def units(volume: int) -> Decimal:
    """Hundredths of a unit on the wire -> units."""
    value = Decimal(volume) / HUNDREDTHS
    # 1000, not 1E+3 (normalize alone) nor 1000.00: the figure people write
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def hundredths(quantity: Decimal) -> int:
    """Units -> hundredths, exactly; VolumeError when the quantity has more than two decimals."""
    scaled = quantity * HUNDREDTHS
    if scaled != scaled.to_integral_value():
        raise VolumeError(
            f"quantity {quantity} is finer than a hundredth of a unit, the Open API's volume unit"
        )
    return int(scaled)


def from_double(value: float, digits: int | None = None) -> Decimal:
    """A wire double as the decimal it was meant to be: its shortest repr, rounded to `digits` if given."""
    result = Decimal(repr(value))
    if digits is not None:
        result = result.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN)
    return result


@dataclass(frozen=True)
class SymbolSpec:
    """What the adapter needs of a ProtoOASymbol (+ its ProtoOALightSymbol's name)."""

    symbol_id: int
    name: str
    digits: int
    pip_position: int
    min_volume: int | None  # hundredths of a unit
    step_volume: int | None
    max_volume: int | None
    lot_size: int | None

    @classmethod
    def of(cls, light: model.ProtoOALightSymbol, full: model.ProtoOASymbol) -> SymbolSpec:
        def optional(name: Literal["minVolume", "stepVolume", "maxVolume", "lotSize"]) -> int | None:
            return int(getattr(full, name)) if full.HasField(name) else None

        return cls(
            symbol_id=full.symbolId,
            name=light.symbolName or str(full.symbolId),
            digits=full.digits,
            pip_position=full.pipPosition,
            min_volume=optional("minVolume"),
            step_volume=optional("stepVolume"),
            max_volume=optional("maxVolume"),
            lot_size=optional("lotSize"),
        )

    @property
    def instrument(self) -> Instrument:
        return Instrument(symbol_id=self.symbol_id, name=self.name, digits=self.digits)

    @property
    def point(self) -> Decimal:
        return Decimal(1).scaleb(-self.digits)

    def volume(self, quantity: Decimal) -> int:
        """Units -> the wire volume, checked against the symbol's grid (VolumeError names the rule)."""
        volume = hundredths(quantity)
        if self.min_volume is not None and volume < self.min_volume:
            raise VolumeError(
                f"{self.name}: quantity {quantity} is below the minimum of {units(self.min_volume)} units"
            )
        if self.max_volume is not None and volume > self.max_volume:
            raise VolumeError(
                f"{self.name}: quantity {quantity} is above the maximum of {units(self.max_volume)} units"
            )
        if self.step_volume and volume % self.step_volume:
            step = units(self.step_volume)
            raise VolumeError(
                f"{self.name}: quantity {quantity} is not a multiple of the step of {step} units"
            )
        return volume

    def price(self, value: Decimal, what: str = "price") -> float:
        """A price on the wire: on the symbol's grid (VolumeError-like ValueError naming it when not)."""
        if value != value.quantize(self.point):
            raise ValueError(f"{self.name}: {what} {value} has more than the symbol's {self.digits} digits")
        return float(value)

    def relative(self, distance: Decimal, what: str) -> int:
        """A price distance -> the wire's 1/100000 units, exactly."""
        scaled = distance * RELATIVE_SCALE
        if scaled != scaled.to_integral_value() or scaled <= 0:
            raise ValueError(f"{self.name}: {what} {distance} must be positive with at most 5 decimals")
        return int(scaled)

    def points(self, distance: Decimal) -> int:
        """A price distance in the symbol's points (slippageInPoints)."""
        scaled = abs(distance) / self.point
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{self.name}: distance {distance} is not a whole number of points")
        return int(scaled)

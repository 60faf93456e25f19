"""The venue's instrument list: names users type resolve to cTrader's numeric symbol ids."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from fixadapter.errors import UnknownSymbol
from fixadapter.model.reports import Instrument


class Catalog:
    def __init__(self, instruments: Iterable[Instrument] = ()) -> None:
        self._by_id: dict[int, Instrument] = {}
        self._by_name: dict[str, Instrument] = {}
        self.replace(instruments)

    def replace(self, instruments: Iterable[Instrument]) -> None:
        self._by_id = {i.symbol_id: i for i in instruments}
        self._by_name = {i.name.upper(): i for i in self._by_id.values()}

    def __len__(self) -> int:
        return len(self._by_id)

    def all(self) -> list[Instrument]:
        return sorted(self._by_id.values(), key=lambda i: i.name)

    def by_id(self, symbol_id: int) -> Instrument | None:
        return self._by_id.get(symbol_id)

    def resolve(self, symbol: str) -> Instrument:
        """'EURUSD' or '1' -> the instrument; an unknown name lists the closest names."""
        text = symbol.strip()
        found = (
            self._by_id.get(int(text))
            if text.isascii() and text.isdigit()
            else self._by_name.get(text.upper())
        )
        if found is not None:
            return found
        if not self._by_id:
            raise UnknownSymbol(f"unknown symbol {symbol!r}: the instrument list has not been received yet")
        close = difflib.get_close_matches(text.upper(), list(self._by_name), n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; no similar names"
        raise UnknownSymbol(f"unknown symbol {symbol!r} at this broker{hint}")

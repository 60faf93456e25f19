"""The order engine's side of pre-trade risk: who the request is for, the live open-order counts, the
symbol's last quote, and the clock. The rules themselves live in fixadapter.risk.

`check` and `track` run on the event loop with no await between a check and the order being counted,
so two concurrent submits cannot both squeeze under a max-open-orders limit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from fixadapter.engine.instruments import Catalog
from fixadapter.errors import RiskRejected, UnknownSymbol
from fixadapter.metrics import Metrics
from fixadapter.model.market import Book, Quote
from fixadapter.model.orders import Order
from fixadapter.model.requests import NewOrder, ReplaceOrder
from fixadapter.risk.kill_switch import KillSwitch
from fixadapter.risk.limits import RiskConfig
from fixadapter.risk.open_orders import OpenOrderTracker, strategy_of
from fixadapter.risk.rules import RiskEngine

log = logging.getLogger("fixadapter.risk")

QuoteSource = Callable[[str], Quote | Book | None]


def _no_quotes(_symbol: str) -> None:
    return None


class PreTrade:
    def __init__(
        self,
        config: RiskConfig,
        catalog: Catalog,
        metrics: Metrics,
        quotes: QuoteSource = _no_quotes,
    ) -> None:
        """`quotes`: the latest quote or book per symbol name (the collar's reference)."""
        self._catalog = catalog
        self._metrics = metrics
        self._quotes = quotes
        self.open_orders = OpenOrderTracker()
        self.rules = RiskEngine(config, symbol_name=self._name)

    @property
    def kill_switch(self) -> KillSwitch:
        return self.rules.kill_switch

    def _name(self, symbol: str) -> str:
        try:
            return self._catalog.resolve(symbol).name.upper()
        except UnknownSymbol:
            return symbol.upper()

    def check(self, request: NewOrder | ReplaceOrder, original: Order | None = None) -> None:
        """Raise RiskRejected (logged and counted by rule) if the request breaks a limit."""
        if isinstance(request, NewOrder):
            strategy, symbol = strategy_of(request), request.symbol
        elif original is None:
            raise ValueError("a replace is checked against the order it amends")
        else:
            strategy, symbol = strategy_of(original), original.symbol
        try:
            self.rules.check(
                request,
                strategy=strategy,
                open_orders=self.open_orders,
                last_quote=self._quote(symbol),
                now=time.monotonic(),
                original=original,
            )
        except RiskRejected as refused:
            self._metrics.order_rejects.labels("risk", refused.rule).inc()
            log.warning("risk refused %s for strategy %r: %s", type(request).__name__, strategy, refused)
            raise

    def _quote(self, symbol: str) -> Quote | Book | None:
        try:
            return self._quotes(self._name(symbol))
        except Exception:  # a market-data hiccup must not stop trading: the rule treats it as no quote
            log.exception("reading the last quote of %s for the price collar", symbol)
            return None

    def track(self, order: Order) -> None:
        self.open_orders.update(order)

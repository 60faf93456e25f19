"""Pre-trade risk: every new order and replace is checked here before it is persisted or sent.

A refusal raises `RiskRejected` naming the rule and the values compared, e.g.
`max_quantity: 2000000 > 1000000 for EURUSD`. Rules run in the order of `Rule`; the first that fails
decides. Every check is O(1): limits are looked up by name, open orders are counted by the caller
(`OpenOrderCounts`), and the rate limit is a bounded sliding window (`rate.SlidingWindow`). Time is
injected (`now`, monotonic seconds), so checks are deterministic.

Cancels are never checked: refusing one could only keep risk on. A replace is checked for its new
terms (quantity, price; an omitted price keeps the order's) and counts towards the orders-per-second
limit, since it is a message to the venue too; it does not count as an extra open order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from fixadapter.errors import RiskRejected
from fixadapter.model.enums import OrderType, Side
from fixadapter.model.market import Book, Quote
from fixadapter.model.orders import Order
from fixadapter.model.requests import NewOrder, ReplaceOrder
from fixadapter.risk.kill_switch import KillSwitch
from fixadapter.risk.limits import RiskConfig, StrategyLimits, SymbolLimits, WithoutQuote
from fixadapter.risk.open_orders import OpenOrderCounts
from fixadapter.risk.rate import SlidingWindow

RATE_WINDOW_SECONDS = 1.0
HUNDRED = Decimal(100)
TWO = Decimal(2)


class Rule(StrEnum):
    """The reasons a risk reject carries, in the order they are checked."""

    KILL_SWITCH = "kill_switch"
    ALLOWED_SYMBOLS = "allowed_symbols"
    MAX_QUANTITY = "max_quantity"
    MAX_NOTIONAL = "max_notional"
    PRICE_COLLAR = "price_collar"
    MAX_OPEN_ORDERS = "max_open_orders"
    MAX_OPEN_ORDERS_PER_STRATEGY = "max_open_orders_per_strategy"
    MAX_ORDERS_PER_SECOND = "max_orders_per_second"


@dataclass(frozen=True)
class _Terms:
    """What is checked, the same for a new order and a replace."""

    action: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    price: Decimal | None  # the limit or stop price; None for a market order


@dataclass(frozen=True)
class _StrategyRules:
    allowed: frozenset[str] | None
    max_open_orders: int | None
    max_orders_per_second: int | None

    @classmethod
    def of(cls, limits: StrategyLimits) -> _StrategyRules:
        allowed = None if limits.allowed_symbols is None else frozenset(limits.allowed_symbols)
        return cls(allowed, limits.max_open_orders, limits.max_orders_per_second)


class RiskEngine:
    """Checks requests against a `RiskConfig`; holds the kill switch and the per-strategy rate windows.

    `symbol_name` turns a request's symbol into the name the limits are keyed by; the order engine passes
    `lambda s: catalog.resolve(s).name` so that '1' and 'eurusd' meet EURUSD's limits. The default only
    upper-cases, which is enough when requests use names.
    """

    def __init__(
        self,
        config: RiskConfig | None = None,
        *,
        kill_switch: KillSwitch | None = None,
        symbol_name: Callable[[str], str] = str.upper,
    ) -> None:
        self.config = config or RiskConfig()
        self.kill_switch = kill_switch or KillSwitch()
        self._symbol_name = symbol_name
        self._symbols = {name: self.config.for_symbol(name) for name in self.config.symbols}
        self._strategies = {
            name: _StrategyRules.of(self.config.for_strategy(name)) for name in self.config.strategies
        }
        self._default_strategy = _StrategyRules.of(self.config.strategy_defaults)
        self._windows: dict[str, SlidingWindow] = {}
        self._lock = threading.Lock()

    def check(
        self,
        request: NewOrder | ReplaceOrder,
        *,
        strategy: str,
        open_orders: OpenOrderCounts,
        last_quote: Quote | Book | None,
        now: float,
        original: Order | None = None,
    ) -> None:
        """Raise RiskRejected if `request` breaks a rule; otherwise return and count it towards the rate.

        `original` is the order a ReplaceOrder amends (required for one); `last_quote` is the symbol's
        latest quote or book (a stale one counts as none); `now` is a monotonic clock in seconds.
        """
        state = self.kill_switch.state()
        if state.engaged:
            raise RiskRejected(
                Rule.KILL_SWITCH,
                f"engaged by {state.engaged_by} since {state.since.isoformat() if state.since else '?'}: "
                f"{state.reason}; no new orders or replaces until it is released",
                {"engaged_by": state.engaged_by, "reason": state.reason, "since": state.since},
            )
        terms = self._terms(request, original)
        rules = self._strategies.get(strategy, self._default_strategy)
        limits = self._symbols.get(terms.symbol, self.config.symbol_defaults)
        _check_allowed(terms, strategy, rules)
        _check_quantity(terms, limits)
        if limits.max_notional is not None or limits.collar_percent is not None:
            _check_prices(terms, limits, _usable(last_quote, terms.symbol))
        if isinstance(request, NewOrder):
            self._check_open_orders(strategy, rules, open_orders)
        if rules.max_orders_per_second is not None:
            self._check_rate(strategy, rules.max_orders_per_second, now)

    def _terms(self, request: NewOrder | ReplaceOrder, original: Order | None) -> _Terms:
        if isinstance(request, NewOrder):
            return _Terms(
                action="order",
                symbol=self._symbol_name(request.symbol),
                side=request.side,
                order_type=request.order_type,
                quantity=request.quantity,
                price=request.price if request.order_type is OrderType.LIMIT else request.stop_price,
            )
        if original is None or original.cl_ord_id != request.cl_ord_id:
            raise ValueError(f"checking a replace of {request.cl_ord_id} needs that order as `original`")
        # As the venue reads a G: an omitted price keeps the order's, a stop may be given as price.
        if original.order_type is OrderType.LIMIT:
            price = request.price or original.price
        else:
            price = request.stop_price or request.price or original.stop_price
        return _Terms(
            action="replace",
            symbol=original.symbol.upper(),
            side=original.side,
            order_type=original.order_type,
            quantity=request.quantity,
            price=None if original.order_type is OrderType.MARKET else price,
        )

    def _check_open_orders(self, strategy: str, rules: _StrategyRules, open_orders: OpenOrderCounts) -> None:
        cap = self.config.max_open_orders
        if cap is not None and open_orders.total + 1 > cap:
            raise RiskRejected(
                Rule.MAX_OPEN_ORDERS,
                f"{open_orders.total + 1} > {cap} open orders (this one included)",
                {"open": open_orders.total, "limit": cap},
            )
        cap = rules.max_open_orders
        if cap is not None and (count := open_orders.for_strategy(strategy)) + 1 > cap:
            raise RiskRejected(
                Rule.MAX_OPEN_ORDERS_PER_STRATEGY,
                f"{count + 1} > {cap} open orders for strategy {strategy!r} (this one included)",
                {"open": count, "limit": cap, "strategy": strategy},
            )

    def _check_rate(self, strategy: str, limit: int, now: float) -> None:
        with self._lock:
            window = self._windows.get(strategy)
            if window is None:
                window = self._windows[strategy] = SlidingWindow(limit, RATE_WINDOW_SECONDS)
            if not window.allows(now):
                raise RiskRejected(
                    Rule.MAX_ORDERS_PER_SECOND,
                    f"{limit + 1} > {limit} orders in {RATE_WINDOW_SECONDS:g} s for strategy {strategy!r}",
                    {"limit": limit, "window_seconds": RATE_WINDOW_SECONDS, "strategy": strategy},
                )
            window.record(now)


def _check_allowed(terms: _Terms, strategy: str, rules: _StrategyRules) -> None:
    if rules.allowed is not None and terms.symbol not in rules.allowed:
        allowed = ", ".join(sorted(rules.allowed)) or "none"
        raise RiskRejected(
            Rule.ALLOWED_SYMBOLS,
            f"{terms.symbol} is not allowed for strategy {strategy!r} (allowed: {allowed})",
            {"symbol": terms.symbol, "strategy": strategy, "allowed": sorted(rules.allowed)},
        )


def _check_quantity(terms: _Terms, limits: SymbolLimits) -> None:
    cap = limits.max_quantity
    if cap is not None and terms.quantity > cap:
        raise RiskRejected(
            Rule.MAX_QUANTITY,
            f"{_fmt(terms.quantity)} > {_fmt(cap)} for {terms.symbol}",
            {"quantity": terms.quantity, "limit": cap, "symbol": terms.symbol},
        )


def _check_prices(terms: _Terms, limits: SymbolLimits, quote: Quote | Book | None) -> None:
    if limits.max_notional is not None:
        reference = terms.price if terms.price is not None else _touch(quote, terms.side)
        if reference is None:
            _without_quote(Rule.MAX_NOTIONAL, terms, limits, "to value a market order")
        else:
            _check_notional(terms, limits.max_notional, reference)
    if limits.collar_percent is not None and terms.price is not None:
        mid = _mid(quote)
        if mid is None:
            _without_quote(Rule.PRICE_COLLAR, terms, limits, f"to collar the {terms.order_type} price")
        else:
            _check_collar(terms, terms.price, limits.collar_percent, mid)


def _check_notional(terms: _Terms, cap: Decimal, reference: Decimal) -> None:
    notional = terms.quantity * reference
    if notional > cap:
        raise RiskRejected(
            Rule.MAX_NOTIONAL,
            f"{_fmt(terms.quantity)} x {_fmt(reference)} = {_fmt(notional)} > {_fmt(cap)} for {terms.symbol}",
            {"notional": notional, "limit": cap, "quantity": terms.quantity, "price": reference},
        )


def _check_collar(terms: _Terms, price: Decimal, percent: Decimal, mid: Decimal) -> None:
    # Compared without dividing, so a price exactly on the collar passes whatever the precision.
    if abs(price - mid) * HUNDRED > percent * mid:
        off = (abs(price - mid) * HUNDRED / mid).quantize(Decimal("0.0001"))
        raise RiskRejected(
            Rule.PRICE_COLLAR,
            f"{terms.order_type} price {_fmt(price)} is {_fmt(off)}% from mid {_fmt(mid)} "
            f"> {_fmt(percent)}% for {terms.symbol}",
            {"price": price, "mid": mid, "off_percent": off, "limit_percent": percent},
        )


def _without_quote(rule: Rule, terms: _Terms, limits: SymbolLimits, purpose: str) -> None:
    if limits.without_quote is WithoutQuote.ALLOW:
        return
    raise RiskRejected(
        rule,
        f"no quote for {terms.symbol} yet (or it is stale) {purpose}, and without_quote is refuse",
        {"symbol": terms.symbol, "without_quote": limits.without_quote.value},
    )


def _usable(quote: Quote | Book | None, symbol: str) -> Quote | Book | None:
    if quote is None or quote.stale:
        return None
    if quote.symbol.upper() != symbol:
        raise ValueError(f"the quote passed is for {quote.symbol}, the order for {symbol}")
    return quote


def _sides(quote: Quote | Book | None) -> tuple[Decimal | None, Decimal | None]:
    if quote is None:
        return None, None
    if isinstance(quote, Quote):
        return quote.bid, quote.ask
    bid, ask = quote.best_bid, quote.best_ask
    return (bid.price if bid else None), (ask.price if ask else None)


def _mid(quote: Quote | Book | None) -> Decimal | None:
    if quote is not None and quote.mid is not None:
        return quote.mid
    bid, ask = _sides(quote)
    return None if bid is None or ask is None else (bid + ask) / TWO


def _touch(quote: Quote | Book | None, side: Side) -> Decimal | None:
    """The price a market order would meet: the ask for a buy, the bid for a sell."""
    bid, ask = _sides(quote)
    return ask if side is Side.BUY else bid


def _fmt(value: Decimal) -> str:
    return f"{value.normalize():f}"

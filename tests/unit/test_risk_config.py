"""Specification of the `risk` config section: absent means no limits, YAML keys as documented,
names upper-cased, and every bad key or value refused with its full path."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fixadapter.config import build_config, load_config
from fixadapter.errors import ConfigError
from fixadapter.risk import RiskConfig, StrategyLimits, SymbolLimits, WithoutQuote

ENVIRON = {"FIXADAPTER_ACCOUNT__PASSWORD": "x"}
ACCOUNT = {"host": "127.0.0.1", "sender_comp_id": "demo.broker.1234567", "username": "1234567"}
RISK_YAML = """\
account:
  host: 127.0.0.1
  sender_comp_id: demo.broker.1234567
  username: "1234567"
risk:
  max_open_orders: 200
  symbol_defaults:
    max_quantity: 1000000
  symbols:
    EURUSD:
      max_quantity: 5000000
      max_notional: 6000000
      collar_percent: 0.5
      without_quote: refuse
    xauusd:
      max_quantity: 100
      without_quote: allow
  strategy_defaults:
    max_open_orders: 20
    max_orders_per_second: 5
  strategies:
    momo:
      allowed_symbols: [EURUSD, gbpusd]
      max_orders_per_second: 10
"""


def risk_config(risk: dict[str, Any]) -> RiskConfig:
    return build_config({"account": ACCOUNT, "risk": risk}, ENVIRON).risk


def test_no_risk_section_means_no_limits() -> None:
    risk = build_config({"account": ACCOUNT}, ENVIRON).risk

    assert risk == RiskConfig()
    assert risk.max_open_orders is None and risk.symbols == {} and risk.strategies == {}
    assert risk.for_symbol("EURUSD") == SymbolLimits()
    assert risk.for_strategy("any") == StrategyLimits()


def test_the_risk_section_reads_from_yaml_with_names_upper_cased(tmp_path: Path) -> None:
    path = tmp_path / "fixadapter.yaml"
    path.write_text(RISK_YAML, encoding="utf-8")

    risk = load_config(path, ENVIRON).risk

    assert risk.max_open_orders == 200
    assert sorted(risk.symbols) == ["EURUSD", "XAUUSD"]
    eurusd = risk.for_symbol("EURUSD")
    assert (eurusd.max_quantity, eurusd.max_notional, eurusd.collar_percent) == (
        Decimal(5_000_000), Decimal(6_000_000), Decimal("0.5"),
    )  # fmt: skip
    assert risk.for_symbol("XAUUSD").without_quote is WithoutQuote.ALLOW
    assert risk.for_symbol("GBPUSD").max_quantity == Decimal(1_000_000)
    momo = risk.for_strategy("momo")
    assert (momo.allowed_symbols, momo.max_orders_per_second, momo.max_open_orders) == (
        ("EURUSD", "GBPUSD"),
        10,
        20,
    )
    assert risk.for_strategy("other").allowed_symbols is None


def test_without_quote_defaults_to_refuse() -> None:
    assert (
        risk_config({"symbols": {"EURUSD": {"collar_percent": 1}}}).for_symbol("EURUSD").without_quote
        == "refuse"
    )


def test_risk_limits_can_come_from_the_environment() -> None:
    environ = {**ENVIRON, "FIXADAPTER_RISK__MAX_OPEN_ORDERS": "7"}

    assert build_config({"account": ACCOUNT}, environ).risk.max_open_orders == 7


@pytest.mark.parametrize(
    ("risk", "named"),
    [
        ({"max_open_orders": 0}, "risk.max_open_orders: Input should be greater than or equal to 1"),
        (
            {"symbols": {"EURUSD": {"max_quantity": -5}}},
            "risk.symbols.EURUSD.max_quantity: Input should be greater",
        ),
        ({"symbols": {"EURUSD": {"max_notional": "lots"}}}, "risk.symbols.EURUSD.max_notional:"),
        (
            {"symbols": {"EURUSD": {"collar_percent": 150}}},
            "risk.symbols.EURUSD.collar_percent: Input should be less",
        ),
        (
            {"symbols": {"EURUSD": {"without_quote": "maybe"}}},
            "risk.symbols.EURUSD.without_quote: Input should be",
        ),
        (
            {"symbols": {"EURUSD": {"max_qty": 1}}},
            "risk.symbols.EURUSD.max_qty: Extra inputs are not permitted",
        ),
        ({"symbols": {"EUR USD": {}}}, "risk.symbols.EUR USD.[key]: String should match pattern"),
        (
            {"symbols": {"EURUSD": {}, "eurusd": {}}},
            "risk.symbols: Value error, 'eurusd' and 'EURUSD' name the same",
        ),
        (
            {"strategy_defaults": {"max_orders_per_second": 0}},
            "risk.strategy_defaults.max_orders_per_second:",
        ),
        ({"strategies": {"momo": {"max_open_orders": 0}}}, "risk.strategies.momo.max_open_orders:"),
        (
            {"strategies": {"momo": {"allowed_symbols": ["EUR USD"]}}},
            "risk.strategies.momo.allowed_symbols.0:",
        ),
        (
            {"strategies": {"momo": {"allowed_symbol": ["EURUSD"]}}},
            "risk.strategies.momo.allowed_symbol: Extra",
        ),
        ({"kill_switch": True}, "risk.kill_switch: Extra inputs are not permitted"),
    ],
)
def test_a_bad_risk_key_or_value_is_refused_naming_its_path(risk: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        risk_config(risk)

    assert named in str(caught.value)

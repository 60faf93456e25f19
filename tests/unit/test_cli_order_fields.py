"""`fixadapter order` takes the Open API's order fields: its options become the NewOrder's fields."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from fixadapter.cli import build_parser, main
from fixadapter.config import PASSWORD_ENV
from fixadapter.model.enums import OrderType, TimeInForce
from fixadapter.model.requests import NewOrder
from fixadapter.store.repository import OrderStore
from fixadapter.watch import order_request

D = Decimal
BASE = ["order", "--config", "c.yaml", "--symbol", "EURUSD", "--side", "buy", "--quantity", "10000"]


def request_of(*options: str) -> NewOrder:
    args = build_parser().parse_args([*BASE, *options])
    return order_request({k: v for k, v in vars(args).items() if v is not None})


def test_every_order_field_option_reaches_the_order() -> None:
    order = request_of(
        "--type", "stop_limit", "--stop-price", "1.09", "--price", "1.095",
        "--tif", "good_till_date", "--expire-time", "2030-01-01T00:00:00",
        "--stop-loss", "1.07", "--take-profit-distance", "0.004", "--trailing-stop-loss",
        "--comment", "from the shell",
    )  # fmt: skip
    assert order.order_type is OrderType.STOP_LIMIT
    assert (order.stop_price, order.price) == (D("1.09"), D("1.095"))
    assert order.time_in_force is TimeInForce.GOOD_TILL_DATE
    assert order.expire_time == datetime(2030, 1, 1, tzinfo=UTC)
    assert (order.stop_loss, order.take_profit_distance) == (D("1.07"), D("0.004"))
    assert order.trailing_stop_loss and order.comment == "from the shell"


def test_without_the_new_options_the_order_is_as_before() -> None:
    order = request_of("--take-profit", "1.2", "--stop-loss-distance", "0.001")
    assert order.order_type is OrderType.MARKET and order.time_in_force is None
    assert (order.take_profit, order.stop_loss_distance) == (D("1.2"), D("0.001"))
    plain = request_of()
    assert (plain.trailing_stop_loss, plain.comment, plain.stop_loss) == (False, None, None)


def test_an_unknown_time_in_force_is_refused_by_the_parser() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*BASE, "--tif", "fill_or_kill"])


def test_an_order_a_fix_account_cannot_send_is_refused_naming_the_field_without_waiting_for_logon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "unused")
    # The command's own stderr log handler would outlive the test (and its captured stderr).
    monkeypatch.setattr("fixadapter.cli.configure_logging", lambda _level, **_options: None)
    config = tmp_path / "config.yaml"
    account = {"host": "127.0.0.1", "sender_comp_id": "demo.test.1", "username": "1", "trade_port": 1}
    settings = {
        "account": account,
        "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"},
        "compliance": {"directory": str(tmp_path / "fixlog")},
    }
    config.write_text(yaml.safe_dump(settings))
    options = ["--symbol", "EURUSD", "--side", "buy", "--quantity", "10000", "--stop-loss", "1.07"]

    code = main(["order", "--config", str(config), *options, "--watch-seconds", "60"])

    assert code == 1
    assert capsys.readouterr().err.strip() == (
        "fixadapter order: stop_loss: the FIX connector cannot set SL/TP on an order; "
        "use an account with the Open API"
    )
    store = OrderStore(settings["store"]["url"])
    assert store.orders() == []
    store.close()

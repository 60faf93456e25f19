"""How the simulator is told which accounts to serve (issue 14): `--account NAME:SENDERCOMPID:LOGIN`, each
password from its own environment variable and never from the command line; today's single-account form
stays the default; accounts never share a name, SenderCompID or login, nor an order or position id."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from fixadapter.connectors.fix.wire import Fields
from fixadapter.errors import ConfigError
from fixadapter.sim.config import SimAccount, SimConfig, parse_accounts, password_variable
from fixadapter.sim.prices import DEFAULT_SYMBOLS, RandomWalk
from fixadapter.sim.records import IdCounters
from fixadapter.sim.trade_front import frame, no_such_login
from fixadapter.sim.venue import OrderKind, PlaceRequest, Side, Venue

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def account(name: str, comp_id: str, login: str) -> SimAccount:
    return SimAccount(name=name, sender_comp_id=comp_id, username=login, password=SecretStr(f"{name}-pw"))


def test_each_account_is_named_with_its_comp_id_and_login_and_its_password_comes_from_its_variable():
    environ = {"FIXADAPTER_SIM_PASSWORD_ALICE": "a-secret", "FIXADAPTER_SIM_PASSWORD_BOB_2": "b-secret"}
    alice, bob = parse_accounts(["alice:demo.sim.1001:1001", "bob-2:demo.sim.2002:2002"], environ)
    assert (alice.name, alice.sender_comp_id, alice.username) == ("alice", "demo.sim.1001", "1001")
    assert alice.password.get_secret_value() == "a-secret"
    assert (bob.name, bob.password.get_secret_value()) == ("bob-2", "b-secret")
    assert password_variable("bob-2") == "FIXADAPTER_SIM_PASSWORD_BOB_2"


def test_an_account_without_its_password_variable_is_refused_naming_the_variable():
    with pytest.raises(ConfigError, match="account bob: set its password in FIXADAPTER_SIM_PASSWORD_BOB"):
        parse_accounts(["bob:demo.sim.2002:2002"], {"FIXADAPTER_SIM_PASSWORD": "the single one's"})


def test_a_password_on_the_command_line_is_refused_without_repeating_it():
    with pytest.raises(ConfigError) as refused:
        parse_accounts(["bob:demo.sim.2002:2002:hunter2"], {"FIXADAPTER_SIM_PASSWORD_BOB": "x"})
    assert "NAME:SENDERCOMPID:LOGIN" in str(refused.value) and "FIXADAPTER_SIM_PASSWORD_<NAME>" in str(
        refused.value
    )
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize("spec", ["bob:demo.sim.2002", "bob::2002", "b o b:demo.sim.2002:2002", ":x:1"])
def test_a_malformed_account_is_refused(spec: str):
    with pytest.raises(ConfigError):
        parse_accounts([spec], {"FIXADAPTER_SIM_PASSWORD_BOB": "x", "FIXADAPTER_SIM_PASSWORD_B O B": "x"})


@pytest.mark.parametrize(
    ("second", "shared"),
    [
        (("alice", "demo.sim.2002", "2002"), "name alice"),
        (("bob", "demo.sim.1001", "2002"), "sender_comp_id demo.sim.1001"),
        (("bob", "demo.sim.2002", "1001"), "username 1001"),
    ],
)
def test_two_accounts_never_share_a_name_comp_id_or_login(second: tuple[str, str, str], shared: str):
    with pytest.raises(ValidationError, match=f"two accounts share the {shared}"):
        SimConfig(accounts=(account("alice", "demo.sim.1001", "1001"), account(*second)))


def test_without_accounts_the_single_account_of_today_is_served():
    config = SimConfig(sender_comp_id="demo.x.7", username="7", password=SecretStr("pw"))
    (only,) = config.served_accounts
    assert (only.name, only.sender_comp_id, only.username) == ("default", "demo.x.7", "7")
    assert only.password.get_secret_value() == "pw"


def test_given_accounts_replace_the_single_one_and_the_first_keeps_the_state_file(tmp_path: Path):
    config = SimConfig(
        state_path=tmp_path / "venue.sqlite",
        accounts=(account("alice", "demo.sim.1001", "1001"), account("bob", "demo.sim.2002", "2002")),
    )
    assert [a.name for a in config.served_accounts] == ["alice", "bob"]
    assert config.account_state_path(0) == tmp_path / "venue.sqlite"
    assert config.account_state_path(1) == tmp_path / "venue.bob.sqlite"
    assert SimConfig().account_state_path(0) is None


def place(venue: Venue, cl_ord_id: str) -> tuple[int, int]:
    (new, *_) = venue.place(PlaceRequest(cl_ord_id, 1, Side.BUY, OrderKind.MARKET, Decimal(1000)), T0)
    return new.order.order_id, new.order.position_id


def test_venues_sharing_id_counters_never_hand_out_the_same_order_or_position_id(tmp_path: Path):
    prices = RandomWalk(DEFAULT_SYMBOLS, seed=1)
    ids = IdCounters()
    alice = Venue(prices, tmp_path / "a.sqlite", shared_ids=ids)
    bob = Venue(prices, tmp_path / "b.sqlite", shared_ids=ids)
    before = [place(alice, "a1"), place(bob, "b1"), place(alice, "a2")]
    alice.close()
    bob.close()

    # Restarted in the other order, from their files: still no id handed out twice.
    ids = IdCounters()
    bob = Venue(prices, tmp_path / "b.sqlite", shared_ids=ids)
    alice = Venue(prices, tmp_path / "a.sqlite", shared_ids=ids)
    after = [place(bob, "b2"), place(alice, "a3")]
    alice.close()
    bob.close()
    every = before + after
    assert len({order_id for order_id, _ in every}) == len({position_id for _, position_id in every}) == 5


def test_the_front_refuses_an_unknown_comp_id_as_ctrader_stamps_a_refused_logon():
    header = [(35, "A"), (49, "demo.sim.9999"), (56, "cServer"), (34, "1"), (52, "20260105-09:00:00.000")]
    body = [(50, "TRADE"), (57, "TRADE"), (98, "0"), (108, "30"), (553, "9999"), (554, "secret")]
    logon = frame([*header, *body])
    logout = no_such_login(logon)
    fields = Fields.parse(logout.decode())
    assert [tag for tag, _ in fields.pairs][:10] == [8, 9, 35, 34, 49, 50, 52, 56, 57, 58]
    assert (fields.get(35), fields.get(58)) == ("5", "RET_NO_SUCH_LOGIN")
    assert (fields.get(49), fields.get(56), fields.get(50), fields.get(57)) == (
        "cServer",
        "demo.sim.9999",
        "TRADE",
        "TRADE",
    )
    counted = logout[logout.index(b"35=") : logout.index(b"10=")]
    assert fields.get(9) == str(len(counted))
    assert fields.get(10) == f"{sum(logout[: logout.index(b'10=')]) % 256:03d}"
    assert b"secret" not in logout

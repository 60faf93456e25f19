"""The simulator's accounts as the Open API sees them: stable ctidTraderAccountIds, live accounts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import SecretStr, ValidationError

from fixadapter.errors import ConfigError
from fixadapter.sim.config import SimAccount, SimConfig, parse_accounts

ENVIRON = {"FIXADAPTER_SIM_PASSWORD_ALICE": "a", "FIXADAPTER_SIM_PASSWORD_BOB": "b"}


def test_accounts_are_numbered_by_their_place_unless_given_an_id():
    accounts = parse_accounts(["alice:demo.sim.1:1", "bob:live.sim.2:2:30000002:live"], ENVIRON)
    served = SimConfig(accounts=accounts).served_accounts
    assert [(a.ctid_trader_account_id, a.is_live) for a in served] == [
        (20_000_001, False),
        (30_000_002, True),
    ]
    assert SimConfig().served_accounts[0].ctid_trader_account_id == 20_000_001


def test_two_accounts_with_one_id_are_refused():
    accounts = tuple(
        SimAccount(
            name=name, sender_comp_id=name, username=name, password=SecretStr("x"), ctid_trader_account_id=7
        )
        for name in ("alice", "bob")
    )
    with pytest.raises(ValueError, match="ctid_trader_account_id"):
        SimConfig(accounts=accounts)


@pytest.mark.parametrize("spec", ["bob:s:2:notanumber", "bob:s:2:0", "bob:s:2:30000002:demo"])
def test_a_bad_id_or_flag_is_refused_naming_the_form(spec: str):
    with pytest.raises(ConfigError, match="CTIDTRADERACCOUNTID"):
        parse_accounts([spec], ENVIRON)


def test_the_trader_login_is_the_login_when_it_is_a_number():
    account = SimAccount(name="a", sender_comp_id="s", username="1001", password=SecretStr("x"))
    assert account.trader_login == 1001
    assert account.model_copy(update={"username": "abc"}).trader_login is None


def test_the_commission_rate_defaults_to_30_per_million_and_can_be_zero_but_never_negative():
    assert SimConfig().commission_per_million == Decimal(30)
    assert SimConfig(commission_per_million=Decimal(0)).commission_per_million == 0
    with pytest.raises(ValidationError):
        SimConfig(commission_per_million=Decimal(-1))

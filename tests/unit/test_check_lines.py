"""`fixadapter check`: what each venue answer to a Logon is taken to mean, and how a step's line reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixadapter.check.fix import refusal
from fixadapter.check.report import Outcome, Report, Step
from fixadapter.config import AccountConfig, build_config
from fixadapter.connectors.fix.kinds import SessionKind

ACCOUNT = {
    "host": "demo-uk-eqx-01.p.c-trader.com",
    "sender_comp_id": "demo.broker.1234567",
    "username": "1234567",
    "password": "pw-never-shown",
}


def fix_account(name: str = "default", **changes: object) -> AccountConfig:
    settings = {**ACCOUNT, **changes}
    if name == "default":
        return build_config({"account": settings}, environ={}).fix_settings()
    return build_config({"accounts": [{"name": name, "fix": settings}]}, environ={}).fix_settings(name)


def test_a_wrong_password_names_the_variable_of_the_account():
    text, advice = refusal("default", fix_account(), SessionKind.TRADE, "InternalError: RET_INVALID_DATA")
    assert text == 'the venue refused the Logon: "InternalError: RET_INVALID_DATA"'
    assert "FIXADAPTER_ACCOUNT__PASSWORD" in advice
    _, advice = refusal("main", fix_account("main"), SessionKind.TRADE, "InternalError: RET_INVALID_DATA")
    assert "FIXADAPTER_ACCOUNTS__MAIN__FIX__PASSWORD" in advice


def test_the_port_mix_up_names_the_port_and_the_setting():
    account = fix_account(quote_port=5212, trade_port=5211)
    text = "TargetSubID is assigned with the unexpected value 'TRADE', expected 'QUOTE'"
    _, advice = refusal("default", account, SessionKind.TRADE, text)
    assert advice.startswith("port 5211 is the QUOTE port, not the TRADE port: set account.trade_port")
    assert "(5212 with TLS, 5202 plain)" in advice


def test_a_closed_connection_without_a_logout_is_the_comp_id_pair():
    text, advice = refusal("main", fix_account("main"), SessionKind.QUOTE, None)
    assert text == "the venue closed the connection without answering the Logon (no Logout)"
    assert "'demo.broker.1234567' with TargetCompID 'CSERVER'" in advice
    assert "accounts[main].fix.sender_comp_id" in advice


def test_other_answers():
    account = fix_account()
    assert "bare numeric login" in refusal("default", account, SessionKind.TRADE, "RET_NO_SUCH_LOGIN")[1]
    assert "demo or live server" in refusal("default", account, SessionKind.TRADE, "Can't route request")[1]
    tls = "TLS to h:5212 failed: unknown ca (x); y"
    assert refusal("default", account, SessionKind.TRADE, tls)[0] == tls


def test_a_line_is_padded_timed_masked_and_followed_by_what_to_do():
    printed: list[str] = []
    report = Report(out=printed.append)
    report.add(Step("TRADE logon", Outcome.FAILED, "refused: 554=secret|", 0.0123, "set the password"))
    report.ok("positions", "0 open")
    assert printed == [
        "  FAILED  TRADE logon       refused: 554=******| (12 ms)",
        "          what to do: set the password",
        "  OK      positions         0 open",
    ]
    assert [step.name for step in report.failures()] == ["TRADE logon"]


def test_check_exits_2_naming_the_key_when_the_config_itself_is_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README: 0 every step passed, 1 a step failed, 2 the config itself is invalid."""
    from fixadapter.cli import main

    path = tmp_path / "bad.yaml"
    path.write_text("account:\n  host: 127.0.0.1\n  trade_prot: 5202\n", encoding="utf-8")
    assert main(["check", "--config", str(path)]) == 2
    assert "trade_prot" in capsys.readouterr().err

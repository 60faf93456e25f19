"""`fixadapter check` against the simulator: the line a user sees for each step, and the exit code.

Each test runs the command as a user would (its own process, the config in a file, the secrets in the
environment) and asserts the visible lines: every step OK for a FIX and an Open API account, a wrong
password, an unknown SenderCompID, QUOTE and TRADE ports swapped, a port nobody listens on, TLS refused for
an untrusted CA, a certificate for another host name and an expired one, and Open API tokens missing,
expired and refreshable, expired and not. No output ever holds a password, a client secret or a token.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.connectors.openapi.tokens import FileTokenStore, TokenPair, grant_key
from fixadapter.sim.process import SimProcess
from fixadapter.tls.certs import issue_server, make_ca

from ..openapi_accounts import ensure_token_key, grant, openapi_settings
from .conftest import SimFactory

STEP = re.compile(r"^  (OK|FAILED|SKIPPED) +(\S+(?: \S+)*?) {2,}(.*?)(?: \(\d+ ms\))?$")
FIX_PASSWORD = "FIXADAPTER_ACCOUNT__PASSWORD"  # noqa: S105 - the variable's name


@dataclass(frozen=True)
class Checked:
    code: int
    out: str
    err: str

    def step(self, name: str) -> tuple[str, str]:
        """(OK/FAILED/SKIPPED, the text after the step's name, its duration left out)."""
        for line in self.out.splitlines():
            found = STEP.match(line)
            if found and found[2] == name:
                return found[1], found[3]
        raise AssertionError(f"no step {name!r} in:\n{self.out}\n{self.err}")

    def advice(self, name: str) -> str:
        lines = self.out.splitlines()
        for number, line in enumerate(lines):
            found = STEP.match(line)
            if found and found[2] == name:
                following = lines[number + 1] if number + 1 < len(lines) else ""
                assert following.startswith("          what to do: "), self.out
                return following.removeprefix("          what to do: ")
        raise AssertionError(f"no step {name!r} in:\n{self.out}")

    def shows_none_of(self, *secrets: str) -> None:
        for secret in secrets:
            assert secret not in self.out and secret not in self.err


def check(tmp_path: Path, config: dict[str, Any], env: dict[str, str], *options: str) -> Checked:
    """`fixadapter check --config <file>` in a directory of its own, secrets by environment."""
    path = tmp_path / "check.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "fixadapter", "check", "--config", str(path), "--timeout", "10", *options],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, **env},
    )
    return Checked(run.returncode, run.stdout, run.stderr)


def fix_account(sim: SimProcess, **changes: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The single `account:` section reaching the simulator, its password in the environment."""
    settings = {**sim.adapter_settings(), **changes}
    password = settings.pop("password")
    return {"account": settings}, {FIX_PASSWORD: password}


def openapi_account(sim: SimProcess, token_file: Path) -> tuple[dict[str, Any], dict[str, str]]:
    settings = openapi_settings(sim, token_file)
    secret = settings.pop("client_secret")
    return settings, {"FIXADAPTER_ACCOUNTS__DESK__OPENAPI__CLIENT_SECRET": secret}


def port(sim: SimProcess, kind: str) -> int:
    return sim.session_port(SessionKind(kind))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_every_step_ok_for_a_fix_account_and_an_open_api_account(start_sim: SimFactory, tmp_path: Path):
    sim = start_sim()
    token_file = tmp_path / "tokens.bin"
    pair = grant(sim, token_file)
    fix_settings = sim.adapter_settings()
    password = fix_settings.pop("password")
    openapi, secret_env = openapi_account(sim, token_file)
    config = {"accounts": [{"name": "fixdesk", "fix": fix_settings}, {"name": "desk", "openapi": openapi}]}
    env = {"FIXADAPTER_ACCOUNTS__FIXDESK__FIX__PASSWORD": password, **secret_env}
    result = check(tmp_path, config, env)

    assert result.code == 0, result.out + result.err
    for kind in ("QUOTE", "TRADE"):
        assert result.step(f"{kind} TCP") == ("OK", f"127.0.0.1:{port(sim, kind)} accepts connections")
        assert result.step(f"{kind} logon") == ("OK", "logged on as demo.sim.1234567 (login 1234567)")
    assert result.step("security list") == ("OK", "7 symbols")
    assert result.step("positions") == ("OK", "0 open")
    assert result.step("logout") == ("OK", "QUOTE and TRADE logged out, the venue answered")
    ctid = sim.account().ctid_trader_account_id
    assert result.step("Open API TCP") == ("OK", f"127.0.0.1:{sim.openapi_port} accepts connections")
    outcome, text = result.step("Open API TLS")
    assert outcome == "OK" and text.startswith("TLSv1.") and "certificate verified for 127.0.0.1" in text
    assert result.step("application auth") == ("OK", "application fixadapter-sim authorised")
    outcome, text = result.step("token")
    assert outcome == "OK" and text.startswith("present, expires ") and "(in 30 days)" in text
    assert result.step("account auth") == ("OK", f"account {ctid} authorised")
    assert result.step("trader") == (
        "OK",
        "balance 100000.00, leverage 1:100, broker fixadapter simulator, login 1234567",
    )
    assert result.step("symbols") == ("OK", "7 symbols")
    assert result.step("reconcile") == ("OK", "0 open positions, 0 working orders")
    assert result.step("account logout") == ("OK", f"account {ctid} logged out")
    assert result.out.rstrip().endswith("OK: every check passed for fixdesk, desk")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("var")) == []  # nothing written
    result.shows_none_of(
        password, secret_env["FIXADAPTER_ACCOUNTS__DESK__OPENAPI__CLIENT_SECRET"], *_tokens(pair)
    )

    alone = check(tmp_path, config, env, "--account", "desk", "--refresh-token")
    assert alone.code == 0 and "account fixdesk" not in alone.out and "account desk" in alone.out
    outcome, text = alone.step("token")  # the refresh proven on a token not due for one
    assert outcome == "OK" and text.startswith("valid, refresh asked for: refreshed, the new one expires ")
    assert alone.step("account auth")[0] == "OK"
    rotated = FileTokenStore(token_file).load(grant_key("fixadapter-sim"))
    assert rotated is not None and rotated.refresh_token != pair.refresh_token
    alone.shows_none_of(*_tokens(pair), *_tokens(rotated))


def test_a_wrong_password_is_the_venues_refusal_with_the_variable_to_set(sim: SimProcess, tmp_path: Path):
    config, _env = fix_account(sim)
    result = check(tmp_path, config, {FIX_PASSWORD: "not-the-password-4711"})

    assert result.code == 1
    assert result.step("TRADE logon") == (
        "FAILED",
        'the venue refused the Logon: "InternalError: RET_INVALID_DATA"',
    )
    advice = result.advice("TRADE logon")
    assert advice.startswith("the password is wrong (or the login 1234567)")
    assert FIX_PASSWORD in advice and "lock" in advice
    assert result.step("security list") == ("SKIPPED", "TRADE is not logged on")
    assert result.step("logout") == ("SKIPPED", "no session was logged on")
    assert "FAILED: 2 check(s) failed for default" in result.out
    result.shows_none_of("not-the-password-4711")
    # Refused once per session: the check does not retry into an account lock.
    assert sim.control("/state")["logons_refused"] == 1


def test_an_unknown_sender_comp_id_is_named(sim: SimProcess, tmp_path: Path):
    config, env = fix_account(sim, sender_comp_id="demo.sim.7654321")
    result = check(tmp_path, config, env)

    assert result.code == 1
    # QUOTE: the venue closes without a word; TRADE: cTrader's RET_NO_SUCH_LOGIN.
    assert result.step("QUOTE logon") == (
        "FAILED",
        "the venue closed the connection without answering the Logon (no Logout)",
    )
    assert result.advice("QUOTE logon").startswith(
        "the venue does not know SenderCompID 'demo.sim.7654321' with TargetCompID 'CSERVER'"
    )
    assert result.step("TRADE logon") == ("FAILED", 'the venue refused the Logon: "RET_NO_SUCH_LOGIN"')
    assert result.advice("TRADE logon").startswith(
        "the venue has no login 1234567 under SenderCompID 'demo.sim.7654321': copy account.sender_comp_id"
    )
    result.shows_none_of(env[FIX_PASSWORD])


def test_trade_pointed_at_the_quote_port_says_which_port_is_which(sim: SimProcess, tmp_path: Path):
    quote, trade = port(sim, "QUOTE"), port(sim, "TRADE")
    config, env = fix_account(sim, quote_port=trade, trade_port=quote)
    result = check(tmp_path, config, env)

    assert result.code == 1
    assert result.step("TRADE logon") == (
        "FAILED",
        "the venue refused the Logon: \"TargetSubID is assigned with the unexpected value 'TRADE', "
        "expected 'QUOTE'\"",
    )
    assert result.advice("TRADE logon").startswith(
        f"port {quote} is the QUOTE port, not the TRADE port: set account.trade_port to the TRADE port"
    )
    assert result.step("QUOTE logon") == (
        "FAILED",
        "the venue refused the Logon: \"TargetSubID is assigned with the unexpected value 'QUOTE', "
        "expected 'TRADE'\"",
    )
    assert "QUOTE and TRADE may simply be swapped" in result.advice("QUOTE logon")


def test_one_port_for_both_sessions_is_said_before_any_logon(sim: SimProcess, tmp_path: Path):
    quote = port(sim, "QUOTE")
    config, env = fix_account(sim, trade_port=quote)
    result = check(tmp_path, config, env)

    assert result.code == 1
    assert result.step("ports") == ("FAILED", f"QUOTE and TRADE both use 127.0.0.1:{quote}")
    assert result.advice("ports").startswith("each session has its own port: set account.quote_port")


def test_nothing_listening_is_connection_refused(tmp_path: Path):
    quote, trade = closed_port(), closed_port()
    account = {
        "host": "127.0.0.1",
        "sender_comp_id": "demo.broker.1234567",
        "username": "1234567",
        "quote_port": quote,
        "trade_port": trade,
    }
    result = check(tmp_path, {"account": account}, {FIX_PASSWORD: "secret-never-shown"})

    assert result.code == 1
    assert result.step("QUOTE TCP") == ("FAILED", f"connection refused: nothing listens on 127.0.0.1:{quote}")
    assert result.step("TRADE TCP") == ("FAILED", f"connection refused: nothing listens on 127.0.0.1:{trade}")
    assert "QUOTE 5211 with TLS or 5201 plain" in result.advice("QUOTE TCP")
    assert result.step("logon") == ("SKIPPED", "neither session is reachable")


def test_tls_with_an_untrusted_ca_says_so_and_never_logs_on(start_sim: SimFactory, tmp_path: Path):
    sim = start_sim(tls=True, tls_dir=tmp_path / "sim-tls")
    other_ca = tmp_path / "other-ca.pem"
    make_ca("not the simulator's CA").write(other_ca, tmp_path / "other-ca-key.pem")
    config, env = fix_account(sim, tls_ca_file=str(other_ca))
    result = check(tmp_path, config, env)

    assert result.code == 1
    assert result.step("QUOTE TCP")[0] == "OK"
    outcome, text = result.step("QUOTE TLS")
    assert outcome == "FAILED" and text.startswith("certificate not trusted (signed by an unknown CA): ")
    assert f"the CA file {other_ca} pinned in account.tls_ca_file" in result.advice("QUOTE TLS")
    assert result.step("logon") == ("SKIPPED", "neither session is reachable")
    assert sim.control("/state")["logons"] == 0

    trusted, env = fix_account(sim)  # the simulator's own CA: the same ports work
    assert check(tmp_path, trusted, env).step("TRADE TLS")[0] == "OK"


def test_tls_certificates_for_another_name_or_expired_are_named(start_sim: SimFactory, tmp_path: Path):
    sim = start_sim(tls=True, tls_dir=tmp_path / "named", tls_names=("localhost",))
    config, env = fix_account(sim)  # connects to 127.0.0.1, the certificate names localhost only
    outcome, text = check(tmp_path, config, env).step("QUOTE TLS")
    assert outcome == "FAILED" and text.startswith("certificate issued for another host name: ")
    sim.stop()

    ca = make_ca()
    ca.write(tmp_path / "ca.pem", tmp_path / "ca-key.pem")
    now = datetime.now(UTC)
    issue_server(ca, ["127.0.0.1"], now - timedelta(days=30), now - timedelta(days=1)).write(
        tmp_path / "old.pem", tmp_path / "old-key.pem"
    )
    expired = start_sim(
        tls=True,
        tls_dir=tmp_path / "expired",
        extra_args=("--tls-cert", str(tmp_path / "old.pem"), "--tls-key", str(tmp_path / "old-key.pem")),
    )
    config, env = fix_account(expired, tls_ca_file=str(tmp_path / "ca.pem"))
    result = check(tmp_path, config, env)
    outcome, text = result.step("TRADE TLS")
    assert outcome == "FAILED" and text.startswith("certificate expired: ")
    assert "check the clock, then tell the broker" in result.advice("TRADE TLS")


def test_an_open_api_token_missing_or_a_wrong_client_secret_says_what_to_do(sim: SimProcess, tmp_path: Path):
    ensure_token_key()
    token_file = tmp_path / "tokens.bin"
    openapi, env = openapi_account(sim, token_file)
    result = check(tmp_path, {"accounts": [{"name": "desk", "openapi": openapi}]}, env)

    assert result.code == 1
    assert result.step("application auth")[0] == "OK"
    assert result.step("token") == ("FAILED", f"no token stored for fixadapter-sim/default in {token_file}")
    assert result.advice("token").startswith("run `fixadapter openapi login --client-id fixadapter-sim`")
    assert result.step("account auth") == ("SKIPPED", "no usable token")

    wrong = {next(iter(env)): "not-the-client-secret"}
    refused = check(tmp_path, {"accounts": [{"name": "desk", "openapi": openapi}]}, wrong)
    assert refused.code == 1
    assert refused.step("application auth") == ("FAILED", "refused: CH_CLIENT_AUTH_FAILURE")
    assert "FIXADAPTER_ACCOUNTS__DESK__OPENAPI__CLIENT_SECRET" in refused.advice("application auth")
    assert refused.step("token") == ("SKIPPED", "the application is not authorised")
    refused.shows_none_of("not-the-client-secret", env[next(iter(env))])


def test_an_open_api_account_id_or_ca_that_is_wrong_is_named(sim: SimProcess, tmp_path: Path):
    token_file = tmp_path / "tokens.bin"
    grant(sim, token_file)
    openapi, env = openapi_account(sim, token_file)
    unknown = {**openapi, "ctid_trader_account_id": 99999999}
    result = check(tmp_path, {"accounts": [{"name": "desk", "openapi": unknown}]}, env)
    assert result.code == 1
    assert result.step("token")[0] == "OK"
    assert result.step("account auth") == (
        "FAILED",
        "account auth refused: CH_CTID_TRADER_ACCOUNT_NOT_FOUND: no account 99999999 (give the "
        "ctidTraderAccountId, not the trader login; `fixadapter openapi login` lists them)",
    )
    assert result.step("trader") == ("SKIPPED", "the account is not authorised")

    other_ca = tmp_path / "other-ca.pem"
    make_ca("not the simulator's CA").write(other_ca, tmp_path / "other-ca-key.pem")
    untrusted = {**openapi, "ca_file": str(other_ca)}
    result = check(tmp_path, {"accounts": [{"name": "desk", "openapi": untrusted}]}, env)
    outcome, text = result.step("Open API TLS")
    assert outcome == "FAILED" and text.startswith("certificate not trusted (signed by an unknown CA): ")
    assert "pinned in accounts[desk].openapi.ca_file" in result.advice("Open API TLS")
    assert result.step("application auth") == ("SKIPPED", "the server is not reachable")


def test_an_expired_open_api_token_is_refreshed_or_said_to_be_dead(sim: SimProcess, tmp_path: Path):
    token_file = tmp_path / "tokens.bin"
    live = grant(sim, token_file)
    store = FileTokenStore(token_file)
    key = grant_key("fixadapter-sim")
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    store.save(key, TokenPair(live.access_token, live.refresh_token, an_hour_ago))
    openapi, env = openapi_account(sim, token_file)
    config = {"accounts": [{"name": "desk", "openapi": openapi}]}

    refreshed = check(tmp_path, config, env)
    assert refreshed.code == 0, refreshed.out
    outcome, text = refreshed.step("token")
    assert outcome == "OK" and text.startswith("expired: refreshed, the new one expires ")
    assert refreshed.step("account auth")[0] == "OK"
    fresh = store.load(key)
    assert fresh is not None and fresh.refresh_token != live.refresh_token  # the rotated pair is kept

    dead = TokenPair(SecretStr("dead-access-token-1"), SecretStr("spent-refresh-token-1"), an_hour_ago)
    store.save(key, dead)
    result = check(tmp_path, config, env)
    assert result.code == 1
    outcome, text = result.step("token")
    assert outcome == "FAILED"
    assert text == (
        f"expired ({an_hour_ago.strftime('%Y-%m-%d %H:%M UTC')}) and the refresh was refused: "
        "CH_ACCESS_TOKEN_INVALID"
    )
    assert (
        result.advice("token")
        == "run `fixadapter openapi login --client-id fixadapter-sim` to authorise again"
    )
    assert result.step("account auth") == ("SKIPPED", "no usable token")
    result.shows_none_of(*_tokens(live), *_tokens(fresh), *_tokens(dead), env[next(iter(env))])


def test_a_token_the_server_calls_expired_before_its_time_is_refreshed_and_the_account_authorised(
    sim: SimProcess, tmp_path: Path
):
    """As the daemon does: the server's word wins over the expiry stored with the pair."""
    token_file = tmp_path / "tokens.bin"
    live = grant(sim, token_file)
    sim.control("/openapi/expire_token", {"access_token": live.access_token.get_secret_value()})
    openapi, env = openapi_account(sim, token_file)

    result = check(tmp_path, {"accounts": [{"name": "desk", "openapi": openapi}]}, env)
    assert result.code == 0, result.out
    tokens = [line for line in result.out.splitlines() if STEP.match(line) and STEP.match(line)[2] == "token"]
    assert (
        len(tokens) == 2 and "refused by the server as expired: refreshed, the new one expires" in tokens[1]
    )
    assert result.step("account auth")[0] == "OK"
    fresh = FileTokenStore(token_file).load(grant_key("fixadapter-sim"))
    assert fresh is not None and fresh.refresh_token != live.refresh_token
    result.shows_none_of(*_tokens(live), *_tokens(fresh), env[next(iter(env))])


def _tokens(pair: TokenPair) -> tuple[str, str]:
    return pair.access_token.get_secret_value(), pair.refresh_token.get_secret_value()

"""Specification of configuration: YAML plus FIXADAPTER_SECTION__KEY overrides, errors naming the bad key,
a password that never shows, and the QuickFIX settings rendered from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from fixadapter.config import AdapterConfig, build_config, load_config
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.connectors.fix.settings import parse_settings, render_settings
from fixadapter.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cr3t-Pa55"  # noqa: S105 - a test value
ENVIRON = {"FIXADAPTER_ACCOUNT__PASSWORD": PASSWORD}
MINIMAL_YAML = """\
account:
  host: demo-uk-eqx-01.p.c-trader.com
  sender_comp_id: demo.icmarkets.8536054
  username: "8536054"
"""


def account(**changes: Any) -> dict[str, Any]:
    values = {"host": "127.0.0.1", "sender_comp_id": "demo.broker.1234567", "username": "1234567"}
    return {**values, **changes}


def config_with(sessions_file: Path, **account_changes: Any) -> AdapterConfig:
    return build_config({"account": account(**account_changes), "sessions_file": str(sessions_file)}, ENVIRON)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "fixadapter.yaml"
    path.write_text(MINIMAL_YAML, encoding="utf-8")
    return path


def test_load_config_minimal_yaml_with_password_from_env_loads(config_file: Path) -> None:
    config = load_config(config_file, environ=ENVIRON)

    assert config.account().fix.host == "demo-uk-eqx-01.p.c-trader.com"
    assert config.account().fix.sender_comp_id == "demo.icmarkets.8536054"
    assert config.account().fix.username == "8536054"
    assert config.account().fix.password.get_secret_value() == PASSWORD
    assert config.account().fix.target_comp_id == "CSERVER"


# ---- TLS per session ---------------------------------------------------------------------------


def test_a_remote_host_gets_tls_on_both_sessions_at_the_tls_ports(config_file: Path) -> None:
    chosen = load_config(config_file, environ=ENVIRON).account().fix

    assert [chosen.tls(kind) for kind in SessionKind] == [True, True]
    assert (chosen.port(SessionKind.QUOTE), chosen.port(SessionKind.TRADE)) == (5211, 5212)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_a_loopback_host_gets_plain_text_at_the_plain_ports(host: str) -> None:
    chosen = build_config({"account": account(host=host)}, ENVIRON).account().fix

    assert [chosen.tls(kind) for kind in SessionKind] == [False, False]
    assert (chosen.port(SessionKind.QUOTE), chosen.port(SessionKind.TRADE)) == (5201, 5202)


def test_tls_is_chosen_per_session_and_an_explicit_port_wins() -> None:
    values = account(host="h51.p.ctrader.com", quote_tls=False, trade_port=6212)
    chosen = build_config({"account": values}, ENVIRON).account().fix

    assert (chosen.tls(SessionKind.QUOTE), chosen.port(SessionKind.QUOTE)) == (False, 5201)
    assert (chosen.tls(SessionKind.TRADE), chosen.port(SessionKind.TRADE)) == (True, 6212)
    assert chosen.endpoint(SessionKind.TRADE) == "h51.p.ctrader.com:6212 (TLS)"
    assert chosen.tls_explicitly_off(SessionKind.QUOTE)
    assert not chosen.tls_explicitly_off(SessionKind.TRADE)


def test_tls_can_be_set_from_the_environment() -> None:
    environ = {**ENVIRON, "FIXADAPTER_ACCOUNT__TRADE_TLS": "true"}

    assert build_config({"account": account()}, environ).account().fix.tls(SessionKind.TRADE)


def test_a_missing_ca_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"account\.tls_ca_file: .*no such file"):
        build_config({"account": account(tls_ca_file=str(tmp_path / "none.pem"))}, ENVIRON)


def test_load_config_without_password_names_account_password(config_file: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"account\.password is not set: set the environment variable FIXADAPTER_ACCOUNT__PASSWORD",
    ):
        load_config(config_file, environ={})


def test_load_config_env_overrides_yaml(config_file: Path) -> None:
    environ = {**ENVIRON, "FIXADAPTER_ACCOUNT__HOST": "127.0.0.1", "FIXADAPTER_ACCOUNT__TRADE_PORT": "6202"}

    config = load_config(config_file, environ=environ)

    assert config.account().fix.host == "127.0.0.1"
    assert config.account().fix.trade_port == 6202
    assert config.account().fix.sender_comp_id == "demo.icmarkets.8536054"


def test_build_config_ignores_environment_variables_of_other_programs() -> None:
    environ = {**ENVIRON, "FIXADAPTER_TEST_POSTGRES_URL": "postgresql://x", "OTHER__THING": "1"}

    assert build_config({"account": account()}, environ).account().fix.host == "127.0.0.1"


def test_build_config_from_environment_alone_loads() -> None:
    environ = {f"FIXADAPTER_ACCOUNT__{key.upper()}": value for key, value in account().items()}

    config = load_config(None, environ={**environ, **ENVIRON})

    assert config.account().fix.username == "1234567"


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"hots": "127.0.0.1"}, "account.hots"),
        ({"trade_port": 99999}, "account.trade_port"),
        ({"quote_port": 0}, "account.quote_port"),
        ({"username": "demo.x"}, "account.username"),
        ({"sender_comp_id": "demo broker"}, "account.sender_comp_id"),
        ({"heartbeat_seconds": 0}, "account.heartbeat_seconds"),
    ],
)
def test_build_config_bad_key_or_value_raises_config_error_naming_it(
    changes: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        build_config({"account": account(**changes)}, ENVIRON)

    assert f"  {named}: " in str(raised.value)


def test_build_config_unknown_section_is_named() -> None:
    with pytest.raises(ConfigError, match=r"  storage: Extra inputs are not permitted"):
        build_config({"account": account(), "storage": {"url": "sqlite://"}}, ENVIRON)


def test_build_config_bad_env_value_is_named_by_its_config_key() -> None:
    with pytest.raises(ConfigError, match=r"account\.trade_port"):
        build_config({"account": account()}, {**ENVIRON, "FIXADAPTER_ACCOUNT__TRADE_PORT": "not-a-port"})


def test_config_password_never_shows_in_repr_or_str() -> None:
    config = build_config({"account": account()}, ENVIRON)

    assert PASSWORD not in repr(config)
    assert PASSWORD not in str(config)
    assert PASSWORD not in repr(config.account().fix)


def test_config_error_never_shows_the_password() -> None:
    with pytest.raises(ConfigError) as raised:
        build_config({"account": account(trade_port=99999)}, ENVIRON)

    assert PASSWORD not in str(raised.value)


def test_load_config_missing_file_raises_config_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"

    with pytest.raises(ConfigError, match=rf"cannot read config file {missing}: No such file"):
        load_config(missing, environ=ENVIRON)


def test_load_config_invalid_yaml_raises_config_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("account:\n  host: [unclosed\n", encoding="utf-8")

    with pytest.raises(ConfigError, match=rf"config file {path} is not valid YAML"):
        load_config(path, environ=ENVIRON)


def test_load_config_yaml_that_is_not_a_mapping_raises_config_error(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- account\n", encoding="utf-8")

    with pytest.raises(ConfigError, match="must hold a mapping at the top level"):
        load_config(path, environ=ENVIRON)


# ---- QuickFIX settings ------------------------------------------------------------------------


def test_render_settings_gives_quote_and_trade_sessions_from_the_account() -> None:
    config = config_with(REPO_ROOT / "sessions.cfg", host="127.0.0.1", quote_port=6201, trade_port=6202)

    sections = parse_settings(render_settings(config))

    sessions = {values["SessionQualifier"]: values for name, values in sections if name == "SESSION"}
    assert set(sessions) == {"QUOTE", "TRADE"}
    for qualifier, port in (("QUOTE", "6201"), ("TRADE", "6202")):
        assert sessions[qualifier]["SenderCompID"] == "demo.broker.1234567"
        assert sessions[qualifier]["SocketConnectHost"] == "127.0.0.1"
        assert sessions[qualifier]["SocketConnectPort"] == port


def test_render_settings_defaults_target_cserver_reset_on_logon_and_use_an_absolute_dictionary() -> None:
    config = config_with(REPO_ROOT / "sessions.cfg", target_comp_id="cServer", heartbeat_seconds=10)

    sections = parse_settings(render_settings(config))
    (default,) = [values for name, values in sections if name == "DEFAULT"]
    sessions = [values for name, values in sections if name == "SESSION"]

    assert [(s["TargetCompID"], s["HeartBtInt"]) for s in sessions] == [("cServer", "10")] * 2
    assert default["ResetOnLogon"] == "Y"
    dictionary = Path(default["DataDictionary"])
    assert dictionary.is_absolute()
    assert dictionary.is_file()


def test_render_settings_points_a_tls_session_at_its_loopback_forwarder() -> None:
    config = config_with(REPO_ROOT / "sessions.cfg", host="h51.p.ctrader.com")

    text = render_settings(config, {"default": {SessionKind.TRADE: ("127.0.0.1", 40123)}})

    sessions = {v["SessionQualifier"]: v for name, v in parse_settings(text) if name == "SESSION"}
    assert (sessions["TRADE"]["SocketConnectHost"], sessions["TRADE"]["SocketConnectPort"]) == (
        "127.0.0.1",
        "40123",
    )
    assert (sessions["QUOTE"]["SocketConnectHost"], sessions["QUOTE"]["SocketConnectPort"]) == (
        "h51.p.ctrader.com",
        "5211",
    )


def test_render_settings_contains_no_password() -> None:
    config = config_with(REPO_ROOT / "sessions.cfg")

    assert PASSWORD not in render_settings(config)


def test_render_settings_without_trade_session_raises_config_error(tmp_path: Path) -> None:
    sessions = tmp_path / "sessions.cfg"
    sessions.write_text(
        "[DEFAULT]\nConnectionType=initiator\n[SESSION]\nSessionQualifier=QUOTE\n", encoding="utf-8"
    )

    with pytest.raises(ConfigError, match=r"one QUOTE and one TRADE session, found \['QUOTE'\]"):
        render_settings(config_with(sessions))


def test_render_settings_unknown_session_qualifier_raises_config_error(tmp_path: Path) -> None:
    sessions = tmp_path / "sessions.cfg"
    sessions.write_text("[SESSION]\nSessionQualifier=PRICES\n", encoding="utf-8")

    with pytest.raises(ConfigError, match="SessionQualifier must be QUOTE or TRADE, not 'PRICES'"):
        render_settings(config_with(sessions))


def test_render_settings_missing_relative_sessions_file_raises_config_error() -> None:
    with pytest.raises(ConfigError, match=r"file not found: no-such-sessions\.cfg"):
        render_settings(config_with(Path("no-such-sessions.cfg")))


def test_parse_settings_line_outside_a_section_raises_config_error_with_line_number() -> None:
    with pytest.raises(ConfigError, match="sessions file line 2: expected key=value inside a section"):
        parse_settings("# comment\nConnectionType=initiator\n")


def test_invalid_yaml_is_reported_without_echoing_the_offending_line(tmp_path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("account:\n  password: `Hunter2:secret\n")

    with pytest.raises(ConfigError) as refused:
        load_config(path, environ={})

    assert "line 2" in str(refused.value)
    assert "Hunter2" not in str(refused.value)


def test_the_example_config_is_valid_and_lists_the_market_data_section() -> None:
    config = load_config(
        REPO_ROOT / "config.example.yaml", {"FIXADAPTER_ACCOUNTS__MAIN__FIX__PASSWORD": PASSWORD}
    )
    assert config.account("main").fix.password.get_secret_value() == PASSWORD
    assert [(s.symbol, s.depth) for s in config.market_data.subscriptions] == [
        ("EURUSD", True),
        ("GBPUSD", False),
    ]
    assert config.market_data.storage.retention_days == 30


def test_a_bad_market_data_key_is_named() -> None:
    data = {"account": account(), "market_data": {"storage": {"sample_interval_ms": -1}}}
    with pytest.raises(ConfigError, match=r"market_data\.storage\.sample_interval_ms"):
        build_config(data, ENVIRON)


@pytest.mark.parametrize(
    ("store", "compliance", "expected"),
    [
        ("sqlite:///var/fixadapter.db", None, "sqlite:///var/fixadapter-fix.db"),
        ("sqlite:////data/a.sqlite?timeout=5", None, "sqlite:////data/a-fix.sqlite?timeout=5"),
        ("postgresql+psycopg://u@db/trading", None, "postgresql+psycopg://u@db/trading"),
        ("sqlite:///var/fixadapter.db", "sqlite:///elsewhere.db", "sqlite:///elsewhere.db"),
    ],
)
def test_fix_messages_get_their_own_sqlite_file_unless_a_database_is_named(
    store: str, compliance: str | None, expected: str
) -> None:
    values: dict[str, Any] = {"account": account(password=PASSWORD), "store": {"url": store}}
    if compliance is not None:
        values["compliance"] = {"store_url": compliance}
    assert build_config(values, environ={}).compliance_store_url == expected


def test_render_settings_refuses_quickfix_failover_hosts_that_would_bypass_tls(tmp_path: Path) -> None:
    sessions = tmp_path / "sessions.cfg"
    text = (REPO_ROOT / "sessions.cfg").read_text(encoding="utf-8")
    sessions.write_text(
        text + "SocketConnectHost1=h58.p.ctrader.com\nSocketConnectPort1=5202\n", encoding="utf-8"
    )

    with pytest.raises(ConfigError, match="SocketConnectHost1, SocketConnectPort1 not supported"):
        render_settings(config_with(sessions))


# ---- several accounts ---------------------------------------------------------------------------


def two_accounts(**changes: Any) -> dict[str, Any]:
    return {
        "accounts": [
            {"name": "main", "fix": account()},
            {"name": "hedge", "fix": account(sender_comp_id="demo.broker.7654321", username="7654321")},
        ],
        **changes,
    }


TWO_PASSWORDS = {
    "FIXADAPTER_ACCOUNTS__MAIN__FIX__PASSWORD": "main-secret",
    "FIXADAPTER_ACCOUNTS__HEDGE__FIX__PASSWORD": "hedge-secret",
}


def test_accounts_are_listed_by_name_each_with_its_password_from_its_own_variable() -> None:
    config = build_config(two_accounts(), TWO_PASSWORDS)

    assert config.account_names == ["main", "hedge"]
    assert config.account("hedge").fix.password.get_secret_value() == "hedge-secret"
    assert config.account("main").fix.password.get_secret_value() == "main-secret"


def test_the_single_account_form_is_one_account_named_default_with_its_errors_named_as_before() -> None:
    config = build_config({"account": account()}, ENVIRON)
    assert config.account_names == ["default"] and config.account() is config.accounts[0]

    with pytest.raises(
        ConfigError,
        match=r"  account\.password is not set: set the environment variable FIXADAPTER_ACCOUNT__PASSWORD",
    ):
        build_config({"account": account()}, {})


def test_an_account_is_asked_for_by_name_when_several_are_configured() -> None:
    config = build_config(two_accounts(), TWO_PASSWORDS)

    with pytest.raises(ConfigError, match=r"2 accounts are configured \(main, hedge\): name one"):
        config.account()
    with pytest.raises(ConfigError, match=r"no account named 'carol'; configured: main, hedge"):
        config.account("carol")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (two_accounts(account=account()), "give either `account:` .* or `accounts:`"),
        ({"accounts": []}, r"accounts: .*at least 1 item"),
        ({}, r"accounts: no account is configured: list them under `accounts:`"),
        (
            {
                "accounts": [
                    {"name": "main", "fix": account()},
                    {"name": "main", "fix": account(username="2", password="x")},  # noqa: S106 - a test value
                ]
            },
            "listed twice: main",
        ),
        (
            {
                "accounts": [
                    {"name": "main", "fix": account()},
                    {"name": "other", "fix": account(username="2")},
                ]
            },
            "accounts main and other have the same sender_comp_id demo.broker.1234567",
        ),
        ({"accounts": [{"name": "Desk-1", "fix": account()}]}, r"accounts\.0\.name: String should match"),
    ],
)
def test_an_accounts_list_that_cannot_be_traded_is_refused_with_the_reason(
    data: dict[str, Any], expected: str
) -> None:
    names = {entry["name"] for entry in data.get("accounts", [])} & {"main", "hedge", "other"}
    environ = {f"FIXADAPTER_ACCOUNTS__{name.upper()}__FIX__PASSWORD": "x" for name in names}
    with pytest.raises(ConfigError, match=expected):
        build_config(data, environ)


def test_a_variable_for_an_account_not_listed_is_named() -> None:
    environ = {**TWO_PASSWORDS, "FIXADAPTER_ACCOUNTS__CAROL__FIX__PASSWORD": "x"}

    with pytest.raises(
        ConfigError, match=r"FIXADAPTER_ACCOUNTS__CAROL__\*: no account named 'carol' .*main, hedge"
    ):
        build_config(two_accounts(), environ)


def test_the_single_account_variable_beside_an_accounts_list_names_the_variable_to_use() -> None:
    with pytest.raises(ConfigError, match="FIXADAPTER_ACCOUNTS__MAIN__FIX__PASSWORD"):
        build_config(two_accounts(), {**TWO_PASSWORDS, "FIXADAPTER_ACCOUNT__PASSWORD": "x"})


def test_an_account_may_have_limits_and_market_data_of_its_own() -> None:
    data = two_accounts(risk={"max_open_orders": 5})
    data["accounts"][1]["risk"] = {"max_open_orders": 1}
    data["accounts"][1]["market_data"] = {"subscriptions": []}
    config = build_config({**data, "market_data": {"subscriptions": [{"symbol": "EURUSD"}]}}, TWO_PASSWORDS)

    assert config.risk_for("main").max_open_orders == 5 and config.risk_for("hedge").max_open_orders == 1
    assert len(config.market_data_for("main").subscriptions) == 1
    assert config.market_data_for("hedge").subscriptions == ()


def test_render_settings_gives_every_account_its_own_quote_and_trade_sessions() -> None:
    config = build_config(two_accounts(), TWO_PASSWORDS)

    sessions = [v for name, v in parse_settings(render_settings(config)) if name == "SESSION"]

    assert sorted((s["SenderCompID"], s["SessionQualifier"]) for s in sessions) == [
        ("demo.broker.1234567", "QUOTE"),
        ("demo.broker.1234567", "TRADE"),
        ("demo.broker.7654321", "QUOTE"),
        ("demo.broker.7654321", "TRADE"),
    ]
    assert "main-secret" not in render_settings(config) and "hedge-secret" not in render_settings(config)


def test_a_password_in_the_file_is_warned_about_naming_the_accounts_own_variable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "two.yaml"
    data = two_accounts()
    data["accounts"][1]["fix"]["password"] = "in-the-file"  # noqa: S105 - what the test looks for
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    load_config(path, {"FIXADAPTER_ACCOUNTS__MAIN__FIX__PASSWORD": "x"})

    assert "FIXADAPTER_ACCOUNTS__HEDGE__FIX__PASSWORD" in caplog.text
    assert "in-the-file" not in caplog.text


# -- the Open API application's settings, shared by its accounts ---------------------------------------

LOGIN_SECRET = {"FIXADAPTER_OPENAPI__CLIENT_SECRET": "app-s3cret"}  # what `openapi login` reads


def openapi_accounts(*names: str, **own: Any) -> dict[str, Any]:
    return {
        "accounts": [
            {"name": name, "openapi": {"ctid_trader_account_id": 20000001 + n, "client_id": "app", **own}}
            for n, name in enumerate(names)
        ]
    }


def test_the_login_tools_client_secret_variable_is_the_secret_of_every_open_api_account() -> None:
    """One variable for the login and the daemon: exported for `openapi login`, it must not break a
    config (it named a section the config did not have)."""
    config = build_config(openapi_accounts("main", "hedge"), LOGIN_SECRET)
    assert [a.openapi.client_secret.get_secret_value() for a in config.accounts if a.openapi] == [
        "app-s3cret",
        "app-s3cret",
    ]
    fix_only = build_config({"account": account()}, {**ENVIRON, **LOGIN_SECRET})
    assert fix_only.accounts[0].fix is not None


def test_an_accounts_own_open_api_settings_win_over_the_applications() -> None:
    own = {"FIXADAPTER_ACCOUNTS__MAIN__OPENAPI__CLIENT_SECRET": "own-s3cret", **LOGIN_SECRET}
    data = {
        **openapi_accounts("main"),
        "openapi": {"client_id": "shared-app", "token_file": "var/shared.fernet"},
    }
    data["accounts"][0]["openapi"].pop("client_id")
    (entry,) = build_config(data, own).accounts
    assert entry.openapi is not None
    assert entry.openapi.client_secret.get_secret_value() == "own-s3cret"
    assert (entry.openapi.client_id, str(entry.openapi.token_file)) == ("shared-app", "var/shared.fernet")


def test_a_missing_open_api_secret_names_both_variables_that_can_set_it() -> None:
    with pytest.raises(ConfigError) as refused:
        build_config(openapi_accounts("main"), {})
    text = str(refused.value)
    assert "FIXADAPTER_OPENAPI__CLIENT_SECRET" in text
    assert "FIXADAPTER_ACCOUNTS__MAIN__OPENAPI__CLIENT_SECRET" in text


@pytest.mark.parametrize(
    ("where", "variable"),
    [
        ("application", "FIXADAPTER_OPENAPI__CLIENT_SECRET"),
        ("account", "FIXADAPTER_ACCOUNTS__MAIN__OPENAPI__CLIENT_SECRET"),
    ],
)
def test_an_open_api_client_secret_in_the_file_is_warned_about_naming_its_variable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, where: str, variable: str
) -> None:
    path = tmp_path / "openapi.yaml"
    data = openapi_accounts("main")
    secret = "in-the-file"  # noqa: S105 - what the test looks for
    if where == "application":
        data["openapi"] = {"client_secret": secret}
    else:
        data["accounts"][0]["openapi"]["client_secret"] = secret
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    load_config(path, {})

    assert variable in caplog.text
    assert secret not in caplog.text

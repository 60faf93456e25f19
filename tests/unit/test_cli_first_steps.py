"""What a new user sees at the first mistakes (issue 16, items 2, 4 and 10): a bad number, a missing or
misspelt password variable, an unknown environment key; `--version`, defaults in `--help`, and exit codes
that tell usage errors (2), refusals (1) and timeouts (3) apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixadapter import __version__
from fixadapter.cli import main
from fixadapter.cli_support import EXIT_CODES_EPILOG

ORDER = ["order", "--config", "c.yaml", "--symbol", "EURUSD", "--side", "buy"]
ACCOUNT_YAML = "account:\n  host: 127.0.0.1\n  sender_comp_id: demo.sim.1234567\n  username: '1234567'\n"


@pytest.fixture(autouse=True)
def _no_log_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command's log handler would outlive capsys's stream (and break later tests' logging)."""
    monkeypatch.setattr("fixadapter.cli.configure_logging", lambda _level, **_options: None)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage errors, --help, --version
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("options", "line"),
    [
        (
            ["--quantity", "10k"],
            "fixadapter order: error: argument --quantity: quantity must be a number, not '10k' (write it "
            "out in units: 10k is 10000) (see fixadapter order --help)",
        ),
        (
            ["--quantity", "10000", "--type", "limit", "--price", "1,08"],
            "fixadapter order: error: argument --price: price must be a number, not '1,08' (write the "
            "decimal point as a dot: 1.08) (see fixadapter order --help)",
        ),
        (
            ["--quantity", "-5"],
            "fixadapter order: error: argument --quantity: quantity must be more than 0, got -5 (see "
            "fixadapter order --help)",
        ),
        (
            ["--quantity", "10000", "--type", "stop", "--stop-price", "nan"],
            "fixadapter order: error: argument --stop-price: stop price must be a number, not 'nan' (see "
            "fixadapter order --help)",
        ),
    ],
)
def test_a_bad_number_on_the_order_command_line_is_one_line_and_exit_2(
    options: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run([*ORDER, *options], capsys)
    assert code == 2
    assert out == "" and err == line + "\n"


def test_an_order_the_model_refuses_is_one_line_without_a_pydantic_link_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(ACCOUNT_YAML, encoding="utf-8")
    monkeypatch.setenv("FIXADAPTER_ACCOUNT__PASSWORD", "x")
    argv = ["order", "--config", str(config), "--symbol", "EURUSD", "--side", "buy", "--quantity", "0.001"]
    code, _, err = run(argv, capsys)
    assert code == 1
    assert err == "fixadapter order: quantity: quantity 0.001 is finer than the venue's step of 0.01 units\n"

    code, _, err = run([*argv[:-1], "10000", "--type", "limit"], capsys)
    assert code == 1
    assert err == "fixadapter order: a limit order needs price and no stop_price\n"
    assert "pydantic" not in err


def test_a_missing_password_names_the_variable_to_set_never_a_masked_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(ACCOUNT_YAML, encoding="utf-8")
    monkeypatch.delenv("FIXADAPTER_ACCOUNT__PASSWORD", raising=False)
    code, _, err = run([*ORDER[:2], str(config), *ORDER[3:], "--quantity", "10000"], capsys)
    assert code == 1
    assert err == (
        "fixadapter order: invalid configuration:\n"
        "  account.password is not set: set the environment variable FIXADAPTER_ACCOUNT__PASSWORD "
        "(never the file)\n"
    )
    assert "******" not in err


def test_a_missing_password_of_a_listed_account_names_its_own_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "accounts:\n  - name: main\n    fix:\n      host: 127.0.0.1\n      sender_comp_id: a.b.1\n"
        "      username: '1'\n",
        encoding="utf-8",
    )
    code, _, err = run([*ORDER[:2], str(config), *ORDER[3:], "--quantity", "10000"], capsys)
    assert code == 1
    assert err == (
        "fixadapter order: invalid configuration:\n"
        "  accounts.0.fix.password is not set: set the environment variable "
        "FIXADAPTER_ACCOUNTS__MAIN__FIX__PASSWORD (never the file)\n"
    )


@pytest.mark.parametrize(
    ("yaml_text", "typo", "meant"),
    [
        (ACCOUNT_YAML, "FIXADAPTER_ACCOUNT_PASSWORD", "FIXADAPTER_ACCOUNT__PASSWORD"),
        (ACCOUNT_YAML, "FIXADAPTER_STORE_URL", "FIXADAPTER_STORE__URL"),
        (
            "accounts:\n  - name: main\n    fix: {host: 127.0.0.1, sender_comp_id: a.b.1, username: '1'}\n",
            "FIXADAPTER_ACCOUNT_PASSWORD",
            "FIXADAPTER_ACCOUNTS__MAIN__FIX__PASSWORD",
        ),
    ],
)
def test_a_single_underscore_typo_of_a_variable_is_reported_with_the_right_name(
    yaml_text: str,
    typo: str,
    meant: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml_text, encoding="utf-8")
    monkeypatch.setenv(typo, "hunter2")
    code, _, err = run([*ORDER[:2], str(config), *ORDER[3:], "--quantity", "10000"], capsys)
    assert code == 1
    assert err == (
        "fixadapter order: environment variables not read:\n"
        f"  {typo} is not read (a single `_` where `__` separates a section from its key): "
        f"did you mean {meant}?\n"
    )
    assert "hunter2" not in err


def test_variables_of_other_tools_with_one_underscore_are_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fixadapter.config import load_config

    config = tmp_path / "config.yaml"
    config.write_text(ACCOUNT_YAML, encoding="utf-8")
    environ = {
        "FIXADAPTER_ACCOUNT__PASSWORD": "x",
        "FIXADAPTER_SIM_PASSWORD": "y",
        "FIXADAPTER_HTTP_TOKEN": "z",
        "FIXADAPTER_OPENAPI_TOKEN_KEY": "k",
        "FIXADAPTER_TEST_POSTGRES_URL": "postgresql://x",
    }
    assert load_config(config, environ).account().fix is not None


def test_an_unknown_environment_key_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(ACCOUNT_YAML, encoding="utf-8")
    monkeypatch.setenv("FIXADAPTER_ACCOUNT__PASSWORD", "x")
    monkeypatch.setenv("FIXADAPTER_ACCOUNT__TRADE_PROT", "5202")
    monkeypatch.setenv("FIXADAPTER_STORE__URLX", "sqlite://")
    code, _, err = run([*ORDER[:2], str(config), *ORDER[3:], "--quantity", "10000"], capsys)
    assert code == 1
    assert err == (
        "fixadapter order: invalid configuration:\n"
        "  account.trade_prot: Extra inputs are not permitted (from the environment variable "
        "FIXADAPTER_ACCOUNT__TRADE_PROT)\n"
        "  store.urlx: Extra inputs are not permitted (from the environment variable "
        "FIXADAPTER_STORE__URLX)\n"
    )


def test_version_help_defaults_and_exit_codes_are_shown(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--version"], capsys)
    assert (code, out) == (0, f"fixadapter {__version__}\n")

    code, out, _ = run(["simulate", "--help"], capsys)
    flat = " ".join(out.split())
    assert code == 0
    assert "the address every port listens on (0.0.0.0: all) (default: 127.0.0.1)" in flat
    assert "the FIX QUOTE port (0 picks one) (default: 5201)" in flat
    assert " ".join(EXIT_CODES_EPILOG.split()) in flat

    code, out, _ = run(["order", "--help"], capsys)
    flat = " ".join(out.split())
    assert "stop watching after this long (default: 30.0)" in flat
    assert "(default: None)" not in flat and "(default: False)" not in flat
    assert " ".join(EXIT_CODES_EPILOG.split()) in flat


def test_every_option_with_a_default_says_it_in_help() -> None:
    import argparse

    from fixadapter.cli import build_parser

    silent = []

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child_name, child in action.choices.items():
                    walk(child, f"{name} {child_name}")
            elif action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
                shown = parser._get_formatter()._get_help_string(action) or ""  # before wrapping
                if not action.help or "default" not in shown:
                    silent.append(f"{name} {action.option_strings[0]}")

    walk(build_parser(), "fixadapter")
    assert silent == []

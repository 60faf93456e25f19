"""What every `fixadapter` command shares: its exit codes, number arguments that fail in one line, help
that shows defaults, and pydantic errors in words (no traceback, no web link)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import NoReturn

from pydantic import ValidationError

EXIT_OK = 0
EXIT_FAILED = 1  # refused (config, risk, venue, a directory not ours) or failed
EXIT_USAGE = 2  # the command line itself (argparse)
EXIT_TIMEOUT = 3  # no answer in time (logon, the first quote, an order's final state)

EXIT_CODES_EPILOG = (
    "exit codes: 0 done; 1 refused or failed (configuration, risk, venue, ...); 2 usage error (the command "
    "line); 3 timed out (logon, first quote, an order's final state)"
)


def _decimal(text: str, what: str) -> Decimal:
    cleaned = text.strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        hint = ""
        if "," in cleaned and "." not in cleaned:
            hint = f" (write the decimal point as a dot: {cleaned.replace(',', '.')})"
        elif cleaned[-1:].lower() in ("k", "m"):
            hint = " (write it out in units: 10k is 10000)"
        raise argparse.ArgumentTypeError(f"{what} must be a number, not {text!r}{hint}") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"{what} must be a number, not {text!r}")
    return value


def positive_decimal(what: str) -> Callable[[str], Decimal]:
    """An argparse type: a number above 0 (`10k`, `1,08` and `-5` each refused in one line)."""

    def parse(text: str) -> Decimal:
        value = _decimal(text, what)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{what} must be more than 0, got {text}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


class CliParser(argparse.ArgumentParser):
    """A usage error in one line (exit 2), pointing at --help instead of printing the whole usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class DefaultsFormatter(argparse.HelpFormatter):
    """Help lines end with "(default: X)" when an option has a default worth saying (not None, not False)
    and its help does not already name it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or not action.option_strings
            or isinstance(action, argparse._HelpAction | argparse._VersionAction)
        ):
            return action.help
        return f"{text} (default: %(default)s)".lstrip()


def show_defaults(parser: argparse.ArgumentParser) -> None:
    """Every parser under `parser` (subcommands too) shows defaults and the exit codes."""
    parser.formatter_class = DefaultsFormatter
    parser.epilog = parser.epilog or EXIT_CODES_EPILOG
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                show_defaults(child)


def describe_validation(error: ValidationError) -> str:
    """A pydantic error as `field: message` lines, without its input echo or documentation link."""
    lines = []
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return "; ".join(lines)

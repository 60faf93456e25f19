"""`fixadapter check` for an account on FIX: TCP and TLS of both ports, then the logons through the
adapter's own FIX connector (the daemon's QuickFIX sessions, TLS forwarders and logon rules), the
SecurityList and the positions on TRADE, and the Logout. No order is sent."""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING

from fixadapter.check.probe import Endpoint, probe
from fixadapter.check.report import Report, Timer
from fixadapter.config import PLAIN_PORTS, TLS_PORTS, AccountConfig, AdapterConfig, password_env
from fixadapter.connectors.fix.application import venue_words
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.errors import FixAdapterError
from fixadapter.metrics import Metrics
from fixadapter.model.enums import Channel, SessionState
from fixadapter.model.reports import ConnectionStatus, VenueReport
from fixadapter.model.requests import DEFAULT_ACCOUNT
from fixadapter.tls.forwarder import client_context

if TYPE_CHECKING:
    from fixadapter.connectors.fix.connector import FixConnector

PORTS_HINT = (
    "cTrader's FIX ports: QUOTE 5211 with TLS or 5201 plain, TRADE 5212 with TLS or 5202 plain; "
    "the host and ports are on the broker's FIX API credentials form"
)
WRONG_SUB_ID = re.compile(r"TargetSubID is assigned with the unexpected value '([^']*)', expected '([^']*)'")
KINDS = (SessionKind.QUOTE, SessionKind.TRADE)
RECONNECT_NEVER_SECONDS = 300  # the longest reconnect_seconds the config takes: longer than any check


def setting(account: str, key: str) -> str:
    """How a person names a FIX setting of `account` in the config file."""
    return f"account.{key}" if account == DEFAULT_ACCOUNT else f"accounts[{account}].fix.{key}"


def password_variable(account: str) -> str:
    return "FIXADAPTER_ACCOUNT__PASSWORD" if account == DEFAULT_ACCOUNT else password_env(account)


def refusal(name: str, account: AccountConfig, kind: SessionKind, text: str | None) -> tuple[str, str]:
    """What the venue's answer to a Logon means (reference ctrader-fix.md 1.5), and what to do."""
    text = venue_words(text)  # its own words: what it means is said here, once
    shared = account.port(SessionKind.QUOTE) == account.port(SessionKind.TRADE)
    if text is None and shared:
        return (
            "the venue closed the connection without answering the Logon (no Logout)",
            "the other session holds this port's session already: see the `ports` line",
        )
    if text is None:
        return (
            "the venue closed the connection without answering the Logon (no Logout)",
            f"the venue does not know SenderCompID {account.sender_comp_id!r} with TargetCompID "
            f"{account.target_comp_id!r}: copy both from the broker's FIX API credentials form "
            f"({setting(name, 'sender_comp_id')} is <environment>.<broker>.<login>, "
            f"{setting(name, 'target_comp_id')} usually CSERVER)",
        )
    if text.startswith("TLS to "):  # the TLS forwarder's own words (the probe worked, this attempt did not)
        return text, "see the TLS line above; the daemon would retry with a growing wait"
    said = f'the venue refused the Logon: "{text}"'
    wrong = WRONG_SUB_ID.search(text)
    if wrong is not None:
        sent, port_is = wrong.group(1), wrong.group(2)
        port = account.port(kind)
        if sent in ("QUOTE", "TRADE") and port_is in ("QUOTE", "TRADE") and sent != port_is:
            return (
                said,
                f"port {port} is the {port_is} port, not the {sent} port: set "
                f"{setting(name, sent.lower() + '_port')} to the {sent} port "
                f"({TLS_PORTS[SessionKind(sent)]} with TLS, {PLAIN_PORTS[SessionKind(sent)]} plain); "
                "QUOTE and TRADE may simply be swapped",
            )
        return said, f"the {kind.value} session's SubIDs are not what the venue expects: keep sessions.cfg's"
    if "RET_NO_SUCH_LOGIN" in text:
        return (
            said,
            f"the venue has no login {account.username} under SenderCompID {account.sender_comp_id!r}: "
            f"copy {setting(name, 'sender_comp_id')} (<environment>.<broker>.<login>) and "
            f"{setting(name, 'username')} (the bare numeric login) from the broker's credentials form",
        )
    if "RET_INVALID_DATA" in text:
        return (
            said,
            f"the password is wrong (or the login {account.username}): set the FIX password from the "
            f"broker's credentials form in {password_variable(name)}; stop retrying until it is right, "
            "a broker may lock an account after repeated refusals",
        )
    if "route" in text.lower():
        return (
            said,
            f"this server does not hold the account: check {setting(name, 'host')} (demo or live server) "
            "on the broker's FIX API credentials form",
        )
    return said, "check the login, password and CompIDs against the broker's FIX API credentials form"


def single_attempt(config: AdapterConfig, name: str) -> AdapterConfig:
    """The config with one Logon per session: the first refusal stops that session's attempts (a broker
    may lock an account that keeps logging on with a wrong password) and QuickFIX's next connection would
    come after the check is over."""
    entry = config.account(name)
    fix = config.fix_settings(name).model_copy(
        update={"logon_refusals_max": 1, "reconnect_seconds": RECONNECT_NEVER_SECONDS}
    )
    accounts = tuple(
        entry.model_copy(update={"fix": fix}) if other.name == name else other for other in config.accounts
    )
    return config.model_copy(update={"accounts": accounts})


class _Sessions:
    """The FIX connector's session changes, as the check waits for them."""

    def __init__(self) -> None:
        self.first: dict[SessionKind, ConnectionStatus] = {}
        self.answered_at: dict[SessionKind, float] = {}  # time.monotonic() of each first status
        self.logged_on: set[SessionKind] = set()
        self.logged_out_after_logon: set[SessionKind] = set()
        self.last_logout = 0.0  # time.monotonic() of the latest logout after a logon
        self.changed = asyncio.Event()

    def deliver(self, report: VenueReport) -> None:
        if not isinstance(report, ConnectionStatus):
            return
        kind = SessionKind.TRADE if report.channel is Channel.TRADING else SessionKind.QUOTE
        if kind not in self.first:
            self.first[kind] = report
            self.answered_at[kind] = time.monotonic()
        if report.state is SessionState.LOGGED_ON:
            self.logged_on.add(kind)
        elif kind in self.logged_on:
            self.logged_out_after_logon.add(kind)
            self.last_logout = time.monotonic()
        self.changed.set()

    async def wait(self, kinds: set[SessionKind], timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not kinds <= set(self.first):
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            pass


async def check_fix(config: AdapterConfig, name: str, report: Report, timeout: float) -> None:
    account = config.fix_settings(name)
    report.heading(
        f"account {name}: FIX, SenderCompID {account.sender_comp_id}, login {account.username}, "
        f"QUOTE {account.endpoint(SessionKind.QUOTE)}, TRADE {account.endpoint(SessionKind.TRADE)}"
    )
    if account.port(SessionKind.QUOTE) == account.port(SessionKind.TRADE):
        report.failed(
            "ports",
            f"QUOTE and TRADE both use {account.host}:{account.port(SessionKind.QUOTE)}",
            f"each session has its own port: set {setting(name, 'quote_port')} and "
            f"{setting(name, 'trade_port')} ({PORTS_HINT})",
        )
    reachable: set[SessionKind] = set()
    for kind in KINDS:
        tls = account.tls(kind)
        endpoint = Endpoint(
            kind.value,
            account.host,
            account.port(kind),
            tls,
            account.tls_ca_file,
            account.tls_timeout_seconds,
            PORTS_HINT,
            setting(name, "tls_ca_file"),
        )
        if await probe(endpoint, report, client_context(account.tls_ca_file) if tls else None):
            reachable.add(kind)
    if not reachable:
        report.skipped("logon", "neither session is reachable")
        return
    await _sessions(config, name, account, reachable, report, timeout)


async def _sessions(
    config: AdapterConfig,
    name: str,
    account: AccountConfig,
    reachable: set[SessionKind],
    report: Report,
    timeout: float,
) -> None:
    from fixadapter.connectors.fix.connector import FixConnector  # quickfix loads only when used

    metrics = Metrics(account=name, connector="fix")
    connector = FixConnector(single_attempt(config, name), metrics, account=name)
    sessions = _Sessions()
    started = time.monotonic()
    await connector.start(sessions.deliver)
    try:
        await sessions.wait(reachable, timeout)
        for kind in KINDS:
            seconds = sessions.answered_at.get(kind, time.monotonic()) - started
            step = f"{kind.value} logon"
            if kind not in reachable:
                report.skipped(step, f"{account.endpoint(kind)} is not reachable")
                continue
            status = sessions.first.get(kind)
            if status is None:
                report.failed(
                    step,
                    f"no answer to the Logon within {timeout:g} s",
                    "the venue neither accepted nor refused: check the CompIDs and that the port is the "
                    f"{kind.value} port of a cTrader FIX server ({PORTS_HINT})",
                    seconds,
                )
            elif status.state is SessionState.LOGGED_ON:
                report.ok(step, f"logged on as {account.sender_comp_id} (login {account.username})", seconds)
            else:
                text, advice = refusal(name, account, kind, status.text)
                report.failed(step, text, advice, seconds)
        if SessionKind.TRADE in sessions.logged_on:
            await _trade_questions(connector, report, timeout)
        else:
            report.skipped("security list", "TRADE is not logged on")
            report.skipped("positions", "TRADE is not logged on")
    finally:
        was_on = set(sessions.logged_on)
        stopping = time.monotonic()
        await connector.stop()
        for _ in range(50):  # the logouts' statuses cross from QuickFIX's threads to this loop
            if was_on <= sessions.logged_out_after_logon:
                break
            await asyncio.sleep(0.02)
        took = max(0.0, sessions.last_logout - stopping) if sessions.last_logout else None
        _logout_line(metrics, was_on, sessions, report, took)


async def _trade_questions(connector: FixConnector, report: Report, timeout: float) -> None:
    timer = Timer()
    try:
        async with asyncio.timeout(timeout):
            instruments = await connector.instruments()
        report.ok("security list", f"{len(instruments)} symbols", timer.seconds)
    except TimeoutError:
        report.failed(
            "security list",
            f"no SecurityList within {timeout:g} s",
            "the TRADE session is up but the venue does not answer: ask the broker",
            timer.seconds,
        )
    except FixAdapterError as exc:
        report.failed("security list", str(exc), "ask the broker", timer.seconds)
    timer = Timer()
    try:
        async with asyncio.timeout(timeout):
            answer = await connector.positions()
        report.ok("positions", f"{len(answer.positions)} open", timer.seconds)
    except TimeoutError:
        report.failed(
            "positions",
            f"no answer to RequestForPositions within {timeout:g} s",
            "the TRADE session is up but the venue does not answer: ask the broker",
            timer.seconds,
        )
    except FixAdapterError as exc:
        report.failed("positions", str(exc), "ask the broker", timer.seconds)


def _logout_line(
    metrics: Metrics, was_on: set[SessionKind], sessions: _Sessions, report: Report, seconds: float | None
) -> None:
    if not was_on:
        report.skipped("logout", "no session was logged on")
        return
    names = " and ".join(kind.value for kind in KINDS if kind in was_on)
    still_on = [
        kind.value for kind in KINDS if kind in was_on and kind not in sessions.logged_out_after_logon
    ]
    if still_on:
        report.failed(
            "logout",
            f"{', '.join(still_on)} did not log out",
            "the venue did not confirm the Logout; nothing else is affected",
            seconds,
        )
        return
    answered = [
        kind.value
        for kind in KINDS
        if kind in was_on
        and (
            metrics.value("fixadapter_messages_received_total", {"session": kind.value, "message_type": "5"})
            or 0
        )
        > 0
    ]
    if len(answered) == len(was_on):
        report.ok("logout", f"{names} logged out, the venue answered", seconds)
    else:
        report.ok("logout", f"{names} logged out (the venue closed without answering the Logout)", seconds)

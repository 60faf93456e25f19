"""Run the simulator as a separate process (tests, demo, bench) and talk to its control port.

Ports are never chosen here and bound there (another process could take one in between): the first
start asks for port 0 everywhere, the simulator binds and reports what it got on its ready line, and a
restart asks for those same ports again, as a real venue keeps its ports. A simulator that dies before it
is ready raises SimulatorFailed with its exit status and the end of its log.

A simulator serves one account (sender_comp_id, username, password) or, given `accounts`, each of them;
passwords reach it by environment only (FIXADAPTER_SIM_PASSWORD[_<NAME>]), never on its command line,
and its ready line names each account without one.

Every simulator also serves the cTrader Open API on a TLS port (its CA: `ca_file`) with an OAuth endpoint
beside it; the application's client secret reaches it by environment (FIXADAPTER_SIM_OPENAPI_SECRET) too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fixadapter.connectors.fix.kinds import SessionKind

if TYPE_CHECKING:
    from fixadapter.connectors.openapi.tokens import TokenPair
from fixadapter.model.requests import DEFAULT_ACCOUNT
from fixadapter.sim.config import (
    DEFAULT_OPENAPI_SECRET,
    OPENAPI_SECRET_VARIABLE,
    PASSWORD_VARIABLE,
    password_variable,
)
from fixadapter.sim.runner import ACCOUNTS_MARK, PORTS_MARK, READY_LINE

START_SECONDS = 60.0
LOG_TAIL_LINES = 25


class SimulatorFailed(RuntimeError):
    """The simulator process ended, or never said it was ready; the message carries why."""


def exit_status(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(its log {path} cannot be read: {exc})"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else f"(its log {path} is empty)"


def read_accounts(line: str) -> list[dict[str, Any]]:
    """The accounts a ready line reports (name, sender_comp_id, username, ctid_trader_account_id,
    is_live; see runner.ACCOUNTS_MARK)."""
    before_ports = line.rpartition(PORTS_MARK)[0]
    _, mark, text = before_ports.rpartition(ACCOUNTS_MARK)
    if not mark:
        raise SimulatorFailed(f"the simulator's ready line names no accounts: {line.strip()!r}")
    return [{str(k): v for k, v in account.items()} for account in json.loads(text)]


def read_ports(line: str) -> dict[str, int | None]:
    """The ports a ready line reports (see runner.PORTS_MARK)."""
    _, mark, text = line.rpartition(PORTS_MARK)
    if not mark:
        raise SimulatorFailed(f"the simulator's ready line names no ports: {line.strip()!r}")
    ports = json.loads(text)
    return {name: int(port) if port is not None else None for name, port in ports.items()}


@dataclass(frozen=True)
class SimAccountCredentials:
    """An account a SimProcess serves, with the password the harness chose for it."""

    name: str
    sender_comp_id: str
    username: str
    password: str = field(repr=False)
    # Its Open API id: None lets the simulator number it (as the ready line then reports); a live account
    # needs one.
    ctid_trader_account_id: int | None = None
    is_live: bool = False

    @property
    def argument(self) -> str:
        """Its --account value (the password goes by environment)."""
        argument = f"{self.name}:{self.sender_comp_id}:{self.username}"
        if self.ctid_trader_account_id is not None:
            argument += f":{self.ctid_trader_account_id}"
            if self.is_live:
                argument += ":live"
        elif self.is_live:
            raise ValueError(f"account {self.name}: a live account needs its ctid_trader_account_id")
        return argument


@dataclass
class SimProcess:
    """One simulator process; a port left 0 is bound by the simulator and kept across restarts.

    `accounts` (when given) are served instead of the single sender_comp_id/username/password account.
    """

    state_path: Path | None = None
    quote_port: int = 0
    trade_port: int = 0
    control_port: int = 0
    sender_comp_id: str = "demo.sim.1234567"
    username: str = "1234567"
    password: str = field(default="sim-password", repr=False)  # the simulator's own test credential
    accounts: tuple[SimAccountCredentials, ...] = ()
    extra_args: tuple[str, ...] = ()
    log_path: Path | None = None
    # TLS ports beside the plain ones, with a certificate made at start in tls_dir (its CA: ca_file).
    tls: bool = False
    tls_dir: Path | None = None
    tls_names: tuple[str, ...] = ()
    quote_tls_port: int = 0
    trade_tls_port: int = 0
    openapi_port: int = 0
    oauth_port: int = 0
    openapi_secret: str = field(default=DEFAULT_OPENAPI_SECRET, repr=False)
    openapi_client_id: str = "fixadapter-sim"
    _served: tuple[SimAccountCredentials, ...] = ()
    _process: subprocess.Popen[bytes] | None = None
    _stderr_path: Path | None = None
    _own_stderr: bool = field(default=False, repr=False)

    def start(self) -> SimProcess:
        command = [
            sys.executable,
            "-m",
            "fixadapter",
            "simulate",
            "--quote-port",
            str(self.quote_port),
            "--trade-port",
            str(self.trade_port),
            "--control-port",
            str(self.control_port),
            "--sender-comp-id",
            self.sender_comp_id,
            "--username",
            self.username,
            *(option for account in self.accounts for option in ("--account", account.argument)),
            "--openapi-port",
            str(self.openapi_port),
            "--oauth-port",
            str(self.oauth_port),
            "--openapi-client-id",
            self.openapi_client_id,
            "--tls-dir",
            str(self.tls_directory),
            *self.extra_args,
        ]
        if self.state_path is not None:
            command += ["--state", str(self.state_path)]
        if self.tls:
            command += [
                "--quote-tls-port",
                str(self.quote_tls_port),
                "--trade-tls-port",
                str(self.trade_tls_port),
            ]
            for name in self.tls_names:
                command += ["--tls-name", name]
        env = {**os.environ, PASSWORD_VARIABLE: self.password, OPENAPI_SECRET_VARIABLE: self.openapi_secret}
        env.update({password_variable(account.name): account.password for account in self.accounts})
        stderr_path = self._stderr_file()
        with open(stderr_path, "ab") as log:
            self._process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True
            )
        self._adopt_ports(self._wait_ready(stderr_path))
        return self

    def _stderr_file(self) -> Path:
        """Where the simulator's log goes: log_path, else a file of our own (removed by stop())."""
        if self.log_path is not None:
            return self.log_path
        if self._stderr_path is None:
            handle, name = tempfile.mkstemp(prefix="fixadapter-sim-", suffix=".log")
            os.close(handle)
            self._stderr_path = Path(name)
            self._own_stderr = True
        return self._stderr_path

    def _wait_ready(self, stderr_path: Path) -> str:
        process = self._process
        if process is None or process.stdout is None:
            raise SimulatorFailed("the simulator process was not started")
        deadline = time.monotonic() + START_SECONDS
        pending = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise SimulatorFailed(
                    f"simulator not ready after {START_SECONDS:g}s (killed); the end of its log "
                    f"{stderr_path}:\n{log_tail(stderr_path)}"
                )
            readable, _, _ = select.select([process.stdout], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(process.stdout.fileno(), 65536)
            pending += chunk
            for line in pending.decode(errors="replace").splitlines(keepends=True):
                if READY_LINE in line and line.endswith("\n"):
                    return line
            if not chunk:  # end of output: the simulator is gone
                returncode = process.wait(10)
                self._release()
                raise SimulatorFailed(
                    f"simulator exited before it was ready ({exit_status(returncode)}); the end of its log "
                    f"{stderr_path}:\n{log_tail(stderr_path)}"
                )

    def _adopt_ports(self, ready_line: str) -> None:
        reported = read_accounts(ready_line)
        served = [(a["name"], a["sender_comp_id"], a["username"]) for a in reported]
        asked = [(a.name, a.sender_comp_id, a.username) for a in self._asked_accounts]
        if served != asked:
            self.kill()
            raise SimulatorFailed(f"the simulator serves the accounts {served}, not {asked}")
        self._served = tuple(
            dataclasses.replace(
                account,
                ctid_trader_account_id=int(entry["ctid_trader_account_id"]),
                is_live=bool(entry["is_live"]),
            )
            for account, entry in zip(self._asked_accounts, reported, strict=True)
        )
        ports = read_ports(ready_line)
        self.quote_port = ports["quote"] or 0
        self.trade_port = ports["trade"] or 0
        self.control_port = ports["control"] or 0
        self.quote_tls_port = ports.get("quote_tls") or self.quote_tls_port
        self.trade_tls_port = ports.get("trade_tls") or self.trade_tls_port
        self.openapi_port = ports.get("openapi") or self.openapi_port
        self.oauth_port = ports.get("oauth") or self.oauth_port

    def kill(self) -> None:
        """SIGKILL the simulator and its QUOTE child at once: a crash, not a shutdown."""
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait(10)
        self._release()

    def _release(self) -> None:
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()
        self._process = None

    def stop(self) -> None:
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()
        self._release()
        if self._own_stderr and self._stderr_path is not None:
            self._stderr_path.unlink(missing_ok=True)
            self._stderr_path = None
            self._own_stderr = False

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        url = f"http://127.0.0.1:{self.control_port}{path}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback only
            return json.loads(response.read())

    @property
    def tls_directory(self) -> Path:
        if self.tls_dir is None:
            base = self.state_path.parent if self.state_path is not None else Path(tempfile.gettempdir())
            self.tls_dir = base / f"sim-tls-{uuid.uuid4().hex[:12]}"
        return self.tls_dir

    @property
    def ca_file(self) -> Path:
        """The CA a client pins to trust this simulator's TLS ports, the Open API's among them (made at the
        first start)."""
        return self.tls_directory / "ca.pem"

    def session_port(self, kind: SessionKind) -> int:
        """The port an adapter connects to for `kind`: the TLS one when this simulator serves TLS."""
        if self.tls:
            return self.quote_tls_port if kind is SessionKind.QUOTE else self.trade_tls_port
        return self.quote_port if kind is SessionKind.QUOTE else self.trade_port

    @property
    def _asked_accounts(self) -> tuple[SimAccountCredentials, ...]:
        if self.accounts:
            return self.accounts
        return (SimAccountCredentials(DEFAULT_ACCOUNT, self.sender_comp_id, self.username, self.password),)

    @property
    def served_accounts(self) -> tuple[SimAccountCredentials, ...]:
        """The accounts this simulator serves, first one first; once started, with the Open API ids the
        simulator reported."""
        return self._served or self._asked_accounts

    @property
    def oauth_base_url(self) -> str:
        """The OAuth endpoint (its /apps/auth and /apps/token stand in for openapi.ctrader.com's)."""
        return f"http://127.0.0.1:{self.oauth_port}"

    def openapi_client(self) -> tuple[str, str]:
        """The Open API application's (client id, client secret)."""
        return self.openapi_client_id, self.openapi_secret

    def openapi_grant(self, scope: str = "trading") -> dict[str, Any]:
        """A fresh token pair for the simulator's accounts (accessToken, refreshToken, expiresIn)."""
        answer: dict[str, Any] = self.control("/openapi/grant", {"scope": scope})
        return answer

    def account(self, name: str | None = None) -> SimAccountCredentials:
        """Account `name`'s credentials; the first account's when None."""
        if name is None:
            return self.served_accounts[0]
        for account in self.served_accounts:
            if account.name == name:
                return account
        raise KeyError(f"this simulator serves no account {name!r}")

    def store_openapi_grant(self, token_file: Path) -> TokenPair:
        """A fresh token pair granted and stored, encrypted, in `token_file` (the key from
        FIXADAPTER_OPENAPI_TOKEN_KEY, as the adapter reads it): what `fixadapter openapi login` does for a
        person, in one step, as cTrader's app page mints a token for the developer's own accounts."""
        from datetime import UTC, datetime

        from fixadapter.connectors.openapi.tokens import FileTokenStore, TokenPair, grant_key

        client_id, _secret = self.openapi_client()
        granted = self.openapi_grant()
        pair = TokenPair.issued(
            granted["accessToken"],
            granted["refreshToken"],
            float(granted["expiresIn"]),
            str(granted.get("tokenType") or "bearer"),
            datetime.now(UTC),
        )
        FileTokenStore(token_file).save(grant_key(client_id), pair)
        return pair

    def openapi_settings(self, token_file: Path, account: str | None = None, **extra: Any) -> dict[str, Any]:
        """The `openapi` section an adapter needs to reach account `account` (None: the first) over this
        simulator's Open API, its tokens in `token_file` (store_openapi_grant puts a pair there)."""
        client_id, secret = self.openapi_client()
        settings: dict[str, Any] = {
            "ctid_trader_account_id": self.account(account).ctid_trader_account_id,
            "host": "127.0.0.1",
            "port": self.openapi_port,
            "ca_file": str(self.ca_file),
            "client_id": client_id,
            "client_secret": secret,
            "token_file": str(token_file),
        }
        return {**settings, **extra}

    def adapter_settings(self, password: str | None = None, account: str | None = None) -> dict[str, Any]:
        """The `account` section an adapter needs to reach this simulator (over TLS when it serves TLS) as
        account `account` (None: the first)."""
        credentials = self.account(account)
        settings: dict[str, Any] = {
            "host": "127.0.0.1",
            "sender_comp_id": credentials.sender_comp_id,
            "username": credentials.username,
            "password": password if password is not None else credentials.password,
            "quote_port": self.session_port(SessionKind.QUOTE),
            "trade_port": self.session_port(SessionKind.TRADE),
            "heartbeat_seconds": 30,
            "reconnect_seconds": 1,
        }
        if self.tls:
            settings.update(quote_tls=True, trade_tls=True, tls_ca_file=str(self.ca_file))
        return settings

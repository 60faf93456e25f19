"""The services a soak run owns and kills: its own Redis, PostgreSQL behind a proxy it can cut (or
SQLite), the simulated venue (state on disk, TRADE through a fault proxy) and the daemon process.

Nothing here touches the machine's shared services beyond one database the run creates and drops.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from fixadapter.sim.faults import FaultProxy
from fixadapter.sim.process import SimProcess
from soak.proxy import CuttableProxy

START_SECONDS = 90.0
PREFIX = "soak"
HTTP_LINE = re.compile(r"HTTP on http://[^:\s]+:(\d+)")
# Generous limits: every rule runs on every order and none refuses a well-formed one.
RISK = {
    "max_open_orders": 1_000_000,
    "symbol_defaults": {"max_quantity": 1_000_000},
    "strategy_defaults": {
        "allowed_symbols": ["EURUSD"],
        "max_open_orders": 1_000_000,
        "max_orders_per_second": 100_000,
    },
}


class ServiceError(RuntimeError):
    """A service the soak needs did not start; the text says which and shows its log."""


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


class RedisServer:
    """redis-server on a unix socket in `directory`, password-protected, every write fsynced to its
    append-only file: SIGKILL loses nothing it acknowledged, as a production Redis with AOF would."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "redis.sock"
        self.password = secrets.token_hex(16)
        self.log = directory / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.conf = directory / "redis.conf"
        self.conf.write_text(
            f"port 0\nunixsocket {self.socket}\nunixsocketperm 700\ndir {directory}\n"
            f"appendonly yes\nappendfsync always\nsave ''\nrequirepass {self.password}\nlogfile {self.log}\n"
        )
        self.conf.chmod(0o600)

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0&password={self.password}"

    def start(self) -> None:
        self._process = subprocess.Popen(
            ["redis-server", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_SECONDS
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise ServiceError(f"redis-server did not start; its log ends:\n{_tail(self.log)}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        from redis import Redis
        from redis.exceptions import RedisError

        client = Redis(unix_socket_path=str(self.socket), password=self.password, socket_timeout=2)
        try:
            return bool(client.ping())
        except (RedisError, OSError):
            return False
        finally:
            client.close()

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(10)
            self._process = None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
            self._process = None


class Database:
    """The store: a fresh PostgreSQL database reached through a CuttableProxy, or SQLite with a note
    when PostgreSQL does not answer at `postgres_url`."""

    def __init__(self, workdir: Path, postgres_url: str | None) -> None:
        self.note = ""
        self.proxy: CuttableProxy | None = None
        self._admin_url = postgres_url
        self._name = f"fixadapter_soak_{os.getpid()}_{secrets.token_hex(3)}"
        self.url = f"sqlite:///{workdir / 'soak.db'}"
        self.direct_url = self.url
        if postgres_url is None:
            self.note = "store: SQLite (no PostgreSQL URL given; SOAK_POSTGRES_URL sets one)"
        elif not self._create():
            self.note = f"store: SQLite (PostgreSQL does not answer at {make_url(postgres_url)!r})"

    @property
    def cuttable(self) -> bool:
        return self.proxy is not None

    def _create(self) -> bool:
        assert self._admin_url is not None
        admin = create_engine(self._admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{self._name}"'))
        except SQLAlchemyError:
            return False
        finally:
            admin.dispose()
        base = make_url(self._admin_url)
        direct = base.set(database=self._name)
        self.proxy = CuttableProxy((base.host or "127.0.0.1", base.port or 5432)).start()
        self.direct_url = direct.render_as_string(hide_password=False)
        self.url = direct.set(host="127.0.0.1", port=self.proxy.port).render_as_string(hide_password=False)
        self.note = f"store: PostgreSQL, database {self._name} through a proxy the soak cuts"
        return True

    def drop(self) -> None:
        if self.proxy is None or self._admin_url is None:
            return
        self.proxy.stop()
        admin = create_engine(self._admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)'))
        finally:
            admin.dispose()


class Venue:
    """The simulator with its state on disk (it survives SIGKILL); TRADE reached through a FaultProxy
    that can slip garbled bytes in or cut the line."""

    def __init__(self, workdir: Path, seed: int) -> None:
        self.sim = SimProcess(
            state_path=workdir / "venue.state",
            log_path=workdir / "sim.log",
            extra_args=("--seed", str(seed), "--partial-fills", "2"),
        )
        self._proxy: FaultProxy | None = None

    @property
    def proxy(self) -> FaultProxy:
        if self._proxy is None:
            raise RuntimeError("the venue is not started")
        return self._proxy

    def start(self) -> None:
        """Start the simulator (its ports are kept across restarts), then the proxy to its TRADE port."""
        self.sim.start()
        self._proxy = FaultProxy(self.sim.trade_port).start()

    def restart(self) -> None:
        self.sim.start()

    def kill(self) -> None:
        self.sim.kill()

    def stop(self) -> None:
        if self._proxy is not None:
            self._proxy.stop()
        self.sim.stop()

    def account(self) -> dict[str, Any]:
        account = {k: v for k, v in self.sim.adapter_settings().items() if k != "password"}
        account.update(trade_port=self.proxy.port, quote_tls=False, trade_tls=False)
        return account


class DaemonProcess:
    """`fixadapter run --config` in its own process; the HTTP port (0 in the config) read from its log."""

    def __init__(
        self, workdir: Path, venue: Venue, redis: RedisServer, database: Database, strategies: tuple[str, ...]
    ) -> None:
        self.workdir = workdir
        self.log = workdir / "daemon.log"
        self.token = secrets.token_hex(16)
        self.password = venue.sim.password
        self.redis_password = redis.password
        self.config = workdir / "daemon.yaml"
        self._settings = (venue, database, strategies)
        self._env = {
            **os.environ,
            "FIXADAPTER_ACCOUNT__PASSWORD": venue.sim.password,
            "FIXADAPTER_DAEMON__QUEUE__REDIS_URL": redis.url,
            "FIXADAPTER_DAEMON__HTTP__TOKEN": self.token,
        }
        self._process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self.exits: list[int] = []  # exit codes of incarnations that ended on their own
        self.peak_rss_kib = 0

    def settings(self, venue: Venue, database: Database, strategies: tuple[str, ...]) -> dict[str, Any]:
        """The daemon's config (secrets come from the environment); the venue must be started."""
        return {
            "account": venue.account(),
            "store": {"url": database.url},
            "compliance": {"directory": str(self.workdir / "fixlog")},
            "orders": {"inflight_timeout_seconds": 2.0, "reconcile_timeout_seconds": 15},
            "risk": RISK,
            "daemon": {
                "queue": {
                    "kind": "redis",
                    "strategies": list(strategies),
                    "prefix": PREFIX,
                    "consumer": "soak",
                    "claim_idle_seconds": 5,
                },
                "http": {"enabled": True, "host": "127.0.0.1", "port": 0},
            },
        }

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        """Start and wait until its HTTP port is in the log (not for readiness: a fault may be on)."""
        if not self.config.exists():
            self.config.write_text(yaml.safe_dump(self.settings(*self._settings)))
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as sink:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "fixadapter", "run", "--config", str(self.config)],
                stdout=subprocess.DEVNULL,
                stderr=sink,
                env=self._env,
            )
        deadline = time.monotonic() + START_SECONDS
        while (port := self._logged_port(offset)) is None:
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise ServiceError(f"the daemon did not start; its log ends:\n{_tail(self.log)}")
            time.sleep(0.05)
        self.port = port

    def _logged_port(self, offset: int) -> int | None:
        with self.log.open("rb") as log:
            log.seek(offset)
            match = HTTP_LINE.search(log.read().decode(errors="replace"))
        return int(match.group(1)) if match else None

    def exited(self) -> int | None:
        """The exit code if the process ended on its own (noted once), else None."""
        if self._process is None or self._process.poll() is None:
            return None
        code = self._process.returncode
        self.exits.append(code)
        self._process = None
        return code

    def kill(self) -> None:
        self.sample_rss()
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signal.SIGKILL)
            self._process.wait(10)
            self._process = None

    def stop(self) -> int | None:
        """SIGTERM; the exit code (None if it had to be killed)."""
        if self._process is None:
            return None
        self._process.terminate()
        try:
            return self._process.wait(60)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        finally:
            self._process = None

    def sample_rss(self) -> int:
        """Resident memory now in KiB (0 when not running); the peak over the run is kept."""
        if self._process is None:
            return 0
        try:
            status = Path(f"/proc/{self._process.pid}/status").read_text()
        except OSError:
            return 0
        match = re.search(r"VmRSS:\s+(\d+)", status)
        rss = int(match.group(1)) if match else 0
        self.peak_rss_kib = max(self.peak_rss_kib, rss)
        return rss

    def http(
        self, path: str, method: str = "GET", body: bytes | None = None, token: bool = True
    ) -> tuple[int, bytes]:
        """One request to the daemon's HTTP API: (status, body); (0, b"") when nothing answers."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body, method=method)
        if token:
            request.add_header("Authorization", f"Bearer {self.token}")
        if body is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except OSError:
            return 0, b""

    def ready(self) -> bool:
        return self.port is not None and self.http("/readyz")[0] == 200

    def secrets(self) -> dict[str, str]:
        return {
            "FIX password": self.password,
            "HTTP token": self.token,
            "Redis password": self.redis_password,
        }

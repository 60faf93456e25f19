"""Run the simulator as a separate process (tests, demo, bench) and talk to its control port."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fixadapter.model.enums import SessionKind
from fixadapter.sim.runner import READY_LINE

START_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class SimProcess:
    """One simulator process; ports are chosen once and kept across restarts (like a real venue)."""

    state_path: Path | None = None
    quote_port: int = field(default_factory=free_port)
    trade_port: int = field(default_factory=free_port)
    control_port: int = field(default_factory=free_port)
    sender_comp_id: str = "demo.sim.1234567"
    username: str = "1234567"
    password: str = "sim-password"  # noqa: S105 - the simulator's own test credential
    extra_args: tuple[str, ...] = ()
    log_path: Path | None = None
    # TLS ports beside the plain ones, with a certificate made at start in tls_dir (its CA: ca_file).
    tls: bool = False
    tls_dir: Path | None = None
    tls_names: tuple[str, ...] = ()
    quote_tls_port: int = field(default_factory=free_port)
    trade_tls_port: int = field(default_factory=free_port)
    _process: subprocess.Popen[bytes] | None = None

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
            command += ["--tls-dir", str(self.tls_directory)]
            for name in self.tls_names:
                command += ["--tls-name", name]
        env = {**os.environ, "FIXADAPTER_SIM_PASSWORD": self.password}
        if self.log_path is None:
            self._process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, start_new_session=True
            )
        else:
            with open(self.log_path, "ab") as log:
                self._process = subprocess.Popen(
                    command, stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True
                )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        assert self._process is not None and self._process.stdout is not None  # noqa: S101 - set by start()
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            line = self._process.stdout.readline().decode(errors="replace")
            if READY_LINE in line:
                return
            if not line and self._process.poll() is not None:
                raise RuntimeError(f"simulator exited with {self._process.returncode} before it was ready")
        self.kill()
        raise RuntimeError(f"simulator not ready after {START_SECONDS:g}s")

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
            self.tls_dir = base / f"sim-tls-{self.control_port}"
        return self.tls_dir

    @property
    def ca_file(self) -> Path:
        """The CA a client pins to trust this simulator's TLS ports (made at the first start)."""
        return self.tls_directory / "ca.pem"

    def session_port(self, kind: SessionKind) -> int:
        """The port an adapter connects to for `kind`: the TLS one when this simulator serves TLS."""
        if self.tls:
            return self.quote_tls_port if kind is SessionKind.QUOTE else self.trade_tls_port
        return self.quote_port if kind is SessionKind.QUOTE else self.trade_port

    def adapter_settings(self, password: str | None = None) -> dict[str, Any]:
        """The `account` section an adapter needs to reach this simulator (over TLS when it serves TLS)."""
        settings: dict[str, Any] = {
            "host": "127.0.0.1",
            "sender_comp_id": self.sender_comp_id,
            "username": self.username,
            "password": password if password is not None else self.password,
            "quote_port": self.session_port(SessionKind.QUOTE),
            "trade_port": self.session_port(SessionKind.TRADE),
            "heartbeat_seconds": 30,
            "reconnect_seconds": 1,
        }
        if self.tls:
            settings.update(quote_tls=True, trade_tls=True, tls_ca_file=str(self.ca_file))
        return settings

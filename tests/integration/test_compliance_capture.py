"""The compliance record of a real session (the adapter here, the simulator in its own process): every message
of both sessions in the masked log files and in `fix_messages`, no password anywhere, the chains verifiable,
and the database writer through a PostgreSQL outage (a TCP proxy cut and restored: real connection failures).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, update

from fixadapter.api import Adapter
from fixadapter.cli import main
from fixadapter.compliance.chain import verify
from fixadapter.compliance.table import StoredRecord, fix_messages, iter_records
from fixadapter.config import AdapterConfig, ComplianceConfig
from fixadapter.model.enums import OrderStatus
from fixadapter.model.requests import NewOrder, ReplaceOrder
from fixadapter.sim.process import SimProcess
from fixadapter.store.repository import make_engine

from .conftest import ConfigFactory

PASSWORD = b"sim-password"  # the simulator's (tests/integration/conftest.py, fixadapter simulate)
SOH = "\x01"


def with_compliance(config: AdapterConfig, **settings: Any) -> AdapterConfig:
    compliance = ComplianceConfig(**{"flush_interval_ms": 50, **settings})
    return config.model_copy(update={"compliance": compliance})


def fields(raw: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in raw.split(SOH) if "=" in part)


def file_messages(directory: Path) -> list[str]:
    """Every message line of the masked QuickFIX-format files (both sessions), the time prefix removed."""
    lines: list[str] = []
    for path in sorted(directory.glob("*.messages.*")):
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        lines += [line.split(" : ", 1)[1] for line in data.decode().splitlines()]
    return lines


def files_holding(root: Path, secret: bytes) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".gz":
                data = gzip.decompress(data)
            if secret in data:
                found.append(path)
    return found


async def until(condition: Any, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def metric(adapter: Adapter, name: str, labels: dict[str, str] | None = None) -> float:
    return adapter.metrics.value(name, labels or {}) or 0.0


async def trade(adapter: Adapter, tag: str) -> None:
    """A market order filled, a limit order replaced twice and cancelled: D, 8, G, 8, F, 8 on TRADE."""
    filled = await adapter.submit(
        NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=10000, label=f"m{tag}")
    )
    await adapter.wait_for(filled.cl_ord_id, str(OrderStatus.FILLED))
    resting = await adapter.submit(
        NewOrder(symbol="EURUSD", side="buy", order_type="limit", quantity=10000, price=Decimal("0.9"))
    )
    await adapter.wait_for(resting.cl_ord_id, str(OrderStatus.NEW))
    for quantity in (20000, 30000):
        await adapter.replace(
            ReplaceOrder(cl_ord_id=resting.cl_ord_id, quantity=quantity, price=Decimal("0.91"))
        )
        await adapter.wait_for(resting.cl_ord_id, str(OrderStatus.NEW))
    await adapter.cancel(resting.cl_ord_id)
    await adapter.wait_for(resting.cl_ord_id, str(OrderStatus.CANCELLED))


def test_a_full_session_is_recorded_in_files_and_table_without_the_password(
    sim: SimProcess, make_config: ConfigFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = with_compliance(make_config(sim))

    async def scenario() -> None:
        async with Adapter(config) as adapter:
            await adapter.wait_ready(15)
            await adapter.subscribe("EURUSD", depth=True)
            await adapter.subscribe("GBPUSD")
            await trade(adapter, "1")
            await until(
                lambda: (
                    metric(adapter, "fixadapter_market_data_messages_applied_total", {"kind": "incremental"})
                    > 5
                )
            )

    asyncio.run(scenario())  # leaving the block logs out and flushes the recorder

    engine = make_engine(config.compliance_store_url)  # its own SQLite file beside the store
    rows = list(iter_records(engine))
    assert PASSWORD.decode() not in "".join(row.raw for row in rows)
    assert files_holding(tmp_path, PASSWORD) == []
    by_type = Counter((row.session, str(row.direction), row.msg_type) for row in rows)
    for session in ("QUOTE", "TRADE"):
        assert by_type[(session, "out", "A")] == 1 and by_type[(session, "in", "A")] == 1
        assert by_type[(session, "out", "5")] == 1  # the Logout at stop is recorded
    logons = [row for row in rows if row.msg_type == "A" and str(row.direction) == "out"]
    assert all(fields(row.raw)["554"] == "******" for row in logons)
    assert by_type[("TRADE", "out", "D")] == 2 and by_type[("TRADE", "out", "G")] == 2
    assert by_type[("TRADE", "out", "F")] == 1 and by_type[("TRADE", "in", "8")] >= 6
    assert by_type[("QUOTE", "out", "V")] >= 2 and by_type[("QUOTE", "in", "W")] >= 2
    assert by_type[("QUOTE", "in", "X")] > 5
    replaced = [row for row in rows if row.msg_type == "G"]
    assert all(row.cl_ord_id and row.orig_cl_ord_id for row in replaced)
    # The files hold the same messages as the table, in the same order per session.
    directory = tmp_path / "fixlog"
    assert sorted(file_messages(directory)) == sorted(row.raw for row in rows)
    assert verify(engine).intact

    # Tampering with the captured record is found by `fixadapter log verify`, which names the record.
    url = config.compliance_store_url
    assert main(["log", "verify", "--store-url", url]) == 0
    victim = next(row for row in rows if row.msg_type == "8")
    with engine.begin() as conn:
        forged = victim.raw.replace("\x0114=", "\x0114=9")
        conn.execute(update(fix_messages).where(fix_messages.c.id == victim.id).values(raw=forged))
    engine.dispose()
    capsys.readouterr()
    assert main(["log", "verify", "--store-url", url, "--session", "TRADE"]) == 1
    assert f"EDITED: record id {victim.id} (TRADE seq {victim.seq_num}" in capsys.readouterr().out


# -- PostgreSQL outage ---------------------------------------------------------------------------------------


class TcpProxy:
    """127.0.0.1:<port> -> PostgreSQL. `cut` closes the listener and every open connection (clients then
    see resets and refused connects, as with a stopped server); `restore` listens again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
        if listener is not None:
            listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def test_postgresql_outage_spills_trading_goes_on_and_every_message_lands_once(
    sim: SimProcess, make_config: ConfigFactory, tmp_path: Path, postgres_url: str, pg_schema: str
) -> None:
    schema = pg_schema
    server = make_url(postgres_url)
    proxy = TcpProxy((server.host or "127.0.0.1", server.port or 5432))
    through_proxy = server.set(port=proxy.port).update_query_dict({"options": f"-csearch_path={schema}"})
    config = with_compliance(
        make_config(sim),  # orders in SQLite: only the compliance writer loses its database
        store_url=through_proxy.render_as_string(hide_password=False),
        database_timeout_seconds=2,
    )
    in_schema = server.update_query_dict({"options": f"-csearch_path={schema}"})
    direct = make_engine(in_schema.render_as_string(hide_password=False))

    async def scenario() -> None:
        async with Adapter(config) as adapter:
            recorder = adapter.recorder
            assert recorder is not None
            await adapter.wait_ready(15)
            await adapter.subscribe("EURUSD", depth=True)
            await trade(adapter, "before")
            await asyncio.to_thread(recorder.flush)
            assert metric(adapter, "fixadapter_compliance_messages_recorded_total", {"store": "database"}) > 0

            proxy.cut()  # PostgreSQL is gone for the writer
            await trade(adapter, "during")  # trading does not notice
            await until(lambda: metric(adapter, "fixadapter_compliance_messages_spilled_total") > 20)
            # The writer keeps trying (with backoff) and keeps failing while the database is away.
            await until(
                lambda: (
                    metric(adapter, "fixadapter_database_write_errors_total", {"table": "fix_messages"}) >= 3
                )
            )
            assert recorder.spill is not None and recorder.spill.pending

            proxy.restore()
            await trade(adapter, "after")
            await until(
                lambda: recorder.spill is not None and not recorder.spill.pending,
                timeout=30,
                what="the spill to be loaded",
            )
            loaded = metric(adapter, "fixadapter_compliance_messages_spill_loaded_total")
            assert loaded == metric(adapter, "fixadapter_compliance_messages_spilled_total")

    try:
        asyncio.run(scenario())
    finally:
        proxy.cut()

    rows: list[StoredRecord] = list(iter_records(direct))
    files = file_messages(tmp_path / "fixlog")
    assert len(rows) == len(files)
    assert Counter(row.raw for row in rows) == Counter(files)  # every message, each exactly once
    keys = Counter((row.session, str(row.direction), row.seq_num) for row in rows)
    assert max(keys.values()) == 1
    report = verify(direct)
    assert report.intact and {chain.session for chain in report.chains} == {"QUOTE", "TRADE"}
    direct.dispose()
